"""Validate core Kubernetes objects (Service, Secret, NetworkPolicy, Ingress, ...) against the
OpenAPI schemas of one Kubernetes version, with `kubernetes-validate` in strict mode (unknown
fields are errors, as the API server's strict field validation would make them)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate


def schema_version(kubernetes_version: str) -> str:
    """`1.34` (the cluster config) -> `1.34.0` (kubernetes-validate's schema set)."""
    return f"{kubernetes_version}.0" if kubernetes_version.count(".") == 1 else kubernetes_version


def core_object_errors(obj: dict[str, Any], kubernetes_version: str) -> list[str]:
    """Problems of one object, empty when it is valid; a kind with no schema is a problem too."""
    try:
        kubernetes_validate.validate(obj, schema_version(kubernetes_version), strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        return [f"{where}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"no schema: {exc}"]
    return []
