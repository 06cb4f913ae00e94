"""The stack config model: every stack file validates, and bad input names its key path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.config import ConfigError, StackConfig, own_keys, validate
from infra.config.loader import secret_paths
from infra.config.network import NetworkConfig
from infra.config.profiles import with_profile
from tools.render import STACKS, stack_config


def stack_values(stack: str) -> tuple[dict[str, Any], set[str]]:
    values, secrets = own_keys(*_raw(stack))
    return with_profile(values), secrets


def _raw(stack: str) -> tuple[dict[str, str], set[str]]:
    values, secrets = stack_config(stack)
    return values, set(secrets)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_validates(stack: str) -> None:
    cfg = validate(*stack_values(stack))
    assert cfg.environment == stack


def test_profiles_make_dev_cheap_and_prod_safe() -> None:
    dev, prod = (validate(*stack_values(s)) for s in ("dev", "prod"))
    assert dev.network.nat_gateways == "single" and prod.network.nat_gateways == "perAz"
    assert not dev.cluster.protect and prod.cluster.protect
    assert prod.cluster.endpoint_access == "private"
    assert all(p.capacity_types == ["on-demand"] for p in prod.gpu_node_pools)
    assert any("spot" in p.capacity_types for p in dev.gpu_node_pools)
    assert prod.network.flow_logs and not dev.network.flow_logs


def test_stack_file_values_override_profile_without_dropping_siblings() -> None:
    values, secrets = own_keys(*_raw("dev"))
    values["network"] = {"azCount": 2}
    cfg = validate(values, secrets)
    assert cfg.network.az_count == 2
    assert cfg.network.nat_gateways == "single"  # still the dev profile's value


def test_lists_replace_profile_lists() -> None:
    values, secrets = stack_values("dev")  # its one model is on L40S (g6e): the pool must stay
    values["gpuNodePools"] = [{"name": "only", "family": "g6e", "limits": {"gpus": 4}}]
    cfg = validate(values, secrets)
    assert [p.name for p in cfg.gpu_node_pools] == ["only"]


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set `a.b[1].c` in a nested dict/list document."""
    parts: list[str | int] = []
    for token in path.replace("[", ".[").split("."):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    node: Any = doc
    for part in parts[:-1]:
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
    node[parts[-1]] = value


