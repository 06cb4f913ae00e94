"""Typed serving configuration: the single source of truth for what the platform serves.

Imports only the standard library and pydantic: the Pulumi program imports this module on
machines where Ray is not installed. API keys are never part of this model; they are read at
runtime from an environment variable or a mounted file (see `serve_app.auth`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pydantic
from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from serve_app.tenants.settings import TenantsConfig
from serve_app.vllm_parsers import REASONING_PARSERS, TOOL_CALL_PARSERS

# Model and alias names travel in JSON bodies and in Ray deployment names.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
# `<model>` or `<model>:<adapter>`: a LoRA adapter of a model with `lora` (Ray Serve LLM's form).
ModelRef = Annotated[str, Field(pattern=NAME_PATTERN[:-1] + "(:" + NAME_PATTERN[1:-1] + ")?$")]
# A browser `Origin`: scheme, lower-case host, optional port; no path, no wildcard.
Origin = Annotated[str, Field(pattern=r"^https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")]
_ENV_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Fault hooks (serve_app/faults.py) read these from the process environment, which only local
# mode and tests set; the serving config may not, so no deployed cluster can turn them on.
FAULT_ENV_PREFIX = "LLM_PLATFORM_FAULT_"
_SECRET_NAME_RE = re.compile(r"(^|_)(API_?KEYS?|KEYS?|TOKENS?|SECRETS?|PASSWORDS?)($|_)")


def _first_repeat(names: list[str]) -> int | None:
    """Index of the first name that already appeared earlier in the list, if any."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            return i
        seen.add(name)
    return None


class StrictModel(pydantic.BaseModel):
    """Base for every config model: unknown keys are errors, keys are camelCase."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
    )


class Autoscaling(StrictModel):
    min_replicas: int = Field(
        1, ge=0, le=1000, description="Fewest replicas of the model (0 needs allowScaleToZero)."
    )
    max_replicas: int = Field(1, ge=1, le=1000, description="Most replicas of the model.")
    target_ongoing_requests: float = Field(
        4.0, gt=0, le=10_000,
        description="Requests in flight per replica that the autoscaler aims for (always set:"
        " Ray Serve LLM's own default, 1e9, never scales up).",
    )
    upscale_delay_s: float = Field(
        30.0, ge=0, le=3600, description="Seconds the load must stay high before scaling up."
    )
    downscale_delay_s: float = Field(
        600.0, ge=0, le=86_400, description="Seconds the load must stay low before scaling down."
    )
    allow_scale_to_zero: bool = Field(
        False,
        description="Allow minReplicas 0: frees the GPU, but the next request waits for a cold"
        " start, so it must be asked for explicitly.",
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must be <= maxReplicas ({self.max_replicas})"
            )
        if self.min_replicas == 0 and not self.allow_scale_to_zero:
            raise ValueError("minReplicas 0 (scale to zero) requires allowScaleToZero: true")
        return self


class Accelerator(StrictModel):
    """What one replica of a model needs. gpusPerReplica 0 means CPU (local mode)."""

    gpus_per_replica: int = Field(
        1, ge=0, le=8, description="GPUs of one replica (0: CPU only, as in local mode)."
    )
    accelerator_type: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description='Ray accelerator type label, e.g. "L4" or "A10G"; unset lets Ray pick any'
        " GPU node.",
    )
    cpus_per_replica: float = Field(1.0, gt=0, le=256, description="vCPUs of one replica.")
    # Read by the platform (infra/), not by the app: where the GPU worker group runs.
    node_pool: str | None = Field(
        None,
        pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$",
        description=(
            "GPU NodePool (gpuNodePools[].name) this model's replicas run on on EKS; unset: the"
            " one pool whose GPU is acceleratorType."
        ),
    )


class ModelFacts(StrictModel):
    """A model's architecture, for the platform's capacity check (numbers from its config.json).
    Common models have them built in (infra/model_catalog.py); others state them here."""

    parameters_billions: float = Field(gt=0, le=10_000, description="Parameter count, billions.")
    num_layers: int = Field(gt=0, le=1000, description="Transformer layers (num_hidden_layers).")
    num_attention_heads: int = Field(gt=0, le=1024, description="Attention (query) heads.")
    num_kv_heads: int = Field(gt=0, le=1024, description="Key/value heads (num_key_value_heads).")
    head_dim: int = Field(gt=0, le=4096, description="Size of one attention head.")
    context_length: int = Field(
        gt=0, le=10_000_000,
        description="Longest context in tokens (max_position_embeddings); used when engineArgs"
        " has no max_model_len.",
    )
    dtype: Literal["bfloat16", "float16", "float32"] = Field(
        "bfloat16", description="Native weight dtype (torch_dtype)."
    )
    encoder_only: bool = Field(
        False,
        description="Bidirectional (encoder-only) attention, as BERT-family embedders and"
        " cross-encoders have: vLLM gives such layers no KV cache, so the capacity check of an"
        " embed/score model counts none. False: causal attention (decoder models, decoder"
        " embedders).",
    )


def _known(kind: str, value: str, valid: frozenset[str]) -> str:
    if value not in valid:
        raise ValueError(
            f"{value!r} is not a {kind} registered in the pinned vLLM (0.29.0); valid:"
            f" {', '.join(sorted(valid))}"
        )
    return value


class ToolCalling(StrictModel):
    """vLLM's auto tool choice for a chat model (`--enable-auto-tool-choice`)."""

    parser: str = Field(
        description="vLLM tool-call parser matching the model's chat template (vLLM's"
        " --tool-call-parser, e.g. hermes, llama3_json, mistral, pythonic); checked against the"
        " pinned vLLM's registry.",
    )
    reasoning_parser: str | None = Field(
        None,
        description="vLLM reasoning parser for models that think before answering (vLLM's"
        " --reasoning-parser, e.g. qwen3, deepseek_r1); unset: none.",
    )

    @field_validator("parser")
    @classmethod
    def _tool_parser(cls, value: str) -> str:
        return _known("tool-call parser", value, TOOL_CALL_PARSERS)

    @field_validator("reasoning_parser")
    @classmethod
    def _reasoning_parser(cls, value: str | None) -> str | None:
        return None if value is None else _known("reasoning parser", value, REASONING_PARSERS)


