"""The PodMonitors' relabelings, run by a real Prometheus (Debian's `prometheus` package).

Prometheus' Kubernetes discovery gives each target `__meta_kubernetes_*` labels; here a static
target carries the same labels a Ray worker pod on a GPU node would get, the PodMonitor's
relabelings are applied by Prometheus itself, and the target's final labels are read back from
its API. The Prometheus Operator adds its own relabelings (namespace, pod, job...) before ours;
ours only read `__meta_*` labels, so the order does not change what they produce.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import labels
from infra.platform import monitoring

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="needs the `prometheus` binary (Debian package prometheus; `make test` installs it)",
)

# Operator field names -> Prometheus relabel_config names (prometheus-operator RelabelConfig).
FIELDS = {"sourceLabels": "source_labels", "targetLabel": "target_label", "regex": "regex",
          "replacement": "replacement", "separator": "separator", "modulus": "modulus",
          "action": "action"}

WORKER_META = {
    "__meta_kubernetes_pod_label_ray_io_cluster": "llm-platform",
    "__meta_kubernetes_pod_label_ray_io_node_type": "worker",
    "__meta_kubernetes_pod_label_ray_io_group": "g6e-l40s",
    "__meta_kubernetes_pod_node_name": "ip-10-0-1-23.ec2.internal",
    # Node label llm-platform.io/gpu-pool, as Prometheus' discovery names it.
    "__meta_kubernetes_node_label_llm_platform_io_gpu_pool": "g6e",
    "__meta_kubernetes_node_label_karpenter_sh_capacity_type": "spot",
}
HEAD_META = {
    "__meta_kubernetes_pod_label_ray_io_cluster": "llm-platform",
    "__meta_kubernetes_pod_label_ray_io_node_type": "head",
    "__meta_kubernetes_pod_label_ray_io_group": "headgroup",
    "__meta_kubernetes_pod_node_name": "ip-10-0-2-7.ec2.internal",
}


def _relabel_configs(monitor: dict[str, Any]) -> list[dict[str, Any]]:
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    return [{FIELDS[k]: (v.lower() if k == "action" else v) for k, v in r.items()}
            for r in endpoint["relabelings"]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def targets(tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    """Active targets (labels after relabelling) of a Prometheus running the Ray PodMonitor's
    relabelings on a worker and a head target."""
    port = _free_port()
    config = {
        "global": {"scrape_interval": "1h"},
        "scrape_configs": [{
            "job_name": "ray",
            "static_configs": [
                {"targets": ["127.0.0.1:9"], "labels": WORKER_META},
                {"targets": ["127.0.0.1:10"], "labels": HEAD_META},
            ],
            "relabel_configs": _relabel_configs(monitoring.ray_pod_monitor()),
        }],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [str(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets") as r:
                    active = json.load(r)["data"]["activeTargets"]
                if len(active) == 2:
                    yield active
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (tmp_path / "prometheus.log").read_text()[-2000:]
                pytest.fail(f"Prometheus did not come up with 2 targets:\n{log}")
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_ray_pod_monitor_labels_series_with_cluster_node_type_and_pool(
    targets: list[dict[str, Any]],
) -> None:
    assert labels.GPU_POOL_LABEL == "llm-platform.io/gpu-pool"  # the node label faked above
    by_type = {t["labels"].get("ray_io_node_type"): t["labels"] for t in targets}
    worker, head = by_type["worker"], by_type["head"]
    assert worker["ray_io_cluster"] == "llm-platform" == head["ray_io_cluster"]
    assert worker["ray_io_group"] == "g6e-l40s"
    assert worker["gpu_pool"] == "g6e" and worker["capacity_type"] == "spot"
    assert worker["node"] == "ip-10-0-1-23.ec2.internal"
    # The head's node has no GPU pool: no empty label either.
    assert "gpu_pool" not in head and "capacity_type" not in head
    # Discovery labels never reach the series.
    assert not [k for t in targets for k in t["labels"] if k.startswith("__")]
