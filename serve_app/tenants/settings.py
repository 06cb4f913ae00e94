"""Gateway-wide settings of the tenant limits (part of ServingConfig: `tenants`).

The per-key limits themselves are not here: they travel with the keys, in a mounted file that
is re-read when it changes (see `policy.LimitsStore`), so a change needs no redeploy.
"""

from __future__ import annotations

import re
from typing import Literal

import pydantic
from pydantic import ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

_ENV_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(pydantic.BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


class TenantsConfig(_Strict):
    limits_file: str | None = Field(
        None, min_length=1,
        description="YAML file: key name -> {rpm, tpm, maxConcurrent, dailyTokens, monthlyTokens,"
        " maxN}; a mounted ConfigMap on the cluster, `LLM_PLATFORM_TENANTS` in local mode."
        " Unset: no key is limited (the body limit and the default n cap still apply).",
    )
    reload_interval_s: float = Field(
        10.0, ge=0.5, le=3600,
        description="Seconds between checks of limitsFile for new content (no restart needed).",
    )
    redis_url_env_var: str = Field(
        "LLM_PLATFORM_REDIS_URL",
        description="Environment variable holding `redis://host:port[/db]` or `rediss://...`"
        " (TLS) of the Redis that keeps the counters shared by every ingress replica.",
    )
    redis_password_env_var: str = Field(
        "LLM_PLATFORM_REDIS_PASSWORD",
        description="Environment variable holding the Redis password (unset or empty: none).",
    )
    key_prefix: str = Field(
        "llmp:tenants:", pattern=r"^[A-Za-z0-9:._-]{1,64}$",
        description="Prefix of every Redis key the limiter writes (keeps them apart from Ray's"
        " GCS data when the Redis is shared).",
    )
    redis_timeout_ms: float = Field(
        100.0, gt=0, le=10_000,
        description="Bound on one admission or settlement round trip; past it the request is"
        " decided as `redisFailureMode` says, and Redis is skipped for a second.",
    )
    redis_warmup_timeout_ms: float = Field(
        5000.0, gt=0, le=60_000,
        description="Bound on connecting to Redis and loading the limiter's scripts when an"
        " ingress replica starts, before it takes traffic; past it the replica starts anyway"
        " and its first request connects (within redisTimeoutMs).",
    )
    redis_failure_mode: Literal["open", "closed"] = Field(
        "open",
        description="When Redis cannot be reached in time: open admits requests of limited keys"
        " without their limits (availability first); closed refuses them with 503.",
    )
    lease_ttl_s: float = Field(
        60.0, ge=1, le=3600,
        description="Lifetime of a concurrency slot, renewed every third of it while the"
        " request runs: a replica that dies frees its slots within this time.",
    )
    budget_day_seconds: int = Field(
        86_400, ge=1, le=86_400,
        description="Length of the dailyTokens window: 86400 (the UTC calendar day); shorter"
        " only in tests.",
    )
    default_max_n: int = Field(
        16, ge=1, le=1024,
        description="Most choices (`n`) one request may ask for, unless its key sets maxN.",
    )
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, le=1024**3,
        description="Largest request body in bytes; larger ones get 413 before they are read"
        " (by Content-Length, or while a chunked body streams in).",
    )
    default_context_tokens: int = Field(
        32_768, ge=1, le=10_000_000,
        description="Context length assumed for a model whose engineArgs.max_model_len and facts"
        " are unset: the reservation of a request without max_tokens.",
    )

    @field_validator("redis_url_env_var", "redis_password_env_var")
    @classmethod
    def _env_var_name(cls, value: str) -> str:
        if not _ENV_VAR_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid environment variable name")
        return value
