"""Session fixture: start `python -m serve_app.local` on a free port and wait until it serves."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.process import REPO, ServerNotReadyError, ServerProcess, free_port, tail

LOG_DIR = REPO / "build" / "e2e"
STARTUP_TIMEOUT_S = float(os.environ.get("E2E_STARTUP_TIMEOUT_S", "600"))

KEY_ADMIN = "sk-e2e-admin-0123456789"
KEY_OTHER = "sk-e2e-other-9876543210"
KEY_LIMITED = "sk-e2e-limited-5555555"  # may call tiny-chat only
EMBED_MODEL = "tiny-embed"
# tiny-chat-v2 gets a small bounded queue so the overload test can fill it quickly.
V2_MAX_ONGOING, V2_MAX_QUEUED = 4, 4


@dataclass(frozen=True)
class LocalApp:
    base_url: str
    log: Path
    pid: int  # the serve_app.local process: every Ray process of this app descends from it
    metrics_port: int | None = None  # Ray's Prometheus endpoint (LLM_PLATFORM_METRICS_PORT)

    def client(self, key: str | None = KEY_ADMIN, **kwargs):
        from openai import OpenAI

        return OpenAI(base_url=f"{self.base_url}/v1", api_key=key or "none", **kwargs)

    def async_client(self, key: str = KEY_ADMIN, **kwargs):
        from openai import AsyncOpenAI

        return AsyncOpenAI(base_url=f"{self.base_url}/v1", api_key=key, **kwargs)


def _require(modules: list[str]) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(
            f"e2e prerequisites missing in {sys.executable}: {', '.join(missing)}"
            " (run `make venv` to install requirements-dev.txt)",
            pytrace=False,
        )


def _serving_file(path: Path) -> Path:
    from serve_app.local import local_serving_config
    from serve_app.tiny_model import ensure_tiny_model

    cfg = local_serving_config()
    data = cfg.model_dump(mode="json", by_alias=True)
    for model in data["models"]:
        if model["id"] == "tiny-chat-v2":
            model["maxOngoingRequests"] = V2_MAX_ONGOING
            model["maxQueuedRequests"] = V2_MAX_QUEUED
            model["autoscaling"]["targetOngoingRequests"] = 2
    # An embedding model too, so /v1/embeddings is tested end to end (not in `make local`).
    embed = next(m for m in data["models"] if m["id"] == "tiny-chat")
    data["models"].append(
        dict(embed, id=EMBED_MODEL, task="embed", source=str(ensure_tiny_model(EMBED_MODEL, 3)),
             toolCalling=None)
    )
    data["auth"]["allowedModels"] = {"limited": ["tiny-chat"]}
    path.write_text(json.dumps(data))
    return path


@contextmanager
def running_app(env: dict[str, str], log: Path) -> Iterator[LocalApp]:
    """Run `python -m serve_app.local` with `env` (PORT set), wait until it serves, and stop it
    as a person would (Ctrl-C), killing it only if that fails. `log` gets what a person sees;
    Ray's and vLLM's output goes next to it (`ray_log`)."""
    base = f"http://127.0.0.1:{env['PORT']}"
    cmd = [sys.executable, "-m", "serve_app.local"]
    env = dict(env, LLM_PLATFORM_LOCAL_LOG=str(ray_log(log)))
    with ServerProcess(cmd, env=env, log=log, own_session=True) as server:
        try:
            server.wait_ready(
                f"{base}/v1/models",
                timeout=STARTUP_TIMEOUT_S,
                headers={"Authorization": f"Bearer {KEY_ADMIN}"},
                ready_line="READY ",
            )
        except ServerNotReadyError as exc:
            pytest.fail(str(exc), pytrace=False)
        metrics = env.get("LLM_PLATFORM_METRICS_PORT")
        yield LocalApp(base, log, server.pid, int(metrics) if metrics else None)


def ray_log(log: Path) -> Path:
    """Where an app started with `running_app(env, log)` writes Ray's and vLLM's output."""
    return log.with_name(f"{log.stem}-ray.log")


@pytest.fixture(scope="session")
def local_app() -> Iterator[LocalApp]:
    _require(["ray", "vllm", "openai", "transformers"])
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / "local.log"
    port = free_port()
    env = dict(
        os.environ,
        PORT=str(port),
        LLM_PLATFORM_API_KEYS=f"admin:{KEY_ADMIN},other:{KEY_OTHER},limited:{KEY_LIMITED}",
        LLM_PLATFORM_SERVING_FILE=str(_serving_file(LOG_DIR / "serving.json")),
        LLM_PLATFORM_METRICS_PORT=str(free_port()),  # scraped by test_observability.py
        PYTHONUNBUFFERED="1",
    )
    with running_app(env, log) as app:
        yield app


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `e2e_order(n)` run after every test of a lower n (unmarked: 0), whatever
    their file names; the sort is stable, so the order within one rank is pytest's own."""
    items.sort(key=lambda item: _order(item))


def _order(item: pytest.Item) -> int:
    marker = item.get_closest_marker("e2e_order")
    return int(marker.args[0]) if marker else 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "local_app" in item.fixturenames:
        report.sections.append(("serve_app.local log (tail)", tail(LOG_DIR / "local.log")))
        report.sections.append(("Ray and vLLM log (tail)", tail(ray_log(LOG_DIR / "local.log"))))