# vLLM frontend args that only toolCalling sets: one source of truth for them.
TOOL_ENGINE_ARGS = ("enable_auto_tool_choice", "tool_call_parser")
# vLLM engine args (vllm/config/lora.py) that only `lora` sets.
LORA_ENGINE_ARGS = ("enable_lora", "max_loras", "max_lora_rank", "max_cpu_loras")


class LoraAdapters(StrictModel):
    """LoRA adapters of one base model, loaded on demand from the model store (Ray Serve LLM's
    dynamic LoRA loading, `LLMConfig.lora_config`)."""

    source: str = Field(
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([^/]+/)*$", max_length=1024,
        description="s3://<bucket>/loras/<model>/: one folder per adapter (PEFT's"
        " adapter_config.json + adapter_model.safetensors); the folder name is the adapter's,"
        " called as `<model id>:<folder>`.",
    )
    max_adapters: int = Field(
        ge=1, le=256,
        description="Adapters one replica holds at once (vLLM max_loras and Ray's"
        " max_num_adapters_per_replica); another one evicts the least recently used.",
    )
    max_rank: Literal[1, 8, 16, 32, 64, 128, 256, 320, 512] = Field(
        16,
        description="Largest adapter rank served (vLLM max_lora_rank); sizes each adapter slot's"
        " memory, which the capacity check counts.",
    )


