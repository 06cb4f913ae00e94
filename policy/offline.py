"""Run the whole pack without the CLI: over resources built directly (unit tests) or over a
stack's offline render (`tools/render.py`), as CrossGuard would over a preview.

    python -m policy.offline --stack prod     # prints every violation; exit 1 on a mandatory one
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from policy.core import Context, Policy, Resource, Violation, label
from policy.pack import POLICIES, context, exceptions


def run(resources: list[Resource], ctx: Context, policies: Iterable[Policy] = POLICIES,
        levels: dict[str, str] | None = None) -> list[Violation]:
    """Every violation, as CrossGuard would report it; `levels` overrides enforcement per policy
    (the stack's exceptions file), as `--policy-pack-config` does."""
    out: list[Violation] = []
    for p in policies:
        level = (levels or {}).get(p.name)
        if level == "disabled":
            continue
        if level is not None:
            p = replace(p, mandatory=level == "mandatory")
        if p.check is not None:
            for r in resources:
                out += [Violation(p.name, p.mandatory, m, r.urn, label(r)) for m in p.check(r, ctx)]
        elif p.stack_check is not None:
            by_urn = {r.urn: r for r in resources}
            for msg, urn in p.stack_check(resources, ctx):
                res = by_urn.get(urn)
                out.append(Violation(p.name, p.mandatory, msg, urn, label(res) if res else "stack"))
    return out


def from_render(recorded: list[Any]) -> list[Resource]:
    """tools.mocks.Resource records -> policy Resources (components and providers included, as
    the engine registers them)."""
    return [
        Resource(type=r.type, name=r.name, props=r.inputs, urn=r.urn,
                 property_deps=dict(r.property_dependencies))
        for r in recorded
    ]


def check_stack(stack: str) -> tuple[list[Violation], Context]:
    from tools.render import render_stack, stack_config

    values, _ = stack_config(stack)
    ctx = context(stack, values)
    return run(from_render(render_stack(stack).resources), ctx,
               levels=exceptions(stack)), ctx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    args = parser.parse_args(argv)
    found, ctx = check_stack(args.stack)
    for v in found:
        print(v)
    mandatory = sum(v.mandatory for v in found)
    print(f"{args.stack}: {mandatory} mandatory, {len(found) - mandatory} advisory violation(s) "
          f"({len(POLICIES)} policies; ceiling {ctx.cost_ceiling_per_hour} USD/h in {ctx.region})")
    return 1 if mandatory else 0


if __name__ == "__main__":
    sys.exit(main())
