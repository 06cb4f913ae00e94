"""One series per model replica, there whether the replica is busy or idle.

vLLM sets its gauges (`ray_vllm_num_requests_running`, ...) only when its engine sends output
(vllm/v1/engine/async_llm.py, output_handler: `logger.record` per batch of outputs; an idle
EngineCore blocks on its input queue), and Ray drops a gauge that is not set again within two
exports (serve_app/held_gauge.py). So ~20 s after a model's last request its vLLM gauges leave
the scrape, and whatever counted replicas with them (the cost rules, the Model variable, the
capacity dashboard) saw an idle replica, whose GPUs still cost money, as no replica. This gauge
is 1 per LLMServer replica from the engine's start until the replica's process ends (then Ray
drops it), with the labels the vLLM series carry: `model_name` and `ReplicaId`.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

logger = logging.getLogger("ray.serve")

NAME = "llm_platform_model_replica"  # exported as ray_llm_platform_model_replica


@cache
def _gauge() -> Any:
    from ray.util.metrics import Gauge

    from serve_app.held_gauge import HeldGauge

    return HeldGauge(Gauge(
        NAME, description="1 per model replica whose engine has started (LLMServer), busy or"
        " idle; what the cost rules count replicas by.", tag_keys=("model_name", "ReplicaId"),
    ))


def mark_serving(model_id: str) -> None:
    """Called by the LLMServer subclasses once their engine has started."""
    from ray import serve

    try:
        # vLLM's Ray metrics tag their series with the same id (vllm/v1/metrics/ray_wrappers.py).
        replica = serve.get_replica_context().replica_id.unique_id
    except Exception as exc:  # outside a Serve replica (unit tests): nothing to report
        logger.debug("no replica context for the replica metric: %s", exc)
        return
    _gauge().set(1, {"model_name": model_id, "ReplicaId": replica})
