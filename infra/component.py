"""What every component shares: its outputs are declared once, at the top of its class."""

from __future__ import annotations

import inspect

import pulumi


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def declared_outputs(cls: type) -> list[str]:
    """The output names a component class declares (its own annotations, in order)."""
    return list(inspect.get_annotations(cls))


def register_declared_outputs(component: pulumi.ComponentResource) -> None:
    """Register every declared output under its camelCase name. An output declared but never
    assigned raises AttributeError here, so a component cannot forget one."""
    component.register_outputs(
        {_camel(n): getattr(component, n) for n in declared_outputs(type(component))}
    )
