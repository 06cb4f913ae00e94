"""Unit tests of infra/foundation/network.py: the subnet plan and the flow-log policy (pure
builders)."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from infra.foundation.network import flow_log_policy, subnet_plan
from tests.support.specs import ACCOUNT, CLUSTER, parliament_problems


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "10.20.0.0/18", "172.16.0.0/20"])
@pytest.mark.parametrize("azs", [2, 3, 6])
def test_subnets_are_disjoint_and_inside_the_vpc(cidr: str, azs: int) -> None:
    vpc = IPv4Network(cidr)
    plan = subnet_plan(vpc, azs, IPv4Network("100.64.0.0/16"))
    assert len(plan.private) == len(plan.public) == len(plan.pods) == azs
    subnets = plan.private + plan.public
    assert all(s.subnet_of(vpc) for s in subnets)
    assert all(
        not a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1:]
    )
    assert all(s.subnet_of(IPv4Network("100.64.0.0/16")) for s in plan.pods)
    # Private subnets hold the pods (VPC CNI): they get the big ranges.
    assert plan.private[0].num_addresses > plan.public[0].num_addresses


def test_subnet_plan_rejects_more_than_six_zones() -> None:
    with pytest.raises(ValueError):
        subnet_plan(IPv4Network("10.0.0.0/16"), 7)


def test_flow_log_policy_passes_parliament() -> None:
    group = f"arn:aws:logs:us-west-2:{ACCOUNT}:log-group:/aws/vpc/{CLUSTER}/flow-logs"
    assert parliament_problems(flow_log_policy(group), {}) == []
