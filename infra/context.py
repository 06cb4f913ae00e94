"""The one small context every component receives: which stack this is and how to tag it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from infra.config import PROJECT, StackConfig


@dataclass(frozen=True)
class StackContext:
    """Stack name, the cluster name derived from it, and the tags for every AWS resource."""

    stack: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def cluster_name(self) -> str:
        """One name for the cluster, its subnets' discovery tag, the interruption queue and the
        IAM scope."""
        return f"{PROJECT}-{self.stack}"

    @classmethod
    def current(cls, cfg: StackConfig) -> StackContext:
        """The context of the stack Pulumi is running: its tag first, then the config's tags."""
        stack = pulumi.get_stack()
        return cls(stack=stack, tags={"llm-platform.io/stack": stack, **cfg.tags})
