"""The whole stack file: `StackConfig`, one field per top-level key, and the checks
that span sections. Each section's model lives in its own module of this package.
"""

from __future__ import annotations

import re

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from infra.config.base import PROJECT, Environment, error_at, secret
from infra.config.cluster import ClusterConfig
from infra.config.exposure import ExposureConfig
from infra.config.gcs_fault_tolerance import REDIS_TOKEN_PATTERN, GcsFaultToleranceConfig
from infra.config.gpu_node_pools import GpuNodePoolConfig
from infra.config.karpenter import KarpenterConfig
from infra.config.model_store import STREAMING_LOAD_FORMATS, ModelStoreConfig, model_source_problem
from infra.config.monitoring import MonitoringConfig
from infra.config.network import NetworkConfig
from infra.config.rag import StackRagConfig, prod_problems
from infra.config.ray_service import RayServiceConfig
from infra.config.tenants import Tenants
from infra.config.tenants import problems as tenant_problems
from serve_app.config import Name, ServingConfig, StrictModel


class StackConfig(StrictModel):
    environment: Environment = Field(
        description="Profile of defaults: dev (cheap), staging, prod (safe)."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags on every AWS resource.")
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="The VPC.")
    cluster: ClusterConfig = Field(
        default_factory=ClusterConfig, description="The EKS cluster and its system nodes."
    )
    karpenter: KarpenterConfig = Field(
        default_factory=KarpenterConfig,
        description="Karpenter's node classes (AMI, volumes) and the Ray head pool.",
    )
    gpu_node_pools: list[GpuNodePoolConfig] = Field(
        min_length=1, description="GPU NodePools, tried by weight (highest first)."
    )
    ray_service: RayServiceConfig = Field(
        default_factory=RayServiceConfig,
        description="KubeRay RayService: upgrade strategy, autoscaler, head and ingress pods.",
    )
    serving: ServingConfig = Field(
        description="What the platform serves: models, aliases, API keys (serve_app/config.py)."
    )
    cost_ceiling_per_hour: float = Field(
        gt=0,
        description="USD/h: the most the GPU NodePools may cost per hour at their limits "
        "(on-demand prices of `aws:region` from infra/capacity/catalog.py). A stack whose worst "
        "case exceeds it fails the config check and the policy pack.",
    )
    grafana_admin_password: SecretStr | None = secret(description="Grafana admin password.")
    alertmanager_slack_webhook_url: SecretStr | None = secret(
        description="Slack incoming webhook for alerts."
    )
    monitoring: MonitoringConfig = Field(
        default_factory=MonitoringConfig,
        description="Prometheus, Alertmanager and Grafana on the system nodes: retention, sizes.",
    )
    alertmanager_webhook_url: SecretStr | None = secret(
        description="Webhook (e.g. a paging service's Alertmanager endpoint) for critical alerts."
    )
    exposure: ExposureConfig = Field(
        default_factory=ExposureConfig, description="How clients reach the Serve port."
    )
    api_keys: dict[Name, SecretStr] | None = (
        secret(
            description="API keys by key name (the names serving.auth.allowedModels uses), each"
            " 16-256 characters; mounted into the Ray pods as the keys file. Set one key with"
            " `pulumi config set --secret --path 'apiKeys.<name>' <key>`; rotating is `pulumi up`"
            " (picked up without a restart, see docs/serving-edge.md).",
        )
    )
    # ---- model store, code delivery, head failure (issue 11)
    model_store: ModelStoreConfig = Field(
        default_factory=ModelStoreConfig, description="S3 bucket for model weights and the "
        "serving code, read by the Ray pods through EKS Pod Identity (docs/cold-start.md)."
    )
    gcs_fault_tolerance: GcsFaultToleranceConfig = Field(
        default_factory=GcsFaultToleranceConfig, description="Redis that keeps Ray's GCS state "
        "so that the Ray head can restart without losing the Serve applications."
    )
    hugging_face_token: SecretStr | None = secret(
        description="Hugging Face token for gated models; goes into a Kubernetes Secret and "
        "the Ray pods' env (HF_TOKEN), never into serveConfigV2.",
    )
    redis_auth_token: SecretStr | None = secret(
        description="Auth token of the GCS Redis (16 to 128 printable characters without "
        "space, '\"', '/' or '@'). Unset: generated once and kept in the state as a secret.",
    )
    # ---- RAG on AWS (issue 18): the serve side is serving.rag
    rag: StackRagConfig = Field(
        default_factory=StackRagConfig,
        description="What the platform builds for RAG when serving.rag.enabled: Aurora "
        "PostgreSQL Serverless v2 with pgvector in the private subnets and the in-cluster "
        "schema migration Job (docs/rag-aws.md).",
    )
    tenants: Tenants = Field(
        default_factory=dict,
        description="Per-key limits by API key name: {rpm, tpm, maxConcurrent, dailyTokens,"
        " monthlyTokens, maxN}, each optional (unset: unlimited). Counted across every ingress"
        " replica in the GCS Redis; delivered with the keys, changed without a restart"
        " (docs/tenants.md).",
    )

    @field_validator("tenants")
    @classmethod
    def _tenants_name_keys(cls, v: Tenants, info: ValidationInfo) -> Tenants:
        keys = info.data.get("api_keys")
        gcs = info.data.get("gcs_fault_tolerance")
        found = tenant_problems(v, set(keys or {}), gcs.backend if gcs else None)
        if found:  # every bad entry, each at its own path (tenants.<name>)
            raise ValidationError.from_exception_data("StackConfig", [
                InitErrorDetails(type=PydanticCustomError("value_error", message), loc=(name,),
                                 input=v[name].model_dump(by_alias=True, exclude_none=True))
                for name, message in found
            ])
        return v

    # Cross-field checks are field validators so each error carries the key's own path.
    @field_validator("karpenter")
    @classmethod
    def _prod_pins_ami(cls, v: KarpenterConfig, info: ValidationInfo) -> KarpenterConfig:
        if info.data.get("environment") == "prod" and v.gpu_ami_version is None:
            raise ValueError("gpuAmiVersion must be pinned in prod (e.g. v20251108)")
        return v

    @model_validator(mode="after")
    def _private_endpoint_needs_a_way_in(self) -> StackConfig:
        # The EKS-managed cluster security group admits only itself: without a rule nothing
        # outside the cluster, the deployer included, reaches a private endpoint. (A model
        # check, so that it also holds when the stack file leaves `cluster` out.)
        if self.cluster.endpoint_access == "private" and not self.cluster.has_api_access_source:
            raise ValueError(
                f"cluster.endpointAccess is private but nothing may reach the API: set "
                f"{PROJECT}:cluster.apiAccessCidrs (the CIDR of your CI runner, VPN or peered "
                f"network) or {PROJECT}:cluster.apiAccessSecurityGroupIds"
            )
        return self

    @field_validator("serving")
    @classmethod
    def _keys_file_is_the_platforms(cls, v: ServingConfig) -> ServingConfig:
        if v.auth.keys_file is not None:
            # On EKS the keys file is the mounted apiKeys Secret (infra/serving/api_keys.py); a
            # path set here would be overridden, so it is refused rather than silently ignored.
            raise error_at(
                ("auth", "keysFile"), v.auth.keys_file,
                "is set by the platform (the mounted apiKeys Secret); set the keys with"
                " `pulumi config set --secret --path 'apiKeys.<name>' ...` instead",
            )
        database = v.rag.database
        if v.rag.enabled and database.migrate_on_start and (
                "migrate_on_start" in database.model_fields_set):
            # infra/serving/vector_db.py: the Job owns the schema; the pods' role has no DDL.
            raise error_at(
                ("rag", "database", "migrateOnStart"), True,
                "is set by the platform on EKS (false: the migration Job creates the schema,"
                " and the gateway's database role rag_app may not run DDL); remove it",
            )
        return v

    @field_validator("exposure")
    @classmethod
    def _public_alb_on_private_stack(
        cls, v: ExposureConfig, info: ValidationInfo
    ) -> ExposureConfig:
        cluster = info.data.get("cluster")
        alb = v.alb
        if (alb.enabled and alb.scheme == "internet-facing" and not alb.allowed_cidrs
                and cluster is not None and cluster.endpoint_access == "private"):
            raise error_at(
                ("alb", "allowedCidrs"), alb.allowed_cidrs,
                "must list the client CIDRs: an internet-facing ALB on a stack whose API"
                " endpoint is private (cluster.endpointAccess) would be open to the whole"
                " internet",
            )
        return v

    @field_validator("api_keys")
    @classmethod
    def _keys_cover_allowed_models(
        cls, v: dict[str, SecretStr] | None, info: ValidationInfo
    ) -> dict[str, SecretStr] | None:
        for name, key in (v or {}).items():
            n = len(key.get_secret_value())
            if not 16 <= n <= 256 or any(c.isspace() for c in key.get_secret_value()):
                raise error_at((name,), "[secret]", f"must be 16-256 characters with no"
                               f" whitespace (got {n} characters)")
        serving = info.data.get("serving")
        if v is None or serving is None:
            return v
        unknown = sorted(set(serving.auth.allowed_models) - set(v))
        if unknown:
            # A typo here would leave the intended key unrestricted (unlisted keys may call all).
            raise ValueError(
                f"serving.auth.allowedModels names keys {unknown} that apiKeys does not define"
                f" (defined: {sorted(v)})"
            )
        return v

    @field_validator("gpu_node_pools")
    @classmethod
    def _unique_pool_names(cls, v: list[GpuNodePoolConfig]) -> list[GpuNodePoolConfig]:
        names = [p.name for p in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pool names must be unique; repeated: {dupes}")
        return v

    @field_validator("model_store")
    @classmethod
    def _model_sources_are_granted(
        cls, v: ModelStoreConfig, info: ValidationInfo
    ) -> ModelStoreConfig:
        serving = info.data.get("serving")
        if serving is None:  # serving failed validation; its own error is reported
            return v
        for i, model in enumerate(serving.models):
            key = f"serving.models[{i}]"
            problem = model_source_problem(model.source, v)
            if problem:
                raise ValueError(f"{key}.source {model.source!r} {problem}")
            lora = model.lora.source if model.lora else None
            problem = model_source_problem(lora, v, lora=True) if lora else None
            if problem:
                raise ValueError(f"{key}.lora.source {lora!r} {problem}")
            fmt = model.engine_args.get("load_format")
            if fmt in STREAMING_LOAD_FORMATS and not v.image_has_streamer:
                raise ValueError(
                    f"{key}.engineArgs.load_format {fmt!r} needs runai-model-streamer[s3] in "
                    "the serving image, which the pinned ray-llm image lacks; drop it (the "
                    "model is then downloaded to the node's disk) or set "
                    "modelStore.imageHasStreamer: true for an image that has it"
                )
        return v

    @field_validator("gcs_fault_tolerance")
    @classmethod
    def _prod_survives_head_failure(
        cls, v: GcsFaultToleranceConfig, info: ValidationInfo
    ) -> GcsFaultToleranceConfig:
        if info.data.get("environment") == "prod" and v.backend not in ("elasticache", "external"):
            raise ValueError(
                f"backend {v.backend!r} in prod: the head must survive a restart on a managed "
                "Multi-AZ Redis (elasticache or external)"
            )
        return v

    @field_validator("rag")
    @classmethod
    def _rag_problems(cls, v: StackRagConfig, info: ValidationInfo) -> StackRagConfig:
        problems = prod_problems(v) if info.data.get("environment") == "prod" else []
        serving = info.data.get("serving")
        if serving is not None and serving.rag.enabled and not v.migration.dimensions:
            # The gateway's role may not create indexes (serve_app/rag/schema.py,
            # ensure_hnsw_index): without a listed dimension every search is an exact scan.
            problems.append((
                ("migration", "dimensions"), [],
                f"must list the output dimensions of the embedder {serving.rag.embedder!r}"
                " (e.g. [384] for bge-small-en): the migration Job builds their HNSW indexes"
                " and the gateway may not, so the stores would be searched by exact scan",
            ))
        if problems:  # every problem at its own key
            raise ValidationError.from_exception_data("StackConfig", [
                InitErrorDetails(type=PydanticCustomError("value_error", msg), loc=loc,
                                 input=value)
                for loc, value, msg in problems
            ])
        return v

    @field_validator("redis_auth_token")
    @classmethod
    def _redis_token_shape(cls, v: SecretStr | None) -> SecretStr | None:
        # The message never echoes the value.
        if v is not None and not re.fullmatch(REDIS_TOKEN_PATTERN, v.get_secret_value()):
            raise ValueError(
                f"must be 16 to 128 printable characters without space, '\"', '/' or '@' "
                f"(got {len(v.get_secret_value())} characters)"
            )
        return v
