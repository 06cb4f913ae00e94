"""Alias resolution: weighted, stable per caller. Pure functions (stdlib only)."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from serve_app.config import ServingConfig


@dataclass(frozen=True)
class WeightedAlias:
    name: str
    models: tuple[str, ...]
    cumulative: tuple[float, ...]  # normalised cumulative weights, last == 1.0

    @classmethod
    def build(cls, name: str, targets: Sequence[tuple[str, float]]) -> WeightedAlias:
        total = sum(w for _, w in targets)
        acc, cumulative = 0.0, []
        for _, weight in targets:
            acc += weight / total
            cumulative.append(acc)
        cumulative[-1] = 1.0  # guard against float round-off leaving a gap at the top
        return cls(name, tuple(m for m, _ in targets), tuple(cumulative))

    def pick(self, caller: str) -> str:
        return self.models[bisect.bisect_right(self.cumulative, caller_point(self.name, caller))]


def caller_point(alias: str, caller: str) -> float:
    """Map (alias, caller) to a uniform point in [0, 1): the same caller always lands on the
    same side of a split, and different aliases split callers independently."""
    digest = hashlib.blake2b(f"{alias}\0{caller}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class AliasTable:
    def __init__(self, aliases: dict[str, WeightedAlias]) -> None:
        self._aliases = aliases

    @classmethod
    def from_config(cls, cfg: ServingConfig) -> AliasTable:
        return cls(
            {
                a.name: WeightedAlias.build(a.name, [(t.model, t.weight) for t in a.targets])
                for a in cfg.aliases
            }
        )

    def __contains__(self, name: object) -> bool:
        return name in self._aliases

    def resolve(self, name: str, caller: str, rolled_back: Collection[str] = ()) -> str:
        """The model that serves `name` for this caller (`name` itself if not an alias).

        A caller whose pick is a rolled-back canary gets the stable target (the first one);
        every other caller keeps the model it had."""
        alias = self._aliases.get(name)
        if alias is None:
            return name
        picked = alias.pick(caller)
        return alias.models[0] if picked in rolled_back else picked

    def targets(self, name: str) -> tuple[str, ...]:
        return self._aliases[name].models
