"""Unit tests of infra/iam.py: trust documents and the Pod Identity role helper's contract."""

from __future__ import annotations

import pytest

from infra.iam import pod_identity_role, pod_identity_trust, service_trust_policy
from tests.support.specs import ACCOUNT


def test_pod_identity_trust_is_for_eks_pods_of_this_account_only() -> None:
    doc = pod_identity_trust(ACCOUNT)
    (st,) = doc["Statement"]
    assert st["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    # Pod Identity tags the session with the pod's namespace, service account, cluster.
    assert st["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    assert st["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_service_trust_without_account_has_no_condition() -> None:
    (st,) = service_trust_policy("ec2.amazonaws.com")["Statement"]
    assert st == {
        "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }


def test_pod_identity_role_without_any_policy_is_refused() -> None:
    import pulumi

    with pytest.raises(ValueError, match="policy_json or managed_policies"):
        pod_identity_role(
            "x", namespace="ns", service_account="sa", tags={}, opts=pulumi.ResourceOptions()
        )
