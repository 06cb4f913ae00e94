"""API keys: loading from env/file, constant-time checking, and reloading a rotated keys file
without a restart. Pure (stdlib only)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from serve_app.config import AuthConfig

logger = logging.getLogger("ray.serve")


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


class KeyStore:
    """The current KeyChecker, re-read from `auth.keysFile` when that file's content changes.

    Kubernetes updates a mounted Secret by swapping the volume's `..data` symlink to a new
    directory (atomic), `keysReloadIntervalS` after which the next request re-reads the file
    through the symlinks and compares a hash of its content. So a rotated key is honoured within
    kubelet's sync delay plus that interval, and no restart is needed. A request keeps the key
    it was admitted with: in-flight requests are never affected by a reload.

    A file that is missing or malformed keeps the keys last loaded (fail closed at start: only
    the env keys are valid) and is tried again at the next interval.
    """

    def __init__(
        self,
        auth: AuthConfig,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth = auth
        self._clock = clock
        environ = os.environ if environ is None else environ
        # Env keys cannot change while the process runs: parsed once.
        self._env_keys = parse_keys(environ.get(auth.keys_env_var, "").split(","))
        self._file_keys: list[ApiKey] = []
        self._file_hash: bytes | None = None
        self._next_check = float("-inf")
        self._last_error = ""
        self._checker = self._build()
        self.refresh()

    def _build(self) -> KeyChecker:
        return KeyChecker(self._env_keys + self._file_keys, self._auth.allowed_models)

    @property
    def checker(self) -> KeyChecker:
        """The checker to use for one request (re-reads the file at most once per interval)."""
        if self._auth.keys_file and self._clock() >= self._next_check:
            self.refresh()
        return self._checker

    def refresh(self) -> bool:
        """Re-read the keys file now; True when the keys changed."""
        path = self._auth.keys_file
        if not path:
            return False
        self._next_check = self._clock() + self._auth.keys_reload_interval_s
        try:
            content = Path(path).read_bytes()
            digest = hashlib.sha256(content).digest()
            if digest == self._file_hash:
                return False
            keys = parse_keys(content.decode().splitlines())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if error != self._last_error:  # once per distinct problem, not per interval
                logger.error("API keys file %s not (re)loaded, keeping the keys in use: %s",
                             path, error)
                self._last_error = error
            return False
        self._file_keys, self._file_hash, self._last_error = keys, digest, ""
        self._checker = self._build()
        logger.info("API keys file %s loaded: %d key(s)", path, len(keys))
        return True
