"""`make verify`'s serving checks against the session's local app: the same HTTP checks it runs
through a port-forward to KubeRay's serve Service (or the ALB) on a cluster."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import KEY_ADMIN, LocalApp
from tools import verify

pytestmark = pytest.mark.e2e


def test_verify_passes_the_serving_checks_with_a_key_of_the_app(
    local_app: LocalApp, capsys: pytest.CaptureFixture[str]
) -> None:
    code = verify.main(["--stack", "local", "--checks", "serving", "--serve-url",
                        local_app.base_url, "--key", KEY_ADMIN, "--model", "tiny-chat"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASS  chat completion through the serve Service: tiny-chat: 200" in out
    assert "PASS  wrong key refused through the serve Service: 401" in out


def test_verify_fails_with_a_key_the_app_does_not_know_and_says_what_to_do(
    local_app: LocalApp, capsys: pytest.CaptureFixture[str]
) -> None:
    code = verify.main(["--stack", "local", "--checks", "serving", "--serve-url",
                        local_app.base_url, "--key", "sk-not-a-key-of-this-app-000"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  chat completion through the serve Service" in out
    assert "what to do:" in out
