"""API keys: loading from env/file and constant-time checking. Pure (stdlib only)."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from serve_app.config import AuthConfig


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes  # sha256 of the key: compare fixed-length digests, keep no plaintext


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_keys(entries: Iterable[str]) -> list[ApiKey]:
    """Entries are `KEY` or `NAME:KEY`. Unnamed keys get a name derived from their hash."""
    keys: list[ApiKey] = []
    for raw in entries:
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        name, sep, secret = entry.partition(":")
        if not sep:
            name, secret = "", entry
        secret = secret.strip()
        if not secret:
            raise ValueError(f"API key entry for {name or '?'!r} is empty")
        digest = _digest(secret)
        keys.append(ApiKey(name.strip() or f"key-{digest.hex()[:12]}", digest))
    return keys


def load_keys(cfg: AuthConfig, environ: Mapping[str, str] | None = None) -> list[ApiKey]:
    environ = os.environ if environ is None else environ
    entries = environ.get(cfg.keys_env_var, "").split(",")
    if cfg.keys_file:
        entries += Path(cfg.keys_file).read_text().splitlines()
    return parse_keys(entries)


@dataclass
class KeyChecker:
    keys: list[ApiKey]
    allowed_models: Mapping[str, Iterable[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._allowed = {k: frozenset(v) for k, v in self.allowed_models.items()}

    def identify(self, authorization: str | None) -> ApiKey | None:
        """The key named by an `Authorization: Bearer <key>` header, or None."""
        if not authorization:
            return None
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        digest = _digest(secret.strip())
        found = None
        # Compare against every key (no early exit) so timing does not reveal which matched.
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found

    def may_use(self, key: ApiKey, model_name: str) -> bool:
        allowed = self._allowed.get(key.name)
        return allowed is None or model_name in allowed
