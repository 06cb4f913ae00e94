"""The model store: one S3 bucket per stack for model weights and the serving code.

- The bucket is encrypted with its own rotating KMS key (SSE-KMS, bucket key on), versioned,
  closed to the public, reachable only over TLS, kept on `pulumi destroy` (retainOnDelete) and
  protected where `modelStore.protect` says so (prod).
- The Ray pods' ServiceAccount reads it through EKS Pod Identity: `s3:GetObject` on the models,
  LoRA adapter and code prefixes, `s3:ListBucket` limited to those prefixes, `kms:Decrypt` on
  the key via S3; plus any `modelStore.extraReadGrants`. No access keys exist anywhere.
- serve_app/ is uploaded as a content-addressed zip (infra/serving/code_bundle.py); its `s3://`
  URI is each Serve application's `runtime_env.working_dir`.
- The Hugging Face token (a Pulumi secret) becomes a Kubernetes Secret for the pods' env.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from infra.component import register_declared_outputs
from infra.config.model_store import ModelStoreConfig, split_s3_uri
from infra.context import StackContext
from infra.foundation.cluster import Cluster
from infra.iam import pod_identity_role
from infra.serving import code_bundle
from infra.serving.rayservice import RayPodExtras

HF_TOKEN_SECRET = "hf-token"
HF_TOKEN_KEY = "token"


# ------------------------------------------------------------------------------ pure builders
def default_bucket_name(cluster_name: str, account_id: str) -> str:
    """Globally unique per account: `<cluster>-models-<account id>` (at most 63 characters)."""
    return f"{cluster_name}-models-{account_id}"


def tls_only_bucket_policy(bucket_arn: str) -> dict[str, Any]:
    """Deny every request that does not use TLS (the bucket and its objects)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    }


def _list_statement(sid: str, bucket_arn: str, prefixes: list[str]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": bucket_arn,
        "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
    }


