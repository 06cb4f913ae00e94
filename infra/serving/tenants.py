"""What the gateway needs on the cluster to count tenant limits: the Redis address and password
in every Ray pod's environment (the names `serving.tenants` gives), taken from the GCS Redis.

Shared with GCS fault tolerance rather than a second Redis (docs/tenants.md): the RayService
already reaches it (NetworkPolicy, security group, TLS CA), it is Multi-AZ in staging/prod, and
the limiter's load is one short Lua script per request. Its keys carry their own prefix
(`serving.tenants.keyPrefix`) and every one of them expires, so they never mix with Ray's and
an eviction under memory pressure (ElastiCache's default volatile-lru) takes them, not the GCS
state, which has no TTL.

The limits file travels in the keys Secret (infra/serving/api_keys.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import yaml

from infra.serving.gcs_store import PASSWORD_KEY, PASSWORD_SECRET
from infra.serving.rayservice import RayPodExtras
from serve_app.tenants.policy import TenantLimits
from serve_app.tenants.settings import TenantsConfig


def limits_file_text(tenants: Mapping[str, TenantLimits]) -> str:
    """The limits file the gateway reads (serve_app.tenants.policy), sorted by key name."""
    data = {name: tenants[name].model_dump(by_alias=True, exclude_none=True)
            for name in sorted(tenants)}
    return yaml.safe_dump(data, sort_keys=True) if data else "{}\n"


def redis_env(cfg: TenantsConfig, address: pulumi.Input[str] | None) -> list[dict[str, Any]]:
    """The gateway's Redis URL and password; none without a GCS Redis (the config check then
    refuses limits that need counting)."""
    if address is None:
        return []
    return [
        {"name": cfg.redis_url_env_var, "value": address},
        {"name": cfg.redis_password_env_var, "valueFrom": {
            "secretKeyRef": {"name": PASSWORD_SECRET, "key": PASSWORD_KEY}}},
    ]


def pod_extras(cfg: TenantsConfig, address: pulumi.Input[str] | None) -> RayPodExtras:
    return RayPodExtras(env=redis_env(cfg, address))
