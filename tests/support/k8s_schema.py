"""Validate core Kubernetes objects (Service, Secret, NetworkPolicy, Ingress, ...) against the
OpenAPI schemas of one Kubernetes version, with `kubernetes-validate` in strict mode (unknown
fields are errors, as the API server's strict field validation would make them).

The render masks secrets (`[secret]`) and shows values known only after creation as `<unknown>`;
a masked value stands for whatever type the schema wants there (a whole `stringData` map that is
one secret Output, say), so where the only complaint is its type it is replaced by an empty value
of that type and the object checked again. Everything around it is still checked.
"""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate

from tools.mocks import SECRET

OPAQUE = (SECRET, "<unknown>")
_EMPTY = {"object": {}, "array": [], "integer": 0, "number": 0, "boolean": False}


def schema_version(kubernetes_version: str) -> str:
    """`1.34` (the cluster config) -> `1.34.0` (kubernetes-validate's schema set)."""
    return f"{kubernetes_version}.0" if kubernetes_version.count(".") == 1 else kubernetes_version


def _stand_in(exc: kubernetes_validate.ValidationError) -> Any:
    """An empty value of the type the schema wants where an opaque value stands, else None."""
    if exc.instance not in OPAQUE or exc.validator != "type":
        return None
    wanted = exc.validator_value if isinstance(exc.validator_value, list) else [exc.validator_value]
    return next((copy.deepcopy(_EMPTY[t]) for t in wanted if t in _EMPTY), None)


def core_object_errors(obj: dict[str, Any], kubernetes_version: str) -> list[str]:
    """Problems of one object, empty when it is valid; a kind with no schema is a problem too."""
    obj = copy.deepcopy(obj)
    for _ in range(50):  # one error at a time: replace opaque values until none is left
        try:
            kubernetes_validate.validate(obj, schema_version(kubernetes_version), strict=True)
            return []
        except kubernetes_validate.ValidationError as exc:
            stand_in = _stand_in(exc)
            path = list(exc.path)
            if stand_in is None or not path:
                return [f"{'.'.join(str(p) for p in path)}: {exc.message}"]
            parent = obj
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = stand_in
        except kubernetes_validate.SchemaNotFoundError as exc:
            return [f"no schema: {exc}"]
    return ["too many opaque values"]
