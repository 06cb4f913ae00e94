"""ServingConfig -> Ray Serve `applications` list. Pure (stdlib + pydantic).

The RayService renderer puts this list into `serveConfigV2`; local mode deploys the very same
list with `serve.run`/the Serve REST schema. One path from config to running app.
"""

from __future__ import annotations

from typing import Any

from serve_app.config import ServingConfig
from serve_app.rag import PIP_REQUIREMENTS as RAG_PIP_REQUIREMENTS
from serve_app.tenants import PIP_REQUIREMENTS as TENANTS_PIP_REQUIREMENTS

APP_IMPORT_PATH = "serve_app.app:build_app"
DIRECT_IMPORT_PATH = "serve_app.direct:build_direct_app"
INGRESS_DEPLOYMENT = "GatewayIngress"  # the deployment name build_app gives the ingress
_THROUGHPUT_ENV = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1"}


def cluster_env(cfg: ServingConfig) -> dict[str, str]:
    """Env vars every Ray node (head and workers) needs for this config.

    Ray reads these at process start-up (controller, proxies, replicas), so they belong in the
    RayCluster pod spec, not in an application's runtime_env.
    """
    env: dict[str, str] = {}
    if cfg.throughput_optimized:
        env.update(_THROUGHPUT_ENV)
    if cfg.gateway == "direct":
        env["RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING"] = "1"
    return env


def serve_applications(
    cfg: ServingConfig,
    *,
    ingress_resources: dict[str, float] | None = None,
    install_rag_packages: bool = True,
) -> list[dict[str, Any]]:
    """The Ray Serve `applications` entries for this serving config.

    `ingress_resources`: custom Ray resources each ingress replica must hold. The RayService
    passes the one only its CPU worker group declares, so that ingress replicas never land on a
    GPU node (the head declares no CPUs). Serve replaces a deployment's `ray_actor_options` with
    the config's as a whole, so `num_cpus` is restated here.

    With `rag.enabled` the application's runtime_env pip-installs what serve_app/rag needs
    (serve_app/rag/__init__.py), with a tenants limits file the Redis client
    (serve_app/tenants/__init__.py); local mode passes `install_rag_packages=False` (its venv has
    them and it may be offline).
    """
    if cfg.gateway == "direct":
        return _direct_applications(cfg)
    app: dict[str, Any] = {
        "name": cfg.app_name,
        "route_prefix": cfg.route_prefix,
        "import_path": APP_IMPORT_PATH,
        # build_app re-validates these args with ServingConfig.
        "args": cfg.model_dump(mode="json", by_alias=True),
    }
    if ingress_resources:
        app["deployments"] = [
            {
                "name": INGRESS_DEPLOYMENT,
                "ray_actor_options": {
                    "num_cpus": cfg.ingress.cpus_per_replica,
                    "resources": dict(ingress_resources),
                },
            }
        ]
    runtime_env: dict[str, Any] = {}
    if cfg.env:
        runtime_env["env_vars"] = dict(cfg.env)
    pip: list[str] = []
    if cfg.rag.enabled and install_rag_packages:
        pip += RAG_PIP_REQUIREMENTS
    if cfg.tenants.limits_file and install_rag_packages:  # the limiter's Redis client
        pip += TENANTS_PIP_REQUIREMENTS
    if pip:
        runtime_env["pip"] = pip
    if runtime_env:
        app["runtime_env"] = runtime_env
    return [app]


def _direct_applications(cfg: ServingConfig) -> list[dict[str, Any]]:
    dump = cfg.model_dump(mode="json", by_alias=True)
    prefix = cfg.route_prefix.rstrip("/")
    apps = []
    for model in cfg.models:
        app: dict[str, Any] = {
            "name": f"{cfg.app_name}-{model.id}",
            # A single model keeps the plain prefix, so OpenAI clients need no change.
            "route_prefix": cfg.route_prefix if len(cfg.models) == 1 else f"{prefix}/{model.id}",
            "import_path": DIRECT_IMPORT_PATH,
            "args": {"serving": dump, "modelId": model.id},
        }
        if cfg.env:
            app["runtime_env"] = {"env_vars": dict(cfg.env)}
        apps.append(app)
    return apps
