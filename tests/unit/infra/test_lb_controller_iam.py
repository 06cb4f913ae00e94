"""The Load Balancer Controller's IAM policy, written in code, against the controller's published
policy for the pinned version (../shared/upstream/aws-load-balancer-controller-<version>_
iam_policy.json), statement by statement and action by action."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import versions
from infra.serving.lb_controller_iam import DIFFERENCES, PARLIAMENT_EXCEPTIONS, controller_policy
from tests.support.specs import parliament_problems
from tests.support.upstream import upstream_file

CHART = versions.AWS_LB_CONTROLLER_CHART
REFERENCE = upstream_file(CHART.chart, CHART.version, "iam_policy.json")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _normal(st: dict[str, Any]) -> dict[str, Any]:
    """A statement with its lists as sets (order and one-element lists carry no meaning)."""
    cond = {op: {k: frozenset(_as_list(v)) for k, v in kv.items()}
            for op, kv in st.get("Condition", {}).items()}
    return {
        "Effect": st["Effect"],
        "Action": frozenset(_as_list(st["Action"])),
        "Resource": frozenset(_as_list(st["Resource"])),
        "Condition": cond,
    }


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    if not REFERENCE.exists():
        pytest.fail(f"upstream reference policy missing: {REFERENCE} (../shared/upstream)")
    return json.loads(REFERENCE.read_text())


def test_same_statements_and_actions_as_upstream(reference: dict[str, Any]) -> None:
    ours = controller_policy("aws")
    assert ours["Version"] == reference["Version"]
    theirs = reference["Statement"]
    assert len(ours["Statement"]) == len(theirs)
    diffs = []
    for i, (mine, up) in enumerate(zip(ours["Statement"], theirs, strict=True)):
        a, b = _normal(mine), _normal(up)
        for key in a:
            if a[key] != b[key]:
                extra = sorted(a[key] - b[key]) if isinstance(a[key], frozenset) else a[key]
                missing = sorted(b[key] - a[key]) if isinstance(b[key], frozenset) else b[key]
                diffs.append(f"statement {i} ({mine['Sid']}) {key}: ours adds {extra},"
                             f" lacks {missing}")
    # With partition `aws` the only listed difference (the partition) vanishes.
    assert set(DIFFERENCES) == {"partition"}
    assert not diffs, "\n".join(diffs)


def test_every_arn_follows_the_partition() -> None:
    text = json.dumps(controller_policy("aws-us-gov"))
    arns = [w for w in text.replace('"', " ").split() if w.startswith("arn:")]
    assert arns and all(a.startswith("arn:aws-us-gov:") for a in arns)


def test_passes_parliament_with_reasoned_exceptions_only() -> None:
    doc = controller_policy("aws")
    assert parliament_problems(doc, PARLIAMENT_EXCEPTIONS) == []
    sids = [st["Sid"] for st in doc["Statement"]]
    assert len(set(sids)) == len(sids) and set(PARLIAMENT_EXCEPTIONS) <= set(sids)
    # Every exception is still needed: without it, parliament would report that statement.
    for sid in PARLIAMENT_EXCEPTIONS:
        rest = {k: v for k, v in PARLIAMENT_EXCEPTIONS.items() if k != sid}
        assert any(p.startswith(f"{sid}:") for p in parliament_problems(doc, rest)), sid
