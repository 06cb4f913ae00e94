"""Local mode's tenants: `LLM_PLATFORM_TENANTS=<file.yaml>` names the limits file (the same
mapping as the stack's `tenants` section), checked against the key names of
`LLM_PLATFORM_API_KEYS` at start. When the file limits anything and `LLM_PLATFORM_REDIS_URL` is
unset, a throwaway redis-server is started for the app's lifetime."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from serve_app.auth import parse_keys
from serve_app.config import ServingConfig
from serve_app.tenants.local_redis import LocalRedis
from serve_app.tenants.policy import LimitsError, parse_limits_yaml

TENANTS_ENV = "LLM_PLATFORM_TENANTS"


def prepare(
    cfg: ServingConfig, environ: MutableMapping[str, str] | None = None
) -> tuple[ServingConfig, LocalRedis | None]:
    """The config to serve (limitsFile set from the env) and the Redis started for it, if any.
    Raises LimitsError naming the bad entry (`team-a.rpm: ...`, or a key that does not exist)."""
    environ = os.environ if environ is None else environ
    path = environ.get(TENANTS_ENV, "").strip()
    if not path:
        return cfg, None
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise LimitsError(f"{TENANTS_ENV}={path}: {exc}") from None
    names = [k.name for k in parse_keys(environ.get(cfg.auth.keys_env_var, "").split(","))]
    limits = parse_limits_yaml(text, known_keys=names, where=TENANTS_ENV)
    tenants = cfg.tenants.model_copy(update={"limits_file": str(Path(path).resolve())})
    cfg = cfg.model_copy(update={"tenants": tenants})
    redis = None
    if any(lim.counted for lim in limits.values()) and not environ.get(
        cfg.tenants.redis_url_env_var
    ):
        redis = LocalRedis().start()
        environ[cfg.tenants.redis_url_env_var] = redis.url  # the replicas inherit it
    return cfg, redis