# (stack, key path to set, value, expected fragment of the message for that path)
BAD: list[tuple[str, str, Any, str]] = [
    ("prod", "environment", "production", "environment: Input should be 'dev', 'staging' or 'prod'"),
    ("prod", "netwrk", {}, "netwrk: unknown key (did you mean 'network'?)"),
    ("prod", "network.azCount", 1, "network.azCount: Input should be greater than or equal to 2"),
    ("prod", "network.azCount", 7, "network.azCount: Input should be less than or equal to 6"),
    ("prod", "network.azCount", "three", "network.azCount: Input should be a valid integer"),
    ("prod", "network.natGateways", "none", "network.natGateways: Input should be 'single' or 'perAz'"),
    ("prod", "network.vpcCidr", "10.0.0.0/33", "network.vpcCidr: Input is not a valid IPv4 network"),
    ("prod", "network.vpcCidr", "10.0.0.0/8", "network.vpcCidr: prefix length must be /16 to /20"),
    ("prod", "network.podCidr", "10.0.0.0/17", "network: podCidr 10.0.0.0/17 overlaps vpcCidr 10.0.0.0/16"),
    ("prod", "network.interfaceEndpoints", ["s3"], "network.interfaceEndpoints[0]: Input should be"),
    ("prod", "network.flowLog", True, "network.flowLog: unknown key (did you mean 'flowLogs'?)"),
    ("prod", "cluster.kubernetesVersion", "latest", "cluster.kubernetesVersion: String should match pattern"),
    ("prod", "cluster.endpointAccess", "public", "cluster: endpointAccess public needs a non-empty publicAccessCidrs"),
    ("dev", "cluster.publicAccessCidrs", ["0.0.0.0/0"], "cluster: publicAccessCidrs must not contain 0.0.0.0/0"),
    ("prod", "cluster.apiAccessCidrs", [], " cluster.endpointAccess is private but nothing may reach the API: set llm-platform:cluster.apiAccessCidrs"),
    ("prod", "cluster.apiAccessSecurityGroupIds", ["default"], "cluster.apiAccessSecurityGroupIds[0]: String should match pattern"),
    ("prod", "cluster.supportType", "LONG", "cluster.supportType: Input should be 'STANDARD' or 'EXTENDED'"),
    ("prod", "cluster.adminRoleArns", ["admin"], "cluster.adminRoleArns[0]: String should match pattern"),
    ("prod", "cluster.systemNodeGroup", {"minSize": 3, "desiredSize": 2}, "cluster.systemNodeGroup: need minSize <= desiredSize <= maxSize"),
    ("prod", "cluster.logTypes", ["api", "everything"], "cluster.logTypes[1]: Input should be"),
    ("prod", "karpenter.gpuAmiVersion", None, "karpenter: gpuAmiVersion must be pinned in prod"),
    ("prod", "karpenter.gpuAmiFamily", "ubuntu", "karpenter.gpuAmiFamily: Input should be 'al2023-nvidia' or 'bottlerocket-nvidia'"),
    ("prod", "karpenter.rootVolumeGiB", 20, "karpenter.rootVolumeGiB: unknown key (did you mean 'rootVolumeGib'?)"),
    ("prod", "karpenter.rootVolumeGib", 20, "karpenter.rootVolumeGib: Input should be greater than or equal to 100"),
    ("prod", "karpenter.imageCacheSnapshotId", "vol-123", "karpenter.imageCacheSnapshotId: String should match pattern"),
    ("prod", "gpuNodePools", [], "gpuNodePools: List should have at least 1 item"),
    ("prod", "gpuNodePools[1].limits.gpus", 0, "gpuNodePools[1].limits.gpus: Input should be greater than 0"),
    ("prod", "gpuNodePools[1].limits", None, "gpuNodePools[1].limits: Input should be a valid dictionary"),
    ("prod", "gpuNodePools[0].family", "g7", "gpuNodePools[0].family: unknown GPU family 'g7'; allowed: g5, g6e, p4d"),
    ("prod", "gpuNodePools[0].sizes", ["huge"], "gpuNodePools[0]: sizes ['huge'] not in the g6e catalog"),
    ("prod", "gpuNodePools[0].capacityTypes", ["reserved"], "gpuNodePools[0].capacityTypes[0]: Input should be 'spot' or 'on-demand'"),
    ("prod", "gpuNodePools[0].weight", 0, "gpuNodePools[0].weight: Input should be greater than or equal to 1"),
    ("prod", "gpuNodePools[0].name", "GPU_pool", "gpuNodePools[0].name: String should match pattern"),
    ("prod", "gpuNodePools[1].name", "g6e", "gpuNodePools: pool names must be unique; repeated: ['g6e']"),
    ("prod", "gpuNodePools[0].consolidateAfter", "soon", "gpuNodePools[0].consolidateAfter: String should match pattern"),
    ("prod", "tags", ["team"], "tags: Input should be a valid dictionary"),
    ("prod", "serving.models[0].autoscaling.maxReplicas", 0, "serving.models[0].autoscaling.maxReplicas: Input should be greater than or equal to 1"),
    ("prod", "serving.models[0].autoscaling.minReplicas", 0, "serving.models[0].autoscaling: minReplicas 0 (scale to zero) requires allowScaleToZero: true"),
    ("prod", "serving.aliases[0].targets[0].model", "nope", "serving.aliases: aliases[0].targets[0].model 'nope' is not a configured model"),
    ("prod", "serving.modles", [], "serving.modles: unknown key (did you mean 'models'?)"),
    ("prod", "serving.models[0].routing", "roundRobin", "serving.models[0].routing: Input should be 'powerOfTwo' or 'prefixAffinity'"),
    ("prod", "serving.aliases[0].rollback", {"maxErrorRatio": 2}, "serving.aliases[0].rollback.maxErrorRatio: Input should be less than 1"),
    ("prod", "serving.aliases[0].rollback", {"maxErrorRatio": 0.1, "windowSeconds": 60}, "serving.aliases[0].rollback.windowSeconds: unknown key (did you mean 'windowS'?)"),
]


@pytest.mark.parametrize(("stack", "path", "value", "expected"), BAD, ids=[b[1] for b in BAD])
def test_bad_key_is_named_by_its_path(stack: str, path: str, value: Any, expected: str) -> None:
    values, secrets = stack_values(stack)
    values = copy.deepcopy(values)
    _set(values, path, value)
    with pytest.raises(ConfigError) as exc:
        validate(values, secrets)
    assert any(f"llm-platform:{expected}" in p for p in exc.value.problems), exc.value.problems


