"""The pack as a whole: names, levels, the context it reads from a stack's config."""

from __future__ import annotations

import re

from infra.capacity.cost import DEFAULT_CEILING_USD_PER_HOUR
from policy.pack import POLICIES, context

# The policies the issue requires to be mandatory (policy name -> what it enforces).
REQUIRED_MANDATORY = {
    "gpu-nodepool-limits", "ec2nodeclass-imdsv2-encrypted", "eks-endpoint-exposure",
    "s3-bucket-encrypted", "s3-public-access-blocked", "kms-key-rotation",
    "rayservice-upgrade-strategy", "rayservice-head-no-gpu", "rayservice-no-deprecated-fields",
    "image-pinned", "container-requests", "no-plaintext-secret-env",
    "no-plaintext-secret-configmap", "no-plaintext-secret-serve-config",
    "ray-ports-not-exposed", "gpu-cost-ceiling",
}


def test_names_are_unique_kebab_case_and_described() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))
    for p in POLICIES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", p.name), p.name
        assert p.description.endswith("."), p.name


def test_required_policies_are_mandatory_and_there_are_advisory_ones() -> None:
    mandatory = {p.name for p in POLICIES if p.mandatory}
    assert mandatory >= REQUIRED_MANDATORY
    assert any(not p.mandatory for p in POLICIES)


def test_context_reads_the_stack_config_and_falls_back_to_the_profile_ceiling() -> None:
    ctx = context("team-a", {"llm-platform:environment": "staging", "aws:region": "us-east-1"})
    assert (ctx.environment, ctx.region) == ("staging", "us-east-1")
    assert ctx.cost_ceiling_per_hour == DEFAULT_CEILING_USD_PER_HOUR["staging"]
    own = context("x", {"llm-platform:environment": "prod",
                        "llm-platform:costCeilingPerHour": "50"})
    assert own.cost_ceiling_per_hour == 50.0
