"""Ray's private modules are imported in serve_app/ray_compat.py only (a Ray upgrade that moves
them then touches one file), and every name it re-exports exists at the pinned Ray."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

SERVE_APP = Path(__file__).resolve().parents[3] / "serve_app"


def _private(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "ray" and any(p.startswith("_") for p in parts[1:])


def _imported_modules(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
    return out


def test_private_ray_imports_only_in_ray_compat() -> None:
    offenders = {
        p.name: [m for m in _imported_modules(p) if _private(m)]
        for p in SERVE_APP.glob("*.py")
        if p.name != "ray_compat.py"
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert any(_private(m) for m in _imported_modules(SERVE_APP / "ray_compat.py"))


def test_ray_compat_names_exist_at_the_pinned_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (make venv installs requirements-dev.txt)")
    import serve_app.ray_compat as compat

    for name in compat.__all__:
        assert getattr(compat, name) is not None, name