def reader_policy(
    *,
    bucket_arn: str,
    key_arn: str,
    region: str,
    prefixes: list[str],
    extra_grants: list[str],
    partition: str = "aws",
) -> dict[str, Any]:
    """Least privilege for the Ray pods: read objects under `prefixes` of the stack's bucket
    (and list only those prefixes), decrypt with the bucket's key only when S3 asks, and read
    each explicitly granted `s3://bucket/prefix/`."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadModelsAndCode",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [f"{bucket_arn}/{p}*" for p in prefixes],
        },
        _list_statement("ListModelsAndCode", bucket_arn, prefixes),
        {
            "Sid": "DecryptThroughS3",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
        },
    ]
    by_bucket: dict[str, list[str]] = {}
    for uri in extra_grants:
        bucket, prefix = split_s3_uri(uri)
        by_bucket.setdefault(bucket, []).append(prefix)
    for i, (bucket, grant_prefixes) in enumerate(sorted(by_bucket.items())):
        arn = f"arn:{partition}:s3:::{bucket}"
        statements.append({
            "Sid": f"ReadGrant{i}",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [f"{arn}/{p}*" for p in grant_prefixes],
        })
        statements.append(_list_statement(f"ListGrant{i}", arn, grant_prefixes))
    return {"Version": "2012-10-17", "Statement": statements}


def pod_env(region: str, hf_token: bool) -> list[dict[str, Any]]:
    """Env every Ray container gets from the model store: the region the AWS SDKs (boto3 in
    Ray Serve LLM's downloader and in Ray's runtime_env fetcher) need, and HF_TOKEN from the
    Secret when a token is configured (never a literal in serveConfigV2)."""
    env: list[dict[str, Any]] = [{"name": "AWS_REGION", "value": region}]
    if hf_token:
        env.append({
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": HF_TOKEN_SECRET, "key": HF_TOKEN_KEY}},
        })
    return env


# --------------------------------------------------------------------------------- component
class ModelStore(pulumi.ComponentResource):
    """S3 model store + the Ray pods' identity. Outputs: `bucket_name`, `bucket_arn`,
    `key_arn`, `role_arn`, `code_uri` (the serve_app zip for `working_dir`), `code_version`,
    `service_account`, `env` (container env for every Ray container)."""

    bucket_name: str
    bucket_arn: str
    key_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]  # for grants added by others (the RAG database secret)
    code_uri: str
    code_version: str
    service_account: str
    env: list[dict[str, Any]]

    def __init__(
        self,
        name: str,
        *,
        cfg: ModelStoreConfig,
        hf_token: SecretStr | None,
        cluster: Cluster,
        namespace: str,
        ctx: StackContext,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`namespace`: the Ray pods' (its ServiceAccount and Secret go there); `after`: what
        those must wait for (the namespace object)."""
        super().__init__("llm-platform:aws:ModelStore", name, None, opts)
        cluster_name, tags, provider = ctx.cluster_name, ctx.tags, cluster.provider
        # Every resource names the cluster or lives in it: created after it, destroyed first.
        after_cluster: list[pulumi.Resource] = [cluster, *after]
        child = pulumi.ResourceOptions(parent=self, depends_on=after_cluster)
        kept = pulumi.ResourceOptions(
            parent=self, depends_on=after_cluster, protect=cfg.protect, retain_on_delete=True
        )
        # Plain strings, not Outputs: the code URI goes into serveConfigV2 (YAML text) as is.
        partition = aws.get_partition().partition
        region = aws.get_region().region
        bucket_name = cfg.bucket_name or default_bucket_name(
            cluster_name, aws.get_caller_identity().account_id
        )
        bucket_arn = f"arn:{partition}:s3:::{bucket_name}"

        key = aws.kms.Key(
            f"{name}-key",
            description=f"SSE-KMS for the model store of {cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=kept,
        )
        aws.kms.Alias(
            f"{name}-key", name=f"alias/{cluster_name}-model-store", target_key_id=key.key_id,
            opts=child,
        )
        bucket = aws.s3.Bucket(
            f"{name}-bucket", bucket=bucket_name, force_destroy=False, tags=tags, opts=kept
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"}, opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id,
            versioning_configuration={"status": "Enabled"}, opts=child,
        )
        sse = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sse",
            bucket=bucket.id,
            rules=[{
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms", "kms_master_key_id": key.arn,
                },
                # One data key per bucket instead of a KMS call per object: cheaper weight reads.
                "bucket_key_enabled": True,
            }],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[{
                "id": "expire-replaced-versions",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "noncurrent_version_expiration": {"noncurrent_days": cfg.noncurrent_version_days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(tls_only_bucket_policy(arn))),
            opts=child,
        )

        bundle = code_bundle.build()
        code_key = bundle.key(cfg.code_prefix)
        # Depends on the encryption config: the object is encrypted with the stack's key.
        aws.s3.BucketObjectv2(
            f"{name}-code",
            bucket=bucket.id,
            key=code_key,
            source=pulumi.FileAsset(str(code_bundle.write(bundle))),
            content_type="application/zip",
            tags={**tags, "llm-platform.io/code-version": bundle.version},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*after_cluster, sse]),
        )

        policy = key.arn.apply(
            lambda key_arn: json.dumps(reader_policy(
                bucket_arn=bucket_arn, key_arn=key_arn, region=region, partition=partition,
                prefixes=[cfg.models_prefix, cfg.loras_prefix, cfg.code_prefix],
                extra_grants=list(cfg.extra_read_grants),
            ))
        )
        identity = pod_identity_role(
            f"{name}-reader",
            namespace=namespace,
            service_account=cfg.service_account,
            policy_json=policy,
            cluster_name=cluster_name,
            tags=tags,
            opts=child,
        )
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=after_cluster)
        k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={
                "name": cfg.service_account,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/part-of": "llm-platform"},
            },
            # The API token is mounted: KubeRay 1.7.0 runs the autoscaler sidecar in the head pod
            # under this account (ray-operator common/pod.go adds no token volume of its own) and
            # binds its Role to it (common/rbac.go BuildRoleBinding: pods get/list/watch/patch,
            # rayclusters get/patch); Ray's KubeRay node provider reads
            # /var/run/secrets/kubernetes.io/serviceaccount/token at start
            # (ray python/ray/autoscaler/_private/kuberay/node_provider.py) and dies without it.
            # On for every Ray pod, not just the head: whether the EKS Pod Identity webhook still
            # injects its own token with automount off is unconfirmed
            # (PeerDB-io/peerdb-enterprise#43, aws/amazon-eks-pod-identity-webhook#67), and the
            # workers read S3 through Pod Identity. tests/render/test_pod_needs.py checks it.
            automount_service_account_token=True,
            opts=k8s_opts,
        )
        if hf_token is not None:
            token = pulumi.Output.secret(hf_token.get_secret_value())
            k8s.core.v1.Secret(
                f"{name}-hf-token",
                metadata={"name": HF_TOKEN_SECRET, "namespace": namespace},
                type="Opaque",
                string_data={HF_TOKEN_KEY: token},
                opts=k8s_opts,
            )

        self.bucket_name = bucket_name
        self.bucket_arn = bucket_arn
        self.key_arn = key.arn
        self.role_arn = identity.role.arn
        self.role_name = identity.role.name
        self.code_uri = f"s3://{bucket_name}/{code_key}"
        self.code_version = bundle.version
        self.service_account = cfg.service_account
        self.env = pod_env(region, hf_token is not None)
        register_declared_outputs(self)

    def pod_extras(self) -> RayPodExtras:
        """What every Ray pod needs from the model store: its identity, the env, the code."""
        return RayPodExtras(
            service_account_name=self.service_account, env=list(self.env),
            working_dir=self.code_uri,
        )
