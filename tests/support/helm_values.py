"""Check Helm values against a chart's own `values.yaml` (in `../shared/upstream`).

A misspelt key in Helm values is silently ignored by the chart, so every key we set must exist
in the chart's defaults. Where the default is an empty map, a list or a scalar, the chart takes
whatever is given (free-form: `nodeSelector`, `podLabels`, `storageSpec`...) and the check stops
there. Sub-charts: a parent's `<subchart>:` block is checked against the sub-chart's values.yaml
merged with the parent's own defaults for that block.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
# Maps whose keys are the user's, even where the chart's default is not empty
# (e.g. karpenter's `nodeSelector: {kubernetes.io/os: linux}`).
FREE_FORM = frozenset({
    "nodeSelector", "labels", "annotations", "podLabels", "podAnnotations",
    "additionalLabels", "commonLabels", "env",
})


def upstream_dir() -> Path:
    return ROOT.parent / "shared" / "upstream"


@cache
def chart_defaults(file_name: str) -> dict[str, Any]:
    """The parsed `values.yaml` of a chart, e.g. `grafana-12.11.1_values.yaml`."""
    path = upstream_dir() / file_name
    if not path.exists():
        raise FileNotFoundError(f"no upstream values file {path}")
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of a parent's values over a sub-chart's defaults (maps merge, rest replace)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def with_subcharts(parent: str, subcharts: Mapping[str, str]) -> dict[str, Any]:
    """Defaults of `parent` with each `<block>: <sub-chart values file>` merged in."""
    out = dict(chart_defaults(parent))
    for block, file_name in subcharts.items():
        out[block] = merged(chart_defaults(file_name), out.get(block) or {})
    return out


def unknown_keys(values: Mapping[str, Any], defaults: Any, path: str = "") -> list[str]:
    """Dotted paths of keys in `values` that the chart's defaults do not have."""
    problems: list[str] = []
    for key, value in values.items():
        here = f"{path}.{key}" if path else str(key)
        if not isinstance(defaults, Mapping) or key not in defaults:
            problems.append(here)
            continue
        default = defaults[key]
        if (isinstance(value, Mapping) and isinstance(default, Mapping) and default
                and key not in FREE_FORM):
            problems += unknown_keys(value, default, here)
    return problems
