"""A local Ray head with its dashboard, i.e. the Serve REST API KubeRay deploys serveConfigV2
through: what a RayService's cluster is, minus Kubernetes. Used by the e2e test that runs the
dev stack's rendered serveConfigV2 (tests/e2e/test_rayservice_config.py).

    DASHBOARD_PORT=8265 LOCAL_RAY_RESOURCES='{"llm_platform_ingress": 1000}' \\
        python -m tests.support.local_ray

Prints READY when the dashboard is up; Ctrl-C (SIGINT) stops Serve and Ray.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any


def main() -> int:
    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    import ray

    try:
        ray.init(
            # Logical CPUs, as serve_app.local: the ingress, the LLMServer and its
            # placement-group bundle each hold one; the engines share the real cores anyway.
            num_cpus=int(os.environ.get("LOCAL_RAY_CPUS", "8")),
            # The custom resources the cluster's worker groups declare (rayStartParams).
            resources=json.loads(os.environ.get("LOCAL_RAY_RESOURCES", "{}")),
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            dashboard_port=int(os.environ["DASHBOARD_PORT"]),
        )
        print("READY", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("Stopping Serve and Ray...", flush=True)
    finally:
        if ray.is_initialized():
            from ray import serve

            try:
                serve.shutdown()
            finally:
                ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
