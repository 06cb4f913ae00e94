"""`exposure`: how clients reach the Serve port; today an optional ALB
(infra/serving/exposure.py).
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import Field, model_validator

from infra.config.base import error_at
from serve_app.config import StrictModel

AcmCertificateArn = Annotated[
    str, Field(pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$")
]


class AlbConfig(StrictModel):
    """An Application Load Balancer in front of the Serve port, through the AWS Load Balancer
    Controller (installed only when enabled). HTTPS only; API keys travel in headers."""

    enabled: bool = Field(False, description="Create the ALB (and install its controller).")
    scheme: Literal["internal", "internet-facing"] = Field(
        "internal", description="internal: reachable from the VPC (and peered networks) only."
    )
    allowed_cidrs: list[IPv4Network] = Field(
        default_factory=list, max_length=50,
        description="Source CIDRs the ALB accepts (its security group). Empty: the whole VPC"
        " for internal, anyone for internet-facing (refused when the API endpoint is private).",
    )
    certificate_arn: AcmCertificateArn | None = Field(
        None, description="ACM certificate for the HTTPS listener (required when enabled)."
    )
    idle_timeout_s: int = Field(
        600, ge=60, le=4000,
        description="Seconds the ALB keeps a connection with no bytes flowing: must cover the"
        " slowest non-streamed completion and the longest pause of a stream. The one setting"
        " the other timeouts derive from, ALB or not (infra/serving/timeouts.py): Serve's"
        " keep-alive (this + 5), the target deregistration delay (this, at most 3600) and"
        " the RayService's rayClusterDeletionDelaySeconds (deregistration + 60).",
    )
    ssl_policy: str = Field(
        "ELBSecurityPolicy-TLS13-1-2-2021-06", pattern=r"^ELBSecurityPolicy-[A-Za-z0-9-]+$",
        description="TLS policy of the HTTPS listener.",
    )
    deletion_protection: bool = Field(
        False, description="ALB deletion protection (the controller cannot delete it then)."
    )

    @model_validator(mode="after")
    def _https_needs_certificate(self) -> AlbConfig:
        if self.enabled and self.certificate_arn is None:
            raise error_at(
                ("certificateArn",), None,
                f"required when the ALB is enabled (scheme {self.scheme}): the listener is"
                " HTTPS only, API keys must not cross a network in clear text",
            )
        return self


class ExposureConfig(StrictModel):
    alb: AlbConfig = Field(default_factory=AlbConfig, description="Optional ALB to Ray Serve.")


PROFILES = {
    "prod": {"alb": {"deletionProtection": True}},
}
