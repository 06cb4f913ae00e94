"""The offline render itself: every stack renders, writes build/<stack>/, and every custom
resource it declares validates against the upstream CRD schemas (unknown fields are errors)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from infra.config import ConfigError
from tests.support.crds import crds_dir, validate_custom_resource
from tools.render import ROOT, STACKS, Rendered, render_all, render_stack, stack_names, write


def test_crd_schemas_are_present() -> None:
    files = sorted(p.name for p in crds_dir().glob("*.yaml"))
    assert files, f"no CRD schemas in {crds_dir()}: run `make crds` or set LLM_PLATFORM_CRDS_DIR"


@pytest.mark.parametrize("stack", STACKS)
def test_stack_renders_and_writes_build_dir(
    stack: str, rendered: Callable[[str], Rendered], tmp_path: Path
) -> None:
    r = rendered(stack)
    assert r.resources, "the program declared nothing"
    target = write(r, tmp_path, ["m1"])
    summary = json.loads((target / "summary.json").read_text())
    assert summary["stack"] == stack and summary["resources"] == len(r.resources)
    assert summary["modelsServed"] == ["m1"]
    assert (target / "summary.md").read_text().startswith(f"# Offline render of stack `{stack}`")
    k8s_files = sorted((target / "kubernetes").glob("*.yaml"))
    assert len(k8s_files) == len(r.kubernetes_objects())
    for path in k8s_files:
        assert "kind" in yaml.safe_load(path.read_text())
    aws_files = list((target / "aws").rglob("*.json"))
    assert aws_files and all(json.loads(p.read_text())["inputs"] is not None for p in aws_files)


@pytest.mark.parametrize("stack", STACKS)
def test_every_custom_resource_matches_its_crd(
    stack: str, rendered: Callable[[str], Rendered]
) -> None:
    crs = rendered(stack).custom_resources()
    assert crs, "no custom resources rendered"
    problems = {
        f"{o['kind']}/{o['metadata']['name']}": errs
        for o in crs
        if (errs := validate_custom_resource(o))
    }
    assert not problems, json.dumps(problems, indent=2)


def test_crd_validation_counts_unknown_fields_as_errors(
    rendered: Callable[[str], Rendered],
) -> None:
    """A misspelt field in a real rendered object is caught, not pruned silently."""
    obj = next(o for o in rendered("prod").custom_resources() if o["kind"] == "NodePool")
    broken = json.loads(json.dumps(obj))
    broken["spec"]["disruption"]["consolidationPolicyy"] = "WhenEmpty"
    errors = validate_custom_resource(broken)
    assert any("consolidationPolicyy" in e and e.startswith("spec.disruption") for e in errors)


def test_secrets_never_appear_in_the_render(tmp_path: Path) -> None:
    r = render_stack(
        "dev", overrides={"grafanaAdminPassword": "hunter2-secret"},
        secret_keys=["grafanaAdminPassword"],
    )
    target = write(r, tmp_path)
    assert not any("hunter2-secret" in p.read_text() for p in target.rglob("*") if p.is_file())


def test_bad_config_stops_before_any_resource_is_declared() -> None:
    with pytest.raises(ConfigError) as exc:
        render_stack("prod", overrides={"network": {"azCount": 9}, "typo": 1})
    text = str(exc.value)
    assert "llm-platform:network.azCount" in text and "llm-platform:typo: unknown key" in text


def test_render_cli_reports_a_bad_stack_clearly(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tools.render", "--stack", "nosuch", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "error: no stack file Pulumi.nosuch.yaml"
    assert "Traceback" not in out.stderr


def test_render_is_deterministic(rendered: Callable[[str], Rendered], tmp_path: Path) -> None:
    """Two renders write the same files, so a PR's render diff shows only real changes."""
    a = write(rendered("dev"), tmp_path / "a")
    b = write(render_stack("dev"), tmp_path / "b")
    files_a = {p.relative_to(a): p.read_text() for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b): p.read_text() for p in b.rglob("*") if p.is_file()}
    assert files_a == files_b


def test_stack_names_are_every_stack_file_environments_first(tmp_path: Path) -> None:
    for name in ("prod", "team-a", "dev", "staging", "alpha"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    (tmp_path / "Pulumi.yaml").write_text("name: llm-platform\n")  # the project, not a stack
    assert stack_names(tmp_path) == ["dev", "staging", "prod", "alpha", "team-a"]


def test_render_all_renders_each_stack_and_names_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render_all(tmp_path, ["nosuch", "dev"]) == 2
    out, err = capsys.readouterr()
    assert err.strip() == "error: nosuch: no stack file Pulumi.nosuch.yaml"
    assert json.loads((tmp_path / "dev" / "summary.json").read_text())["stack"] == "dev"
    lines = out.splitlines()
    assert lines[0].startswith(f"wrote {tmp_path / 'dev'} (")
    assert lines[-1].startswith("1 of 2 stacks rendered in ") and lines[-1].endswith(
        "; failed: nosuch")
