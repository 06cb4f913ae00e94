"""Tenants: per-key rate limits, token budgets and metering, exact across ingress replicas.

`settings` and `policy` are pure (stdlib + pydantic): the Pulumi program validates the stack's
`tenants` section with them. `limiter` (Redis), `gate` (admission + settlement) and `http`
(body limit, rate-limit headers) run in the ingress replicas.
"""

# The Redis client the limiter imports, and hiredis (its compiled RESP parser and packer: the
# admission bench's c=32 p50 went from 9.1 to 3.6 ms with it, docs/tenants.md), installed into
# the Ray workers through the application's runtime_env when a limits file is configured
# (serve_app/serve_config.py). The ray-llm image does not carry redis-py: its Dockerfile
# (ray-project/ray, docker/ray-llm/Dockerfile) installs python/deplocks/llm/
# rayllm_py312_cu130.lock with --no-deps, and that lock has no `redis` entry (read at ray commit
# 0068ca432a69; the entries run quack-kernels, referencing, regex). The same pins as
# requirements-dev.txt (a unit test checks).
PIP_REQUIREMENTS = ("redis==8.2.0", "hiredis==3.5.0")
