"""A real Prometheus (Debian's `prometheus` package, `make promtool`) scraping a local app's Ray
metrics endpoint the way the Ray PodMonitor does on the cluster: with the `ray_io_cluster` label
the PodMonitor copies from the pod label, here a static label of the target. Optionally with
rule groups loaded (recording rules evaluated every scrape interval)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import LOG_DIR
from tools.dashboards_check import instant_query
from tools.process import ServerNotReadyError, ServerProcess, free_port

CLUSTER = "local"
SCRAPE_INTERVAL_S = 2


@contextmanager
def running_prometheus(
    metrics_port: int,
    folder: Path,
    *,
    rule_groups: Sequence[Mapping[str, Any]] = (),
    log: Path = LOG_DIR / "prometheus.log",
) -> Iterator[str]:
    """Start Prometheus on a free port; yields its base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: run `make promtool` (Debian package `prometheus`)")
    config: dict[str, Any] = {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s",
                   "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
        "scrape_configs": [{
            "job_name": "ray",
            "static_configs": [{
                "targets": [f"127.0.0.1:{metrics_port}"],
                "labels": {"ray_io_cluster": CLUSTER},
            }],
        }],
    }
    if rule_groups:
        (folder / "rules.yaml").write_text(yaml.safe_dump({"groups": list(rule_groups)}))
        config["rule_files"] = [str(folder / "rules.yaml")]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    cmd = [
        binary,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    url = f"http://127.0.0.1:{port}"
    with ServerProcess(cmd, env=dict(os.environ), log=log, own_session=True) as server:
        try:
            server.wait_ready(f"{url}/-/ready", timeout=60)
        except ServerNotReadyError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield url


def wait_for(prom: str, expr: str, at_least: float, timeout: float = 120) -> float:
    """Poll until the single-number `expr` reaches `at_least`; return its value."""
    deadline = time.monotonic() + timeout
    value = 0.0
    while time.monotonic() < deadline:
        result = instant_query(prom, expr)
        value = float(result[0]["value"][1]) if result else 0.0
        if value >= at_least:
            return value
        time.sleep(SCRAPE_INTERVAL_S)
    pytest.fail(f"{expr} = {value} after {timeout:.0f}s, wanted >= {at_least}")
