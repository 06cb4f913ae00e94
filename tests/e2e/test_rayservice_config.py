"""The config that goes to EKS runs here: the dev stack's rendered RayService, its serveConfigV2
as it is, deployed on a local Ray through the Serve REST API (the dashboard's
`PUT /api/serve/applications/`, which is how KubeRay applies serveConfigV2), then a chat
completion through the `openai` client for every model and alias.

Only the overrides in `local_overrides()` are applied, each because this machine is not a GPU
node (documented in docs/rayservice.md). Everything else (the application, its import path and
args, autoscaling, aliases, auth, the ingress deployment's placement resource) is the render's.

Runs before the session app starts (`e2e_order(-1)`): two Ray clusters would share 2 cores.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import sys
import time
from typing import Any

import httpx
import pytest
import yaml

from serve_app.local import LOCAL_ENGINE_ARGS
from tests.e2e.conftest import KEY_ADMIN, LOG_DIR, STARTUP_TIMEOUT_S, _require
from tools.process import REPO, ServerProcess, free_port, tail
from tools.render import render_stack

pytestmark = [pytest.mark.e2e, pytest.mark.e2e_order(-1)]


def rendered_rayservice(stack: str) -> dict[str, Any]:
    (obj,) = [o for o in render_stack(stack).custom_resources() if o["kind"] == "RayService"]
    return obj


def local_overrides(serve_config: dict[str, Any], port: int, tiny_model: str) -> dict[str, Any]:
    """The rendered serveConfigV2 with the local overrides, and nothing else changed:
    - `http_options`: 127.0.0.1 and a free port (EKS: 0.0.0.0:8000 in the pod; here other
      servers share the machine);
    - each model's `source` -> the tiny local model (no download, no Hub token);
    - each model's `accelerator` -> CPU (`gpusPerReplica: 0`, no acceleratorType / nodePool);
    - each model's `engineArgs` -> serve_app.local's CPU engine args (max_model_len 512: the
      tiny model has 2048 positions, not 8192; a fixed KV cache in host memory; float32);
    - each application's `runtime_env.working_dir` dropped if set: the code is on PYTHONPATH;
    - `auth.keysFile` dropped if set: the key comes from the env var, as the Secret would.
    """
    doc = copy.deepcopy(serve_config)
    doc["http_options"] = {**doc.get("http_options", {}), "host": "127.0.0.1", "port": port}
    for app in doc["applications"]:
        app.get("runtime_env", {}).pop("working_dir", None)
        serving = app["args"].get("serving", app["args"])  # direct apps nest it
        serving.get("auth", {}).pop("keysFile", None)
        for model in serving["models"]:
            model["source"] = tiny_model
            model["accelerator"] = {"gpusPerReplica": 0, "cpusPerReplica": 1}
            model["engineArgs"] = dict(LOCAL_ENGINE_ARGS)
    return doc


def declared_resources(obj: dict[str, Any]) -> dict[str, float]:
    """Custom resources the worker groups declare (what the autoscaler can start), parsed the
    way Ray's KubeRay autoscaler reads `rayStartParams.resources`."""
    out: dict[str, float] = {}
    for group in obj["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
        raw = group["rayStartParams"].get("resources")
        if raw and "accelerator_type:" not in raw:  # GPU types: there are no GPUs here
            out.update(json.loads(raw[1:-1].replace("\\", "")))
    return out


def container_env(obj: dict[str, Any]) -> dict[str, str]:
    """The head container's plain env (cluster_env and the like), as rendered."""
    head = obj["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in head.get("env", []) if "value" in e}


def wait_running(
    api: str, headers: dict[str, str], names: list[str], timeout: float, log: Any
) -> None:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        apps = httpx.get(api, headers=headers, timeout=10).json()
        status = {n: apps.get("applications", {}).get(n, {}) for n in names}
        if any(s.get("status") == "DEPLOY_FAILED" for s in status.values()):
            pytest.fail(f"deploy failed: {json.dumps(status)[:3000]}\n{tail(log)}")
        if all(s.get("status") == "RUNNING" for s in status.values()):
            return
        time.sleep(3)
    pytest.fail(f"not RUNNING after {timeout:.0f}s: {json.dumps(status)[:3000]}\n{tail(log)}")


def test_dev_stacks_serve_config_v2_serves_chat_on_a_local_ray() -> None:
    _require(["ray", "vllm", "openai", "transformers"])
    from openai import OpenAI

    from serve_app.tiny_model import ensure_tiny_model

    obj = rendered_rayservice("dev")
    rendered = yaml.safe_load(obj["spec"]["serveConfigV2"])
    serve_port, dashboard_port = free_port(), free_port()
    doc = local_overrides(rendered, serve_port, str(ensure_tiny_model("tiny-chat", 1)))
    # The placement of the ingress is not overridden: this Ray declares what the CPU group does.
    assert doc["applications"][0]["deployments"] == rendered["applications"][0]["deployments"]

    # Ray token auth, as KubeRay sets it up for `authOptions.mode: token`: RAY_AUTH_MODE and
    # RAY_AUTH_TOKEN on the Ray processes, `x-ray-authorization` on its dashboard calls.
    assert obj["spec"]["rayClusterConfig"]["authOptions"] == {"mode": "token"}
    token = secrets.token_hex(32)
    ray_auth = {"x-ray-authorization": f"Bearer {token}"}

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / "rayservice-config.log"
    env = dict(
        os.environ,
        **container_env(obj),
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        LLM_PLATFORM_API_KEYS=f"admin:{KEY_ADMIN}",
        DASHBOARD_PORT=str(dashboard_port),
        LOCAL_RAY_RESOURCES=json.dumps(declared_resources(obj)),
        PYTHONUNBUFFERED="1",
    )
    dashboard = f"http://127.0.0.1:{dashboard_port}"
    cmd = [sys.executable, "-m", "tests.support.local_ray"]
    with ServerProcess(cmd, env=env, log=log, own_session=True) as head:
        api = f"{dashboard}/api/serve/applications/"
        head.wait_ready(api, timeout=300, ready_line="READY", headers=ray_auth)
        assert httpx.get(api, timeout=10).status_code == 401  # the token is enforced
        put = httpx.put(api, json=doc, headers=ray_auth, timeout=120)
        assert put.status_code == 200, put.text
        names = [a["name"] for a in doc["applications"]]
        wait_running(api, ray_auth, names, STARTUP_TIMEOUT_S, log)

        client = OpenAI(base_url=f"http://127.0.0.1:{serve_port}/v1", api_key=KEY_ADMIN)
        serving = rendered["applications"][0]["args"]
        names = [m["id"] for m in serving["models"]] + [a["name"] for a in serving["aliases"]]
        assert names == ["llama-3.1-8b-instruct", "chat"]  # the dev stack file's names
        for name in names:
            reply = client.chat.completions.create(
                model=name, messages=[{"role": "user", "content": "Hello"}], max_tokens=8
            )
            assert reply.choices[0].message.content, name
            assert reply.usage is not None and reply.usage.completion_tokens > 0