def test_unknown_key_error_lists_the_allowed_keys() -> None:
    values, secrets = stack_values("prod")
    values["network"] = {"natGateway": "single"}
    with pytest.raises(ConfigError) as exc:
        validate(values, secrets)
    (problem,) = exc.value.problems
    assert problem.startswith("llm-platform:network.natGateway: unknown key")
    allowed = sorted(f.alias for f in NetworkConfig.model_fields.values() if f.alias)
    assert problem.endswith("allowed: " + ", ".join(allowed))
    assert {"azCount", "natGateways", "vpcCidr"} <= set(allowed)


def test_every_bad_key_is_reported_at_once() -> None:
    values, secrets = stack_values("prod")
    values["network"] = {"azCount": 9}
    values["gpuNodePools"][1]["limits"]["gpus"] = -1
    values["typo"] = 1
    with pytest.raises(ConfigError) as exc:
        validate(values, secrets)
    text = str(exc.value)
    assert text.startswith("3 problem(s) in the llm-platform stack config:")
    for path in ("network.azCount", "gpuNodePools[1].limits.gpus", "typo"):
        assert f"llm-platform:{path}:" in text


def test_missing_environment_is_reported() -> None:
    values, secrets = stack_values("prod")
    del values["environment"]
    with pytest.raises(ConfigError, match=r"llm-platform:environment: required key is missing"):
        validate(values, secrets)


@pytest.mark.parametrize("key", ["grafanaAdminPassword", "alertmanagerSlackWebhookUrl"])
def test_secrets_are_only_accepted_as_pulumi_secrets(key: str) -> None:
    values, secrets = stack_values("prod")
    values[key] = "hunter2"
    with pytest.raises(ConfigError) as exc:
        validate(values, secrets)
    assert exc.value.problems == [
        f"llm-platform:{key}: must be a Pulumi secret (pulumi config set --secret {key} ...)"
    ]
    cfg = validate(values, secrets | {key})
    secret_value = getattr(cfg, "grafana_admin_password" if key.startswith("g") else
                           "alertmanager_slack_webhook_url")
    assert secret_value.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(cfg)


def test_secret_paths_are_declared_on_the_model() -> None:
    assert set(secret_paths()) >= {"grafanaAdminPassword", "alertmanagerSlackWebhookUrl"}
    assert StackConfig.model_fields["grafana_admin_password"].json_schema_extra == {"secret": True}


def test_config_reference_is_current() -> None:
    """docs/config.md is generated from the model; regenerate with `make config-docs`."""
    import contextlib
    import io
    from pathlib import Path

    from tools import config_docs

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        config_docs.main()
    committed = (Path(__file__).resolve().parents[3] / "docs" / "config.md").read_text()
    assert committed == out.getvalue(), "docs/config.md is stale: run `make config-docs`"


def test_load_reads_config_the_way_a_real_pulumi_run_hands_it_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`pulumi up` passes config as PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS (JSON text per
    key); unknown keys and plain-text secrets are caught on that path too."""
    from pulumi.runtime import config as rc

    values, secrets = stack_config("dev")
    token = rc.CONFIG.set({})  # only the environment speaks; restored below
    try:
        _check_load_from_env(monkeypatch, values, secrets)
    finally:
        rc.CONFIG.reset(token)


def _check_load_from_env(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, str], file_secrets: list[str]
) -> None:
    import json

    from infra.config import load

    values["llm-platform:grafanaAdminPassword"] = "pw"
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(values))
    secret_keys = json.dumps(["llm-platform:grafanaAdminPassword", *file_secrets])
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", secret_keys)
    cfg = load()
    assert cfg.environment == "dev" and cfg.grafana_admin_password is not None

    values["llm-platform:gpuNodePool"] = "[]"
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(values))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(file_secrets))
    with pytest.raises(ConfigError) as exc:
        load()
    assert exc.value.problems == [
        "llm-platform:grafanaAdminPassword: must be a Pulumi secret "
        "(pulumi config set --secret grafanaAdminPassword ...)",
        "llm-platform:gpuNodePool: unknown key (did you mean 'gpuNodePools'?); allowed: "
        + ", ".join(sorted(f.alias or n for n, f in StackConfig.model_fields.items())),
    ]
