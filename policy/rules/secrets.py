"""Secrets: none in plain text in an env var, a ConfigMap or a RayService's serveConfigV2.

A secret belongs in a Kubernetes Secret (from a Pulumi secret), read through `valueFrom` /
a volume. The render shows Pulumi secrets as "[secret]"; CrossGuard hands them over unwrapped, so
names that say "secret" and values shaped like well-known tokens are checked too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from policy.core import SECRET, Context, Policy, Resource, is_known, k8s_kind, walk
from policy.pods import containers

_SECRET_NAME = re.compile(
    r"(^|_)(API_?KEYS?|KEYS?|TOKENS?|SECRETS?|PASSWORDS?|PASSWD|CREDENTIALS?)($|_)")
# Names that point at a secret rather than hold one.
_REFERENCE = re.compile(r"_(FILE|PATH|DIR|NAME|REF|ID|ARN|URL_FILE)$")
_TOKEN_SHAPES = [
    re.compile(p) for p in (
        r"\bhf_[A-Za-z0-9]{30,}",                    # Hugging Face
        r"\bAKIA[0-9A-Z]{16}\b",                     # AWS access key id
        r"\bsk-[A-Za-z0-9_-]{20,}",                  # OpenAI-style API key
        r"\bgh[pousr]_[A-Za-z0-9]{36}",              # GitHub
        r"\bxox[abpr]-[A-Za-z0-9-]{10,}",            # Slack token
        r"hooks\.slack\.com/services/",              # Slack webhook
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    )
]


def _norm(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", name.upper())


def secret_name(name: str) -> bool:
    n = _norm(name)
    return bool(_SECRET_NAME.search(n)) and not _REFERENCE.search(n)


def secret_value(value: Any) -> str | None:
    """Why a plain value is a secret, or None."""
    if value == SECRET:
        return "is a Pulumi secret written in plain text"
    if isinstance(value, str):
        for shape in _TOKEN_SHAPES:
            if shape.search(value):
                return "looks like a credential"
    return None


def _judge(name: str, value: Any) -> str | None:
    why = secret_value(value)
    if why:
        return why
    if (secret_name(name) and isinstance(value, str) and value and is_known(value)
            and not value.startswith("/")):
        return "is named like a secret and holds a literal value"
    return None


def env_values(r: Resource, ctx: Context) -> Iterable[str]:
    for where, c in containers(r):
        for e in c.get("env") or []:
            if not isinstance(e, Mapping) or "value" not in e:
                continue
            why = _judge(str(e.get("name", "")), e.get("value"))
            if why:
                yield (f"{where} env {e.get('name')!r} {why}: put it in a Kubernetes Secret and "
                       f"use valueFrom.secretKeyRef")


def configmap_data(r: Resource, ctx: Context) -> Iterable[str]:
    if k8s_kind(r) != "ConfigMap":
        return
    for section in ("data", "binaryData"):
        for key, value in (r.props.get(section) or {}).items():
            why = _judge(key, value)
            if why:
                yield (f"{section}.{key} {why}: ConfigMaps are plain text to anyone who can "
                       f"read them; use a Secret")


def serve_config(r: Resource, ctx: Context) -> Iterable[str]:
    if k8s_kind(r) != "RayService":
        return
    text = (r.props.get("spec") or {}).get("serveConfigV2")
    if not isinstance(text, str) or not is_known(text):
        return
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        yield "spec.serveConfigV2 is not YAML: cannot be checked for secrets"
        return
    for path, leaf in walk(doc):
        why = _judge(path.rsplit(".", 1)[-1].split("[")[0], leaf)
        if why:
            yield (f"serveConfigV2 {path} {why}: serveConfigV2 is plain text in the custom "
                   f"resource; pass secrets as pod env from a Secret (valueFrom)")


POLICIES = [
    Policy("no-plaintext-secret-env", "No secret in a container's env value.",
           mandatory=True, check=env_values),
    Policy("no-plaintext-secret-configmap", "No secret in a ConfigMap.",
           mandatory=True, check=configmap_data),
    Policy("no-plaintext-secret-serve-config", "No secret in a RayService's serveConfigV2.",
           mandatory=True, check=serve_config),
]
