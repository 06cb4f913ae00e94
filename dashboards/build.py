"""Generate every dashboard: `python -m dashboards.build [--check] [--out DIR]`.

`all_dashboards()` is the interface infra/platform/monitoring.py loads into Grafana ConfigMaps
(file name -> dashboard JSON model). `make dashboards` writes them to dashboards/json/ (checked
in, so a reviewer sees the JSON change in a diff); `--check` fails when the checked-in files differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dashboards import capacity, engine, gpu, llm_overview, serve, tenants
from dashboards.rules import AlertThresholds
from dashboards.spec import DashboardSpec, render

JSON_DIR = Path(__file__).resolve().parent / "json"

SPECS: dict[str, Callable[[AlertThresholds], DashboardSpec]] = {
    "llm-overview.json": lambda t: llm_overview.spec(ttft_slo_s=t.ttft_p95_slo_s),
    "llm-engine-saturation.json": lambda t: engine.spec(),
    "ray-serve.json": lambda t: serve.spec(),
    "gpu-fleet.json": lambda t: gpu.spec(),
    "capacity-cost.json": lambda t: capacity.spec(),
    "tenants.json": lambda t: tenants.spec(),
}


def all_specs(thresholds: AlertThresholds | None = None) -> dict[str, DashboardSpec]:
    t = thresholds or AlertThresholds()
    return {name: make(t) for name, make in SPECS.items()}


def all_dashboards(thresholds: AlertThresholds | None = None) -> dict[str, dict[str, Any]]:
    """File name -> Grafana dashboard JSON model, for every dashboard (`thresholds`: the same
    values the alerts use, e.g. the TTFT SLO the attainment panel counts against)."""
    return {name: render(spec) for name, spec in all_specs(thresholds).items()}


def dump(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale_files(folder: Path = JSON_DIR) -> list[str]:
    """Names whose checked-in JSON differs from the builder at default thresholds (or is
    missing / extra)."""
    wanted = {name: dump(model) for name, model in all_dashboards().items()}
    present = {p.name for p in folder.glob("*.json")}
    out = [n for n, text in wanted.items()
           if not (folder / n).exists() or (folder / n).read_text() != text]
    return sorted(out + sorted(present - set(wanted)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the JSON files are stale")
    parser.add_argument("--out", type=Path, default=JSON_DIR, help="output folder")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        if stale:
            print(f"stale dashboards in {args.out}: {', '.join(stale)} (run `make dashboards`)",
                  file=sys.stderr)
            return 1
        print(f"{len(SPECS)} dashboards up to date in {args.out}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.json"):
        if old.name not in SPECS:
            old.unlink()
    for name, model in all_dashboards().items():
        (args.out / name).write_text(dump(model))
    print(f"wrote {len(SPECS)} dashboards to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
