"""What every policy of the pack is made of, with no Pulumi import: a policy is a plain function
of (resource, context) or (all resources, context) that returns messages saying what to change.

`policy/adapter.py` wraps these for CrossGuard (`pulumi preview --policy-pack policy`);
`policy/offline.py` runs them over the offline render (`tools/render.py`) for `make test`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Values only known after creation: the render writes "<unknown>", the adapter maps CrossGuard's
# unknown sentinels to it. Policies never judge an unknown (CrossGuard checks again at `up`).
UNKNOWN = "<unknown>"
# How the render shows a Pulumi secret. In CrossGuard, secret inputs arrive unwrapped (plain).
SECRET = "[secret]"


@dataclass(frozen=True)
class Resource:
    """One resource as the engine sees it: type token, name, inputs (camelCase)."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    # property name -> URNs of the resources it was computed from (for "which bucket is this
    # public access block for?").
    property_deps: Mapping[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """The stack being checked. `environment` is `llm-platform:environment` (None if unknown)."""

    stack: str
    environment: str | None = None
    region: str | None = None
    cost_ceiling_per_hour: float | None = None


ResourceCheck = Callable[[Resource, Context], Iterable[str]]
StackCheck = Callable[[list[Resource], Context], Iterable[tuple[str, str]]]  # (message, urn)


@dataclass(frozen=True)
class Policy:
    """One policy: a name (kebab-case, unique in the pack), what it enforces, and how strictly.
    Exactly one of `check` (per resource) and `stack_check` (whole stack) is set."""

    name: str
    description: str
    mandatory: bool
    check: ResourceCheck | None = None
    stack_check: StackCheck | None = None

    def __post_init__(self) -> None:
        if (self.check is None) == (self.stack_check is None):
            raise ValueError(f"policy {self.name}: set exactly one of check and stack_check")


@dataclass(frozen=True)
class Violation:
    policy: str
    mandatory: bool
    message: str
    urn: str = ""
    resource: str = ""

    def __str__(self) -> str:
        level = "mandatory" if self.mandatory else "advisory"
        return f"[{level}] {self.policy}: {self.resource}: {self.message}"


# ------------------------------------------------------------------------------ helpers
def get(obj: Any, path: str, default: Any = None) -> Any:
    """`get(props, "spec.template.spec")`; missing keys and non-mappings give `default`."""
    node = obj
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def is_known(value: Any) -> bool:
    return value != UNKNOWN


def k8s_kind(resource: Resource) -> str | None:
    """`Deployment` for `kubernetes:apps/v1:Deployment` and for a CustomResource of that kind."""
    if not resource.type.startswith("kubernetes:") or resource.type.startswith(
        "kubernetes:helm.sh"
    ):
        return None
    kind = resource.props.get("kind") if isinstance(resource.props, Mapping) else None
    return str(kind) if kind else resource.type.rpartition(":")[2]


def label(resource: Resource) -> str:
    """How a message names a resource: `Service/ray/llm-head-svc (urn name)`."""
    kind = k8s_kind(resource)
    if kind:
        meta = get(resource.props, "metadata", {}) or {}
        ns = meta.get("namespace")
        return f"{kind} {ns + '/' if ns else ''}{meta.get('name', resource.name)}"
    return f"{resource.type} {resource.name}"


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, leaf) in nested mappings and lists."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")
    else:
        yield path, value
