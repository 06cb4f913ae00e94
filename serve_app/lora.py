"""Which LoRA adapters exist: the folders under each model's `lora.source` in the model store.

The gateway asks before routing `<model>:<adapter>`, so an unknown adapter is a 404 as OpenAI
answers for an unknown model (Ray Serve LLM would try to download it in the replica and fail
later), and /v1/models lists the adapters that exist. The listing is Ray Serve LLM's own
(`get_lora_model_ids`, an S3 ListObjectsV2 with delimiter), run in a thread and cached briefly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from serve_app.config import ServingConfig

Lister = Callable[[str, str], list[str]]
CACHE_TTL_S = 30.0  # a newly uploaded adapter is callable within this


def split_ref(name: str) -> tuple[str, str | None]:
    """`<model>:<adapter>` -> (model, adapter); `<model>` -> (model, None)."""
    base, sep, adapter = name.partition(":")
    return base, (adapter if sep else None)


class AdapterCatalog:
    def __init__(self, paths: dict[str, str], lister: Lister, ttl_s: float = CACHE_TTL_S):
        self._paths = paths  # base model id -> lora.source
        self._lister = lister
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    @classmethod
    def from_config(cls, cfg: ServingConfig, lister: Lister) -> AdapterCatalog:
        return cls({m.id: m.lora.source for m in cfg.models if m.lora}, lister)

    @property
    def paths(self) -> dict[str, str]:
        return dict(self._paths)

    def may_have(self, name: str) -> bool:
        """Whether `name` has the form of an adapter of a model with `lora` (not yet whether
        it exists)."""
        base, adapter = split_ref(name)
        return bool(adapter) and base in self._paths

    async def adapters(self, base: str) -> frozenset[str]:
        """`<base>:<adapter>` of every adapter folder under the base model's source."""
        if base not in self._paths:
            return frozenset()
        hit = self._cache.get(base)
        if hit and time.monotonic() - hit[0] < self._ttl_s:
            return hit[1]
        names = frozenset(await asyncio.to_thread(self._lister, self._paths[base], base))
        self._cache[base] = (time.monotonic(), names)
        return names

    async def exists(self, name: str) -> bool:
        return self.may_have(name) and name in await self.adapters(split_ref(name)[0])
