"""The policy pack is wired into the PR preview, the PR render (forks too) and `pulumi up`."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def _steps(workflow: str, job: str) -> list[dict]:
    doc = yaml.safe_load((ROOT / ".github/workflows" / workflow).read_text())
    return doc["jobs"][job]["steps"]


def _pulumi(steps: list[dict]) -> dict:
    return next(s for s in steps if s.get("uses", "").startswith("pulumi/actions@"))["with"]


def _installs_pack_before_pulumi(steps: list[dict]) -> bool:
    names = [s.get("run", "") + s.get("uses", "") for s in steps]
    install = next(i for i, n in enumerate(names) if "policy/requirements.txt" in n)
    return install < next(i for i, n in enumerate(names) if n.startswith("pulumi/actions@"))


def test_pr_preview_runs_the_pack_with_the_stack_exceptions() -> None:
    steps = _steps("pr.yml", "preview")
    w = _pulumi(steps)
    assert w["command"] == "preview" and w["policyPacks"] == "policy"
    assert w["policyPackConfigs"] == "policy/exceptions/${{ matrix.stack }}.json"
    assert _installs_pack_before_pulumi(steps)


def test_deploy_runs_the_pack_before_up() -> None:
    steps = _steps("deploy.yml", "up")
    w = _pulumi(steps)
    assert w["command"] == "up" and w["policyPacks"] == "policy"
    assert w["policyPackConfigs"].startswith("policy/exceptions/")
    assert _installs_pack_before_pulumi(steps)


def test_pr_render_runs_the_pack_offline_for_forks_too() -> None:
    runs = " ".join(s.get("run", "") for s in _steps("pr.yml", "render"))
    assert "-m policy.offline --stack" in runs


def test_the_pack_project_exists() -> None:
    doc = yaml.safe_load((ROOT / "policy/PulumiPolicy.yaml").read_text())
    assert doc["runtime"]["name"] == "python" and doc["runtime"]["options"]["virtualenv"] == "venv"
    reqs = (ROOT / "policy/requirements.txt").read_text()
    assert "pulumi-policy==1.21.0" in reqs and "pulumi==3.272.0" in reqs
