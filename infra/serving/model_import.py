"""Optional one-shot Jobs that copy a pinned Hugging Face model into the model store.

One `batch/v1` Job per `modelStore.imports` entry, in the serving namespace:
- named from repo + revision + prefix, so a new revision is a new Job (a Job's pod template is
  immutable; a changed name also keeps the old Job's record until its TTL);
- the pinned ray-llm image (infra/versions.py), the one the Ray head runs on the same `ray-head`
  CPU pool, so its layers are usually on the node already; it ships `huggingface_hub` (Ray Serve
  LLM downloads models with it) and boto3 (Ray's runtime_env S3 fetcher and Serve LLM's S3
  downloader use it), so nothing is pip-installed at start. `hf download` + `aws s3 sync`
  would need the AWS CLI, which that image does not ship;
- a small Python script: `huggingface_hub.snapshot_download` of the pinned revision into an
  emptyDir, then `boto3` `upload_file` of every file (multipart for large ones; the bucket's
  default SSE-KMS encrypts them);
- HF_TOKEN from the existing `hf-token` Secret (optional: gated models only);
- its own ServiceAccount and Pod Identity role, which may only write under each import's
  `models/<prefix>` (never read, list or delete) and use the bucket's key through S3.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.component import register_declared_outputs
from infra.config.model_store import ModelImport, ModelStoreConfig
from infra.context import StackContext
from infra.iam import pod_identity_role
from infra.serving.model_store import HF_TOKEN_KEY, HF_TOKEN_SECRET, ModelStore
from infra.serving.ray_job import SCRATCH, ray_image_job

JOB_LABELS = {"app.kubernetes.io/name": "model-import", "app.kubernetes.io/part-of": "llm-platform"}
# Finished Jobs (and their pod logs) are kept a day for a look, then garbage-collected.
TTL_SECONDS_AFTER_FINISHED = 86_400
# A failed pod is retried twice (a dropped connection to the Hub or S3), then the Job fails.
BACKOFF_LIMIT = 2

# Runs as `python -c` in the ray-llm image. Skips `.cache/` (huggingface_hub's bookkeeping in
# `local_dir`). The destination and the source come from env, not from string formatting.
IMPORT_SCRIPT = """\
import os, pathlib, boto3
from huggingface_hub import snapshot_download
repo, rev = os.environ["HF_REPO"], os.environ["HF_REVISION"]
bucket, prefix = os.environ["DEST_BUCKET"], os.environ["DEST_PREFIX"]
root = pathlib.Path(snapshot_download(repo_id=repo, revision=rev, local_dir=os.environ["SCRATCH"]))
s3 = boto3.client("s3")
n = 0
for path in sorted(root.rglob("*")):
    rel = path.relative_to(root)
    if path.is_file() and rel.parts[0] != ".cache":
        s3.upload_file(str(path), bucket, prefix + rel.as_posix())
        n += 1
        print(f"uploaded s3://{bucket}/{prefix}{rel.as_posix()}", flush=True)
if n == 0:
    raise SystemExit(f"{repo}@{rev}: nothing downloaded")
print(f"{repo}@{rev}: {n} files in s3://{bucket}/{prefix}", flush=True)
"""


# ------------------------------------------------------------------------------ pure builders
def destination_prefix(cfg: ModelStoreConfig, imp: ModelImport) -> str:
    """Key prefix the model lands under, e.g. `models/qwen2.5-0.5b/`."""
    return f"{cfg.models_prefix}{imp.prefix}"


def job_name(imp: ModelImport) -> str:
    """`import-<repo name>-<hash of repo, revision, prefix>`, a DNS label of at most 50
    characters: a new revision (or destination) is a new Job."""
    digest = hashlib.sha256(f"{imp.repo}@{imp.revision}>{imp.prefix}".encode()).hexdigest()
    slug = re.sub(r"[^a-z0-9]+", "-", imp.repo.rsplit("/", 1)[-1].lower()).strip("-")[:30]
    return f"import-{slug.strip('-') or 'model'}-{digest[:12]}"


def writer_policy(
    *, bucket_arn: str, key_arn: str, region: str, prefixes: Sequence[str]
) -> dict[str, Any]:
    """Write-only on the import prefixes: PutObject (which also covers the multipart upload
    calls) and AbortMultipartUpload; the bucket key through S3 only. `kms:Decrypt` is in it
    because S3 needs it to finish a multipart upload of an SSE-KMS object (AWS S3 user guide,
    "Uploading and copying objects using multipart upload": "you must have permission to the
    kms:Decrypt and kms:GenerateDataKey* actions")."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteImportedModels",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": [f"{bucket_arn}/{p}*" for p in prefixes],
            },
            {
                "Sid": "EncryptThroughS3",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            },
        ],
    }


