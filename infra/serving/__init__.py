"""The serving stack: the RayService (rayservice), what its pods use (model store and code
bundle, GCS Redis, API keys, NetworkPolicies, model imports, the RAG vector database:
vector_db) and the ALB in front (exposure,
lb_controller_iam).

May import: infra.platform, infra.foundation, infra.capacity, infra.config and the shared
modules at the top of `infra/`. Nothing imports it but `__main__.py`, tools/ and tests.
"""
