"""`tenants`: per-key rate limits and token budgets, by API key name (non-secret; the keys
themselves stay in the secret `apiKeys`). The model is the gateway's own
(serve_app/tenants/policy.py), so the stack file and the gateway's limits file cannot disagree.

    tenants:
      team-a: {rpm: 600, tpm: 200000, maxConcurrent: 16, dailyTokens: 5000000}
      team-b: {monthlyTokens: 100000000}

Delivered with the keys: a second file of the keys Secret (infra/serving/api_keys.py), re-read by
the gateway when it changes, so a limit change is `pulumi up` without a restart. Counted in the
GCS Redis (infra/serving/tenants.py), hence checked here: limits need `gcsFaultTolerance` on.

`PROFILES` gives the per-environment default of `serving.tenants.redisFailureMode` (what the
gateway does when that Redis cannot be reached; docs/tenants.md says why):
- dev: closed. Its Redis is one pod; a limits problem there should be seen, not hidden.
- staging, prod: open. ElastiCache fails over in tens of seconds; refusing every limited key
  for that long is a bigger harm than letting their requests through unlimited meanwhile (the
  metric `llm_platform_tenant_redis_unavailable_decisions` counts them and an alert fires).
"""

from __future__ import annotations

from collections.abc import Mapping

from serve_app.config import Name
from serve_app.tenants.policy import TenantLimits
from serve_app.yaml_keys import QUOTE_IT

Tenants = dict[Name, TenantLimits]

PROFILES = {
    "dev": {"tenants": {"redisFailureMode": "closed"}},
    "staging": {"tenants": {"redisFailureMode": "open"}},
    "prod": {"tenants": {"redisFailureMode": "open"}},
}


def problems(
    tenants: Mapping[str, TenantLimits], key_names: set[str], redis_backend: str | None
) -> list[tuple[str, str]]:
    """(key name, message) for each limit on a key apiKeys does not define, and for limits
    that cannot be counted because there is no Redis."""
    out = [
        (name, f"no API key of that name in apiKeys (defined: {sorted(key_names) or 'none'})"
         + (f"; {QUOTE_IT}" if name.lower() in ("true", "false") else ""))
        for name in tenants
        if name not in key_names
    ]
    if redis_backend == "off":
        out += [
            (name, "limits are counted in the GCS Redis, but gcsFaultTolerance.backend is off")
            for name, limits in tenants.items()
            if limits.counted
        ]
    return out
