"""The API keys Secret: the file it holds is the one the gateway reads, mounted so that kubelet
can update it in place."""

from __future__ import annotations

from pydantic import SecretStr

from infra.serving.api_keys import (
    KEYS_FILE,
    MOUNT_DIR,
    SECRET_NAME,
    keys_file_text,
    pod_extras,
    serving_with_keys_file,
    volume,
    volume_mount,
)
from serve_app.auth import parse_keys
from serve_app.config import ServingConfig


def test_keys_file_is_what_the_gateway_parses() -> None:
    text = keys_file_text({"bob": SecretStr("sk-bob-0123456789abcdef"),
                           "alice": SecretStr("sk-alice-0123456789abcd")})
    assert text == "alice:sk-alice-0123456789abcd\nbob:sk-bob-0123456789abcdef\n"
    assert [k.name for k in parse_keys(text.splitlines())] == ["alice", "bob"]
    assert keys_file_text({}) == ""


def test_mounted_as_a_directory_so_kubelet_updates_it() -> None:
    mount = volume_mount()
    assert "subPath" not in mount and mount["readOnly"] is True  # subPath mounts never update
    assert mount["mountPath"] == MOUNT_DIR and KEYS_FILE.startswith(MOUNT_DIR + "/")
    assert volume()["secret"]["secretName"] == SECRET_NAME
    assert volume()["name"] == mount["name"]


def test_ray_pods_read_the_mounted_file() -> None:
    cfg = ServingConfig.model_validate({"models": [{"id": "m", "source": "x"}],
                                       "auth": {"allowedModels": {"alice": ["m"]}}})
    out = serving_with_keys_file(cfg)
    assert out.auth.keys_file == KEYS_FILE
    assert out.auth.allowed_models == cfg.auth.allowed_models
    assert cfg.auth.keys_file is None  # the stack's config object is not changed


def test_pod_extras_carry_only_the_constant_volume_and_mount() -> None:
    extras = pod_extras()
    assert extras.volumes == [volume()] and extras.volume_mounts == [volume_mount()]
    assert not extras.env  # never a key in the pod's environment
