"""KeyStore: a rotated keys file is picked up without a restart, the way kubelet rotates a
mounted Secret (an atomic swap of the volume's `..data` symlink)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from serve_app.auth import KeyStore
from serve_app.config import AuthConfig


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def kubelet_volume(root: Path, content: str) -> Path:
    """A Secret volume as kubelet lays it out: keys -> ..data/keys, ..data -> ..<version>/."""
    version = root / "..v1"
    version.mkdir(parents=True)
    (version / "keys").write_text(content)
    (root / "..data").symlink_to(version.name)
    (root / "keys").symlink_to("..data/keys")
    return root / "keys"


def kubelet_swap(root: Path, content: str, tag: str) -> None:
    """kubelet's AtomicWriter: new version dir, new symlink, rename over `..data`."""
    version = root / f"..{tag}"
    version.mkdir()
    (version / "keys").write_text(content)
    (root / "..data_tmp").symlink_to(version.name)
    old = os.readlink(root / "..data")
    os.rename(root / "..data_tmp", root / "..data")
    for f in (root / old).iterdir():
        f.unlink()
    (root / old).rmdir()


def store(path: Path, clock: FakeClock, interval: float = 10.0, env: str = "") -> KeyStore:
    auth = AuthConfig(keys_file=str(path), keys_reload_interval_s=interval)
    return KeyStore(auth, {"LLM_PLATFORM_API_KEYS": env}, clock=clock)


def test_symlink_swap_is_picked_up_after_the_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    keys = store(kubelet_volume(tmp_path, "old:sk-old\nstay:sk-stay\n"), clock, env="sk-env")
    before = keys.checker
    assert before.identify("Bearer sk-old") is not None
    kubelet_swap(tmp_path, "new:sk-new\nstay:sk-stay\n", "v2")
    clock.now = 9.9  # within the interval: the file is not looked at
    assert keys.checker is before
    clock.now = 10.0
    after = keys.checker
    assert after.identify("Bearer sk-old") is None
    new = after.identify("Bearer sk-new")
    assert new is not None and new.name == "new"
    assert after.identify("Bearer sk-stay") is not None
    assert after.identify("Bearer sk-env") is not None  # env keys stay
    # A request admitted before the swap holds the checker it was admitted with.
    assert before.identify("Bearer sk-old") is not None


def test_unchanged_content_keeps_the_same_checker(tmp_path: Path) -> None:
    clock = FakeClock()
    keys = store(kubelet_volume(tmp_path, "a:sk-a\n"), clock, interval=1)
    first = keys.checker
    kubelet_swap(tmp_path, "a:sk-a\n", "v2")  # kubelet rewrites on any Secret change
    clock.now = 5
    assert keys.checker is first


def test_bad_or_missing_file_keeps_the_keys_in_use(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    keys = store(kubelet_volume(tmp_path, "a:sk-a\n"), clock, interval=1)
    kubelet_swap(tmp_path, "broken:\n", "v2")
    clock.now = 1
    with caplog.at_level(logging.ERROR, logger="ray.serve"):
        assert keys.checker.identify("Bearer sk-a") is not None
        clock.now = 2  # the same problem is logged once, not at every interval
        keys.checker  # noqa: B018
    assert len([r for r in caplog.records if "not (re)loaded" in r.message]) == 1
    (tmp_path / "..data").unlink()
    clock.now = 3
    assert keys.checker.identify("Bearer sk-a") is not None
    (tmp_path / "..data").symlink_to("..v2")
    (tmp_path / "..v2" / "keys").write_text("b:sk-b\n")
    clock.now = 4
    assert keys.checker.identify("Bearer sk-b") is not None
    assert keys.checker.identify("Bearer sk-a") is None


def test_missing_at_start_fails_closed_then_recovers(tmp_path: Path) -> None:
    clock = FakeClock()
    keys = store(tmp_path / "keys", clock, interval=1, env="sk-env")
    assert len(keys.checker.keys) == 1  # only the env key
    assert keys.checker.identify("Bearer sk-late") is None
    (tmp_path / "keys").write_text("late:sk-late\n")
    clock.now = 1
    assert keys.checker.identify("Bearer sk-late") is not None


def test_interval_bounds() -> None:
    with pytest.raises(ValueError, match="keysReloadIntervalS"):
        AuthConfig.model_validate({"keysReloadIntervalS": 0})
