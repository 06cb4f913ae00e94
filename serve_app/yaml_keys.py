"""YAML 1.1's booleans as mapping keys. PyYAML (and other YAML 1.1 readers) read an unquoted
`on`, `off`, `yes`, `no`, `y`, `n` (any case), `true` or `false` as a boolean, also as a key:
`tenants: {on: {rpm: 5}}` becomes `{True: {...}}`, and once dumped to JSON the key is "true".
A name like that is never meant as a boolean, so the readers here refuse it with an error that
names the path and says to quote it, rather than letting it turn into another name."""

from __future__ import annotations

from typing import Any

QUOTE_IT = ("an unquoted on/off/yes/no/y/n/true/false is a boolean in YAML 1.1, even as a key:"
            " quote the name (e.g. 'on': ...)")


def boolean_keys(data: Any, path: str = "") -> list[str]:
    """Paths (`tenants.True`) of every mapping key that YAML read as a boolean."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, bool):
                found.append(where)
            found += boolean_keys(value, where)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += boolean_keys(value, f"{path}[{i}]")
    return found


def boolean_key_problems(data: Any, path: str = "") -> list[str]:
    """One message per boolean key, naming its path and saying to quote it."""
    return [f"{where}: {QUOTE_IT}" for where in boolean_keys(data, path)]
