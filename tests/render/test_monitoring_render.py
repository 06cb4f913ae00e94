"""Monitoring as rendered per stack under the Pulumi mocks: CRD validity of every monitor and
rule, creation/teardown order, per-environment sizing, secrets, dashboards and the summary."""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from dashboards import build as dashboard_builder
from dashboards import rules as alert_rules
from infra import versions
from infra.config import own_keys, validate
from infra.config.cost_ceiling import replica_usd_per_hour
from infra.platform import monitoring
from tests.support.crds import validate_custom_resource
from tests.support.k8s_schema import core_object_errors
from tools.mocks import Resource
from tools.render import STACKS, Rendered, render_stack, stack_config, summarize

Render = Callable[[str], Rendered]
RELEASE = "kubernetes:helm.sh/v3:Release"
MONITOR_KINDS = ("PodMonitor", "ServiceMonitor", "PrometheusRule")


def stack_release(r: Rendered) -> Resource:
    [release] = [x for x in r.of_type(RELEASE)
                 if x.inputs["chart"] == versions.KUBE_PROMETHEUS_STACK_CHART.chart]
    return release


def monitoring_objects(r: Rendered, kind: str) -> list[Resource]:
    return [x for x in r.resources
            if x.type.startswith("kubernetes:") and x.inputs.get("kind") == kind]


@pytest.mark.parametrize("stack", STACKS)
def test_every_monitor_and_rule_validates_against_its_crd(stack: str, rendered: Render) -> None:
    objs = [o for o in rendered(stack).custom_resources() if o["kind"] in MONITOR_KINDS]
    assert {o["kind"] for o in objs} == {"PodMonitor", "PrometheusRule"}
    problems = {f"{o['kind']}/{o['metadata']['name']}": validate_custom_resource(o) for o in objs}
    assert all(not p for p in problems.values()), problems


@pytest.mark.parametrize("stack", STACKS)
def test_monitors_and_rules_come_after_the_release_that_installs_their_crds(
    stack: str, rendered: Render
) -> None:
    r = rendered(stack)
    release = stack_release(r)
    crs = [x for kind in MONITOR_KINDS for x in monitoring_objects(r, kind)]
    assert crs
    for cr in crs:
        assert release.urn in cr.depends_on, cr.name
    # Karpenter's chart creates a ServiceMonitor: its release waits for the CRDs too.
    karpenter = next(x for x in r.of_type(RELEASE) if x.inputs["name"] == "karpenter")
    assert monitoring.chart_makes_service_monitor(karpenter.inputs)
    assert release.urn in karpenter.depends_on
    # Every release that makes its own ServiceMonitor depends on the monitoring release.
    for other in r.of_type(RELEASE):
        if monitoring.chart_makes_service_monitor(other.inputs):
            assert release.urn in other.depends_on, other.name


@pytest.mark.parametrize("stack", STACKS)
def test_everything_is_on_the_cluster_provider_and_the_release_is_pinned(
    stack: str, rendered: Render
) -> None:
    r = rendered(stack)
    release = stack_release(r)
    provider = release.provider
    assert provider.startswith("urn:pulumi:") and "pulumi:providers:kubernetes" in provider
    component = next(x for x in r.resources if x.type == "llm-platform:k8s:Monitoring")
    children = [x for x in r.resources if x.parent == component.urn and x.custom
                and x.type.startswith("kubernetes:")]
    assert len(children) >= 6
    for child in children:
        assert child.provider.split("::")[0:4] == provider.split("::")[0:4], child.name
    chart = versions.KUBE_PROMETHEUS_STACK_CHART
    assert release.inputs["name"] == monitoring.RELEASE_NAME  # fixed, no random suffix
    assert (release.inputs["chart"], release.inputs["version"]) == (chart.chart, chart.version)
    storage_class = next(x for x in r.resources
                         if x.type == "kubernetes:storage.k8s.io/v1:StorageClass")
    assert storage_class.urn in release.depends_on


