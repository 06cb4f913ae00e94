"""Unit tests of infra/foundation/cluster.py: access entries, endpoint settings, the default
StorageClass."""

from __future__ import annotations

import pytest

from infra.config.cluster import ClusterConfig
from infra.foundation.cluster import (
    access_entries,
    api_access_rules,
    endpoint_settings,
    gp3_storage_class,
)
from tests.support.specs import ACCOUNT


def test_access_entries_map_admin_and_view_roles() -> None:
    cfg = ClusterConfig.model_validate({
        "adminRoleArns": [f"arn:aws:iam::{ACCOUNT}:role/admin"],
        "readOnlyRoleArns": [f"arn:aws:iam::{ACCOUNT}:role/ro", f"arn:aws:iam::{ACCOUNT}:role/r2"],
    })
    entries = access_entries(cfg)
    assert set(entries) == {"admin-0", "view-0", "view-1"}
    assert entries["admin-0"]["access_policies"]["admin"]["policy_arn"].endswith(
        "AmazonEKSClusterAdminPolicy"
    )
    assert entries["view-1"]["access_policies"]["view"]["policy_arn"].endswith(
        "AmazonEKSViewPolicy"
    )
    assert all(
        p["access_scope"] == {"type": "cluster"}
        for e in entries.values() for p in e["access_policies"].values()
    )


def test_endpoint_private_unless_public_with_allow_list() -> None:
    private = endpoint_settings(ClusterConfig())
    assert private == {
        "endpoint_private_access": True, "endpoint_public_access": False,
        "public_access_cidrs": None,
    }
    public = endpoint_settings(ClusterConfig.model_validate(
        {"endpointAccess": "public", "publicAccessCidrs": ["203.0.113.0/24"]}
    ))
    assert public["endpoint_public_access"] and public["public_access_cidrs"] == ["203.0.113.0/24"]


def test_api_access_rules_one_per_source() -> None:
    with pytest.raises(ValueError, match=r"0\.0\.0\.0/0"):
        ClusterConfig.model_validate({"apiAccessCidrs": ["0.0.0.0/0"]})
    rules = api_access_rules(ClusterConfig.model_validate(
        {"apiAccessCidrs": ["10.99.0.0/16"], "apiAccessSecurityGroupIds": ["sg-0123456789abcdef0"]}
    ))
    assert rules == {
        "cidr-0": {"cidr_ipv4": "10.99.0.0/16",
                   "description": "Kubernetes API from 10.99.0.0/16 (apiAccessCidrs)"},
        "sg-0": {"referenced_security_group_id": "sg-0123456789abcdef0",
                 "description": "Kubernetes API from sg-0123456789abcdef0 "
                                "(apiAccessSecurityGroupIds)"},
    }
    assert api_access_rules(ClusterConfig()) == {}


def test_default_storage_class_is_encrypted_gp3_on_ebs_csi() -> None:
    sc = gp3_storage_class()
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["provisioner"] == "ebs.csi.aws.com"
    assert sc["parameters"]["type"] == "gp3" and sc["parameters"]["encrypted"] == "true"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
