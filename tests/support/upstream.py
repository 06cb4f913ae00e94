"""Upstream data files the tests compare the program with: Helm charts' `values.yaml` and
`Chart.yaml`, reference IAM policies. They live outside the repo (`../shared/upstream`, or
`$LLM_PLATFORM_UPSTREAM_DIR`), named `<chart or component>-<version>_<original basename>`;
`SOURCES.md` there names the repo, tag and path of each.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def upstream_dir() -> Path:
    return Path(os.environ.get("LLM_PLATFORM_UPSTREAM_DIR", ROOT.parent / "shared" / "upstream"))


def upstream_file(component: str, version: str, basename: str) -> Path:
    """`<upstream>/<component>-<version>_<basename>`, the SOURCES.md naming."""
    return upstream_dir() / f"{component}-{version}_{basename}"


@cache
def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def chart_name(chart: str) -> str:
    """`oci://public.ecr.aws/karpenter/karpenter` -> `karpenter`; `dcgm-exporter` stays."""
    return chart.rstrip("/").rsplit("/", 1)[-1]


# ------------------------------------------------------------------------- CloudFormation
class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: short-form intrinsics (`!Sub`, `!GetAtt`, `!Ref`) become
    `{"Fn::Sub": ...}`-style dicts instead of load errors."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {f"Fn::{suffix}" if suffix != "Ref" else "Ref": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@cache
def cloudformation(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # a SafeLoader subclass


def cfn_policy_documents(path: Path) -> dict[str, dict[str, Any]]:
    """Every `AWS::IAM::ManagedPolicy` of a template, by logical id, as a policy document. The
    documents are `!Sub` JSON strings; `${...}` placeholders stay as text (they only ever fill
    ARNs and condition values, never action names)."""
    out: dict[str, dict[str, Any]] = {}
    for logical_id, res in cloudformation(path)["Resources"].items():
        if res["Type"] != "AWS::IAM::ManagedPolicy":
            continue
        doc = res["Properties"]["PolicyDocument"]
        if isinstance(doc, dict) and "Fn::Sub" in doc:
            doc = json.loads(doc["Fn::Sub"])
        out[logical_id] = doc
    return out


def actions(doc: dict[str, Any], effect: str = "Allow") -> set[str]:
    """The actions a policy document grants (or denies), as written."""
    out: set[str] = set()
    for st in doc["Statement"]:
        if st.get("Effect") != effect:
            continue
        acts = st.get("Action", [])
        out |= {acts} if isinstance(acts, str) else set(acts)
    return out
