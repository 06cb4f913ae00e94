"""Which metric every panel, template variable and alert uses (for the name checks)."""

from __future__ import annotations

from dashboards.build import all_specs
from dashboards.promql import metric_names
from dashboards.rules import alerts, recordings


def used_metrics() -> dict[str, set[str]]:
    """Series name -> the places that query it ("<dashboard>: <panel>", "alert <name>")."""
    used: dict[str, set[str]] = {}
    for name, spec in all_specs().items():
        for panel in spec.panels:
            for metric in panel.metrics:
                used.setdefault(metric, set()).add(f"{name}: {panel.title}")
        for var in spec.variables:
            for metric in metric_names(var.query):
                used.setdefault(metric, set()).add(f"{name}: variable ${var.name}")
    for alert in alerts():
        for metric in alert.metrics:
            used.setdefault(metric, set()).add(f"alert {alert.name}")
    for rule in recordings():
        for metric in rule.metrics:
            used.setdefault(metric, set()).add(f"recording rule {rule.record}")
    return used
