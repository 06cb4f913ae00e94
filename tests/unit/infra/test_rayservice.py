"""The RayService builder: valid against KubeRay's CRD and Ray's Serve schema, shaped as the
design says (CPU-only head, ingress on CPU, one GPU group per used pool), and routine changes
leave `rayClusterConfig` byte-identical while cluster changes are reported as a new cluster."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from infra import labels, versions
from infra.config import StackConfig, own_keys, validate
from infra.serving.rayservice import (
    INGRESS_GROUP,
    INGRESS_RESOURCE,
    RayPodExtras,
    in_place,
    initializing_timeout_seconds,
    ray_cluster_config,
    rayservice,
)
from tests.support.crds import validate_custom_resource
from tools.render import STACKS, stack_config

Edit = Callable[[dict[str, Any]], None]


def cfg_of(stack: str, edit: Edit | None = None) -> StackConfig:
    """The stack file's config, optionally edited (the stack-file values, before profiles)."""
    values, secrets = own_keys(*_raw(stack))
    values = copy.deepcopy(values)
    if edit:
        edit(values)
    return validate(values, secrets)


def _raw(stack: str) -> tuple[dict[str, str], set[str]]:
    values, secrets = stack_config(stack)
    return values, set(secrets)


def groups(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["groupName"]: g for g in obj["spec"]["rayClusterConfig"]["workerGroupSpecs"]}


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = obj["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]] + [
        g["template"] for g in cluster["workerGroupSpecs"]
    ]
    return [c for p in pods for c in p["spec"]["containers"]]


def declared(group: dict[str, Any]) -> dict[str, float]:
    """A group's custom Ray resources, parsed by Ray's own KubeRay autoscaler code (what decides
    which group to start for a resource demand)."""
    from ray.autoscaler._private.kuberay.autoscaling_config import _get_custom_resources

    return _get_custom_resources(
        group.get("resources", {}), group["rayStartParams"], group["groupName"]
    )


# ------------------------------------------------------------------------- schema validity
@pytest.mark.parametrize("stack", STACKS)
def test_rayservice_validates_against_the_kuberay_crd(stack: str) -> None:
    assert validate_custom_resource(rayservice(cfg_of(stack))) == []


@pytest.mark.parametrize("stack", STACKS)
def test_serve_config_v2_passes_rays_own_schema(stack: str) -> None:
    from ray.serve.schema import ServeDeploySchema

    doc = yaml.safe_load(rayservice(cfg_of(stack))["spec"]["serveConfigV2"])
    schema = ServeDeploySchema.model_validate(doc)
    assert [a.name for a in schema.applications] == ["llm-platform"]
    assert schema.proxy_location == "EveryNode"


def test_extras_are_valid_against_the_crd_too() -> None:
    extras = RayPodExtras(
        service_account_name="ray-serving",
        env=[{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}],
        volumes=[{"name": "keys", "secret": {"secretName": "api-keys"}}],
        volume_mounts=[{"name": "keys", "mountPath": "/etc/llm-platform/keys", "readOnly": True}],
        gcs_fault_tolerance={
            "redisAddress": "redis.example:6379",
            "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "redis", "key": "pw"}}},
        },
        working_dir="s3://bucket/code/serve_app.zip",
        pod_labels={"llm-platform.io/role": "serving"},
    )
    obj = rayservice(cfg_of("prod"), extras)
    assert validate_custom_resource(obj) == []
    cluster = obj["spec"]["rayClusterConfig"]
    assert cluster["gcsFaultToleranceOptions"] == extras.gcs_fault_tolerance
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in groups(obj).values()]
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == "ray-serving"
        assert pod["spec"]["volumes"] == extras.volumes
        assert pod["metadata"]["labels"]["llm-platform.io/role"] == "serving"
        (c,) = pod["spec"]["containers"]
        assert c["volumeMounts"] == extras.volume_mounts
        assert extras.env[0] in c["env"]
    for app in yaml.safe_load(obj["spec"]["serveConfigV2"])["applications"]:
        assert app["runtime_env"]["working_dir"] == extras.working_dir


def test_extras_merge_and_refuse_two_owners_of_one_setting() -> None:
    a = RayPodExtras(service_account_name="sa", env=[{"name": "A", "value": "1"}])
    b = RayPodExtras(env=[{"name": "B", "value": "2"}], pod_labels={"x": "y"})
    merged = RayPodExtras.merge(a, b)
    assert merged.service_account_name == "sa"
    assert [e["name"] for e in merged.env] == ["A", "B"] and merged.pod_labels == {"x": "y"}
    with pytest.raises(ValueError, match="service_account_name"):
        RayPodExtras.merge(a, RayPodExtras(service_account_name="other"))


# ----------------------------------------------------------------------------------- shape
@pytest.mark.parametrize("stack", STACKS)
def test_head_is_cpu_only_sized_and_out_of_the_serve_service(stack: str) -> None:
    obj = rayservice(cfg_of(stack))
    head = obj["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    pod = head["template"]["spec"]
    assert pod["nodeSelector"] == labels.ray_head_scheduling()["nodeSelector"]
    (c,) = pod["containers"]
    assert c["resources"]["requests"] == c["resources"]["limits"]
    assert "nvidia.com/gpu" not in c["resources"]["limits"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]}["serve"] == 8000
    assert obj["spec"]["excludeHeadPodFromServeSvc"] is True


