"""Kill an LLMServer replica under load: Serve replaces it and the model answers again.

Runs after the other tests of the session app (`e2e_order(1)`): it disturbs the app. The
measured recovery time is printed and written to build/e2e/recovery.json.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from tests.e2e.conftest import LOG_DIR

pytestmark = [pytest.mark.e2e, pytest.mark.e2e_order(1)]

TARGET = "tiny-chat"
# Process title of the model's replica, whatever LLMServer subclass serves it; Ray appends
# the method being run (e.g. `.handle_request_streaming`) while the replica is busy.
REPLICA_TITLE = re.compile(rf"ray::ServeReplica:llm-platform:\w*LLMServer:{TARGET}(\.\w+)?")
RECOVERY_TIMEOUT_S = 420


def _replica_pids(root: int) -> list[int]:
    """Replica processes of the app started by process `root` (other Ray apps may run too)."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True)
    parent, title = {}, {}
    for line in out.stdout.splitlines():
        pid, ppid, args = [*line.split(None, 2), ""][:3]
        parent[int(pid)], title[int(pid)] = int(ppid), args.strip()

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parent.get(pid, 1)
        return False

    return [p for p, t in title.items() if REPLICA_TITLE.fullmatch(t) and descends(p)]


def test_killed_replica_is_replaced_under_load(local_app, capsys):
    client = local_app.client(max_retries=0, timeout=30)
    events: list[tuple[float, float, str, bool]] = []  # (sent, done, model, ok)
    stop = threading.Event()

    def load(model: str) -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                client.completions.create(model=model, prompt="ping", max_tokens=4)
                ok = True
            except Exception:
                ok = False
                time.sleep(0.2)
            events.append((sent, time.monotonic(), model, ok))

    threads = [threading.Thread(target=load, args=(m,), daemon=True)
               for m in (TARGET, TARGET, TARGET, "tiny-chat-v2")]
    for t in threads:
        t.start()
    try:
        time.sleep(5)
        pids = _replica_pids(local_app.pid)
        assert len(pids) == 1, f"expected one {REPLICA_TITLE} process, found {pids}"
        killed_at = time.monotonic()
        os.kill(pids[0], signal.SIGKILL)

        recovered_at = None
        deadline = killed_at + RECOVERY_TIMEOUT_S
        while time.monotonic() < deadline and recovered_at is None:
            time.sleep(0.5)
            done = [e for e in list(events) if e[2] == TARGET and e[3] and e[0] > killed_at + 1]
            if done:
                recovered_at = min(e[1] for e in done)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)

    assert recovered_at is not None, f"{TARGET} did not answer within {RECOVERY_TIMEOUT_S}s"
    new_pids = _replica_pids(local_app.pid)
    assert new_pids and pids[0] not in new_pids, "the replica was not replaced"
    outage = [e for e in events if e[0] >= killed_at and e[1] <= recovered_at]
    result = {
        "recovery_s": round(recovered_at - killed_at, 1),
        "failed_requests_during_outage": sum(1 for e in outage if not e[3]),
        "other_model_ok_during_outage": sum(
            1 for e in outage if e[2] != TARGET and e[3]
        ),
    }
    (LOG_DIR / "recovery.json").write_text(json.dumps(result))
    with capsys.disabled():
        print(f"\nreplica recovery: {result}")
    # After recovery the model keeps answering.
    assert client.completions.create(model=TARGET, prompt="again", max_tokens=4).model == TARGET