def job_spec(
    imp: ModelImport, *, cfg: ModelStoreConfig, bucket: str, namespace: str, region: str,
    hf_token: bool,
) -> dict[str, Any]:
    """The Job for one import (a plain dict, as `kubernetes.batch.v1.Job` takes it)."""
    env: list[dict[str, Any]] = [
        {"name": "HF_REPO", "value": imp.repo},
        {"name": "HF_REVISION", "value": imp.revision},
        {"name": "DEST_BUCKET", "value": bucket},
        {"name": "DEST_PREFIX", "value": destination_prefix(cfg, imp)},
        {"name": "SCRATCH", "value": f"{SCRATCH}/model"},
        {"name": "HF_HOME", "value": f"{SCRATCH}/hf-home"},
        {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
        {"name": "AWS_REGION", "value": region},
    ]
    if hf_token:
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
            "name": HF_TOKEN_SECRET, "key": HF_TOKEN_KEY}}})
    return ray_image_job(
        name=job_name(imp), namespace=namespace, job_labels=JOB_LABELS,
        annotations={"llm-platform.io/hf-repo": imp.repo,
                     "llm-platform.io/hf-revision": imp.revision},
        backoff_limit=BACKOFF_LIMIT, ttl_seconds=TTL_SECONDS_AFTER_FINISHED,
        deadline_seconds=cfg.import_timeout_minutes * 60,
        service_account=cfg.importer_service_account, container="import",
        script=IMPORT_SCRIPT, env=env, cpu=str(cfg.import_cpu),
        memory=f"{cfg.import_memory_gib}Gi", scratch=f"{imp.scratch_gib}Gi",
    )


# --------------------------------------------------------------------------------- component
class ModelImports(pulumi.ComponentResource):
    """The import Jobs and their write-only identity. Outputs: `job_names`."""

    job_names: list[str]

    def __init__(
        self,
        name: str,
        *,
        cfg: ModelStoreConfig,
        store: ModelStore,
        hf_token: bool,
        namespace: str,
        provider: k8s.Provider,
        ctx: StackContext,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`hf_token`: a token is configured (its Secret is the store's); `after`: the
        namespace and the ray-head NodePool the Job's pod needs (the store is waited for
        anyway: bucket, encryption, Secret)."""
        super().__init__("llm-platform:k8s:ModelImports", name, None, opts)
        waits: list[pulumi.Resource] = [store, *after]
        child = pulumi.ResourceOptions(parent=self, depends_on=waits)
        region = aws.get_region().region
        prefixes = [destination_prefix(cfg, imp) for imp in cfg.imports]
        policy = store.key_arn.apply(lambda arn: json.dumps(writer_policy(
            bucket_arn=store.bucket_arn, key_arn=arn, region=region, prefixes=prefixes)))
        identity = pod_identity_role(
            f"{name}-writer", namespace=namespace, service_account=cfg.importer_service_account,
            policy_json=policy, cluster_name=ctx.cluster_name, tags=ctx.tags, opts=child,
        )
        assert identity.association is not None
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={"name": cfg.importer_service_account, "namespace": namespace,
                      "labels": dict(JOB_LABELS)},
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=waits),
        )
        # The pod must find its credentials at start: the role, its policy and the association
        # exist before the Job.
        ready = [*waits, sa, identity.role, *identity.policies, identity.association]
        self.job_names = []
        for imp in cfg.imports:
            spec = job_spec(imp, cfg=cfg, bucket=store.bucket_name, namespace=namespace,
                            region=region, hf_token=hf_token)
            k8s.batch.v1.Job(
                f"{name}-{spec['metadata']['name']}",
                metadata=spec["metadata"],
                spec=spec["spec"],
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=ready),
            )
            self.job_names.append(spec["metadata"]["name"])
        register_declared_outputs(self)
