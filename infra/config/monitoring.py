"""`monitoring`: kube-prometheus-stack sizing (infra/platform/monitoring.py)."""

from __future__ import annotations

from pydantic import Field

from serve_app.config import StrictModel


class MonitoringConfig(StrictModel):
    """kube-prometheus-stack sizing. Alert receivers come from the secret top-level keys
    `alertmanagerSlackWebhookUrl` / `alertmanagerWebhookUrl`: a stack without them pages no one."""

    prometheus_retention: str = Field(
        "15d", pattern=r"^[0-9]+(h|d|w|y)$",
        description="How long Prometheus keeps samples (Prometheus duration: h, d, w or y).",
    )
    prometheus_volume_gib: int = Field(
        50, ge=10, le=16384,
        description="GiB of each Prometheus replica's gp3 volume; Prometheus deletes the oldest "
        "blocks at 85% of it, whatever the retention.",
    )
    prometheus_memory_gib: int = Field(
        4, ge=1, le=256, description="GiB of memory each Prometheus replica requests (= limit)."
    )
    replicas: int = Field(
        1, ge=1, le=3, description="Replicas of Prometheus and of Alertmanager (2+ for HA)."
    )


PROFILES = {
    "dev": {"prometheusRetention": "3d", "prometheusVolumeGib": 20, "prometheusMemoryGib": 2},
    "prod": {"prometheusRetention": "30d", "prometheusVolumeGib": 200,
             "prometheusMemoryGib": 8, "replicas": 2},
}
