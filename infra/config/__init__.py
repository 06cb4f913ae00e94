"""The typed stack configuration: one pydantic model per top-level key of `Pulumi.<stack>.yaml`.

Read once at start by `load()`. Environments differ only in their stack files; what a stack file
leaves out comes from the environment's profile (`dev` is cheap, `prod` is safe). A bad stack
file raises `ConfigError` before any resource is declared, naming every bad key by its full path
(`llm-platform:gpuNodePools[1].limits.gpus: ...`).

One module per section of the stack file, its profile defaults (`PROFILES`) next to its model:
  network, cluster, karpenter, gpu_node_pools (gpuNodePools), ray_service (rayService),
  monitoring, exposure, model_store (modelStore), gcs_fault_tolerance (gcsFaultTolerance),
  cost_ceiling (costCeilingPerHour); `serving` is the app's own model, serve_app.config.
  stack.py     StackConfig: every top-level key and the checks that span sections
  profiles.py  the sections' profiles laid together, and `with_profile()`
  loader.py    load(), validate(), ConfigError: profile -> schema -> capacity and cost checks
  base.py      what the sections share (PROJECT, DnsLabel, secret(), error_at())

May import: infra.capacity (catalog, prices, the capacity check) and serve_app.config; nothing
else from `infra/`. A new section: a module here, a field in stack.py, its profile in
profiles.py, then `make config-docs`.
"""

from infra.config.base import PROJECT
from infra.config.loader import ConfigError, load, own_keys, validate
from infra.config.stack import StackConfig

__all__ = ["PROJECT", "ConfigError", "StackConfig", "load", "own_keys", "validate"]
