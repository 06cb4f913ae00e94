"""Unit tests of infra/foundation/karpenter_iam.py: the controller policy, interruption rules and
queue policy (parliament, with reasoned exceptions only)."""

from __future__ import annotations

import json
from typing import Any

from infra.foundation.karpenter_iam import (
    PARLIAMENT_EXCEPTIONS,
    controller_policy,
    interruption_rules,
    queue_policy,
)
from tests.support.specs import ACCOUNT, CLUSTER, QUEUE_ARN, parliament_problems


def test_interruption_rules_cover_the_four_event_kinds() -> None:
    rules = interruption_rules()
    kinds = {t for p in rules.values() for t in p["detail-type"]}
    assert kinds == {
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "AWS Health Event",
    }
    assert rules["scheduled-change"]["detail"]["eventTypeCategory"] == ["scheduledChange"]


def _controller_policy() -> dict[str, Any]:
    return controller_policy(
        partition="aws", region="us-west-2", account=ACCOUNT, cluster_name=CLUSTER,
        queue_arn=QUEUE_ARN, node_role_arn=f"arn:aws:iam::{ACCOUNT}:role/karpenter-node-1",
    )


def test_controller_policy_passes_parliament_with_reasoned_exceptions_only() -> None:
    assert parliament_problems(_controller_policy(), PARLIAMENT_EXCEPTIONS) == []
    # Every exception is still needed (a stale exception would hide a future finding).
    sids = {st["Sid"] for st in _controller_policy()["Statement"]}
    assert set(PARLIAMENT_EXCEPTIONS) <= sids


def test_controller_policy_is_scoped_to_this_cluster() -> None:
    doc = _controller_policy()
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow"
        text = json.dumps(st)
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        writes = [a for a in actions if a.split(":")[1].startswith(
            ("Run", "Create", "Terminate", "Delete"))]
        if writes and st["Sid"] != "LaunchFromPublicImages":
            assert CLUSTER in text, f"{st['Sid']} writes without naming the cluster"
        assert "iam:CreateInstanceProfile" not in actions
        assert "*" not in actions


def test_queue_policy_passes_parliament_and_admits_only_the_rules() -> None:
    rule = f"arn:aws:events:us-west-2:{ACCOUNT}:rule/spot"
    qp = queue_policy(QUEUE_ARN, [rule])
    assert parliament_problems(qp, {}) == []
    send = qp["Statement"][0]
    assert send["Principal"] == {"Service": "events.amazonaws.com"}
    assert send["Condition"]["ArnEquals"]["aws:SourceArn"] == [rule]
