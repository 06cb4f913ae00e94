"""Run the pack's CrossGuard adapter (policy/adapter.py) the way the analyzer does, with
pulumi_policy's own argument types, over resources dumped as JSON. Runs in the pack's venv
(.venv-policy: pulumi-policy cannot share the program's venv), started by
tests/render/test_policy_adapter.py.

    .venv-policy/bin/python tests/support/crossguard_run.py resources.json  -> JSON violations

The stack comes from PULUMI_STACK and its config from PULUMI_CONFIG, as the CLI hands them to a
policy pack. Props are wrapped in pulumi_policy's unknown-checking proxy, as in Analyze.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from policy.adapter import policies


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def main(path: str) -> None:
    dumped: list[dict[str, Any]] = json.loads(Path(path).read_text())
    found: list[dict[str, str]] = []
    stack_resources: list[PolicyResource] = []
    by_urn: dict[str, PolicyResource] = {}
    for d in dumped:
        r = PolicyResource(d["type"], d["props"], d["urn"], d["name"], _opts(), None, None, [], {})
        stack_resources.append(r)
        by_urn[d["urn"]] = r
    for d, r in zip(dumped, stack_resources, strict=True):
        r.property_dependencies = {k: [by_urn[u] for u in urns if u in by_urn]
                                   for k, urns in d.get("property_deps", {}).items()}
    for policy in policies():
        def report(message: str, urn: str | None = None, name: str = policy.name) -> None:
            found.append({"policy": name, "message": message})

        if isinstance(policy, ResourceValidationPolicy):
            for d in dumped:
                args = ResourceValidationArgs(d["type"], unknown_checking_proxy(d["props"]),
                                              d["urn"], d["name"], _opts(), None)
                policy.validate(args, report)
        else:
            policy.validate(StackValidationArgs(stack_resources), report)
    print(json.dumps(found))


if __name__ == "__main__":
    main(sys.argv[1])