def test_one_gpu_group_per_used_pool_sized_from_the_pool_not_the_models() -> None:
    cfg = cfg_of("prod")
    g = groups(rayservice(cfg))
    assert list(g) == [INGRESS_GROUP, "g6e", "p4d"]  # g5 has no model: no group
    limits = {p.name: p.limits.gpus for p in cfg.gpu_node_pools}
    for pool, gpus, accel in (("g6e", 1, "L40S"), ("p4d", 8, "A100")):
        group = g[pool]
        res = group["template"]["spec"]["containers"][0]["resources"]
        assert res["limits"]["nvidia.com/gpu"] == str(gpus) and res["requests"] == res["limits"]
        assert group["minReplicas"] == 0
        assert group["maxReplicas"] == limits[pool] // gpus
        assert declared(group) == {f"accelerator_type:{accel}": 1}
        spec = group["template"]["spec"]
        sched = labels.gpu_worker_scheduling(pool)
        assert spec["nodeSelector"] == sched["nodeSelector"]
        assert spec["tolerations"] == sched["tolerations"]


def test_gpu_pod_fits_the_pools_smallest_instance_that_holds_it() -> None:
    g = groups(rayservice(cfg_of("prod")))
    g6e = g["g6e"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert (g6e["cpu"], g6e["memory"]) == ("3", "27Gi")  # g6e.xlarge: 4 vCPU, 32 GiB
    p4d = g["p4d"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert (p4d["cpu"], p4d["memory"]) == ("95", "1035Gi")  # p4d.24xlarge: 96 vCPU, 1152 GiB


@pytest.mark.parametrize("stack", STACKS)
def test_ingress_runs_only_on_the_cpu_group(stack: str) -> None:
    obj = rayservice(cfg_of(stack))
    g = groups(obj)
    ingress = g[INGRESS_GROUP]
    assert INGRESS_RESOURCE in declared(ingress)
    assert ingress["minReplicas"] == 0
    spec = ingress["template"]["spec"]
    assert spec["nodeSelector"] == labels.ray_head_scheduling()["nodeSelector"]
    assert "nvidia.com/gpu" not in spec["containers"][0]["resources"]["limits"]
    assert all(INGRESS_RESOURCE not in declared(x) for n, x in g.items() if n != INGRESS_GROUP)
    (app,) = yaml.safe_load(obj["spec"]["serveConfigV2"])["applications"]
    (dep,) = app["deployments"]
    assert dep["name"] == "GatewayIngress"
    assert dep["ray_actor_options"]["resources"] == {INGRESS_RESOURCE: 1}


def test_cluster_env_is_on_every_ray_container() -> None:
    def fast(v: dict[str, Any]) -> None:
        v["serving"]["throughputOptimized"] = True

    obj = rayservice(cfg_of("prod", fast))
    for c in containers(obj):
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1", c["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_image_ray_version_autoscaler_and_no_deprecated_fields(stack: str) -> None:
    cfg = cfg_of(stack)
    obj = rayservice(cfg)
    spec = obj["spec"]
    cluster = spec["rayClusterConfig"]
    assert cluster["rayVersion"] == versions.RAY_VERSION
    assert versions.RAY_LLM_IMAGE.tag.startswith(versions.RAY_VERSION + "-py312")
    assert {c["image"] for c in containers(obj)} == {versions.RAY_LLM_IMAGE.ref}
    assert cluster["authOptions"] == {"mode": "token"}  # KubeRay 1.7 holds and sends the token
    assert cluster["enableInTreeAutoscaling"] is True
    auto = cluster["autoscalerOptions"]
    assert auto["version"] == "v2"
    assert auto["idleTimeoutSeconds"] == cfg.ray_service.autoscaler_idle_timeout_seconds
    assert spec["upgradeStrategy"] == {"type": cfg.ray_service.upgrade_strategy}
    for deprecated in ("serviceUnhealthySecondThreshold", "deploymentUnhealthySecondThreshold",
                       "serveConfig"):
        assert deprecated not in spec


def test_upgrade_strategy_is_set_by_every_profile() -> None:
    from infra.config.profiles import PROFILES

    for env, profile in PROFILES.items():
        assert profile["rayService"]["upgradeStrategy"] in ("NewCluster", "None"), env


def test_initializing_timeout_is_sized_from_the_largest_model() -> None:
    dev, prod = cfg_of("dev"), cfg_of("prod")
    # dev: 8B = 15.0 GiB, prod: 70B = 131.4 GiB; (600 s + GiB / 0.25 GiB/s) x 2, whole minutes.
    assert initializing_timeout_seconds(dev) == 1320
    assert initializing_timeout_seconds(prod) == 2280
    obj = rayservice(prod)
    assert obj["metadata"]["annotations"]["ray.io/initializing-timeout"] == "2280s"


# ------------------------------------------------------------------- in place or new cluster
def _alias_weights(v: dict[str, Any]) -> None:
    for t in v["serving"]["aliases"][0]["targets"]:
        t["weight"] = 50


def _new_model_version(v: dict[str, Any]) -> None:
    models = v["serving"]["models"]
    models.append(dict(copy.deepcopy(models[0]), id="llama-3.1-8b-instruct-v3"))
    models[-1]["autoscaling"] = {"minReplicas": 1, "maxReplicas": 2, "targetOngoingRequests": 16}
    v["serving"]["aliases"][0]["targets"].append({"model": "llama-3.1-8b-instruct-v3", "weight": 5})


def _autoscaling(v: dict[str, Any]) -> None:
    v["serving"]["models"][0]["autoscaling"]["maxReplicas"] = 10
    v["serving"]["models"][0]["autoscaling"]["minReplicas"] = 3


def _engine_args(v: dict[str, Any]) -> None:
    v["serving"]["models"][1]["engineArgs"] = {"max_model_len": 32768,
                                               "gpu_memory_utilization": 0.85}


def _pool_limit(v: dict[str, Any]) -> None:
    v["gpuNodePools"] = [
        {"name": "g6e", "family": "g6e", "limits": {"gpus": 40}, "weight": 100},
        {"name": "g5", "family": "g5", "limits": {"gpus": 16}, "weight": 50},
        {"name": "p4d", "family": "p4d", "limits": {"gpus": 24}, "weight": 10},
    ]


ROUTINE = {
    "alias weights": _alias_weights,
    "new model version on an existing pool": _new_model_version,
    "autoscaling bounds": _autoscaling,
    "engine args": _engine_args,
}


@pytest.mark.parametrize("change", list(ROUTINE), ids=list(ROUTINE))
def test_routine_changes_leave_the_ray_cluster_byte_identical(change: str) -> None:
    before, after = rayservice(cfg_of("prod")), rayservice(cfg_of("prod", ROUTINE[change]))
    assert after["spec"]["serveConfigV2"] != before["spec"]["serveConfigV2"]
    old, new = before["spec"]["rayClusterConfig"], after["spec"]["rayClusterConfig"]
    assert json.dumps(new, sort_keys=True) == json.dumps(old, sort_keys=True)
    assert in_place(old, new) == "unchanged"


def test_pool_limit_changes_replica_bounds_only_which_kuberay_applies_in_place() -> None:
    old = ray_cluster_config(cfg_of("prod"))
    new = ray_cluster_config(cfg_of("prod", _pool_limit))
    assert old != new
    assert in_place(old, new) == "in place"


def test_new_image_is_a_new_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    old = ray_cluster_config(cfg_of("prod"))
    monkeypatch.setattr(versions, "RAY_LLM_IMAGE", versions.Image("rayproject/ray-llm", "2.61.0"))
    assert in_place(old, ray_cluster_config(cfg_of("prod"))) == "new cluster"


def test_change_to_an_existing_groups_pod_template_is_a_new_cluster() -> None:
    def bigger_replicas(v: dict[str, Any]) -> None:  # 8B at TP 2: g6e pods get 2 GPUs
        m = v["serving"]["models"][0]
        m["accelerator"]["gpusPerReplica"] = 2
        m["engineArgs"]["tensor_parallel_size"] = 2

    def throughput(v: dict[str, Any]) -> None:  # cluster-wide env on every container
        v["serving"]["throughputOptimized"] = True

    old = ray_cluster_config(cfg_of("prod"))
    for edit in (bigger_replicas, throughput):
        assert in_place(old, ray_cluster_config(cfg_of("prod", edit))) == "new cluster"


QWEN_ON_G5 = {
    "id": "qwen-7b", "source": "Qwen/Qwen2.5-7B-Instruct",
    "engineArgs": {"max_model_len": 8192},
    "accelerator": {"gpusPerReplica": 1, "acceleratorType": "A10G"},
    "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
}


def test_worker_group_appended_at_the_end_is_in_place_inserted_is_not() -> None:
    def add_g5_model(v: dict[str, Any]) -> None:
        v["serving"]["models"].append(copy.deepcopy(QWEN_ON_G5))

    # dev pools are [g6e, g5]: the g5 group lands after g6e's, at the end of the list.
    old, new = ray_cluster_config(cfg_of("dev")), ray_cluster_config(cfg_of("dev", add_g5_model))
    assert [g["groupName"] for g in new["workerGroupSpecs"]] == [INGRESS_GROUP, "g6e", "g5"]
    assert in_place(old, new) == "in place"
    # prod pools are [g6e, g5, p4d]: the g5 group goes before p4d's, which KubeRay cannot patch.
    old, new = ray_cluster_config(cfg_of("prod")), ray_cluster_config(cfg_of("prod", add_g5_model))
    assert [g["groupName"] for g in new["workerGroupSpecs"]] == [
        INGRESS_GROUP, "g6e", "g5", "p4d"
    ]
    assert in_place(old, new) == "new cluster"
