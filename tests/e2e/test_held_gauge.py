"""Ray's gauge export, as the platform's gauges rely on it (serve_app/held_gauge.py): on a real
Ray node, a plain `ray.util.metrics.Gauge` set once is gone from the node's metrics port after a
few export intervals, and the same value through HeldGauge stays until a snapshot drops it.

Runs in its own process with its own Ray (1 s export interval), so it shares nothing with the
apps of the other e2e tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.process import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, os, sys, time, urllib.request
import ray
from ray.util.metrics import Gauge

port = int(sys.argv[1])
ray.init(num_cpus=1, include_dashboard=False, _metrics_export_port=port)

@ray.remote
class Emitter:
    def __init__(self):
        from serve_app.held_gauge import HeldGauge
        self.plain = Gauge("probe_plain_gauge", "set once", tag_keys=("k",))
        self.held = HeldGauge(Gauge("probe_held_gauge", "set once, held", tag_keys=("k",)))
    def set_once(self):
        self.plain.set(7, {"k": "a"})
        self.held.set(7, {"k": "a"})
    def drop(self):
        self.held.replace([])

def seen():
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {name: any(l.startswith(f"ray_{name}{{") for l in body.splitlines())
            for name in ("probe_plain_gauge", "probe_held_gauge")}

e = Emitter.remote()
ray.get(e.set_once.remote())
first = {}
deadline = time.monotonic() + 20
while time.monotonic() < deadline and not all(first.values() or [False]):
    time.sleep(0.5)
    first = seen()
time.sleep(8)  # eight export intervals
later = seen()
ray.get(e.drop.remote())
time.sleep(5)
dropped = seen()
print(json.dumps({"first": first, "later": later, "dropped": dropped}))
"""


def test_a_gauge_set_once_disappears_and_a_held_one_stays_until_dropped() -> None:
    env = dict(os.environ, RAY_metrics_report_interval_ms="1000", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROBE, str(free_port())], env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["first"] == {"probe_plain_gauge": True, "probe_held_gauge": True}, result
    # What Ray does with a gauge nobody sets again, and what HeldGauge changes.
    assert result["later"] == {"probe_plain_gauge": False, "probe_held_gauge": True}, result
    assert result["dropped"]["probe_held_gauge"] is False, result
