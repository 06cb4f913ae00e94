"""checkov over every stack's rendered Kubernetes manifests: no finding beyond the checked-in
skip list (policy/checkov-skips.yaml), each skip with a reason; and checkov is really run."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.checkov_scan import CHECKOV, scan, skips
from tools.render import STACKS, Rendered, write

BROKEN = """apiVersion: apps/v1
kind: Deployment
metadata: {name: leaky, namespace: ray}
spec:
  template:
    spec:
      containers:
      - {name: app, image: "nginx:latest"}
"""


@pytest.fixture(autouse=True)
def _checkov_installed() -> None:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make checkov-venv` (make test does)")


def test_no_checkov_finding_beyond_the_skip_list(
    rendered: Callable[[str], Rendered], tmp_path: Path
) -> None:
    dirs = [write(rendered(s), tmp_path) / "kubernetes" for s in STACKS]
    assert all(any(d.glob("*.yaml")) for d in dirs)
    found, _ = scan(dirs)
    assert found == [], "\n".join(map(str, found))


def test_checkov_reports_a_bad_manifest_and_honours_skips(tmp_path: Path) -> None:
    d = tmp_path / "bad" / "kubernetes"
    d.mkdir(parents=True)
    (d / "Deployment-ray-leaky.yaml").write_text(BROKEN)
    found, count = scan([d], skip={})
    checks = {f.check for f in found}
    assert count >= 1
    assert {"CKV_K8S_14", "CKV_K8S_10", "CKV_K8S_12"} <= checks  # latest tag, no CPU/memory
    assert all(f.file == "build/bad/kubernetes/Deployment-ray-leaky.yaml" for f in found)
    found, _ = scan([d], skip={"CKV_K8S_14": "test"})
    assert "CKV_K8S_14" not in {f.check for f in found}


def test_every_skip_names_a_kubernetes_check_and_gives_a_one_line_reason() -> None:
    for check, reason in skips().items():
        assert re.fullmatch(r"CKV2?_K8S_[0-9]+", check), check
        assert reason.strip() and "\n" not in reason.strip(), check
