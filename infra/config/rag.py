"""The stack config's `rag` section: the AWS side of RAG (issue 18).

The serve side (`serving.rag`: enabled, embedder, chunking, limits, database pool, pipelines[])
is serve_app/rag/config.py, shipped to the Ray pods; it is the one place that says whether RAG is
on. This section says what the platform builds for it when `serving.rag.enabled`: an Aurora
PostgreSQL Serverless v2 cluster with pgvector (infra/serving/vector_db.py) and the in-cluster
schema migration Job. Nothing here reaches the Ray pods but the database's address and secret.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from serve_app.config import StrictModel

# Aurora Serverless v2 capacity comes in steps of 0.5 ACU, from 0 (auto-pause) to 256
# (pulumi_aws 7.51.1 rds ClusterServerlessv2ScalingConfigurationArgs: "range of 0 up to 256 in
# steps of 0.5").
MAX_ACU = 256.0


def _half_steps(value: float, key: str) -> float:
    if value * 2 != int(value * 2):
        raise ValueError(f"{key} must be a multiple of 0.5 ACU, got {value:g}")
    return value


class AuroraConfig(StrictModel):
    """The Aurora PostgreSQL Serverless v2 cluster that holds the vector stores."""

    engine_version: str = Field(
        "16.8", pattern=r"^[0-9]{2}\.[0-9]{1,2}$",
        description="aurora-postgresql engine version (major.minor). Needs pgvector >= 0.5 "
        "(HNSW); 16.8 ships pgvector 0.8.0. Check a version with `aws rds "
        "describe-db-engine-versions --engine aurora-postgresql`.",
    )
    min_capacity_acu: float = Field(
        0.5, ge=0, le=MAX_ACU,
        description="Fewest Aurora capacity units (ACU, about 2 GiB of memory each) each "
        "instance scales down to; 0 lets an idle instance pause (needs "
        "secondsUntilAutoPause; the first query then waits up to ~15 s).",
    )
    max_capacity_acu: float = Field(
        8, ge=1, le=MAX_ACU,
        description="Most ACUs each instance scales up to: the bound of the database's cost "
        "per hour (shown by `make render`).",
    )
    seconds_until_auto_pause: int | None = Field(
        None, ge=300, le=86_400,
        description="Seconds without connections before an instance at minCapacityAcu 0 "
        "pauses; only with minCapacityAcu 0.",
    )
    readers: int = Field(
        0, ge=0, le=15,
        description="Reader instances besides the writer, each in the DB subnets (another AZ "
        "when available): at least 1 for Multi-AZ failover (required in prod).",
    )
    backup_retention_days: int = Field(
        7, ge=1, le=35, description="Days Aurora keeps continuous backups (point-in-time restore)."
    )
    preferred_backup_window: str = Field(
        "08:00-09:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Daily UTC window (hh:mm-hh:mm, at least 30 minutes) for automated backups.",
    )
    deletion_protection: bool = Field(
        False, description="Aurora deletion protection: the cluster cannot be deleted (even by "
        "`pulumi destroy`) until it is switched off (required in prod).",
    )
    final_snapshot: bool = Field(
        True, description="Take a final snapshot when the cluster is deleted.",
    )
    database_name: str = Field(
        "rag", pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="Database created in the cluster for the vector stores.",
    )
    master_username: str = Field(
        "rag_admin", pattern=r"^[a-z][a-z0-9_]{0,15}$",
        description="Master user; its password is generated, kept and rotated by RDS in "
        "Secrets Manager (never in Pulumi state).",
    )
    performance_insights: bool = Field(
        True, description="Performance Insights on each instance (7 days free tier, encrypted "
        "with the cluster's key).",
    )

    @model_validator(mode="after")
    def _capacity(self) -> AuroraConfig:
        _half_steps(self.min_capacity_acu, "minCapacityAcu")
        _half_steps(self.max_capacity_acu, "maxCapacityAcu")
        if self.min_capacity_acu > self.max_capacity_acu:
            raise ValueError(f"minCapacityAcu ({self.min_capacity_acu:g}) must be <= "
                             f"maxCapacityAcu ({self.max_capacity_acu:g})")
        if self.min_capacity_acu == 0 and self.seconds_until_auto_pause is None:
            raise ValueError("minCapacityAcu 0 needs secondsUntilAutoPause (300-86400)")
        if self.min_capacity_acu > 0 and self.seconds_until_auto_pause is not None:
            raise ValueError("secondsUntilAutoPause is only used with minCapacityAcu 0")
        return self


class RagMigrationConfig(StrictModel):
    """The Kubernetes Job that creates or completes the schema (serve_app/rag/schema.py)."""

    timeout_minutes: int = Field(
        15, ge=2, le=240,
        description="Minutes the migration Job may run (activeDeadlineSeconds) and `pulumi up` "
        "waits for it; covers a paused Aurora resuming and building HNSW indexes.",
    )
    dimensions: list[int] = Field(
        default_factory=list, max_length=8,
        description="Embedding dimensions to build HNSW indexes for (e.g. 384): list every "
        "embedder's; required when serving.rag is enabled. The gateway's database role may not "
        "create indexes, so a store of an unlisted dimension is searched by exact scan.",
    )

    @model_validator(mode="after")
    def _dims(self) -> RagMigrationConfig:
        bad = [d for d in self.dimensions if not 1 <= d <= 2000]
        if bad:
            # pgvector's HNSW indexes vectors of up to 2,000 dimensions (pgvector README).
            raise ValueError(f"dimensions {bad} outside 1..2000 (pgvector's HNSW limit)")
        return self


class StackRagConfig(StrictModel):
    """`rag`: what the platform builds on AWS for `serving.rag` when it is enabled."""

    aurora: AuroraConfig = Field(
        default_factory=AuroraConfig,
        description="Aurora PostgreSQL Serverless v2 with pgvector, in the private subnets.",
    )
    migration: RagMigrationConfig = Field(
        default_factory=RagMigrationConfig,
        description="The in-cluster schema migration Job (runs on every `pulumi up` that "
        "changes it; idempotent).",
    )


def prod_problems(rag: StackRagConfig) -> list[tuple[tuple[str, ...], Any, str]]:
    """What prod requires of the database: (path under `rag`, value, message) per problem.
    StackConfig checks it in prod, whether or not serving.rag is enabled yet."""
    out: list[tuple[tuple[str, ...], Any, str]] = []
    if rag.aurora.readers < 1:
        out.append((("aurora", "readers"), rag.aurora.readers,
                    "prod needs at least 1 reader (Multi-AZ failover of the database)"))
    if not rag.aurora.deletion_protection:
        out.append((("aurora", "deletionProtection"), False, "must be true in prod"))
    if rag.aurora.min_capacity_acu == 0:
        out.append((("aurora", "minCapacityAcu"), 0,
                    "must be > 0 in prod (a paused database adds up to ~15 s to a request)"))
    return out


# What each environment's profile sets under `rag` (see infra/config/profiles.py).
PROFILES: dict[str, dict[str, Any]] = {
    "dev": {"aurora": {"minCapacityAcu": 0, "secondsUntilAutoPause": 1800,
                       "maxCapacityAcu": 4, "backupRetentionDays": 1, "finalSnapshot": False,
                       "performanceInsights": False}},
    "staging": {"aurora": {"minCapacityAcu": 0.5, "maxCapacityAcu": 8,
                           "backupRetentionDays": 7}},
    "prod": {"aurora": {"minCapacityAcu": 2, "maxCapacityAcu": 32, "readers": 1,
                        "backupRetentionDays": 30, "deletionProtection": True}},
}