@pytest.mark.parametrize("stack", STACKS)
def test_retention_and_volume_follow_the_stack_config(stack: str, rendered: Render) -> None:
    values, secrets = stack_config(stack)
    cfg = validate(*own_keys(values, set(secrets))).monitoring
    spec = stack_release(rendered(stack)).inputs["values"]["prometheus"]["prometheusSpec"]
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert spec["retention"] == cfg.prometheus_retention
    assert claim["resources"]["requests"]["storage"] == f"{cfg.prometheus_volume_gib}Gi"
    assert claim["storageClassName"] == "gp3"
    assert spec["replicas"] == cfg.replicas


def test_prod_keeps_more_for_longer_than_dev(rendered: Render) -> None:
    def spec(stack: str) -> dict[str, Any]:
        return stack_release(rendered(stack)).inputs["values"]["prometheus"]["prometheusSpec"]

    def days(retention: str) -> int:
        return int(retention[:-1]) * {"h": 1, "d": 24, "w": 168, "y": 8760}[retention[-1]] // 24

    def gib(s: dict[str, Any]) -> int:
        return int(s["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]
                   ["storage"].removesuffix("Gi"))

    dev, staging, prod = spec("dev"), spec("staging"), spec("prod")
    assert days(dev["retention"]) < days(staging["retention"]) < days(prod["retention"])
    assert gib(dev) < gib(staging) < gib(prod)
    assert prod["replicas"] >= 2


@pytest.mark.parametrize("stack", STACKS)
def test_no_receiver_without_its_secret(stack: str, rendered: Render) -> None:
    r = rendered(stack)
    am = stack_release(r).inputs["values"]["alertmanager"]
    assert [x["name"] for x in am["config"]["receivers"]] == ["null"]
    assert not [x for x in monitoring_objects(r, "Secret")
                if x.inputs["metadata"]["name"] == monitoring.RECEIVERS_SECRET]


def test_secrets_never_reach_plain_inputs() -> None:
    sentinels = {
        "grafanaAdminPassword": "sentinel-grafana-pw-8c1f",
        "alertmanagerSlackWebhookUrl": "https://hooks.slack.invalid/sentinel-slack-5b2e",
        "alertmanagerWebhookUrl": "https://pager.invalid/sentinel-hook-77aa",
    }
    # In a copy of the context: the secret keys set for this render must not leak into
    # later tests (Pulumi keeps config in context variables).
    r = contextvars.copy_context().run(
        render_stack, "prod", overrides=sentinels, secret_keys=list(sentinels)
    )
    everything = json.dumps([x.inputs for x in r.resources])
    for key, value in sentinels.items():
        assert value not in everything, f"{key} appears in plain inputs"
    secrets = {x.inputs["metadata"]["name"]: x.inputs for x in monitoring_objects(r, "Secret")}
    # A secret value makes Pulumi mark (and encrypt) the whole map.
    assert secrets[monitoring.RECEIVERS_SECRET]["stringData"] == "[secret]"
    assert secrets[monitoring.GRAFANA_ADMIN_SECRET]["stringData"] == "[secret]"
    am = stack_release(r).inputs["values"]["alertmanager"]
    assert am["alertmanagerSpec"]["secrets"] == [monitoring.RECEIVERS_SECRET]
    assert {x["name"] for x in am["config"]["receivers"]} == {"null", "slack", "pager"}
    # The release waits for the Secrets it mounts.
    release = stack_release(r)
    secret_urns = {x.urn for x in monitoring_objects(r, "Secret")
                   if x.inputs["metadata"]["namespace"] == monitoring.NAMESPACE}
    assert secret_urns <= set(release.depends_on)


def test_grafana_password_is_drawn_once_when_the_stack_sets_none(rendered: Render) -> None:
    r = rendered("dev")
    pw = r.named("random:index/randomPassword:RandomPassword", "monitoring-grafana-admin")
    assert pw.inputs["length"] >= 24
    secret = next(x for x in monitoring_objects(r, "Secret")
                  if x.inputs["metadata"]["name"] == monitoring.GRAFANA_ADMIN_SECRET)
    assert secret.inputs["stringData"] == "[secret]"


@pytest.mark.parametrize("stack", STACKS)
def test_every_dashboard_gets_exactly_one_sidecar_config_map(stack: str, rendered: Render) -> None:
    built = dashboard_builder.all_dashboards()
    assert built, "dashboards.build.all_dashboards() returned nothing"
    maps = [x.inputs for x in dashboard_config_maps(rendered(stack))]
    loaded: dict[str, Any] = {}
    for cm in maps:
        assert cm["metadata"]["namespace"] == monitoring.NAMESPACE
        assert cm["metadata"]["annotations"][monitoring.FOLDER_ANNOTATION]
        for key, text in cm["data"].items():
            assert key not in loaded, f"{key} in two ConfigMaps"
            loaded[key] = json.loads(text)
    want = {k if k.endswith(".json") else f"{k}.json": v for k, v in built.items()}
    assert loaded == want
    assert len(maps) == len(built)


def dashboard_config_maps(r: Rendered) -> list[Resource]:
    return [x for x in monitoring_objects(r, "ConfigMap")
            if (x.inputs["metadata"].get("labels") or {}).get(monitoring.DASHBOARD_LABEL)
            == monitoring.DASHBOARD_LABEL_VALUE]


@pytest.mark.parametrize("stack", STACKS)
def test_the_rule_holds_every_group_the_dashboards_package_builds(
    stack: str, rendered: Render
) -> None:
    [rule] = monitoring_objects(rendered(stack), "PrometheusRule")
    values, secrets = stack_config(stack)
    prices = replica_usd_per_hour(validate(*own_keys(values, set(secrets))),
                                  values["aws:region"])
    assert prices, "no GPU model priced"
    want = alert_rules.rule_groups(replica_usd_per_hour=prices)
    assert rule.inputs["spec"]["groups"] == json.loads(json.dumps(want))


def test_summary_lists_the_release_dashboards_and_alerts(rendered: Render) -> None:
    summary = summarize(rendered("prod"))["monitoring"]
    assert [r["name"] for r in summary["releases"]] == [monitoring.RELEASE_NAME]
    alerts = {r["alert"] for g in alert_rules.rule_groups() for r in g["rules"] if "alert" in r}
    assert set(summary["alerts"]) == alerts
    titles = {d.get("title") for d in dashboard_builder.all_dashboards().values()}
    assert {d.split(" (")[0] for d in summary["dashboards"]} == titles
    assert "PodMonitor monitoring/ray" in summary["monitors"]
    assert "ServiceMonitor of Helm release karpenter" in summary["monitors"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_monitor_job_has_an_absent_target_alert(stack: str, rendered: Render) -> None:
    """A PodMonitor whose pods vanish (or that is renamed) leaves panels silently empty: each
    one's Prometheus job (`<namespace>/<name>`) must match an `absent(up{job=~...})` rule."""
    r = rendered(stack)
    exprs = [rule["expr"] for x in monitoring_objects(r, "PrometheusRule")
             for g in x.inputs["spec"]["groups"] for rule in g["rules"]]
    watched = [re.compile(p) for e in exprs for p in re.findall(r'absent\(up\{job=~"([^"]+)"\}', e)]
    assert watched, "no absent(up{job=~...}) rule rendered"
    for pm in monitoring_objects(r, "PodMonitor"):
        job = f"{pm.inputs['metadata']['namespace']}/{pm.inputs['metadata']['name']}"
        assert any(p.fullmatch(job) for p in watched), f"{job}: no absent-target alert"


@pytest.mark.parametrize("stack", STACKS)
def test_volume_claim_templates_are_valid_claims(stack: str, rendered: Render) -> None:
    values, secrets = stack_config(stack)
    version = validate(*own_keys(values, set(secrets))).cluster.kubernetes_version
    chart_values = stack_release(rendered(stack)).inputs["values"]
    specs = {
        "prometheus": chart_values["prometheus"]["prometheusSpec"]["storageSpec"],
        "alertmanager": chart_values["alertmanager"]["alertmanagerSpec"]["storage"],
    }
    for where, storage in specs.items():
        claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": where}, "spec": storage["volumeClaimTemplate"]["spec"]}
        assert core_object_errors(claim, version) == [], where