class ModelSpec(StrictModel):
    id: Name = Field(description="The name clients put in `model`; also names its deployment.")
    source: str = Field(
        min_length=1, max_length=1024,
        description="Hugging Face repo id, local directory or object-store URI the engine loads"
        " from.",
    )
    task: Literal["generate", "embed", "score"] = Field(
        "generate",
        description="generate: completions and chat; embed: embeddings; score: rerank scores"
        " (/v1/score). embed and score run on vLLM's pooling runner (`runner: pooling`; vLLM"
        " removed the `task` engine argument Ray's docs still show).",
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Passed verbatim to vLLM (snake_case keys, as vLLM names them).",
    )
    accelerator: Accelerator = Field(
        default_factory=Accelerator, description="What one replica needs (GPUs, CPUs)."
    )
    facts: ModelFacts | None = Field(
        None, description="Architecture numbers for the capacity check; unset: built-in catalog."
    )
    autoscaling: Autoscaling = Field(
        default_factory=Autoscaling, description="Replica count bounds and scaling targets."
    )
    routing: Literal["powerOfTwo", "prefixAffinity"] = Field(
        "powerOfTwo",
        description="How callers pick one of the model's replicas. powerOfTwo: Ray Serve's"
        " default (the less busy of two random replicas). prefixAffinity: Ray Serve LLM's"
        " PrefixCacheAffinityRouter (prompts sharing a prefix go to the replica that has it in"
        " its KV cache while load is balanced) with vLLM's enable_prefix_caching on.",
    )
    max_ongoing_requests: int = Field(
        64, ge=1, le=100_000,
        description="Per-replica cap of requests in flight; more are queued at the caller.",
    )
    max_queued_requests: int = Field(
        256, ge=1, le=1_000_000,
        description="Bounded queue (requests): past it callers get 503 instead of waiting"
        " forever.",
    )
    tool_calling: ToolCalling | None = Field(
        None,
        description="Let clients send `tools` with tool_choice auto, required or a named"
        " function (chat and Responses API). Unset: such requests get a 400 naming this key.",
    )
    lora: LoraAdapters | None = Field(
        None,
        description="Serve this model's LoRA adapters from the model store, each as"
        " `<id>:<adapter>`; unset: none.",
    )
    stream_batching_interval_ms: float = Field(
        50.0, ge=0, le=1000,
        description="Milliseconds between batches of a stream's tokens sent to the ingress (the"
        " first at once). Larger: less CPU per token; smaller: smoother streams. See"
        " docs/performance.md.",
    )

    @field_validator("engine_args")
    @classmethod
    def _engine_args_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key in ("model", "served_model_name"):
                raise ValueError(f"engineArgs.{key} is set from the model's id/source; remove it")
            if key in TOOL_ENGINE_ARGS:
                raise ValueError(f"engineArgs.{key} is set by toolCalling; use that instead")
            if key in LORA_ENGINE_ARGS:
                raise ValueError(f"engineArgs.{key} is set by lora; use that instead")
            if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
                raise ValueError(f"engineArgs key {key!r} must be a snake_case vLLM argument")
        return value

    @field_validator("routing")
    @classmethod
    def _routing_needs_prefix_cache(cls, value: str, info: pydantic.ValidationInfo) -> str:
        engine = info.data.get("engine_args") or {}
        if value == "prefixAffinity" and engine.get("enable_prefix_caching") is False:
            raise ValueError(
                "routing prefixAffinity needs vLLM's prefix cache: remove"
                " engineArgs.enable_prefix_caching: false (or use routing powerOfTwo)"
            )
        return value

    @field_validator("tool_calling")
    @classmethod
    def _tools_need_chat(
        cls, value: ToolCalling | None, info: pydantic.ValidationInfo
    ) -> ToolCalling | None:
        if value is None:
            return value
        if info.data.get("task", "generate") != "generate":
            raise ValueError("toolCalling needs task: generate (embed/score models have no chat)")
        if value.reasoning_parser and "reasoning_parser" in info.data.get("engine_args", {}):
            raise ValueError(
                "toolCalling.reasoningParser and engineArgs.reasoning_parser are both set;"
                " keep one"
            )
        return value

    @field_validator("lora")
    @classmethod
    def _lora_needs_generate(
        cls, value: LoraAdapters | None, info: pydantic.ValidationInfo
    ) -> LoraAdapters | None:
        if value is not None and info.data.get("task", "generate") != "generate":
            raise ValueError("lora needs task: generate")
        return value

    @model_validator(mode="after")
    def _check_target_vs_cap(self) -> ModelSpec:
        if self.autoscaling.target_ongoing_requests > self.max_ongoing_requests:
            raise ValueError(
                f"autoscaling.targetOngoingRequests ({self.autoscaling.target_ongoing_requests})"
                f" must be <= maxOngoingRequests ({self.max_ongoing_requests}),"
                " else replicas never look busy enough to scale up"
            )
        return self


