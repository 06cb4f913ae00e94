"""tools.verify's cluster checks on canned `kubectl get -o json` answers (the shapes KubeRay
1.7.0 and Karpenter write into status), and its refusals."""

from __future__ import annotations

from typing import Any

from tools import verify

CLUSTER = "llm-platform-abcde"


class CannedKube(verify.Kube):
    """Answers `get` from a dict keyed by the first two arguments (kind, name or flag)."""

    def __init__(self, objects: dict[tuple[str, ...], dict[str, Any]]) -> None:
        super().__init__("kubectl-not-called")
        self.objects = objects
        self.calls: list[tuple[str, ...]] = []

    def get(self, *args: str) -> dict[str, Any]:
        self.calls.append(args)
        return self.objects[args[:2] if args[0] != "nodepools" else args[:1]]

    def run(self, *args: str) -> str:
        raise AssertionError(f"must not run kubectl {args}")


def rayservice(ready: str) -> dict[str, Any]:
    return {"status": {"conditions": [{"type": "Ready", "status": ready, "reason": "R"}],
                       "activeServiceStatus": {"rayClusterName": CLUSTER}}}


def head(autoscaler_state: dict[str, Any] | None) -> dict[str, Any]:
    statuses = [{"name": "ray-head", "state": {"running": {}}}]
    if autoscaler_state is not None:
        statuses.append({"name": "autoscaler", "state": autoscaler_state, "restartCount": 0})
    return {"items": [{"metadata": {"name": "head-0"}, "status": {"containerStatuses": statuses}}]}


def kube(ready: str = "True", autoscaler: dict[str, Any] | None = None) -> CannedKube:
    return CannedKube({
        ("rayservice", "llm-platform"): rayservice(ready),
        ("pods", "-n"): head(autoscaler if autoscaler is not None else {"running": {}}),
    })


def test_a_ready_rayservice_and_a_running_autoscaler_pass() -> None:
    k = kube()
    assert verify.check_rayservice(k).status == "PASS"
    assert verify.check_autoscaler(k).status == "PASS"


def test_a_dead_autoscaler_fails_and_names_the_token() -> None:
    r = verify.check_autoscaler(kube(autoscaler={"terminated": {"exitCode": 1}}))
    assert r.status == "FAIL" and "serviceaccount/token" in r.fix


def test_an_unready_rayservice_fails_with_the_terminal_timeout_hint() -> None:
    r = verify.check_rayservice(kube(ready="False"))
    assert r.status == "FAIL" and "InitializingTimeout" in r.fix


def test_a_worker_group_on_a_pool_that_is_not_ready_fails() -> None:
    group = {"groupName": "g6e", "maxReplicas": 2,
             "template": {"spec": {"nodeSelector": {"llm-platform.io/gpu-pool": "g6e"}}}}
    k = CannedKube({
        ("rayservice", "llm-platform"): rayservice("True"),
        ("raycluster", CLUSTER): {"spec": {"workerGroupSpecs": [group]}},
        ("nodepools",): {"items": [{"metadata": {"name": "g6e"}, "status": {"conditions": [
            {"type": "Ready", "status": "False"}]}}]},
        ("pods", "-n"): {"items": []},
    })
    (r,) = verify.check_worker_groups(k)
    assert r.status == "FAIL" and "nodepool g6e" in r.fix


def test_disruptive_on_prod_is_refused_without_the_confirmation_flag(capsys) -> None:
    args = verify.parser().parse_args(["--stack", "prod", "--checks", "alb", "--disruptive"])
    results = verify.run(args, kube())
    (refused,) = [r for r in results if r.name == "head restart"]
    assert refused.status == "FAIL" and "--confirm-prod-head-restart" in refused.fix


def test_the_alb_check_says_what_it_needs_when_no_url_is_given() -> None:
    args = verify.parser().parse_args(["--stack", "dev", "--checks", "alb"])
    (r,) = verify.run(args, kube())
    assert r.status == "SKIP" and "--alb-url" in r.detail
