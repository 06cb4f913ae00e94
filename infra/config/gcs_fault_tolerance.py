"""`gcsFaultTolerance`: the Redis that keeps Ray's GCS state across a head
restart (infra/serving/gcs_store.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from infra.config.base import DnsLabel
from serve_app.config import StrictModel


class ElastiCacheConfig(StrictModel):
    node_type: str = Field(
        "cache.t4g.medium", pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$",
        description="ElastiCache node type of the GCS Redis.",
    )
    engine_version: str = Field(
        "7.1", pattern=r"^[0-9]+\.[0-9]+$", description="Redis OSS engine version."
    )
    replicas: int = Field(
        1, ge=1, le=5,
        description="Replicas besides the primary (at least 1: Multi-AZ automatic failover).",
    )
    snapshot_retention_days: int = Field(
        1, ge=0, le=35, description="Days ElastiCache keeps daily snapshots (0: none)."
    )


class InClusterRedisConfig(StrictModel):
    storage_gib: int = Field(8, ge=1, le=1000, description="GiB of the Redis data volume.")
    storage_class: DnsLabel = Field("gp3", description="StorageClass of the Redis data volume.")


class GcsFaultToleranceConfig(StrictModel):
    """Ray's GCS state kept in Redis, so that a head pod restart loses no Serve state."""

    backend: Literal["elasticache", "inCluster", "external", "off"] = Field(
        "elasticache", description="Where the GCS Redis runs: ElastiCache (Multi-AZ, TLS), an "
        "in-cluster StatefulSet (dev), an `externalAddress`, or off (no head-failure survival).",
    )
    external_address: str | None = Field(
        None, pattern=r"^rediss?://[A-Za-z0-9.-]+:[0-9]{1,5}$",
        description="`redis://host:port` or `rediss://host:port` (TLS) of an existing Redis "
        "(backend external only).",
    )
    elasticache: ElastiCacheConfig = Field(
        default_factory=ElastiCacheConfig, description="The ElastiCache replication group "
        "(backend elasticache)."
    )
    in_cluster: InClusterRedisConfig = Field(
        default_factory=InClusterRedisConfig, description="The in-cluster Redis StatefulSet "
        "(backend inCluster)."
    )

    @model_validator(mode="after")
    def _address_only_for_external(self) -> GcsFaultToleranceConfig:
        if self.backend == "external" and self.external_address is None:
            raise ValueError("backend external needs externalAddress (rediss://host:port)")
        if self.backend != "external" and self.external_address is not None:
            raise ValueError(f"externalAddress is only used with backend external, "
                             f"not {self.backend}")
        return self


# Printable ASCII without space, '"', '/' and '@': what ElastiCache accepts as an auth token.
REDIS_TOKEN_PATTERN = r"^[!#-.0-?A-~]{16,128}$"


PROFILES = {
    "dev": {"backend": "inCluster"},
    "staging": {"backend": "elasticache", "elasticache": {"nodeType": "cache.t4g.medium"}},
    "prod": {"backend": "elasticache", "elasticache": {
        "nodeType": "cache.r7g.large", "replicas": 2, "snapshotRetentionDays": 7}},
}
