"""Tenants: per-key rate limits, token budgets and metering, exact across ingress replicas.

`settings` and `policy` are pure (stdlib + pydantic): the Pulumi program validates the stack's
`tenants` section with them. `limiter` (Redis), `gate` (admission + settlement) and `http`
(body limit, rate-limit headers) run in the ingress replicas.
"""

# The Redis client the limiter imports, installed into the Ray workers through the application's
# runtime_env when a limits file is configured (serve_app/serve_config.py); the ray-llm image is
# not known to carry it. The same pin as requirements-dev.txt (a unit test checks).
PIP_REQUIREMENTS = ("redis==8.2.0",)
