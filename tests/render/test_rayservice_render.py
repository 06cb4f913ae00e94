"""KubeRay and the RayService as the program renders them per stack: valid objects, the
operator's values against its chart, creation and teardown order, and the summary rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import versions
from infra.config import own_keys, validate
from infra.serving.api_keys import with_keys_file
from infra.serving.vector_db import with_migration_job
from serve_app.config import ServingConfig
from tests.support.crds import validate_custom_resource
from tools.render import ROOT, STACKS, Rendered, main, stack_config, summarize, summary_markdown

Render = Callable[[str], Rendered]
RELEASE = "kubernetes:helm.sh/v3:Release"
RAYSERVICE = "kubernetes:ray.io/v1:RayService"


@pytest.mark.parametrize("stack", STACKS)
def test_rayservice_and_operator_are_rendered_valid(stack: str, rendered: Render) -> None:
    r = rendered(stack)
    (rs,) = r.of_type(RAYSERVICE)
    assert validate_custom_resource(rs.inputs) == []
    operator = r.named(RELEASE, "kuberay-operator")
    assert (operator.inputs["chart"], operator.inputs["version"]) == (
        versions.KUBERAY_OPERATOR_CHART.chart, "1.7.0"
    )
    # Its values keys are checked against the chart by tests/render/test_helm_values.py.
    assert rs.provider.startswith("urn:") and "providers:kubernetes" in rs.provider


@pytest.mark.parametrize("stack", STACKS)
def test_teardown_order_rayservice_then_operator_then_karpenter(
    stack: str, rendered: Render
) -> None:
    """Pulumi destroys dependents first: RayService -> operator -> Karpenter's controller."""
    r = rendered(stack)
    (rs,) = r.of_type(RAYSERVICE)
    operator = r.named(RELEASE, "kuberay-operator")
    karpenter = r.named(RELEASE, "karpenter-controller")
    assert operator.urn in rs.depends_on
    assert karpenter.urn in operator.depends_on
    # The Ray pods go before the NodePools they run on (Karpenter drains nodes, not Ray).
    for pool in r.of_type("kubernetes:karpenter.sh/v1:NodePool"):
        assert pool.urn in rs.depends_on, pool.name


@pytest.mark.parametrize("stack", STACKS)
def test_summary_rows(stack: str, rendered: Render) -> None:
    s = summarize(rendered(stack))
    (rs,) = s["rayServices"]
    assert rs["upgradeStrategy"] == "NewCluster" and "second full cluster" in rs["upgradeGpuCost"]
    names = [g["name"] for g in rs["workerGroups"]]
    assert names[0] == "ingress" and "g6e" in names
    by_id = {m["id"]: m for m in rs["models"]}
    assert by_id["llama-3.1-8b-instruct"]["gpusPerReplica"] == 1
    md = summary_markdown(s)
    for row in ("| worker group | pods | GPUs per pod", "| model | worker group | GPUs per replica",
                "Upgrade strategy **NewCluster**"):
        assert row in md


def test_prod_summary_numbers(rendered: Render) -> None:
    (rs,) = summarize(rendered("prod"))["rayServices"]
    by_id = {m["id"]: m for m in rs["models"]}
    assert by_id["llama-3.1-70b-instruct"] == {
        "id": "llama-3.1-70b-instruct", "group": "p4d", "gpusPerReplica": 8, "replicas": "1-2",
        "maxGpus": 16,
    }
    # A NewCluster upgrade starts the new cluster's first replicas: 2 + 1 + 1 (the RAG
    # embedder) on g6e, 1 x 8 on p4d.
    assert rs["upgradeExtraGpus"] == {"g6e": 4, "p4d": 8}
    groups = {g["name"]: g for g in rs["workerGroups"]}
    assert groups["p4d"]["gpusPerPod"] == 8 and groups["p4d"]["pods"] == "0-3"


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_serve_config_is_the_serving_configs(stack: str, rendered: Render) -> None:
    values, secrets = stack_config(stack)
    cfg = validate(*own_keys(values, set(secrets)))
    (rs,) = rendered(stack).of_type(RAYSERVICE)
    doc = yaml.safe_load(rs.inputs["spec"]["serveConfigV2"])
    (app,) = doc["applications"]
    assert app["import_path"] == "serve_app.app:build_app"
    # The additions: the gateway reads its keys from the mounted Secret
    # (infra/serving/api_keys.py), and with RAG on leaves the schema to the migration Job
    # (infra/serving/vector_db.py, with_migration_job).
    expected = with_keys_file(cfg)
    if cfg.serving.rag.enabled:
        expected = with_migration_job(expected)
    assert ServingConfig.model_validate(app["args"]) == expected.serving


def _stack_file(folder: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    edit(doc["config"])
    path = folder / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_compare_reports_in_place_and_new_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def weights(c: dict[str, Any]) -> None:
        c["llm-platform:serving"]["aliases"][0]["targets"][0]["weight"] = 7

    def g5_model(c: dict[str, Any]) -> None:  # dev pools [g6e, g5]: group appended at the end
        c["llm-platform:serving"]["models"].append({
            "id": "qwen-7b", "source": "Qwen/Qwen2.5-7B-Instruct",
            "engineArgs": {"max_model_len": 8192},
            "accelerator": {"gpusPerReplica": 1, "acceleratorType": "A10G"},
        })

    def fast(c: dict[str, Any]) -> None:  # cluster-wide env: every pod template changes
        c["llm-platform:serving"]["throughputOptimized"] = True

    base = ROOT / "Pulumi.dev.yaml"
    expected = {weights: "rayClusterConfig: unchanged", g5_model: "rayClusterConfig: in place",
                fast: "rayClusterConfig: new cluster"}
    for i, (edit, line) in enumerate(expected.items()):
        folder = tmp_path / str(i)
        folder.mkdir()
        assert main(["--compare", str(base), str(_stack_file(folder, edit))]) == 0
        out = capsys.readouterr().out
        assert line in out.splitlines(), out
    assert "serveConfigV2: changed (applied in place)" in out
