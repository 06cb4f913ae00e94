"""`network`: the VPC (infra/foundation/network.py)."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Literal

from pydantic import Field, field_validator, model_validator

from serve_app.config import StrictModel


class NetworkConfig(StrictModel):
    vpc_cidr: IPv4Network = Field(IPv4Network("10.0.0.0/16"), description="VPC primary CIDR.")
    az_count: int = Field(3, ge=2, le=6, description="Availability zones to span.")
    nat_gateways: Literal["single", "perAz"] = Field(
        "perAz", description="One NAT gateway per AZ (resilient) or a single one (cheap)."
    )
    pod_cidr: IPv4Network | None = Field(
        None, description="Optional secondary VPC CIDR for pods (e.g. 100.64.0.0/16)."
    )
    interface_endpoints: list[Literal["ecr.api", "ecr.dkr", "sts", "sqs", "ec2"]] = Field(
        default_factory=list, description="Interface VPC endpoints to create."
    )
    flow_logs: bool = Field(True, description="VPC flow logs to CloudWatch.")
    flow_log_retention_days: Literal[7, 14, 30, 60, 90, 180, 365] = Field(
        90, description="Days CloudWatch keeps the VPC flow logs."
    )

    @field_validator("vpc_cidr", "pod_cidr")
    @classmethod
    def _cidr_size(cls, v: IPv4Network | None) -> IPv4Network | None:
        if v is not None and not 16 <= v.prefixlen <= 20:
            raise ValueError(f"prefix length must be /16 to /20, got /{v.prefixlen}")
        return v

    @model_validator(mode="after")
    def _no_overlap(self) -> NetworkConfig:
        if self.pod_cidr is not None and self.pod_cidr.overlaps(self.vpc_cidr):
            raise ValueError(
                f"podCidr {self.pod_cidr} overlaps vpcCidr {self.vpc_cidr}; "
                "use a disjoint range such as 100.64.0.0/16"
            )
        return self


# What each environment's profile sets under `network` (see infra/config/profiles.py).
PROFILES = {
    "dev": {"natGateways": "single", "flowLogs": False},
    "staging": {"natGateways": "single"},
}
