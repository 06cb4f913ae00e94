"""Per-key limits: the model, the YAML file format, and a store that re-reads a rotated file.

The file maps key *names* (as in `NAME:KEY` entries of the keys Secret) to limits:

    team-a: {rpm: 600, tpm: 200000, maxConcurrent: 16, dailyTokens: 5000000}
    team-b: {monthlyTokens: 100000000, maxN: 4}

Every field is optional; a key without an entry, or an entry without a field, is unlimited there.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pydantic
import yaml
from pydantic import Field

from serve_app.config import StrictModel
from serve_app.yaml_keys import boolean_key_problems

logger = logging.getLogger("ray.serve")

KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"


class TenantLimits(StrictModel):

    rpm: int | None = Field(
        None, ge=0, le=10_000_000, description="Requests per minute (sliding 60 s window)."
    )
    tpm: int | None = Field(
        None, ge=0, le=10**12,
        description="Prompt + completion tokens per minute (sliding 60 s window), reserved"
        " before the request runs and settled to real usage after.",
    )
    max_concurrent: int | None = Field(
        None, ge=0, le=1_000_000, description="Requests of this key in flight at once."
    )
    daily_tokens: int | None = Field(
        None, ge=0, le=10**15, description="Token budget per UTC calendar day."
    )
    monthly_tokens: int | None = Field(
        None, ge=0, le=10**15, description="Token budget per UTC calendar month."
    )
    max_n: int | None = Field(
        None, ge=1, le=1024, description="Most choices (`n`) per request (default: tenants"
        " defaultMaxN)."
    )

    @property
    def counted(self) -> bool:
        """True when Redis has to count anything for this key (maxN alone is local)."""
        return any(
            v is not None
            for v in (self.rpm, self.tpm, self.max_concurrent, self.daily_tokens,
                      self.monthly_tokens)
        )


LimitsFile = pydantic.RootModel[dict[str, TenantLimits]]


class LimitsError(ValueError):
    """Malformed limits; the message names every bad entry by path (`team-a.rpm: ...`)."""


def parse_limits(
    data: object, *, known_keys: Iterable[str] | None = None, where: str = ""
) -> dict[str, TenantLimits]:
    """Validate a mapping key name -> limits. `known_keys`: the configured key names; a limit on
    any other name is an error (a typo would silently leave the real key unlimited)."""
    prefix = f"{where}." if where else ""
    if data is None:
        return {}
    try:
        limits = LimitsFile.model_validate(data).root
    except pydantic.ValidationError as exc:
        problems = [
            f"{prefix}{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
        raise LimitsError("; ".join(problems)) from None
    problems = []
    for name in limits:
        if not re.fullmatch(KEY_NAME_PATTERN, name):
            problems.append(f"{prefix}{name}: not a valid key name")
    if known_keys is not None:
        known = set(known_keys)
        problems += [
            f"{prefix}{name}: no API key of that name (known: {', '.join(sorted(known)) or 'none'})"
            for name in limits
            if name not in known
        ]
    if problems:
        raise LimitsError("; ".join(problems))
    return limits


def parse_limits_yaml(
    text: str, *, known_keys: Iterable[str] | None = None, where: str = ""
) -> dict[str, TenantLimits]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LimitsError(f"{where or 'limits'}: not valid YAML: {exc}") from None
    problems = boolean_key_problems(data, where)
    if problems:  # `on: {rpm: 5}` would otherwise be refused as "True: not a valid string"
        raise LimitsError("; ".join(problems))
    return parse_limits(data, known_keys=known_keys, where=where)


class LimitsStore:
    """The current limits, re-read from `path` when its content changes (at most once per
    `interval_s`, on a request). A missing or malformed file keeps the limits last loaded and
    logs the problem once: a bad edit never lifts limits. The same mechanism as the API keys
    (serve_app.auth.KeyStore): a mounted ConfigMap is swapped atomically by kubelet."""

    def __init__(
        self,
        path: str | None,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path, self._interval, self._clock = path, interval_s, clock
        self._limits: Mapping[str, TenantLimits] = {}
        self._hash: bytes | None = None
        self._next_check = float("-inf")
        self._last_error = ""
        self.refresh()

    @property
    def limits(self) -> Mapping[str, TenantLimits]:
        if self._path and self._clock() >= self._next_check:
            self.refresh()
        return self._limits

    def refresh(self) -> bool:
        if not self._path:
            return False
        self._next_check = self._clock() + self._interval
        try:
            content = Path(self._path).read_bytes()
            digest = hashlib.sha256(content).digest()
            if digest == self._hash:
                return False
            limits = parse_limits_yaml(content.decode(), where=self._path)
        except (OSError, UnicodeDecodeError, LimitsError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if error != self._last_error:
                logger.error("tenant limits %s not (re)loaded, keeping the limits in use: %s",
                             self._path, error)
                self._last_error = error
            return False
        self._limits, self._hash, self._last_error = limits, digest, ""
        logger.info("tenant limits %s loaded: %d key(s)", self._path, len(limits))
        return True
