"""The bench's report: table, CPU per request by process, and a JSON file per design."""

from __future__ import annotations

import json
from pathlib import Path

from tools.bench.load import Stats


def report(design: str, levels: list[int], results: dict[tuple[str, int], Stats],
           idle: dict[str, float], out_dir: Path) -> None:
    """Print the comparison and write `out_dir/result-<design>.json`; the last line printed is
    `throughput ratio c=<last level>: X.XX`."""
    print(f"\n{'c':>3} | {'vLLM req/s':>10} {'app req/s':>10} {'ratio':>6} | "
          f"{'vLLM tok/s':>10} {'app tok/s':>10} | {'TTFT p50 vLLM/app ms':>21} "
          f"{'d':>6} | {'TTFT p99 vLLM/app ms':>21}")
    summary = {}
    for c in levels:
        v, a = results[("vllm", c)], results[("app", c)]
        ratio = a.rps / v.rps if v.rps else 0.0
        d50 = a.ttft_ms(50) - v.ttft_ms(50)
        print(f"{c:>3} | {v.rps:>10.2f} {a.rps:>10.2f} {ratio:>6.2f} | {v.tps:>10.1f} "
              f"{a.tps:>10.1f} | {v.ttft_ms(50):>9.1f} / {a.ttft_ms(50):>9.1f} {d50:>+6.1f} | "
              f"{v.ttft_ms(99):>9.1f} / {a.ttft_ms(99):>9.1f}")
        summary[c] = {"ratio": round(ratio, 3), "ttft_p50_overhead_ms": round(d50, 1),
                      "vllm_rps": round(v.rps, 2), "app_rps": round(a.rps, 2),
                      "errors": v.errors + a.errors}
    for c in levels:
        print(f"\nCPU ms per completed request at c={c} (server processes + this client):")
        for name in ("vllm", "app"):
            st = results[(name, c)]
            per_request = {
                label: secs * 1000 / max(st.requests, 1)
                for label, secs in sorted(st.cpu.items(), key=lambda kv: -kv[1])
            }
            print(f"  {name:4s} total {sum(per_request.values()):6.1f}: " + ", ".join(
                f"{label} {ms:.1f}" for label, ms in per_request.items() if ms >= 0.05))
            summary[c][f"{name}_cpu_ms_per_request"] = {
                label: round(ms, 2) for label, ms in per_request.items()}
    summary["idle_cores"] = {name: round(v, 3) for name, v in idle.items()}
    (out_dir / f"result-{design}.json").write_text(json.dumps(summary, indent=1))
    last = levels[-1]
    ratio = summary[last]["ratio"]
    print(f"throughput ratio c={last}: {ratio:.2f}")
