"""ServingConfig -> Ray Serve `applications` list. Pure (stdlib + pydantic).

The RayService renderer puts this list into `serveConfigV2`; local mode deploys the very same
list with `serve.run`/the Serve REST schema. One path from config to running app.
"""

from __future__ import annotations

from typing import Any

from serve_app.config import ServingConfig

APP_IMPORT_PATH = "serve_app.app:build_app"


def serve_applications(cfg: ServingConfig) -> list[dict[str, Any]]:
    """The Ray Serve `applications` entries for this serving config."""
    app: dict[str, Any] = {
        "name": cfg.app_name,
        "route_prefix": cfg.route_prefix,
        "import_path": APP_IMPORT_PATH,
        # build_app re-validates these args with ServingConfig.
        "args": cfg.model_dump(mode="json", by_alias=True),
    }
    if cfg.env:
        app["runtime_env"] = {"env_vars": dict(cfg.env)}
    return [app]
