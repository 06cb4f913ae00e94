"""GitHub workflows: actionlint-clean, every action pinned, preview skipped for forks."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent))


def test_there_are_pr_and_deploy_workflows() -> None:
    assert {w.name for w in WORKFLOWS} >= {"pr.yml", "deploy.yml"}


def test_actionlint_finds_nothing() -> None:
    if ACTIONLINT is None:
        pytest.fail("actionlint is not installed in the venv (requirements-dev.txt)")
    result = subprocess.run(
        [ACTIONLINT, "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The linter is real: a bad expression and an unknown key are reported."""
    if ACTIONLINT is None:
        pytest.fail("actionlint is not installed in the venv (requirements-dev.txt)")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz: []\n"
        "    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = subprocess.run([ACTIONLINT, "-no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "stepz" in result.stdout and "nope" in result.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_full_version(workflow: Path) -> None:
    uses = re.findall(r"uses:\s*(\S+)", workflow.read_text())
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+", ref), f"unpinned action {ref}"


def test_preview_runs_only_with_oidc_and_comments_on_the_pr() -> None:
    doc = yaml.safe_load((ROOT / ".github/workflows/pr.yml").read_text())
    preview = doc["jobs"]["preview"]
    assert "head.repo.full_name == github.repository" in preview["if"]
    assert preview["permissions"]["id-token"] == "write"
    pulumi = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["comment-on-pr"] is True


def test_deploy_gates_staging_and_prod_behind_environments() -> None:
    doc = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())
    triggers = doc[True]  # PyYAML reads the bare key `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["workflow_dispatch"]["inputs"]["stack"]["options"] == ["staging", "prod"]
    up = doc["jobs"]["up"]
    assert "inputs.stack" in up["environment"] and "'dev'" in up["environment"]
    assert up["concurrency"]["cancel-in-progress"] is False
