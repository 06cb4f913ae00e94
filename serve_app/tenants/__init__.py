"""Tenants: per-key rate limits, token budgets and metering, exact across ingress replicas.

`settings` and `policy` are pure (stdlib + pydantic): the Pulumi program validates the stack's
`tenants` section with them. `limiter` (Redis), `gate` (admission + settlement) and `http`
(body limit, rate-limit headers) run in the ingress replicas.
"""
