"""What the bench compares: the app designs and the standalone vLLM server."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from serve_app.local import LOCAL_ENGINE_ARGS, local_serving_config

BENCH_KEY = "sk-bench-0000000000000000"
MODEL = "tiny-chat"


@dataclass(frozen=True)
class Design:
    """How the app is run: Ray env flags (cluster-wide) and ServingConfig overrides."""

    doc: str
    env: dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    path: str = ""  # where tiny-chat's OpenAI API lives under the app's base URL
    # Serve only these models (aliases keep their targets among them). On a CPU box every
    # engine busy-polls even when idle, so a second model costs the measured one CPU; on a
    # GPU cluster each model's engine has its own node.
    only: tuple[str, ...] = ()


DESIGNS: dict[str, Design] = {
    "gateway-defaults": Design("GatewayIngress (auth+aliases) -> LLMServer, Ray defaults"),
    "gateway-throughput": Design(
        "GatewayIngress (auth+aliases) -> LLMServer, RAY_SERVE_THROUGHPUT_OPTIMIZED + HAProxy",
        config={"throughputOptimized": True},
    ),
    "gateway-throughput-nice0": Design(
        "as gateway-throughput, Ray workers at nice 0 like the standalone server"
        " (RAY_worker_niceness=0; Ray's default is 15)",
        env={"RAY_worker_niceness": "0"},
        config={"throughputOptimized": True},
    ),
    "gateway-throughput-one-engine": Design(
        "as gateway-throughput (auth + alias `chat` + routing), tiny-chat-v2 not served, so"
        " one engine per side",
        config={"throughputOptimized": True},
        only=(MODEL,),
    ),
    "direct": Design(
        "one app per model, LLMServer serves HTTP itself (direct streaming) behind HAProxy,"
        " auth middleware in the replica; no aliases, base URL per model",
        config={"throughputOptimized": True, "gateway": "direct", "aliases": []},
        path="/tiny-chat",
    ),
    "direct-one": Design(
        "direct, tiny-chat only (ceiling of Ray's direct streaming with the LLMRouter call)",
        config={"throughputOptimized": True, "gateway": "direct", "aliases": []},
        only=(MODEL,),
    ),
}


def vllm_cmd(model_dir: Path, port: int) -> list[str]:
    """The standalone server, with the same engine arguments as the app's LLMServer."""
    return [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", MODEL,
        "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", str(LOCAL_ENGINE_ARGS["max_model_len"]),
        "--kv-cache-memory-bytes", str(LOCAL_ENGINE_ARGS["kv_cache_memory_bytes"]),
        "--dtype", LOCAL_ENGINE_ARGS["dtype"],
        "--disable-uvicorn-access-log",
    ]


def serving_file(design: Design, path: Path) -> Path:
    """The app's serving config for `design`, written to `path`."""
    data = local_serving_config().model_dump(mode="json", by_alias=True)
    data.update(design.config)
    if design.only:
        data["models"] = [m for m in data["models"] if m["id"] in design.only]
        aliases = []
        for a in data["aliases"]:
            targets = [t for t in a["targets"] if t["model"] in design.only]
            if not targets:
                continue
            # One target left is no canary: the config refuses a rollback rule without one.
            aliases.append({k: v for k, v in a.items() if k != "rollback" or len(targets) > 1}
                           | {"targets": targets})
        data["aliases"] = aliases
    path.write_text(json.dumps(data))
    return path
