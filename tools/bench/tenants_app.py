"""The whole app with tenant limits off vs on, side by side.

    python -m tools.bench.tenants_app [--duration 24] [--rounds 4] [--concurrency 1,8,32]

One app (local mode, tiny-chat only, no aliases, the gateway-throughput design) with a limits
file and the redis-server local mode starts, and two keys: `free` has no limits; `limited` has
every counted limit (rpm, tpm, maxConcurrent, dailyTokens, monthlyTokens), each too large to
ever refuse. The load (tools.bench.load: streamed completions of a fixed length, usage asked
for) alternates between the two keys in short rounds at each concurrency, so both sides share
the process, the engine and the machine's noise; the only difference is the tenant gate: the
admission round trip before the model is called, and the settlement after. Prints req/s, TTFT
p50/p99 and the app's CPU per request for each side, then `limits on/off c=N: ...` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from contextlib import ExitStack

from serve_app.tiny_model import ensure_tiny_model
from tools.bench.cli import _interrupt, _levels, _measured, _positive
from tools.bench.designs import MODEL, Design, serving_file
from tools.bench.load import Stats, run_load
from tools.process import REPO, ServerNotReadyError, ServerProcess, free_port

OUT_DIR = REPO / "build" / "bench"
KEYS = {"off": "sk-bench-free-000000000000", "on": "sk-bench-limited-000000000"}
LIMITS = ("limited: {rpm: 10000000, tpm: 100000000000, maxConcurrent: 100000,"
          " dailyTokens: 1000000000000, monthlyTokens: 1000000000000}\n")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.tenants_app",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=_positive(float), default=24.0,
                        help="seconds of load per side and concurrency")
    parser.add_argument("--rounds", type=_positive(int), default=4,
                        help="alternations per concurrency")
    parser.add_argument("--concurrency", type=_levels, default=[1, 8, 32])
    parser.add_argument("--max-tokens", type=_positive(int), default=64)
    parser.add_argument("--startup-timeout", type=_positive(float), default=600)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    ensure_tiny_model(MODEL, 1)
    # The gateway-throughput design with tiny-chat only and no aliases (the limits need
    # neither; the local alias's rollback needs two targets).
    design = Design("tenants off/on", config={"throughputOptimized": True, "aliases": []},
                    only=(MODEL,))
    limits = OUT_DIR / "tenants-bench.yaml"
    limits.write_text(LIMITS)
    port = free_port()
    base = f"http://127.0.0.1:{port}{design.path}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAY_SERVE") and k != "LLM_PLATFORM_REDIS_URL"}
    env.update(design.env, PORT=str(port), LLM_PLATFORM_TENANTS=str(limits),
               LLM_PLATFORM_API_KEYS=f"free:{KEYS['off']},limited:{KEYS['on']}",
               LLM_PLATFORM_SERVING_FILE=str(serving_file(design,
                                                           OUT_DIR / "serving-tenants.json")))
    results: dict[tuple[str, int], Stats] = {}
    with ExitStack() as stack:
        app = ServerProcess([sys.executable, "-m", "serve_app.local"], env=env,
                            log=OUT_DIR / "app-tenants.log", own_session=False)
        stack.callback(app.stop, 60)
        try:
            app.wait_ready(f"{base}/v1/models", timeout=args.startup_timeout,
                           headers={"Authorization": f"Bearer {KEYS['off']}"},
                           ready_line="READY ")
        except ServerNotReadyError as exc:
            sys.exit(str(exc))
        for key in KEYS.values():  # warm-up, not measured
            asyncio.run(run_load(base, key, 4, 3.0, args.max_tokens))
        step = args.duration / args.rounds
        turn = 0
        for c in args.concurrency:
            for _ in range(args.rounds):
                order = ["off", "on"] if turn % 2 == 0 else ["on", "off"]
                turn += 1
                for mode in order:
                    st = _measured(app.pid, base, KEYS[mode], c, step, args.max_tokens)
                    results.setdefault((mode, c), Stats()).merge(st)
            for mode in ("off", "on"):
                st = results[(mode, c)]
                app_cpu = sum(v for k, v in st.cpu.items() if k != "(bench client)")
                print(f"  limits {mode:3s} c={c:<3d} {st.rps:7.2f} req/s TTFT p50"
                      f" {st.ttft_ms(50):7.1f} ms p99 {st.ttft_ms(99):7.1f} ms, app CPU"
                      f" {app_cpu * 1000 / max(st.requests, 1):6.1f} ms/request,"
                      f" errors {st.errors}", flush=True)
    summary = {}
    for c in args.concurrency:
        off, on = results[("off", c)], results[("on", c)]
        cpu = {mode: sum(v for k, v in results[(mode, c)].cpu.items() if k != "(bench client)")
               * 1000 / max(results[(mode, c)].requests, 1) for mode in ("off", "on")}
        summary[c] = {
            "rps_ratio_on_off": round(on.rps / off.rps, 3) if off.rps else None,
            "ttft_p50_ms": [round(off.ttft_ms(50), 2), round(on.ttft_ms(50), 2)],
            "ttft_p99_ms": [round(off.ttft_ms(99), 2), round(on.ttft_ms(99), 2)],
            "app_cpu_ms_per_request": [round(cpu["off"], 2), round(cpu["on"], 2)],
            "errors": off.errors + on.errors,
        }
        print(f"limits on/off c={c}: req/s ratio {summary[c]['rps_ratio_on_off']},"
              f" TTFT p50 {on.ttft_ms(50) - off.ttft_ms(50):+.1f} ms,"
              f" p99 {on.ttft_ms(99) - off.ttft_ms(99):+.1f} ms,"
              f" app CPU {cpu['on'] - cpu['off']:+.2f} ms/request")
    (OUT_DIR / "result-tenants-app.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
