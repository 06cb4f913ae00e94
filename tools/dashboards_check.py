"""Does every dashboard panel return data? Ask a real Prometheus, panel by panel.

    python -m tools.dashboards_check --prometheus http://127.0.0.1:9090 [--var cluster=local]

Each panel query is sent to Prometheus' HTTP query API with Grafana's variables substituted
(`$__rate_interval`, `$__range` and the dashboard's template variables; "All" is `.*`). The
report lists, per dashboard and panel, how many series each query returned. `make
dashboards-check` runs it against a Prometheus scraping the local app (tests/e2e); pointed at a
cluster's Prometheus (port-forward) it checks the GPU and capacity panels too.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from typing import Any

import httpx

from dashboards.build import all_specs
from dashboards.spec import ALL, DashboardSpec

DEFAULTS = {"__rate_interval": "1m", "__range": "15m"}


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace `$name` / `${name}` as Grafana would (unknown variables: All, `.*`)."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, DEFAULTS.get(name, ALL))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def instant_query(prometheus: str, expr: str, timeout: float = 30) -> list[dict[str, Any]]:
    """Result vector of an instant query; raises on an error answer (bad PromQL, say)."""
    r = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=timeout)
    body = r.json()
    if r.status_code != 200 or body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]["result"]


@dataclass(frozen=True)
class QueryResult:
    dashboard: str
    panel: str
    expr: str
    series: int
    nan: int  # samples that are NaN or ±Inf (an idle-system bug)
    error: str = ""

    @property
    def has_data(self) -> bool:
        return self.series > 0 and not self.error


def check(
    prometheus: str, specs: dict[str, DashboardSpec], values: dict[str, str]
) -> list[QueryResult]:
    out = []
    for name, spec in specs.items():
        for panel in spec.panels:
            for q in panel.queries:
                expr = substitute(q.text, values)
                try:
                    result = instant_query(prometheus, expr)
                except (RuntimeError, httpx.HTTPError) as exc:
                    out.append(QueryResult(name, panel.title, expr, 0, 0, str(exc)))
                    continue
                bad = sum(1 for s in result if s["value"][1] in {"NaN", "+Inf", "-Inf"})
                out.append(QueryResult(name, panel.title, expr, len(result), bad))
    return out


def report(results: list[QueryResult]) -> str:
    lines: list[str] = []
    panels: dict[tuple[str, str], list[QueryResult]] = {}
    for r in results:
        panels.setdefault((r.dashboard, r.panel), []).append(r)
    current = ""
    for (dashboard, panel), rs in panels.items():
        if dashboard != current:
            current = dashboard
            lines.append(f"\n{dashboard}")
        ok = all(r.has_data for r in rs)
        detail = ", ".join(
            r.error or f"{r.series} series" + (f" ({r.nan} NaN/Inf)" if r.nan else "")
            for r in rs
        )
        lines.append(f"  {'DATA   ' if ok else 'NO DATA'}  {panel}  [{detail}]")
    with_data = sum(1 for rs in panels.values() if all(r.has_data for r in rs))
    lines.append(f"\n{with_data}/{len(panels)} panels returned data")
    return "\n".join(lines).lstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help="a template variable's value (default: All, `.*`)")
    args = parser.parse_args(argv)
    values = dict(v.split("=", 1) for v in args.var)
    results = check(args.prometheus.rstrip("/"), all_specs(), values)
    print(report(results), end="")
    return 0 if all(r.has_data for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
