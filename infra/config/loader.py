"""Reading and checking a stack's config: Pulumi's values -> profile defaults -> the
schema -> the checks that need the whole config (capacity, CPU pools, cost ceiling).
A bad stack file raises `ConfigError` naming every bad key by its full path.
"""

from __future__ import annotations

import difflib
import json
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from infra.capacity import fit as capacity
from infra.config.base import PROJECT
from infra.config.cost_ceiling import cost_problems
from infra.config.model_store import gated_source_problems
from infra.config.profiles import with_profile
from infra.config.ray_service import cpu_pool_problems
from infra.config.stack import StackConfig
from serve_app.config import StrictModel


# ---------------------------------------------------------------------------------- error report
class ConfigError(Exception):
    """A stack config with one or more bad keys; `str()` lists every one by its path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the {PROJECT} stack config:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


def _path(loc: tuple[int | str, ...]) -> str:
    out = f"{PROJECT}:"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if i else "") + part
    return out


def _model_at(loc: tuple[int | str, ...]) -> type[StrictModel] | None:
    """The model class that holds the field at `loc` (for listing allowed keys)."""
    model: Any = StackConfig
    keyed = False  # the previous part was a dict field: this part is one of its keys
    for part in loc:
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        field = _fields_by_alias(model).get(part)
        if field is None:
            return None
        keyed = typing.get_origin(field.annotation) is dict
        model = _inner_model(field.annotation)
        if model is None:
            return None
    return model


def _fields_by_alias(model: type[StrictModel]) -> dict[str, Any]:
    return {(f.alias or n): f for n, f in model.model_fields.items()}


def _inner_model(annotation: Any) -> type[StrictModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, StrictModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _describe(err: Mapping[str, Any]) -> str:
    loc = tuple(err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden" and loc:
        parent = _model_at(loc[:-1])
        allowed = sorted(_fields_by_alias(parent)) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        msg = f"unknown key{hint}; allowed: {', '.join(allowed)}"
    elif err["type"] == "missing":
        msg = "required key is missing"
    return f"{_path(loc)}: {msg}" if loc else f"{PROJECT}: {msg}"


# ----------------------------------------------------------------------------------- the loader
def secret_paths(model: type[StrictModel] = StackConfig, prefix: str = "") -> list[str]:
    """Dotted alias paths of every field that must be a Pulumi secret."""
    out: list[str] = []
    for alias, field in _fields_by_alias(model).items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("secret"):
            out.append(prefix + alias)
        inner = _inner_model(field.annotation)
        if inner is not None:
            out += secret_paths(inner, f"{prefix}{alias}.")
    return out


def parse_raw(values: Mapping[str, str]) -> dict[str, Any]:
    """Pulumi hands structured config values over as JSON text; scalars as plain text."""
    out: dict[str, Any] = {}
    for key, text in values.items():
        if not isinstance(text, str):
            out[key] = text
            continue
        try:
            out[key] = json.loads(text) if text[:1] in "[{" else text
        except json.JSONDecodeError:
            out[key] = text
    return out


def validate(
    values: Mapping[str, Any],
    secret_keys: set[str] = frozenset(),  # type: ignore[assignment]
    region: str | None = None,
) -> StackConfig:
    """Validate the `llm-platform:*` values (keys without the namespace) of one stack.

    `secret_keys` are the top-level keys that Pulumi holds as secrets. `region` (`aws:region`)
    prices the GPU pools against `costCeilingPerHour`; `load()` always passes it, callers that
    only need the model may leave it out. Raises ConfigError.
    """
    problems: list[str] = []
    raw = with_profile(values)
    for path in secret_paths():
        top = path.split(".", 1)[0]
        if _present(raw, path) and top not in secret_keys:
            problems.append(
                f"{PROJECT}:{path}: must be a Pulumi secret "
                f"(pulumi config set --secret {'--path ' if '.' in path else ''}{path} ...)"
            )
    try:
        cfg = StackConfig.model_validate(raw)
    except ValidationError as exc:
        problems += [_describe(e) for e in exc.errors()]
        raise ConfigError(problems) from None
    # Does every model fit its GPUs and pool? (needs the whole, schema-valid config)
    problems += [f"{PROJECT}:{p}" for p in capacity.problems(
        cfg.serving.models, cfg.gpu_node_pools,
        new_cluster_upgrade=cfg.ray_service.upgrade_strategy == "NewCluster",
    )]
    problems += [f"{PROJECT}:{p}" for p in cpu_pool_problems(
        cfg.ray_service, cfg.serving, cfg.karpenter.head_pool_cpu_limit
    )]
    problems += [f"{PROJECT}:{p}" for p in gated_source_problems(
        [m.source for m in cfg.serving.models], list(cfg.model_store.imports),
        cfg.hugging_face_token is not None,
    )]
    if region is not None:
        problems += cost_problems(cfg, region)
    if problems:
        raise ConfigError(problems)
    return cfg


def _present(raw: Mapping[str, Any], path: str) -> bool:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, Mapping) or node.get(part) is None:
            return False
        node = node[part]
    return True


def load() -> StackConfig:
    """Read and validate this stack's config from the Pulumi runtime (once, at start)."""
    from pulumi.runtime import config as rc

    # A real run hands config over in PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS; mocks and
    # tests set it with `set_all_config`. Both are read so that unknown keys can be rejected.
    values = {**rc.get_config_env(), **rc.CONFIG.get()}
    secret = set(rc.get_config_secret_keys_env()) | {k for k in values if rc.is_config_secret(k)}
    region = values.get("aws:region")
    if not region:
        raise ConfigError(["aws:region: required (it prices the GPU pools for costCeilingPerHour)"])
    return validate(*own_keys(values, secret), region=str(region))


def own_keys(values: Mapping[str, Any], secret: set[str]) -> tuple[dict[str, Any], set[str]]:
    """This project's keys without the namespace (`llm-platform:x` or `llm-platform:config:x`)."""
    def strip(key: str) -> str | None:
        ns, _, rest = key.partition(":")
        return rest.removeprefix("config:") if ns == PROJECT else None

    ours = {strip(k): v for k, v in values.items() if strip(k) is not None}
    return parse_raw(ours), {s for k in secret if (s := strip(k)) is not None}
