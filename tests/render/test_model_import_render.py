"""modelStore.imports as rendered under the Pulumi mocks: one valid batch/v1 Job per import,
created after the bucket, its role and association, the namespace and the CPU pool; a
write-only role of its own; no finding of the policy pack or checkov; no secret in the render.
The default stacks import nothing (and render no Job). No e2e test: there is no cluster here,
and the copy needs the Hugging Face Hub and S3."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from infra import labels
from infra.config.cluster import ClusterConfig
from infra.config.model_store import ModelImport
from infra.serving.model_import import job_name, writer_policy
from policy.offline import from_render, run
from policy.pack import context
from tests.support.k8s_schema import core_object_errors
from tests.support.ordering import cluster_order_problems, node_order_problems
from tools.checkov_scan import CHECKOV, scan
from tools.mocks import ACCOUNT, REGION
from tools.render import STACKS, Rendered, render_stack, stack_config, write

SHA = "0123456789abcdef0123456789abcdef01234567"  # sha-shaped, not a real commit
IMPORTS = [
    {"repo": "Qwen/Qwen2.5-0.5B-Instruct", "revision": SHA, "prefix": "qwen2.5-0.5b/"},
    {"repo": "meta-llama/Llama-3.1-8B-Instruct", "revision": "v1.0", "prefix": "llama/8b/",
     "scratchGib": 60},
]
TOKEN = "hf_PlantedImporterToken0123456789Zq"
JOB = "kubernetes:batch/v1:Job"


@pytest.fixture(scope="module")
def imported() -> Rendered:
    values, _ = stack_config("prod")
    store = json.loads(values.get("llm-platform:modelStore", "{}"))
    return render_stack("prod", overrides={"modelStore": {**store, "imports": IMPORTS},
                                           "huggingFaceToken": TOKEN},
                        secret_keys=["huggingFaceToken"])


def _jobs(r: Rendered) -> list[dict]:
    """The import Jobs (not the RAG migration Job of infra/serving/vector_db.py)."""
    return [o for o in r.kubernetes_objects() if o["kind"] == "Job"
            and o["metadata"]["labels"]["app.kubernetes.io/name"] == "model-import"]


@pytest.mark.parametrize("stack", STACKS)
def test_default_stacks_import_nothing(stack: str, rendered: Callable[[str], Rendered]) -> None:
    r = rendered(stack)
    assert _jobs(r) == []
    assert not [x for x in r.resources if "model-import" in x.name]


def test_one_valid_job_per_import_on_the_cpu_pool(imported: Rendered) -> None:
    jobs = {j["metadata"]["name"]: j for j in _jobs(imported)}
    assert set(jobs) == {job_name(ModelImport.model_validate(i)) for i in IMPORTS}
    kubernetes = f"{ClusterConfig().kubernetes_version}.0"
    for job in jobs.values():
        assert job["metadata"]["namespace"] == "serving"
        assert core_object_errors(job, kubernetes) == []
        pod = job["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {labels.NODE_CLASS_LABEL: labels.NODE_CLASS_RAY_HEAD}
        assert pod["serviceAccountName"] == "model-importer"
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "hf-token"


def test_importer_has_its_own_write_only_role(imported: Rendered) -> None:
    bucket = f"arn:aws:s3:::llm-platform-prod-models-{ACCOUNT}"
    policy = imported.named("aws:iam/rolePolicy:RolePolicy", "model-import-writer")
    assert json.loads(policy.inputs["policy"]) == writer_policy(
        bucket_arn=bucket, key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:model-store-key",
        region=REGION, prefixes=["models/qwen2.5-0.5b/", "models/llama/8b/"])
    assoc = imported.named("aws:eks/podIdentityAssociation:PodIdentityAssociation",
                           "model-import-writer")
    assert (assoc.inputs["namespace"], assoc.inputs["serviceAccount"]) == (
        "serving", "model-importer")
    sa = next(o for o in imported.kubernetes_objects() if o["kind"] == "ServiceAccount"
              and o["metadata"]["name"] == "model-importer")
    assert sa["automountServiceAccountToken"] is False
    # The Ray pods' reader role is unchanged: it still cannot write.
    reader = json.loads(imported.named("aws:iam/rolePolicy:RolePolicy",
                                       "model-store-reader").inputs["policy"])
    assert not any("s3:PutObject" in json.dumps(s) for s in reader["Statement"])


def test_jobs_wait_for_bucket_identity_namespace_and_nodes(imported: Rendered) -> None:
    assert cluster_order_problems(imported) == []
    assert node_order_problems(imported) == []
    graph = imported.graph()
    must = {("aws:s3/bucket:Bucket", "model-store-bucket"),
            ("aws:s3/bucketServerSideEncryptionConfiguration:"
             "BucketServerSideEncryptionConfiguration", "model-store-sse"),
            ("aws:eks/podIdentityAssociation:PodIdentityAssociation", "model-import-writer"),
            ("aws:iam/rolePolicy:RolePolicy", "model-import-writer"),
            ("kubernetes:core/v1:Namespace", "serving-ns"),
            ("kubernetes:core/v1:Secret", "model-store-hf-token"),
            ("kubernetes:core/v1:ServiceAccount", "model-import-sa")}
    jobs = [j for j in imported.of_type(JOB) if j.name.startswith("model-import-")]
    assert len(jobs) == len(IMPORTS)
    for job in jobs:
        waits = {(graph.nodes[u].type, graph.nodes[u].name) for u in graph.waits_for(job.urn)}
        assert must <= waits, must - waits


def test_policy_pack_and_checkov_find_nothing(imported: Rendered, tmp_path: Path) -> None:
    values, _ = stack_config("prod")
    mandatory = [str(v) for v in run(from_render(imported.resources),  # type: ignore[arg-type]
                                     context("prod", values)) if v.mandatory]
    assert mandatory == []
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make checkov-venv` (make test does)")
    found, _ = scan([write(imported, tmp_path) / "kubernetes"])
    assert found == [], "\n".join(map(str, found))


def test_no_token_in_the_render(imported: Rendered, tmp_path: Path) -> None:
    target = write(imported, tmp_path)
    assert not [p for p in target.rglob("*") if p.is_file() and TOKEN in p.read_text()]
    assert not [r.name for r in imported.resources if TOKEN in json.dumps(r.inputs, default=str)]


def test_the_import_jobs_get_what_their_processes_need(imported: Rendered) -> None:
    """tests/render/test_pod_needs.py's check on the Job templates: AWS_REGION for the S3
    upload, HF_TOKEN for the gated repository."""
    from tests.render.test_pod_needs import import_templates, template_problems

    templates = import_templates(imported)
    assert len(templates) == len(IMPORTS)
    assert [p for t in templates for p in template_problems(imported, t)] == []
