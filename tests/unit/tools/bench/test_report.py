"""The bench's report: last line, CPU per request, JSON file."""

from __future__ import annotations

import json

from tools.bench.load import Stats
from tools.bench.report import report


def test_report_ends_with_the_c32_ratio_and_writes_json(tmp_path, capsys):
    def stats(requests: int, cpu: dict[str, float]) -> Stats:
        return Stats(requests=requests, tokens=requests * 64, elapsed=10.0,
                           ttft=[0.010, 0.012, 0.020], cpu=cpu)

    results = {
        ("vllm", 1): stats(80, {"api_server": 0.4}),
        ("app", 1): stats(60, {"ray::ServeController": 0.06}),
        ("vllm", 32): stats(700, {"api_server": 3.5}),
        ("app", 32): stats(350, {"haproxy": 0.7}),
    }
    report("gateway-throughput", [1, 32], results, {"vllm": 0.02, "app": 0.25}, tmp_path)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "throughput ratio c=32: 0.50"
    assert any("app  total    2.0: haproxy 2.0" in line for line in out)
    saved = json.loads((tmp_path / "result-gateway-throughput.json").read_text())
    assert saved["32"]["ratio"] == 0.5 and saved["1"]["ratio"] == 0.75
    assert saved["idle_cores"] == {"vllm": 0.02, "app": 0.25}
    assert saved["32"]["app_cpu_ms_per_request"] == {"haproxy": 2.0}
