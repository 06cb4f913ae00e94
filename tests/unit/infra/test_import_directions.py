"""Imports run one way between the rooms of infra/ (tests/support/import_rules.py has the
table; docs/architecture.md draws it), and serve_app/ imports nothing of the platform."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.import_rules import violations

ROOT = Path(__file__).resolve().parents[3]


def test_the_repository_keeps_the_directions() -> None:
    found = violations(ROOT)
    assert found == [], "wrong-way imports:\n" + "\n".join(found)


@pytest.fixture
def copy_of_repo(tmp_path: Path) -> Path:
    for top in ("infra", "serve_app"):
        shutil.copytree(ROOT / top, tmp_path / top,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@pytest.mark.parametrize(("path", "line", "expected"), [
    # foundation reaching up into serving
    ("infra/foundation/network.py", "from infra.serving.rayservice import RayPodExtras",
     "foundation imports infra.serving.rayservice.RayPodExtras (serving)"),
    # the old cycle: the capacity check importing the config back, even for types only
    ("infra/capacity/fit.py",
     "if TYPE_CHECKING:\n    from infra.config.stack import StackConfig",
     "capacity imports infra.config.stack.StackConfig (config)"),
    # a shared module importing a room, inside a function
    ("infra/labels.py", "def f():\n    from infra.platform import gpu",
     "shared imports infra.platform.gpu (platform)"),
    # the config importing a component
    ("infra/config/cluster.py", "from infra import context",
     "config imports infra.context (shared)"),
    # relative import from platform to serving
    ("infra/platform/kuberay.py", "from ..serving import exposure",
     "platform imports infra.serving.exposure (serving)"),
    ("serve_app/app.py", "import infra.versions", "serve_app imports infra.versions"),
    # local mode too: it starts tools/ as child processes, it does not import them
    ("serve_app/local.py", "from tools.process import free_port",
     "serve_app imports tools.process.free_port"),
    ("infra/serving/exposure.py", "from tools.render import render_stack",
     "infra imports tools.render.render_stack"),
])
def test_a_planted_wrong_way_import_is_reported(
    copy_of_repo: Path, path: str, line: str, expected: str
) -> None:
    target = copy_of_repo / path
    target.write_text(target.read_text() + "\n" + line + "\n")
    found = violations(copy_of_repo)
    assert len(found) == 1 and found[0].startswith(path + ":"), found
    assert expected in found[0], found


def test_a_module_outside_every_room_is_reported(copy_of_repo: Path) -> None:
    (copy_of_repo / "infra" / "stray.py").write_text('"""nowhere"""\n')
    assert violations(copy_of_repo) == [
        "infra/stray.py:1: in no room of infra/ (move it into capacity, config, foundation, "
        "platform, serving, or name it shared)"
    ]
