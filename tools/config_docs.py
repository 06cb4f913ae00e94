"""Generate the stack config reference (docs/config.md) from the pydantic model.

    python -m tools.config_docs > docs/config.md      (make config-docs)

A test regenerates it and fails when the committed file is stale.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from infra.config import PROJECT, StackConfig
from infra.config.loader import secret_paths
from infra.config.profiles import PROFILES

ENVS = ("dev", "staging", "prod")


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in args)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def constraints(field: FieldInfo) -> str:
    parts = []
    for meta in field.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"),
                           ("min_length", "min length "), ("max_length", "max length ")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sign}{value}")
        if getattr(meta, "pattern", None):
            parts.append(f"pattern `{meta.pattern}`")
    return ", ".join(parts)


def default_of(field: FieldInfo) -> Any:
    if field.default is not PydanticUndefined:
        return field.default
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        return value.model_dump(by_alias=True, mode="json") if isinstance(value, BaseModel) \
            else value
    return PydanticUndefined


def show(value: Any) -> str:
    if value is PydanticUndefined:
        return "**required**"
    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True, mode="json")
    text = json.dumps(value, default=str)
    return f"`{text}`" if len(text) <= 60 else f"<details><summary>…</summary>`{text}`</details>"


def profile_value(env: str, path: list[str]) -> Any:
    node: Any = PROFILES[env]
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return PydanticUndefined
        node = node[part]
    return node


def inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = inner_model(arg)
        if found is not None:
            return found
    return None


def rows(model: type[BaseModel], path: list[str], secrets: set[str]) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        here = [*path, alias]
        key = ".".join(here)
        nested = inner_model(field.annotation)
        is_list = typing.get_origin(field.annotation) is list or "list[" in type_name(
            field.annotation)
        base = default_of(field)
        defaults = []
        for env in ENVS:
            value = profile_value(env, here)
            defaults.append(show(base if value is PydanticUndefined else value))
        if nested is not None and not is_list:
            default_cells = "see below | |"  # an object: its keys have their own rows
        elif len(set(defaults)) > 1:
            default_cells = " | ".join(defaults)
        else:
            default_cells = f"{defaults[0]} (all) | |"
        flag = " 🔒 secret" if key in secrets else ""
        doc = (field.description or "") + flag
        kind = type_name(field.annotation) if nested is None or is_list else "object"
        out.append(f"| `{key}` | {kind} | {constraints(field)} | {default_cells} | {doc} |")
        if nested is not None:
            child = [*here[:-1], f"{alias}[]"] if is_list else here
            out += rows(nested, child, secrets)
    return out


def main() -> None:
    secrets = set(secret_paths())
    print(f"# Stack config reference (`{PROJECT}:*`)\n")
    print("Generated from `infra/config/` by `make config-docs`; do not edit by hand.")
    print("Set keys in `Pulumi.<stack>.yaml` under `config:` as `llm-platform:<key>`. Unknown")
    print("keys are errors. Defaults differ per environment where three values are shown")
    print("(dev | staging | prod). 🔒 keys must be set with `pulumi config set --secret`.\n")
    print("| key | type | constraints | dev | staging | prod | description |")
    print("|---|---|---|---|---|---|---|")
    for line in rows(StackConfig, [], secrets):
        print(line)


if __name__ == "__main__":
    main()
