"""The ALB's Ingress, its controller's chart values and pins (pure builders, no Pulumi engine)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from ipaddress import IPv4Network
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from infra import versions
from infra.config.exposure import AlbConfig
from infra.serving.exposure import (
    ALB,
    INTERNAL_RAY_PORTS,
    SERVE_PORT,
    controller_values,
    health_check_path,
    ingress,
    serve_service_name,
)
from serve_app.app import fastapi_app
from serve_app.config import ServingConfig
from tests.support.k8s_schema import core_object_errors
from tests.support.upstream import upstream_file

CHART = versions.AWS_LB_CONTROLLER_CHART
CERT = "arn:aws:acm:us-west-2:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
VPC = [IPv4Network("10.0.0.0/16"), IPv4Network("100.64.0.0/16")]


def serving(**kw: Any) -> ServingConfig:
    return ServingConfig.model_validate({"models": [{"id": "m", "source": "x"}], **kw})


def alb(**kw: Any) -> AlbConfig:
    return AlbConfig.model_validate({"enabled": True, "certificateArn": CERT, **kw})


def build(cfg: AlbConfig, srv: ServingConfig | None = None) -> dict[str, Any]:
    return ingress(cfg, srv or serving(), name="edge-serve", namespace="serving",
                   service=serve_service_name("llm-platform"), vpc_cidrs=VPC,
                   tags={"team": "ml"})


def upstream(name: str) -> dict[str, Any]:
    path = upstream_file(CHART.chart, CHART.version, name)
    if not path.exists():
        pytest.fail(f"upstream file missing: {path} (../shared/upstream)")
    return yaml.safe_load(path.read_text())


def test_https_only_to_the_serve_port_with_long_idle_timeout() -> None:
    obj = build(alb(idleTimeoutS=900))
    ann = obj["metadata"]["annotations"]
    assert json.loads(ann[f"{ALB}/listen-ports"]) == [{"HTTPS": 443}]
    assert ann[f"{ALB}/certificate-arn"] == CERT
    assert ann[f"{ALB}/ssl-policy"].startswith("ELBSecurityPolicy-TLS13")
    assert ann[f"{ALB}/target-type"] == "ip" and ann[f"{ALB}/scheme"] == "internal"
    attrs = dict(kv.split("=") for kv in ann[f"{ALB}/load-balancer-attributes"].split(","))
    assert attrs["idle_timeout.timeout_seconds"] == "900"
    backend = obj["spec"]["defaultBackend"]["service"]
    assert backend == {"name": "llm-platform-serve-svc", "port": {"number": SERVE_PORT}}
    assert SERVE_PORT not in INTERNAL_RAY_PORTS.values()
    assert obj["spec"]["ingressClassName"] == "alb"
    assert core_object_errors(obj, "1.34") == []


def test_health_check_is_the_apps_keyless_health_route() -> None:
    ann = build(alb())["metadata"]["annotations"]
    assert ann[f"{ALB}/healthcheck-path"] == "/health"
    assert ann[f"{ALB}/success-codes"] == "200"
    # The real gateway app answers exactly there, with auth on and no key.
    cfg = serving()
    assert cfg.auth.enabled
    r = TestClient(fastapi_app(cfg)).get(health_check_path(cfg))
    assert r.status_code == 200
    assert health_check_path(serving(routePrefix="/llm")) == "/llm/health"


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, ["10.0.0.0/16", "100.64.0.0/16"]),  # internal: the VPC's ranges, not 0.0.0.0/0
    ({"allowedCidrs": ["198.51.100.0/24"]}, ["198.51.100.0/24"]),
    ({"scheme": "internet-facing", "allowedCidrs": ["198.51.100.0/24"]}, ["198.51.100.0/24"]),
    ({"scheme": "internet-facing"}, ["0.0.0.0/0"]),
])
def test_inbound_cidrs(kw: dict[str, Any], expected: list[str]) -> None:
    ann = build(alb(**kw))["metadata"]["annotations"]
    assert ann[f"{ALB}/inbound-cidrs"].split(",") == expected


def _unknown_keys(values: Mapping[str, Any], defaults: Any, path: str = "") -> list[str]:
    """Keys we set that the chart's values.yaml does not have (free-form maps stop the walk)."""
    out = []
    for key, value in values.items():
        here = f"{path}{key}"
        if not isinstance(defaults, Mapping) or key not in defaults:
            out.append(here)
        elif isinstance(value, Mapping) and isinstance(defaults[key], Mapping) and defaults[key]:
            out += _unknown_keys(value, defaults[key], here + ".")
    return out


def test_chart_values_exist_in_the_pinned_chart_and_pins_match_it() -> None:
    values = controller_values("llm-platform-prod", "us-west-2", "vpc-123", {"team": "ml"})
    defaults = upstream("values.yaml")
    assert _unknown_keys(values, defaults) == []
    chart = upstream("Chart.yaml")
    assert (chart["name"], chart["version"]) == (CHART.chart, CHART.version)
    image = versions.AWS_LB_CONTROLLER_IMAGE
    assert (image.repository, image.tag) == (defaults["image"]["repository"], chart["appVersion"])
    assert values["image"] == {"repository": image.repository, "tag": image.tag}
    # Not the cluster's default LoadBalancer implementation (a Fail webhook on every Service).
    assert defaults["enableServiceMutatorWebhook"] is True
    assert values["enableServiceMutatorWebhook"] is False
    assert values["clusterName"] and values["vpcId"] and values["region"]


def test_unknown_chart_key_is_caught() -> None:
    assert _unknown_keys({"enableServiceMutatorWebhok": False}, upstream("values.yaml")) == [
        "enableServiceMutatorWebhok"]
