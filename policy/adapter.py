"""CrossGuard adapter: each plain policy of `policy/pack.py` as a pulumi_policy policy.

Only this module and `__main__.py` import pulumi_policy (it lives in the pack's own venv, see
requirements.txt). Props arrive wrapped in pulumi_policy's unknown-checking proxies; they are
turned back into plain data with unknowns as `core.UNKNOWN`, so rules never trip on a value that
is only known after `pulumi up` (CrossGuard runs them again during `up`, with the values known).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import proxy as _proxy

from policy.core import UNKNOWN, Context, Policy, Resource
from policy.pack import PACK_NAME, POLICIES, context

_UNKNOWNS = {
    _proxy.UNKNOWN_BOOLEAN_VALUE, _proxy.UNKNOWN_NUMBER_VALUE, _proxy.UNKNOWN_STRING_VALUE,
    _proxy.UNKNOWN_ARRAY_VALUE, _proxy.UNKNOWN_ASSET_VALUE, _proxy.UNKNOWN_ARCHIVE_VALUE,
    _proxy.UNKNOWN_OBJECT_VALUE,
}


def plain(value: Any) -> Any:
    """Proxied props -> plain dicts/lists; unknowns -> UNKNOWN."""
    with contextlib.suppress(KeyError, TypeError, IndexError):
        value = value["__target"]  # the proxies keep the raw value under this key
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, str) and value in _UNKNOWNS:
        return UNKNOWN
    return value


def stack_context() -> Context:
    """The stack's Context from its config: the CLI hands a policy pack the stack's config
    (PULUMI_CONFIG, as a program gets it) and its name (PULUMI_STACK)."""
    values: dict[str, Any] = {}
    raw = os.environ.get("PULUMI_CONFIG")
    if raw:
        for key, value in json.loads(raw).items():
            values[key.replace(":config:", ":", 1)] = value
    try:
        stack = pulumi.get_stack()
    except Exception:  # no engine settings, e.g. under `pulumi policy publish`
        stack = os.environ.get("PULUMI_STACK", "")
    return context(stack, values)


def _level(p: Policy) -> EnforcementLevel:
    return EnforcementLevel.MANDATORY if p.mandatory else EnforcementLevel.ADVISORY


def _resource_policy(p: Policy) -> ResourceValidationPolicy:
    assert p.check is not None
    check = p.check

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        r = Resource(args.resource_type, args.name, plain(args.props), args.urn)
        for message in check(r, stack_context()):
            report(message, None)

    return ResourceValidationPolicy(p.name, p.description, validate, _level(p))


def _stack_policy(p: Policy) -> StackValidationPolicy:
    assert p.stack_check is not None
    stack_check = p.stack_check

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources = [
            Resource(r.resource_type, r.name, plain(r.props), r.urn,
                     {k: [d.urn for d in deps] for k, deps in
                      (r.property_dependencies or {}).items()})
            for r in args.resources
        ]
        for message, urn in stack_check(resources, stack_context()):
            report(message, urn or None)

    return StackValidationPolicy(p.name, p.description, validate, _level(p))


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    return [_resource_policy(p) if p.check else _stack_policy(p) for p in POLICIES]


NAME = PACK_NAME
