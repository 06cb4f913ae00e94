"""IAM compared with the reference policies upstream publishes, action by action.

A read action missing from the Karpenter controller once made `pulumi destroy` hang for 30
minutes (the EC2NodeClass finalizer's instance-profile cleanup). Every difference from
Karpenter 1.14.1's own CloudFormation is either gone or listed with its reason in
infra/foundation/karpenter_iam.py; a stale reason fails as well as a new gap.

Roles without an upstream reference file: the EBS CSI driver uses the AWS-managed
`AmazonEBSCSIDriverPolicy` (AWS maintains it; tests/render/test_aws_render.py checks that it
is attached and nothing else), and the flow-log role follows the action list of the VPC User
Guide ("IAM role for publishing flow logs to CloudWatch Logs"), checked below.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import versions
from infra.foundation.karpenter_iam import (
    NODE_ROLE_UPSTREAM_OMISSIONS,
    RULE_UPSTREAM_OMISSIONS,
    UPSTREAM_OMISSIONS,
    controller_policy,
    interruption_rules,
)
from infra.foundation.network import flow_log_policy
from infra.iam import NODE_MANAGED_POLICIES
from tests.support.specs import ACCOUNT, CLUSTER, QUEUE_ARN
from tests.support.upstream import actions, cfn_policy_documents, cloudformation, upstream_file


def _reference() -> Path:
    path = upstream_file("karpenter", versions.KARPENTER_VERSION, "cloudformation.yaml")
    if not path.exists():
        pytest.fail(
            f"missing upstream reference {path}: the Karpenter {versions.KARPENTER_VERSION} "
            f"getting-started cloudformation.yaml (see ../shared/upstream/SOURCES.md)"
        )
    return path


def _controller_actions() -> set[str]:
    return actions(controller_policy(
        partition="aws", region="us-west-2", account=ACCOUNT, cluster_name=CLUSTER,
        queue_arn=QUEUE_ARN, node_role_arn=f"arn:aws:iam::{ACCOUNT}:role/karpenter-node",
    ))


def _upstream_controller_actions() -> set[str]:
    docs = cfn_policy_documents(_reference())
    controller = {k: d for k, d in docs.items() if k != "KarpenterNodeRole"}
    assert len(controller) >= 5, f"expected the controller's managed policies, got {list(docs)}"
    return set().union(*(actions(d) for d in controller.values()))


def test_karpenter_controller_policy_matches_upstream_action_by_action() -> None:
    ours, theirs = _controller_actions(), _upstream_controller_actions()
    missing = theirs - ours
    unexplained = sorted(missing - set(UPSTREAM_OMISSIONS))
    assert not unexplained, (
        f"Karpenter {versions.KARPENTER_VERSION}'s own policy grants {unexplained}, ours does "
        f"not: grant them or add each to UPSTREAM_OMISSIONS with the reason"
    )
    stale = sorted(set(UPSTREAM_OMISSIONS) - missing)
    assert not stale, f"UPSTREAM_OMISSIONS lists {stale}, which are no longer omitted: remove"
    extra = sorted(ours - theirs)
    assert not extra, f"we grant {extra}, which Karpenter's own policy does not"


def test_destroy_needs_the_instance_profile_reads() -> None:
    # The finalizer's cleanup: read-only, and no IAM write at all.
    ours = _controller_actions()
    assert {"iam:ListInstanceProfiles", "iam:GetInstanceProfile"} <= ours
    assert not {a for a in ours if a.startswith("iam:") and a not in
                {"iam:ListInstanceProfiles", "iam:GetInstanceProfile", "iam:PassRole"}}


def test_node_role_managed_policies_match_upstream() -> None:
    node = cloudformation(_reference())["Resources"]["KarpenterNodeRole"]["Properties"]
    theirs = {arn["Fn::Sub"].rsplit("/", 1)[-1] for arn in node["ManagedPolicyArns"]}
    ours = set(NODE_MANAGED_POLICIES)
    assert theirs - ours == set(NODE_ROLE_UPSTREAM_OMISSIONS), (
        f"upstream node role: {sorted(theirs)}; ours: {sorted(ours)}; every policy we leave "
        f"out needs a reason in NODE_ROLE_UPSTREAM_OMISSIONS (and no stale one)"
    )
    assert not ours - theirs, f"we attach {sorted(ours - theirs)}, upstream does not"


def test_interruption_rules_match_upstream() -> None:
    template = cloudformation(_reference())["Resources"]
    theirs = {
        t for r in template.values() if r["Type"] == "AWS::Events::Rule"
        for t in r["Properties"]["EventPattern"]["detail-type"]
    }
    ours = {t for p in interruption_rules().values() for t in p["detail-type"]}
    assert theirs - ours == set(RULE_UPSTREAM_OMISSIONS)
    assert not ours - theirs


# The VPC User Guide's flow-log role ("IAM role for publishing flow logs to CloudWatch Logs").
FLOW_LOG_DOCUMENTED = {
    "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
    "logs:DescribeLogGroups", "logs:DescribeLogStreams",
}
FLOW_LOG_OMISSIONS = {"logs:CreateLogGroup": "the program creates the log group itself"}


def test_flow_log_role_has_the_documented_actions() -> None:
    group = f"arn:aws:logs:us-west-2:{ACCOUNT}:log-group:/aws/vpc/{CLUSTER}/flow-logs"
    ours = actions(flow_log_policy(group))
    assert FLOW_LOG_DOCUMENTED - ours == set(FLOW_LOG_OMISSIONS)
    assert not ours - FLOW_LOG_DOCUMENTED
