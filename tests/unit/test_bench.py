"""make bench's own pieces: flag validation and the per-process CPU accounting (real /proc)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from serve_app.bench import cpu_by_process, cpu_used, parse_args


def test_defaults_are_the_issue_levels():
    args = parse_args([])
    assert args.concurrency == [1, 8, 32]
    assert args.design == "gateway-throughput"
    assert args.pause_idle is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--concurrency", "1,x"], "argument --concurrency: '1,x' is not a comma-separated"),
        (["--concurrency", "8,0"], "argument --concurrency: '8,0': every concurrency"),
        (["--duration", "-3"], "argument --duration: '-3' must be greater than 0"),
        (["--rounds", "two"], "argument --rounds: 'two' is not a number"),
        (["--max-tokens", "0"], "argument --max-tokens: '0' must be greater than 0"),
        (["--design", "fastest"], "argument --design: invalid choice: 'fastest'"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cpu_used_diffs_per_pid_even_when_a_process_is_retitled():
    # Ray renames a process while it runs a method; a diff by title would count its whole
    # lifetime again.
    before = {10: ("ray::ServeController", 7.0), 11: ("raylet", 1.0)}
    after = {10: ("ray::ServeController.listen", 7.5), 11: ("raylet", 1.25), 12: ("haproxy", 0.5)}
    assert cpu_used(before, after) == {
        "ray::ServeController.listen": 0.5,
        "raylet": 0.25,
        "haproxy": 0.5,  # new since the first snapshot: all of its CPU counts
    }


def test_cpu_by_process_sees_a_child_burning_cpu():
    burn = (
        "import time\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.3:\n"
        "    pass\n"
        "time.sleep(30)\n"
    )
    before = cpu_by_process(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 20
        used: dict[str, float] = {}
        while time.monotonic() < deadline:
            used = cpu_used(before, cpu_by_process(os.getpid()))
            if used.get("python -c", 0.0) >= 0.3:
                break
            time.sleep(0.1)
        assert used.get("python -c", 0.0) >= 0.3, used
        assert cpu_by_process(os.getpid())[child.pid][0] == "python -c"
    finally:
        child.kill()
        child.wait()


def test_report_ends_with_the_c32_ratio_and_writes_json(tmp_path, monkeypatch, capsys):
    import json

    from serve_app import bench

    monkeypatch.setattr(bench, "OUT_DIR", tmp_path)

    def stats(requests: int, cpu: dict[str, float]) -> bench.Stats:
        return bench.Stats(requests=requests, tokens=requests * 64, elapsed=10.0,
                           ttft=[0.010, 0.012, 0.020], cpu=cpu)

    results = {
        ("vllm", 1): stats(80, {"api_server": 0.4}),
        ("app", 1): stats(60, {"ray::ServeController": 0.06}),
        ("vllm", 32): stats(700, {"api_server": 3.5}),
        ("app", 32): stats(350, {"haproxy": 0.7}),
    }
    bench._report("gateway-throughput", [1, 32], results, {"vllm": 0.02, "app": 0.25})
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "throughput ratio c=32: 0.50"
    assert any("app  total    2.0: haproxy 2.0" in line for line in out)
    saved = json.loads((tmp_path / "result-gateway-throughput.json").read_text())
    assert saved["32"]["ratio"] == 0.5 and saved["1"]["ratio"] == 0.75
    assert saved["idle_cores"] == {"vllm": 0.02, "app": 0.25}
    assert saved["32"]["app_cpu_ms_per_request"] == {"haproxy": 2.0}
