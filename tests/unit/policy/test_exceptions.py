"""Per-stack exceptions: the pack config files are valid, name real policies, and each one is
explained in policy/exceptions/README.md; the offline run honours them as CrossGuard does."""

from __future__ import annotations

import json
from pathlib import Path

from policy.offline import run
from policy.pack import EXCEPTIONS, LEVELS, POLICIES, exceptions
from policy.rules import karpenter
from tests.unit.policy.builders import PROD, gpu_nodepool

NAMES = {p.name for p in POLICIES}


def test_every_stack_has_an_exceptions_file_and_each_exception_is_explained() -> None:
    readme = (EXCEPTIONS / "README.md").read_text()
    files = sorted(EXCEPTIONS.glob("*.json"))
    assert {f.stem for f in files} >= {"dev", "staging", "prod"}
    for f in files:
        json.loads(f.read_text())  # valid JSON, as the CLI requires
        for name, level in exceptions(f.stem).items():
            assert name in NAMES, f"{f.name}: unknown policy {name}"
            assert level in LEVELS, f"{f.name}: {name}: level {level}"
            assert f"| {f.stem} | {name} |" in readme, f"{f.name}: {name} has no reason line"


def test_exception_levels_are_applied(tmp_path: Path) -> None:
    (tmp_path / "team-a.json").write_text(
        json.dumps({"gpu-nodepool-limits": {"enforcementLevel": "advisory"},
                    "gpu-cost-ceiling": "disabled"}))
    levels = exceptions("team-a", tmp_path)
    pool = gpu_nodepool({"nvidia.com/gpu": 4})
    strict = run([pool], PROD, karpenter.POLICIES)
    assert [v.mandatory for v in strict if v.policy == "gpu-nodepool-limits"] == [True]
    relaxed = run([pool], PROD, karpenter.POLICIES, levels=levels)
    assert [(v.policy, v.mandatory) for v in relaxed] == [("gpu-nodepool-limits", False)]