class AliasTarget(StrictModel):
    model: ModelRef = Field(
        description="A configured model id, or `<id>:<adapter>` for a LoRA adapter of a model"
        " with `lora`."
    )
    weight: float = Field(
        gt=0, le=1_000_000,
        description="Relative share of the alias's callers (90 and 10 split 90% / 10%).",
    )


class RollbackRule(StrictModel):
    """When a canary target of an alias is taken out of it (serve_app/rollback.py)."""

    max_error_ratio: float = Field(
        ge=0, lt=1,
        description="Largest tolerated share of a canary's requests answered with a 5xx (or,"
        " with maxTtftS, too slow) over the window; above it the canary is rolled back.",
    )
    min_requests: int = Field(
        20, ge=1, le=1_000_000,
        description="Requests a canary must have had in the window before it can be judged.",
    )
    window_s: float = Field(
        60.0, ge=5, le=3600,
        description="Sliding window, seconds, over which requests and errors are counted.",
    )
    max_ttft_s: float | None = Field(
        None, gt=0, le=600,
        description="Optional: a streamed request whose first token takes longer than this"
        " many seconds counts as an error too. Unset: only 5xx count.",
    )


class Alias(StrictModel):
    """A public name that splits traffic between models, e.g. chat -> 90% a, 10% a-v2."""

    name: Name = Field(description="The public name clients put in `model`.")
    targets: list[AliasTarget] = Field(
        min_length=1, max_length=16,
        description="Models the alias splits between; a caller always gets the same one."
        " With rollback, targets[0] is the stable target and the others are canaries.",
    )
    rollback: RollbackRule | None = Field(
        None,
        description="Canary auto-rollback: the gateway counts each target's errors over"
        " windowS, across all ingress replicas; a canary that breaches maxErrorRatio has its"
        " share sent to targets[0] until a deploy changes this alias. Unset: no rollback.",
    )

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, value: list[AliasTarget]) -> list[AliasTarget]:
        i = _first_repeat([t.model for t in value])
        if i is not None:
            raise ValueError(f"targets[{i}].model {value[i].model!r} is listed twice")
        return value

    @field_validator("rollback")
    @classmethod
    def _rollback_needs_canary(
        cls, value: RollbackRule | None, info: pydantic.ValidationInfo
    ) -> RollbackRule | None:
        targets = info.data.get("targets")
        if value is not None and targets is not None and len(targets) < 2:
            raise ValueError(
                "rollback needs at least two targets: targets[0] (stable) and a canary"
            )
        return value


class AuthConfig(StrictModel):
    enabled: bool = Field(True, description="Require an API key (`Authorization: Bearer`).")
    keys_env_var: str = Field(
        "LLM_PLATFORM_API_KEYS",
        description="Environment variable with comma-separated keys, each `KEY` or `NAME:KEY`"
        " (the name is used by allowedModels).",
    )
    keys_file: str | None = Field(
        None, min_length=1,
        description="Mounted secret file: one `KEY` or `NAME:KEY` per line, '#' comments"
        " allowed.",
    )
    keys_reload_interval_s: float = Field(
        10.0, ge=0.5, le=3600,
        description="Seconds between checks of keysFile for new content (a rotated Secret is"
        " picked up without a restart, within kubelet's sync delay plus this interval).",
    )
    allowed_models: dict[Name, list[ModelRef]] = Field(
        default_factory=dict,
        description="Key name -> models/aliases (and `<model>:<adapter>` LoRA adapters, each"
        " named) that key may call. Keys not listed may call everything.",
    )

    @field_validator("keys_env_var")
    @classmethod
    def _env_var_name(cls, value: str) -> str:
        if not _ENV_VAR_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid environment variable name")
        return value


