"""Validate Kubernetes custom resources against the upstream CRD schemas.

The schemas live outside the repo (`../shared/crds`, or `$LLM_PLATFORM_CRDS_DIR`; `make crds`
says where they come from). An API server prunes or rejects unknown fields, so a misspelt field
silently does nothing: here every object schema without `x-kubernetes-preserve-unknown-fields`
forbids properties it does not declare. CEL rules (`x-kubernetes-validations`) are not run.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def crds_dir() -> Path:
    return Path(os.environ.get("LLM_PLATFORM_CRDS_DIR", ROOT.parent / "shared" / "crds"))


@cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON schema, for every CRD file in the directory."""
    folder = crds_dir()
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise FileNotFoundError(f"no CRD files in {folder} (set LLM_PLATFORM_CRDS_DIR)")
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in files:
        # libyaml when present: the prometheus-operator CRDs take ~15x longer in pure Python.
        for doc in yaml.load_all(path.read_text(), Loader=_LOADER):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                api_version = f"{spec['group']}/{version['name']}"
                schema = strict(version["schema"]["openAPIV3Schema"])
                # The API server validates ObjectMeta itself; CRDs declare it as a bare object.
                schema["properties"]["metadata"] = OBJECT_META
                out[(api_version, spec["names"]["kind"])] = schema
    return out


OBJECT_META: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI v3 structural schema in which unknown fields are errors."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if "properties" in schema:
        # `properties` is a map of names to schemas: recurse into each schema, not the map.
        out["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    is_object = schema.get("type") == "object" or "properties" in schema
    if (
        is_object
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if schema.get("nullable"):
        # OpenAPI `nullable` has no JSON Schema keyword; allow null explicitly.
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def validate_custom_resource(obj: dict[str, Any]) -> list[str]:
    """Every schema violation of `obj`, as `path: message`; empty when valid."""
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    schema = schemas().get(key)
    if schema is None:
        return [f"no CRD schema for {key[0]} {key[1]} in {crds_dir()}"]
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    ]
