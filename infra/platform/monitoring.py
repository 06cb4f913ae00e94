"""Observability on the cluster: kube-prometheus-stack, the monitors, the alert rules, dashboards.

Prometheus, Alertmanager and Grafana run on the system nodes. Prometheus keeps its data on a gp3
volume and selects every PodMonitor, ServiceMonitor and PrometheusRule in the cluster, whatever
its labels (no dependency on the Helm release name). Dashboards and alert rules are plain data
built by `dashboards/` and handed in by the caller; each dashboard becomes one ConfigMap that
Grafana's sidecar loads into one folder.

Where a field is not obvious the upstream source is cited: kube-prometheus-stack 88.5.3
(`../shared/upstream/kube-prometheus-stack-88.5.3_values.yaml`), Grafana chart 12.11.1,
kube-state-metrics chart 8.4.0, Prometheus Operator v0.93.1 CRDs (`../shared/crds`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pydantic import SecretStr

from infra import labels, versions
from infra.component import register_declared_outputs
from infra.config.monitoring import MonitoringConfig
from infra.foundation.cluster import Cluster, gp3_storage_class
from infra.helm import pinned_release
from infra.platform import gpu

NAMESPACE = "monitoring"
# A fixed Helm release name: object names stay stable and nothing keys off a random suffix.
RELEASE_NAME = "kube-prometheus-stack"
MONITORING_API = "monitoring.coreos.com/v1"

# Grafana: the admin Secret we create, and how the dashboards sidecar finds our ConfigMaps.
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_ADMIN_USER = "admin"
GRAFANA_USER_KEY = "admin-user"  # the chart's default keys (grafana values.yaml `admin`)
GRAFANA_PASSWORD_KEY = "admin-password"
DASHBOARD_LABEL = "grafana_dashboard"  # kube-prometheus-stack's sidecar defaults: label + "1"
DASHBOARD_LABEL_VALUE = "1"
FOLDER_ANNOTATION = "grafana_folder"
DASHBOARD_FOLDER = "LLM Platform"

# Alertmanager: receiver URLs live in this Secret, mounted by the operator at
# /etc/alertmanager/secrets/<name>/<key> (alertmanagerSpec.secrets), read via `*_file` fields.
RECEIVERS_SECRET = "alertmanager-receivers"
SECRETS_MOUNT = f"/etc/alertmanager/secrets/{RECEIVERS_SECRET}"
SLACK_KEY = "slack-webhook-url"
WEBHOOK_KEY = "webhook-url"
# Labels an alert's notifications are grouped by; the dashboards' rules use these names.
GROUP_BY = ("alertname", "namespace", "ray_io_cluster", "application", "model_name")
ALERTMANAGER_VOLUME_GIB = 2  # silences and notification log survive a restart

# Node labels that kube-state-metrics copies onto `kube_node_labels` (as label_<sanitised>), so
# capacity panels can split GPU nodes by pool, GPU model and capacity type.
NODE_LABELS_KEPT = (
    labels.NODE_CLASS_LABEL,
    labels.GPU_POOL_LABEL,
    labels.GPU_MODEL_LABEL,
    "karpenter.sh/capacity-type",
    "karpenter.sh/nodepool",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/zone",
)
# Pod labels kept on `kube_pod_labels`: pending Ray pods by cluster and group.
POD_LABELS_KEPT = ("ray.io/cluster", "ray.io/node-type", "ray.io/group")

# Ray pods: KubeRay labels every Ray pod `ray.io/is-ray-node: "yes"` with its cluster, node type
# and group; Ray exports on container port 8080 named `metrics` (ray-project/kuberay v1.7.0,
# ray-operator/controllers/ray/utils/constant.go).
RAY_METRICS_PORT = "metrics"


@dataclass(frozen=True)
class Receivers:
    """Which alert receivers a stack has: each is on when its Pulumi secret is set."""

    slack: bool = False
    webhook: bool = False

    @property
    def any(self) -> bool:
        return self.slack or self.webhook


# ------------------------------------------------------------------------------ chart values
def _system() -> dict[str, Any]:
    sched = labels.system_scheduling()
    return {"nodeSelector": sched["nodeSelector"], "tolerations": sched["tolerations"]}


def _gp3_claim(gib: int) -> dict[str, Any]:
    """A Prometheus Operator StorageSpec: one gp3 PersistentVolumeClaim per replica."""
    return {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": gp3_storage_class()["metadata"]["name"],
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{gib}Gi"}},
            }
        }
    }


def retention_size(volume_gib: int) -> str:
    """Prometheus deletes the oldest blocks beyond this size; 85% of the volume leaves room for
    the WAL and compaction, so a full disk never stops ingestion (Prometheus sizes are base 2)."""
    return f"{volume_gib * 85 // 100}GB"


def alertmanager_config(receivers: Receivers) -> dict[str, Any]:
    """Routing: warnings and criticals to Slack, criticals also to the webhook (pager); info
    alerts and the Watchdog heartbeat to nobody. A critical alert silences the warnings of the
    same alert, and those of the same model or Serve application in the same Ray cluster (a
    model with no healthy replica makes its latency and queue warnings mere symptoms)."""
    default = "slack" if receivers.slack else "null"
    routes: list[dict[str, Any]] = [
        {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
        {"receiver": "null", "matchers": ['alertname = "InfoInhibitor"']},
        {"receiver": "null", "matchers": ['severity = "info"']},
    ]
    if receivers.webhook:
        routes.append({
            "receiver": "pager",
            "matchers": ['severity = "critical"'],
            "repeat_interval": "1h",
            # `continue` only tries the next SIBLING routes, never the parent's receiver:
            # Slack needs its own route below to get criticals too.
            "continue": receivers.slack,
        })
        if receivers.slack:
            routes.append({"receiver": "slack", "matchers": ['severity = "critical"']})
    out: list[dict[str, Any]] = [{"name": "null"}]
    if receivers.slack:
        out.append({
            "name": "slack",
            "slack_configs": [{
                "api_url_file": f"{SECRETS_MOUNT}/{SLACK_KEY}",
                "send_resolved": True,
                "title": '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}',
                "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n"
                        "{{ .Annotations.runbook_url }}\n{{ end }}",
            }],
        })
    if receivers.webhook:
        out.append({
            "name": "pager",
            "webhook_configs": [{"url_file": f"{SECRETS_MOUNT}/{WEBHOOK_KEY}",
                                 "send_resolved": True}],
        })
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": default,
            "group_by": list(GROUP_BY),
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": routes,
        },
        "inhibit_rules": [
            {"source_matchers": ['severity = "critical"'],
             "target_matchers": ['severity =~ "warning|info"'],
             "equal": ["alertname", "namespace", "ray_io_cluster", "model_name"]},
            {"source_matchers": ['severity = "critical"', 'model_name =~ ".+"'],
             "target_matchers": ['severity = "warning"'],
             "equal": ["ray_io_cluster", "model_name"]},
            {"source_matchers": ['severity = "critical"', 'application =~ ".+"'],
             "target_matchers": ['severity = "warning"'],
             "equal": ["ray_io_cluster", "application"]},
            {"source_matchers": ['severity = "warning"'],
             "target_matchers": ['severity = "info"'],
             "equal": ["alertname", "namespace"]},
            # kube-prometheus-stack's own rules use InfoInhibitor to mute info alerts.
            {"source_matchers": ['alertname = "InfoInhibitor"'],
             "target_matchers": ['severity = "info"'],
             "equal": ["namespace"]},
        ],
        "receivers": out,
        "templates": ["/etc/alertmanager/config/*.tmpl"],
    }


def stack_values(cfg: MonitoringConfig, receivers: Receivers) -> dict[str, Any]:
    """Helm values of kube-prometheus-stack 88.5.3 (every key exists in the chart's values.yaml
    or its grafana / kube-state-metrics sub-charts'; tests check that)."""
    system = _system()
    gib = cfg.prometheus_volume_gib
    mem = f"{cfg.prometheus_memory_gib}Gi"
    return {
        # EKS runs the control plane: these targets cannot be scraped and would only fire
        # TargetDown. kube-proxy binds its metrics to 127.0.0.1 on the EKS add-on.
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "defaultRules": {"rules": {
            "etcd": False, "kubeControllerManager": False, "kubeSchedulerAlerting": False,
            "kubeSchedulerRecording": False, "kubeProxy": False, "windows": False,
        }},
        "prometheusOperator": {
            **system,
            # The admission webhook's certificate job runs before the operator (a Helm hook).
            "admissionWebhooks": {"patch": {**system}},
        },
        "prometheus": {"prometheusSpec": {
            **system,
            "replicas": cfg.replicas,
            "retention": cfg.prometheus_retention,
            "retentionSize": retention_size(gib),
            "storageSpec": _gp3_claim(gib),
            "resources": {"requests": {"cpu": "500m", "memory": mem}, "limits": {"memory": mem}},
            # Select every monitor and rule in every namespace, whatever its labels: the
            # chart's default selects only those labelled `release: <helm release name>`.
            "serviceMonitorSelectorNilUsesHelmValues": False,
            "podMonitorSelectorNilUsesHelmValues": False,
            "ruleSelectorNilUsesHelmValues": False,
            "probeSelectorNilUsesHelmValues": False,
            "scrapeConfigSelectorNilUsesHelmValues": False,
        }},
        "alertmanager": {
            "config": alertmanager_config(receivers),
            "alertmanagerSpec": {
                **system,
                "replicas": cfg.replicas,
                "storage": _gp3_claim(ALERTMANAGER_VOLUME_GIB),
                "secrets": [RECEIVERS_SECRET] if receivers.any else [],
            },
        },
        "grafana": {
            **system,
            # A Secret we own: without it the chart draws a new random password on every
            # upgrade (Helm `lookup` is empty under `helm template`/diff).
            "admin": {
                "existingSecret": GRAFANA_ADMIN_SECRET,
                "userKey": GRAFANA_USER_KEY,
                "passwordKey": GRAFANA_PASSWORD_KEY,
            },
            "sidecar": {"dashboards": {
                "enabled": True,
                "label": DASHBOARD_LABEL,
                "labelValue": DASHBOARD_LABEL_VALUE,
                "searchNamespace": NAMESPACE,
                # grafana chart 12.11.1: the annotation names the folder (a sub-directory),
                # which the provider turns into a Grafana folder.
                "folderAnnotation": FOLDER_ANNOTATION,
                "provider": {"foldersFromFilesStructure": True, "allowUiUpdates": False},
            }},
        },
        "kube-state-metrics": {
            **system,
            # kube-state-metrics chart 8.4.0 `metricLabelsAllowlist`: resource=[label,...].
            "metricLabelsAllowlist": [
                f"nodes=[{','.join(NODE_LABELS_KEPT)}]",
                f"pods=[{','.join(POD_LABELS_KEPT)}]",
            ],
        },
        # prometheus-node-exporter keeps its chart default (tolerates every NoSchedule taint),
        # so it runs on system, Ray head and GPU nodes alike.
    }


# ----------------------------------------------------------------------- monitors and rules
def _node_relabelings() -> list[dict[str, Any]]:
    """Target labels from the pod's node (`attachMetadata.node`): node name, GPU pool and
    capacity type, so per-pod series split by pool without a join."""
    def copy(source: str, target: str) -> dict[str, Any]:
        return {"action": "replace", "sourceLabels": [source], "targetLabel": target}

    return [
        copy("__meta_kubernetes_pod_node_name", "node"),
        copy(f"__meta_kubernetes_node_label_{_sanitise(labels.GPU_POOL_LABEL)}", "gpu_pool"),
        copy("__meta_kubernetes_node_label_karpenter_sh_capacity_type", "capacity_type"),
    ]


def _sanitise(label: str) -> str:
    """Prometheus' Kubernetes discovery turns label names into `[a-zA-Z0-9_]`."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def _pod_monitor(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": MONITORING_API,
        "kind": "PodMonitor",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def ray_pod_monitor() -> dict[str, Any]:
    """Ray head and worker pods of every RayCluster/RayService in any namespace. Ray does not
    label its own series with the cluster: the pod label `ray.io/cluster` becomes
    `ray_io_cluster` here (as KubeRay's config/prometheus/podMonitor.yaml does)."""
    pod_label = [
        {"action": "replace", "sourceLabels": [f"__meta_kubernetes_pod_label_{_sanitise(k)}"],
         "targetLabel": _sanitise(k)}
        for k in POD_LABELS_KEPT
    ]
    return _pod_monitor("ray", {
        "namespaceSelector": {"any": True},
        "selector": {
            "matchLabels": {"ray.io/is-ray-node": "yes"},
            "matchExpressions": [
                {"key": "ray.io/node-type", "operator": "In", "values": ["head", "worker"]},
            ],
        },
        "attachMetadata": {"node": True},
        "podMetricsEndpoints": [{
            "port": RAY_METRICS_PORT,
            "path": "/metrics",
            "relabelings": pod_label + _node_relabelings(),
        }],
    })


def dcgm_pod_monitor() -> dict[str, Any]:
    """The DCGM exporter DaemonSet (infra/platform/gpu.py labels its pods). `honorLabels` keeps the
    exporter's own `pod`/`namespace`/`container` labels, which name the pod USING the GPU, so GPU
    series join to Ray pods; without it they arrive as `exported_pod`/... (the chart's own
    ServiceMonitor sets honorLabels false)."""
    return _pod_monitor("dcgm-exporter", {
        "namespaceSelector": {"matchNames": [gpu.NAMESPACE]},
        "selector": {"matchLabels": {labels.SCRAPE_LABEL: gpu.DCGM_SCRAPE_VALUE}},
        "attachMetadata": {"node": True},
        "podMetricsEndpoints": [{
            "port": gpu.DCGM_PORT_NAME,
            "path": "/metrics",
            "honorLabels": True,
            "relabelings": _node_relabelings(),
        }],
    })


def monitors() -> list[dict[str, Any]]:
    """Every PodMonitor this module creates; their Prometheus jobs are `<namespace>/<name>`
    (`monitoring/ray`, `monitoring/dcgm-exporter`). Karpenter's and the KubeRay operator's
    ServiceMonitors come from their own charts (jobs named after their Services)."""
    return [ray_pod_monitor(), dcgm_pod_monitor()]


def chart_makes_service_monitor(release_inputs: Mapping[str, Any]) -> bool:
    """Whether a Helm release's values turn on its chart's own ServiceMonitor (Karpenter:
    `serviceMonitor.enabled`; KubeRay operator: `metrics.serviceMonitor.enabled`)."""
    values = release_inputs.get("values") or {}
    if not isinstance(values, Mapping):
        return False
    for path in (("serviceMonitor",), ("metrics", "serviceMonitor")):
        node: Any = values
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping) and node.get("enabled") is True:
            return True
    return False


def prometheus_rule(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One PrometheusRule holding the rule groups that `dashboards.rules` builds."""
    return {
        "apiVersion": MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": {"name": "llm-platform", "namespace": NAMESPACE},
        "spec": {"groups": [dict(g) for g in groups]},
    }


def dashboard_config_map_name(file_name: str) -> str:
    stem = file_name.removesuffix(".json").lower()
    slug = re.sub(r"[^a-z0-9-]+", "-", stem).strip("-")
    return f"dashboard-{slug}"[:63].rstrip("-")


def dashboard_config_maps(dashboards: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One ConfigMap per dashboard (`file name -> Grafana JSON`), labelled for the sidecar and
    annotated with the folder."""
    out = []
    for file_name, dashboard in sorted(dashboards.items()):
        key = file_name if file_name.endswith(".json") else f"{file_name}.json"
        out.append({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": dashboard_config_map_name(file_name),
                "namespace": NAMESPACE,
                "labels": {DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE},
                "annotations": {FOLDER_ANNOTATION: DASHBOARD_FOLDER},
            },
            "data": {key: json.dumps(dashboard, indent=1, sort_keys=True)},
        })
    names = [o["metadata"]["name"] for o in out]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(f"dashboard file names map to the same ConfigMap: {clashes}")
    return out


# ------------------------------------------------------------------------------- component
class Monitoring(pulumi.ComponentResource):
    """kube-prometheus-stack with our monitors, alert rules and dashboards."""

    namespace: str
    # The Helm release; it also installs the monitoring CRDs, so anything that creates a
    # ServiceMonitor, PodMonitor or PrometheusRule (itself or through a chart) depends on it.
    release: k8s.helm.v3.Release
    monitors: dict[str, k8s.apiextensions.CustomResource]  # by object name
    rules: dict[str, k8s.apiextensions.CustomResource]
    dashboards: dict[str, k8s.core.v1.ConfigMap]  # by ConfigMap name

    def __init__(
        self,
        name: str,
        *,
        cfg: MonitoringConfig,
        grafana_admin_password: SecretStr | None,
        slack_webhook_url: SecretStr | None,
        webhook_url: SecretStr | None,
        cluster: Cluster,
        dashboards: Mapping[str, Mapping[str, Any]],
        rule_groups: Sequence[Mapping[str, Any]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llm-platform:k8s:Monitoring", name, None, opts)
        k8s_child = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": NAMESPACE},
            opts=pulumi.ResourceOptions.merge(
                k8s_child, pulumi.ResourceOptions(depends_on=[cluster.node_group])
            ),
        )
        in_ns = pulumi.ResourceOptions.merge(k8s_child, pulumi.ResourceOptions(depends_on=[ns]))
        receivers = Receivers(slack=slack_webhook_url is not None,
                              webhook=webhook_url is not None)
        secrets = [self._grafana_admin(name, grafana_admin_password, in_ns)]
        urls = {SLACK_KEY: slack_webhook_url, WEBHOOK_KEY: webhook_url}
        if receivers.any:
            secrets.append(_secret(
                f"{name}-alertmanager-receivers", RECEIVERS_SECRET,
                {k: pulumi.Output.secret(v.get_secret_value())
                 for k, v in urls.items() if v is not None},
                in_ns,
            ))

        self.namespace = NAMESPACE
        self.release = pinned_release(
            f"{name}-stack",
            release_name=RELEASE_NAME,
            chart=versions.KUBE_PROMETHEUS_STACK_CHART,
            namespace=NAMESPACE,
            values=stack_values(cfg, receivers),
            # First install waits for Prometheus' volume and the webhook job; 5 min is tight.
            timeout=900,
            opts=pulumi.ResourceOptions.merge(
                in_ns,
                pulumi.ResourceOptions(depends_on=[*secrets, cluster.storage_class]),
            ),
        )
        # Monitors and rules are custom resources of the CRDs the release installs: created
        # after it, deleted before it.
        after_crds = pulumi.ResourceOptions.merge(
            in_ns, pulumi.ResourceOptions(depends_on=[self.release])
        )
        self.monitors = {
            obj["metadata"]["name"]: _custom(f"{name}-{obj['metadata']['name']}", obj, after_crds)
            for obj in monitors()
        }
        rule = prometheus_rule(rule_groups)
        self.rules = {rule["metadata"]["name"]: _custom(f"{name}-rules", rule, after_crds)}
        self.dashboards = {
            obj["metadata"]["name"]: k8s.core.v1.ConfigMap(
                f"{name}-{obj['metadata']['name']}",
                metadata=obj["metadata"], data=obj["data"], opts=in_ns,
            )
            for obj in dashboard_config_maps(dashboards)
        }
        register_declared_outputs(self)

    def _grafana_admin(
        self, name: str, password: SecretStr | None, opts: pulumi.ResourceOptions
    ) -> k8s.core.v1.Secret:
        """The configured password, else one drawn once and kept in the Pulumi state."""
        value: pulumi.Input[str] = (
            pulumi.Output.secret(password.get_secret_value()) if password is not None
            else random.RandomPassword(
                f"{name}-grafana-admin", length=32, special=False,
                opts=pulumi.ResourceOptions(parent=self),
            ).result
        )
        return _secret(
            f"{name}-grafana-admin", GRAFANA_ADMIN_SECRET,
            {GRAFANA_USER_KEY: GRAFANA_ADMIN_USER, GRAFANA_PASSWORD_KEY: value}, opts,
        )


def _secret(
    resource_name: str, secret_name: str, data: Mapping[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Secret:
    return k8s.core.v1.Secret(
        resource_name,
        metadata={"name": secret_name, "namespace": NAMESPACE},
        type="Opaque",
        string_data=dict(data),
        opts=opts,
    )


def _custom(
    resource_name: str, obj: dict[str, Any], opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=obj["apiVersion"],
        kind=obj["kind"],
        metadata=obj["metadata"],
        spec=obj["spec"],
        opts=opts,
    )
