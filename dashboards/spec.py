"""Dashboards as small typed specs, rendered to Grafana JSON with grafana-foundation-sdk.

A dashboard module returns a `DashboardSpec` (rows of `PanelSpec`, each with its queries as
PromQL expression trees). `render()` turns it into the Grafana dashboard JSON model through the
SDK's typed builders; the checks (metric names, data in a real Prometheus) read the same specs,
and a test ties the checked-in JSON to `render()`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# The SDK warns "Prefer using dashboardv2.Dashboard": v2 is the shape of Grafana's Kubernetes-
# style dashboard API. Grafana's dashboard sidecar provisions files in the classic JSON model,
# which is what we build, deliberately.
warnings.filterwarnings("ignore", "Prefer using dashboardv2", DeprecationWarning)

from grafana_foundation_sdk.builders import common as gcommon  # noqa: E402
from grafana_foundation_sdk.builders import dashboard as gdash  # noqa: E402
from grafana_foundation_sdk.builders import prometheus as gprom  # noqa: E402
from grafana_foundation_sdk.builders import stat as gstat  # noqa: E402
from grafana_foundation_sdk.builders import timeseries as gts  # noqa: E402
from grafana_foundation_sdk.cog.encoder import JSONEncoder  # noqa: E402
from grafana_foundation_sdk.models import common as mcommon  # noqa: E402
from grafana_foundation_sdk.models import dashboard as mdash  # noqa: E402

from dashboards.promql import Expr, metric_names  # noqa: E402

DATASOURCE = mcommon.DataSourceRef(type_val="prometheus", uid="${datasource}")
ALL = ".*"  # value of "All" in the multi-value variables: matches any label value, or none


class Kind(StrEnum):
    TIMESERIES = "timeseries"
    STAT = "stat"


@dataclass(frozen=True)
class Query:
    expr: Expr
    legend: str = ""

    @property
    def text(self) -> str:
        return str(self.expr)


@dataclass(frozen=True)
class PanelSpec:
    title: str
    about: str  # what the panel shows and how to read it; the metric list is appended
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: Kind = Kind.TIMESERIES
    width: int = 12
    max_value: float | None = None

    @property
    def metrics(self) -> list[str]:
        names: set[str] = set()
        for q in self.queries:
            names |= metric_names(q.expr)
        return sorted(names)

    @property
    def description(self) -> str:
        return f"{self.about}\n\nMetrics: " + ", ".join(f"`{n}`" for n in self.metrics) + "."


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: Expr  # the series whose label values fill the list
    label_name: str  # which label

    @property
    def text(self) -> str:
        return f"label_values({self.query}, {self.label_name})"


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    about: str
    variables: tuple[Variable, ...]
    rows: tuple[tuple[str, tuple[PanelSpec, ...]], ...]
    tags: tuple[str, ...] = field(default=("llm-platform",))

    @property
    def panels(self) -> list[PanelSpec]:
        return [p for _, panels in self.rows for p in panels]


def _target(q: Query, ref: str) -> gprom.Dataquery:
    t = gprom.Dataquery().expr(q.text).ref_id(ref).datasource(DATASOURCE).range()
    return t.legend_format(q.legend) if q.legend else t


def _panel(p: PanelSpec) -> Any:
    builder: Any
    if p.kind is Kind.STAT:
        builder = (
            gstat.Panel()
            .reduce_options(gcommon.ReduceDataOptions().calcs(["lastNotNull"]))
            .graph_mode(mcommon.BigValueGraphMode.AREA)
        )
    else:
        builder = (
            gts.Panel()
            .legend(gcommon.VizLegendOptions().show_legend(True)
                    .display_mode(mcommon.LegendDisplayMode.LIST)
                    .placement(mcommon.LegendPlacement.BOTTOM))
            .tooltip(gcommon.VizTooltipOptions().mode(mcommon.TooltipDisplayMode.MULTI)
                     .sort(mcommon.SortOrder.DESCENDING))
            .fill_opacity(10)
        )
    builder = (
        builder.title(p.title).description(p.description).unit(p.unit)
        .datasource(DATASOURCE).span(p.width).height(8).min(0)
    )
    if p.max_value is not None:
        builder = builder.max(p.max_value)
    for i, q in enumerate(p.queries):
        builder = builder.with_target(_target(q, chr(ord("A") + i)))
    return builder


def _variable(v: Variable) -> gdash.QueryVariable:
    return (
        gdash.QueryVariable(v.name).label(v.label).query(v.text).datasource(DATASOURCE)
        .multi(True).include_all(True).all_value(ALL)
        .current(mdash.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .refresh(mdash.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(mdash.VariableSort.ALPHABETICAL_ASC)
    )


def render(spec: DashboardSpec) -> dict[str, Any]:
    """The Grafana dashboard JSON model of `spec` (plain data, stable key order)."""
    d = (
        gdash.Dashboard(spec.title).uid(spec.uid).description(spec.about)
        .tags(list(spec.tags)).editable().refresh("30s").time("now-1h", "now")
        .timezone(mcommon.TimeZoneUtc)
        .with_variable(gdash.DatasourceVariable("datasource").label("Data source")
                       .type("prometheus"))
    )
    for v in spec.variables:
        d = d.with_variable(_variable(v))
    for title, panels in spec.rows:
        d = d.with_row(gdash.Row(title))
        for p in panels:
            d = d.with_panel(_panel(p))
    model = json.loads(json.dumps(d.build(), cls=JSONEncoder))
    # Grafana keys panels by id; the SDK leaves ids to the caller.
    for i, panel in enumerate(model["panels"], start=1):
        panel["id"] = i
    return model
