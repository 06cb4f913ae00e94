"""serve_app/serve_config.py: the Serve applications built from a ServingConfig (no Ray)."""

from __future__ import annotations

import json

from serve_app.config import ServingConfig
from serve_app.serve_config import APP_IMPORT_PATH, serve_applications
from tests.unit.serve_app.test_config import _cfg


def test_serve_applications_round_trip():
    cfg = ServingConfig.model_validate(_cfg(env={"HF_HUB_OFFLINE": "1"}))
    apps = serve_applications(cfg)
    assert len(apps) == 1
    app = apps[0]
    assert app["import_path"] == APP_IMPORT_PATH
    assert app["route_prefix"] == "/"
    assert app["runtime_env"] == {"env_vars": {"HF_HUB_OFFLINE": "1"}}
    json.dumps(apps)  # goes verbatim into serveConfigV2
    assert ServingConfig.model_validate(app["args"]) == cfg
