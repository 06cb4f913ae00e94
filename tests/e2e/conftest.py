"""Session fixture: start `python -m serve_app.local` on a free port and wait until it serves."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
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

    def client(self, key: str | None = KEY_ADMIN, **kwargs):
        from openai import OpenAI

        return OpenAI(base_url=f"{self.base_url}/v1", api_key=key or "none", **kwargs)

    def async_client(self, key: str = KEY_ADMIN, **kwargs):
        from openai import AsyncOpenAI

        return AsyncOpenAI(base_url=f"{self.base_url}/v1", api_key=key, **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        dict(embed, id=EMBED_MODEL, task="embed", source=str(ensure_tiny_model(EMBED_MODEL, 3)))
    )
    data["auth"]["allowedModels"] = {"limited": ["tiny-chat"]}
    path.write_text(json.dumps(data))
    return path


def _tail(path: Path, n: int = 80) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _wait_ready(proc: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    headers = {"Authorization": f"Bearer {KEY_ADMIN}"}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve_app.local exited with {proc.returncode}; log:\n{_tail(log)}")
        if "READY " in log.read_text(errors="replace"):
            try:
                r = httpx.get(f"{base}/v1/models", headers=headers, timeout=5)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(2)
    pytest.fail(f"serve_app.local not ready after {STARTUP_TIMEOUT_S:.0f}s; log:\n{_tail(log)}")


@contextmanager
def running_app(env: dict[str, str], log: Path) -> Iterator[LocalApp]:
    """Run `python -m serve_app.local` with `env` (PORT set), wait until it serves, and stop it
    as a person would (Ctrl-C), killing it only if that fails."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "serve_app.local"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        _wait_ready(proc, base, log)
        yield LocalApp(base, log, proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture(scope="session")
def local_app() -> Iterator[LocalApp]:
    _require(["ray", "vllm", "openai", "transformers"])
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / "local.log"
    port = _free_port()
    env = dict(
        os.environ,
        PORT=str(port),
        LLM_PLATFORM_API_KEYS=f"admin:{KEY_ADMIN},other:{KEY_OTHER},limited:{KEY_LIMITED}",
        LLM_PLATFORM_SERVING_FILE=str(_serving_file(LOG_DIR / "serving.json")),
        PYTHONUNBUFFERED="1",
    )
    with running_app(env, log) as app:
        yield app


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "local_app" in item.fixturenames:
        report.sections.append(("serve_app.local log (tail)", _tail(LOG_DIR / "local.log")))
