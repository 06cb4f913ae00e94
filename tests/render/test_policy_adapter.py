"""The CrossGuard adapter (policy/adapter.py, the code `pulumi preview --policy-pack policy`
runs) judges a render exactly as the plain rules do: it is run with pulumi_policy's own argument
types in the pack's venv, over the prod render and over a broken copy of it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from policy.offline import from_render, run
from policy.pack import context
from tests.render.test_policy_pack import BREAKERS
from tools.render import ROOT, Rendered, stack_config

POLICY_PYTHON = ROOT / ".venv-policy" / "bin" / "python"


def _adapter(resources: list, stack: str, tmp_path: Path) -> list[tuple[str, str]]:
    if not POLICY_PYTHON.exists():
        pytest.fail("the policy pack's venv is missing: run `make policy-venv` (make test does)")
    dump = tmp_path / "resources.json"
    dump.write_text(json.dumps([
        {"type": r.type, "name": r.name, "urn": r.urn, "props": r.props,
         "property_deps": dict(r.property_deps)} for r in resources
    ]))
    values, _ = stack_config(stack)
    env = {**os.environ, "PULUMI_STACK": stack, "PULUMI_CONFIG": json.dumps(values)}
    out = subprocess.run([str(POLICY_PYTHON), str(ROOT / "tests/support/crossguard_run.py"),
                          str(dump)], capture_output=True, text=True, env=env, check=True)
    return sorted((v["policy"], v["message"]) for v in json.loads(out.stdout))


@pytest.mark.parametrize("broken", [None, "gpu-cost-ceiling", "rayservice-head-no-gpu",
                                    "s3-public-access-blocked"])
def test_adapter_agrees_with_the_rules(
    broken: str | None, rendered: Callable[[str], Rendered], tmp_path: Path
) -> None:
    resources = copy.deepcopy(from_render(rendered("prod").resources))
    if broken:
        BREAKERS[broken](resources)
    values, _ = stack_config("prod")
    expected = sorted((v.policy, v.message) for v in run(resources, context("prod", values)))
    got = _adapter(resources, "prod", tmp_path)
    assert got == expected
    if broken:
        assert broken in {p for p, _ in got}