class IngressConfig(StrictModel):
    """The routing/auth layer in front of the model servers."""

    min_replicas: int = Field(1, ge=1, le=100, description="Fewest ingress replicas.")
    max_replicas: int = Field(2, ge=1, le=100, description="Most ingress replicas.")
    target_ongoing_requests: float = Field(
        64.0, gt=0, le=100_000,
        description="Requests in flight per ingress replica that the autoscaler aims for.",
    )
    max_ongoing_requests: int = Field(
        1000, ge=1, le=100_000, description="Per-replica cap of requests in flight."
    )
    max_queued_requests: int = Field(
        2000, ge=1, le=1_000_000,
        description="Bounded queue (requests): past it callers get 503.",
    )
    cpus_per_replica: float = Field(1.0, ge=0, le=64, description="vCPUs of one ingress replica.")

    @model_validator(mode="after")
    def _check_bounds(self) -> IngressConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must be <= maxReplicas ({self.max_replicas})"
            )
        return self


def _check_ref(ref: str, models: list[ModelSpec]) -> str | None:
    """Why `ref` (`<model>` or `<model>:<adapter>`) names nothing served, or None if it does."""
    base, _, adapter = ref.partition(":")
    spec = next((m for m in models if m.id == base), None)
    if spec is None:
        configured = ", ".join(sorted(m.id for m in models))
        return f"{ref!r} is not a configured model (configured: {configured})"
    if adapter and spec.lora is None:
        return f"{ref!r} names a LoRA adapter, but model {base!r} has no `lora`"
    return None


# Late on purpose: serve_app.rag.config builds on StrictModel and Name defined above.
from serve_app.rag.config import RagConfig, check_rag_references  # noqa: E402


