"""No secret value appears anywhere in any stack's render.

Every config key that must be a Pulumi secret (`infra.config.secret_paths()`) gets a known value,
set as a secret the way `pulumi config set --secret` does; the stack is rendered and every file
`tools.render.write` produces, plus every recorded input, is searched for those values. A value
that leaks into a plain input (a label, an env var, serveConfigV2, a Helm value) fails the test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from infra.config import ConfigError, StackConfig, own_keys, validate
from infra.config.loader import secret_paths
from tools.render import STACKS, render_stack, stack_config, write


def _candidates(path: str) -> list[str]:
    slug = re.sub(r"[^A-Za-z0-9]", "", path)
    return [f"Planted{slug}Secret0123456789Zq", f"https://planted-{slug.lower()}.example.com/Zq0123"]


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def _field_is_map(path: str) -> bool:
    """True when the secret at `path` is a map of secrets (e.g. apiKeys.<name>)."""
    model: Any = StackConfig
    field = None
    for part in path.split("."):
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        field = fields[part]
        model = next((a for a in getattr(field.annotation, "__args__", ()) if hasattr(
            a, "model_fields")), field.annotation)
    return "dict[" in str(field.annotation)


def planted(stack: str) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """(overrides by top-level key, secret top-level keys, planted value by path)."""
    values, secrets = stack_config(stack)
    base, file_secrets = own_keys(values, set(secrets))  # the file's own (huggingFaceToken)
    overrides: dict[str, Any] = {}
    chosen: dict[str, str] = {}
    for path in secret_paths():
        top = path.split(".", 1)[0]
        for candidate in _candidates(path):
            value: Any = {"planted": candidate} if _field_is_map(path) else candidate
            trial = {top: json.loads(json.dumps(overrides.get(top, base.get(top, {}))))} \
                if "." in path else {}
            if "." in path:
                _set(trial, path, value)
            else:
                trial[top] = value
            try:
                validate({**base, **overrides, **trial}, {*file_secrets, *overrides, top})
            except ConfigError:
                continue
            overrides.update(trial)
            chosen[path] = candidate
            break
        else:
            pytest.fail(f"no planted value is valid config for {path}")
    return overrides, sorted({*overrides, *file_secrets}), chosen


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_value_appears_in_the_render(stack: str, tmp_path: Path) -> None:
    overrides, secret_keys, chosen = planted(stack)
    assert set(chosen) == set(secret_paths())
    # The planted values really are in the config the program runs with.
    values, _ = stack_config(stack)
    base, _ = own_keys(values, set())
    cfg = validate({**base, **overrides}, set(secret_keys))
    dumped = json.dumps(cfg.model_dump(mode="python"), default=lambda v: (
        v.get_secret_value() if isinstance(v, SecretStr) else str(v)))
    assert all(v in dumped for v in chosen.values())

    r = render_stack(stack, overrides=overrides, secret_keys=secret_keys)
    target = write(r, tmp_path)
    leaks = [
        f"{p.relative_to(target)} has {path}"
        for p in target.rglob("*") if p.is_file()
        for path, v in chosen.items() if v in p.read_text(errors="replace")
    ]
    leaks += [
        f"{res.type} {res.name} has {path}"
        for res in r.resources
        for path, v in chosen.items() if v in json.dumps(res.inputs, default=str)
    ]
    assert not leaks, leaks
