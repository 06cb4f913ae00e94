"""API keys: a Kubernetes Secret holding the keys file, mounted into every Ray pod.

The keys come from Pulumi secret config (`apiKeys.<name>`) and are rendered as the file that
`serve_app.auth.KeyStore` reads (`NAME:KEY` per line). The Secret's name and the mount path are
constant, so rotating a key changes the Secret's data only: no pod spec changes, no new Ray cluster,
no restart. Kubelet swaps the mounted files atomically (the volume's `..data` symlink) within its
sync delay, and the gateway re-reads the file every `serving.auth.keysReloadIntervalS`.

The volume mounts the whole Secret as a directory: a `subPath` mount would never be updated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from infra.component import register_declared_outputs
from infra.config import StackConfig
from infra.serving.rayservice import RayPodExtras
from infra.serving.tenants import limits_file_text
from serve_app.config import ServingConfig
from serve_app.tenants.policy import TenantLimits

SECRET_NAME = "llm-platform-api-keys"
FILE_NAME = "keys"
MOUNT_DIR = "/etc/llm-platform/api-keys"
KEYS_FILE = f"{MOUNT_DIR}/{FILE_NAME}"
# The per-key limits (`tenants`) ride along in the same Secret: rotated and re-read the same way.
TENANTS_FILE_NAME = "tenants.yaml"
TENANTS_FILE = f"{MOUNT_DIR}/{TENANTS_FILE_NAME}"
VOLUME_NAME = "api-keys"


def keys_file_text(keys: Mapping[str, SecretStr]) -> str:
    """The keys file: one `NAME:KEY` line per key, sorted by name (stable across runs)."""
    return "".join(f"{name}:{key.get_secret_value()}\n" for name, key in sorted(keys.items()))


def volume() -> dict[str, Any]:
    # 0444: the Ray container does not run as root and the pod sets no fsGroup.
    return {"name": VOLUME_NAME, "secret": {"secretName": SECRET_NAME, "defaultMode": 0o444}}


def volume_mount() -> dict[str, Any]:
    return {"name": VOLUME_NAME, "mountPath": MOUNT_DIR, "readOnly": True}


def serving_with_keys_file(serving: ServingConfig) -> ServingConfig:
    """The serving config the Ray pods get: keys and tenant limits read from the mounted files."""
    auth = serving.auth.model_copy(update={"keys_file": KEYS_FILE})
    return serving.model_copy(update={"auth": auth})


def with_keys_file(cfg: StackConfig) -> StackConfig:
    """The stack config the RayService is built from: its serving part reads the mounted keys
    file, and the mounted limits file once the stack has `tenants` (from then on the limits
    change with the Secret alone; the first ones also add the Redis client to the gateway's
    runtime_env, see serve_app/serve_config.py)."""
    serving = serving_with_keys_file(cfg.serving)
    if cfg.tenants:
        tenants = serving.tenants.model_copy(update={"limits_file": TENANTS_FILE})
        serving = serving.model_copy(update={"tenants": tenants})
    return cfg.model_copy(update={"serving": serving})


def pod_extras() -> RayPodExtras:
    """The keys volume and its mount, for every Ray pod. Constant: rotating keys never changes
    the pod spec (no new Ray cluster, no restart)."""
    return RayPodExtras(volumes=[volume()], volume_mounts=[volume_mount()])


class ApiKeys(pulumi.ComponentResource):
    """The keys Secret, always there (empty without keys) so that the mount never changes.
    `pod_extras()` is what the Ray pods need to read it; `after`: the namespace."""

    secret: k8s.core.v1.Secret

    def __init__(
        self,
        name: str,
        *,
        keys: Mapping[str, SecretStr],
        namespace: str,
        tenants: Mapping[str, TenantLimits] | None = None,
        after: Sequence[pulumi.Resource],
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llm-platform:k8s:ApiKeys", name, None, opts)
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={"name": SECRET_NAME, "namespace": namespace,
                      "labels": {"app.kubernetes.io/part-of": "llm-platform"}},
            type="Opaque",
            string_data={FILE_NAME: pulumi.Output.secret(keys_file_text(keys)),
                         TENANTS_FILE_NAME: limits_file_text(tenants or {})},
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=list(after),
                # Never logged or shown in a diff.
                additional_secret_outputs=["stringData", "data"],
            ),
        )
        register_declared_outputs(self)