class ServingConfig(StrictModel):
    app_name: Name = Field(
        "llm-platform", description="Ray Serve application name (prefix of per-model apps)."
    )
    route_prefix: str = Field(
        "/", pattern=r"^/([A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*)?$",
        description="HTTP path the OpenAI API is served under.",
    )
    gateway: Literal["ingress", "direct"] = Field(
        "ingress",
        description="ingress: one endpoint for every model and alias (GatewayIngress routes by"
        " `model`). direct: one application per model at <routePrefix>/<model id>, each replica"
        " serving HTTP itself behind Ray's HAProxy with keys checked in the replica; fastest,"
        " but no aliases and one base URL per model. See docs/performance.md.",
    )
    throughput_optimized: bool = Field(
        False,
        description="Ray Serve's RAY_SERVE_THROUGHPUT_OPTIMIZED + HAProxy ingress (cluster-wide"
        " env flags, see serve_config.cluster_env). HAProxy binds all interfaces.",
    )
    models: list[ModelSpec] = Field(
        min_length=1, max_length=64, description="The models served, one deployment each."
    )
    aliases: list[Alias] = Field(
        default_factory=list, max_length=64,
        description="Public names that split traffic between models (canaries).",
    )
    rag: RagConfig = Field(
        default_factory=RagConfig,
        description="Vector stores (OpenAI Files + Vector Stores API on PostgreSQL + pgvector)"
        " and retrieval pipelines served as models (serve_app/rag/config.py).",
    )
    auth: AuthConfig = Field(default_factory=AuthConfig, description="API keys.")
    ingress: IngressConfig = Field(
        default_factory=IngressConfig,
        description="The routing/auth layer in front of the model servers.",
    )
    tenants: TenantsConfig = Field(
        default_factory=TenantsConfig,
        description="Per-key rate limits and token budgets (counted in Redis), the n cap and the"
        " request body limit. See docs/tenants.md.",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra environment for every replica (e.g. HF_HUB_OFFLINE). Not for"
        " secrets.",
    )
    cors_origins: list[Origin] = Field(
        default_factory=list, max_length=64,
        description="Browser origins (scheme://host[:port], exactly as browsers send them)"
        " allowed to call the API cross-origin, without credentials. Empty: no CORS headers at"
        " all (Ray's default of every origin with credentials is removed).",
    )

    # Cross-references are checked in field validators of the later fields, so that each
    # error is reported on the field that holds the bad value.
    @field_validator("models")
    @classmethod
    def _unique_models(cls, value: list[ModelSpec]) -> list[ModelSpec]:
        i = _first_repeat([m.id for m in value])
        if i is not None:
            raise ValueError(f"models[{i}].id {value[i].id!r} is used by an earlier model")
        return value

    @field_validator("aliases")
    @classmethod
    def _check_aliases(cls, value: list[Alias], info: pydantic.ValidationInfo) -> list[Alias]:
        models = info.data.get("models")
        if models is None:  # models itself failed validation; its error is reported.
            return value
        tasks = {m.id: m.task for m in models}
        seen: set[str] = set()
        for i, alias in enumerate(value):
            if alias.name in tasks:
                raise ValueError(f"aliases[{i}].name {alias.name!r} clashes with a model id")
            if alias.name in seen:
                raise ValueError(f"aliases[{i}].name {alias.name!r} is used by an earlier alias")
            seen.add(alias.name)
            for j, target in enumerate(alias.targets):
                problem = _check_ref(target.model, models)
                if problem is not None:
                    raise ValueError(f"aliases[{i}].targets[{j}].model {problem}")
            if len({tasks[t.model.split(":")[0]] for t in alias.targets}) > 1:
                raise ValueError(f"aliases[{i}] mixes generate and embed models")
        return value

    @field_validator("rag")
    @classmethod
    def _check_rag(cls, value: RagConfig, info: pydantic.ValidationInfo) -> RagConfig:
        models, aliases = info.data.get("models"), info.data.get("aliases")
        if models is None or aliases is None:
            return value
        check_rag_references(value, models, aliases)
        return value

    @field_validator("auth")
    @classmethod
    def _check_allowed_models(cls, value: AuthConfig, info: pydantic.ValidationInfo) -> AuthConfig:
        models, aliases = info.data.get("models"), info.data.get("aliases")
        if models is None or aliases is None:
            return value
        other_names = {a.name for a in aliases}
        rag = info.data.get("rag")
        other_names |= {p.name for p in rag.pipelines} if rag is not None else set()
        for key_name, names in value.allowed_models.items():
            for j, name in enumerate(names):
                if name in other_names or _check_ref(name, models) is None:
                    continue
                if ":" in name and _check_ref(name.split(":")[0], models) is None:
                    problem = _check_ref(name, models)  # an adapter of a model without lora
                else:
                    problem = f"{name!r} is not a configured model or alias"
                raise ValueError(f"allowedModels.{key_name}[{j}] {problem}")
        return value

    @model_validator(mode="after")
    def _check_gateway(self) -> ServingConfig:
        if self.gateway == "direct":
            if self.aliases:
                raise ValueError("aliases need gateway: ingress (direct has no routing layer)")
            if not self.throughput_optimized:
                raise ValueError("gateway: direct needs throughputOptimized: true (HAProxy)")
            if self.rag.enabled:
                raise ValueError("rag.enabled needs gateway: ingress (direct has no routing layer)")
        return self

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _ENV_VAR_RE.fullmatch(key):
                raise ValueError(f"env key {key!r} is not a valid environment variable name")
            if _SECRET_NAME_RE.search(key.upper()):
                raise ValueError(f"env key {key!r} looks like a secret; mount secrets instead")
            if key.startswith(FAULT_ENV_PREFIX):
                raise ValueError(f"env key {key!r}: fault injection is for local tests only")
        return value

    def model(self, model_id: str) -> ModelSpec:
        for model in self.models:
            if model.id == model_id:
                return model
        raise KeyError(model_id)

    def public_names(self) -> list[str]:
        """Every name a client may put in `model`: model ids, aliases, then pipelines."""
        return (
            [m.id for m in self.models]
            + [a.name for a in self.aliases]
            + [p.name for p in self.rag.pipelines]
        )
