"""The model store and the GCS Redis as each stack renders them under the Pulumi mocks:
what is kept and protected, who may read what, creation order, schema validity, and that no
secret value reaches the render."""

from __future__ import annotations

import json
from collections.abc import Callable

import kubernetes_validate
import pytest

from infra.config.cluster import ClusterConfig
from infra.serving import code_bundle
from infra.serving.model_store import reader_policy
from tools.mocks import ACCOUNT, REGION, Resource
from tools.render import STACKS, Rendered, render_stack

Render = Callable[[str], Rendered]
EKS = "eks:index:Cluster"
STORE_COMPONENT = "llm-platform:aws:ModelStore"
KUBERNETES = f"{ClusterConfig().kubernetes_version}.0"
GCS_COMPONENTS = ("llm-platform:aws:GcsRedis", "llm-platform:k8s:GcsRedis")


def one(r: Rendered, typ: str) -> Resource:
    (res,) = r.of_type(typ)
    return res


def children(r: Rendered, parent_types: tuple[str, ...]) -> list[Resource]:
    parents = {x.urn for x in r.resources if x.type in parent_types}
    return [x for x in r.resources if x.parent in parents]


@pytest.mark.parametrize("stack", STACKS)
def test_bucket_is_kept_encrypted_versioned_private_and_tls_only(
    stack: str, rendered: Render
) -> None:
    r = rendered(stack)
    bucket = one(r, "aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == f"llm-platform-{stack}-models-{ACCOUNT}"
    assert bucket.retain_on_delete  # `pulumi destroy` leaves the weights in place
    key = next(k for k in r.of_type("aws:kms/key:Key") if k.name == "model-store-key")
    assert key.inputs["enableKeyRotation"] is True and key.retain_on_delete
    assert bucket.protect == key.protect == (stack == "prod")
    (rule,) = one(r, "aws:s3/bucketServerSideEncryptionConfiguration:"
                     "BucketServerSideEncryptionConfiguration").inputs["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms" and default["kmsMasterKeyId"].endswith(
        ":model-store-key")
    versioning = one(r, "aws:s3/bucketVersioning:BucketVersioning").inputs
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    block = one(r, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy",
                                          "ignorePublicAcls", "restrictPublicBuckets"))
    (deny,) = json.loads(one(r, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"]["Bool"]["aws:SecureTransport"] == "false"


@pytest.mark.parametrize("stack", STACKS)
def test_ray_pods_read_through_pod_identity_with_least_privilege(
    stack: str, rendered: Render
) -> None:
    r = rendered(stack)
    bucket = f"llm-platform-{stack}-models-{ACCOUNT}"
    policy = next(p for p in r.of_type("aws:iam/rolePolicy:RolePolicy")
                  if p.name == "model-store-reader")
    key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:model-store-key"
    assert json.loads(policy.inputs["policy"]) == reader_policy(
        bucket_arn=f"arn:aws:s3:::{bucket}", key_arn=key_arn, region=REGION,
        prefixes=["models/", "loras/", "code/"], extra_grants=[])
    assoc = next(a for a in r.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                 if a.name == "model-store-reader")
    assert (assoc.inputs["namespace"], assoc.inputs["serviceAccount"]) == ("serving",
                                                                          "ray-serving")
    assert assoc.inputs["clusterName"] == f"llm-platform-{stack}"
    sa = next(o for o in r.kubernetes_objects() if o["kind"] == "ServiceAccount"
              and o["metadata"]["name"] == "ray-serving")
    # Mounted: the head's autoscaler sidecar runs under this account (test_pod_needs.py).
    assert sa["automountServiceAccountToken"] is True
    # No access keys anywhere in the program.
    assert not [x for x in r.resources if x.type == "aws:iam/accessKey:AccessKey"]


@pytest.mark.parametrize("stack", STACKS)
def test_code_is_uploaded_under_its_hash(stack: str, rendered: Render) -> None:
    obj = one(rendered(stack), "aws:s3/bucketObjectv2:BucketObjectv2").inputs
    bundle = code_bundle.build()
    assert obj["key"] == f"code/serve_app-{bundle.sha256}.zip"
    assert obj["source"] == f"FileAsset(serve_app-{bundle.sha256}.zip)"
    assert obj["tags"]["llm-platform.io/code-version"] == bundle.version


def test_staging_and_prod_keep_the_gcs_in_elasticache(rendered: Render) -> None:
    for stack in ("staging", "prod"):
        r = rendered(stack)
        group = one(r, "aws:elasticache/replicationGroup:ReplicationGroup").inputs
        assert group["multiAzEnabled"] is True and group["automaticFailoverEnabled"] is True
        assert group["numCacheClusters"] >= 2
        assert group["transitEncryptionEnabled"] is True
        assert group["transitEncryptionMode"] == "required"
        assert group["atRestEncryptionEnabled"] is True
        assert group["authToken"] == "[secret]"
        subnets = one(r, "aws:elasticache/subnetGroup:SubnetGroup").inputs["subnetIds"]
        private = {s.urn for s in r.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
        assert subnets and len(subnets) == len(private)
        rule = r.named("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                       "gcs-from-cluster")
        assert (rule.inputs["fromPort"], rule.inputs["toPort"]) == (6379, 6379)
        assert rule.inputs["referencedSecurityGroupId"].endswith("-cluster-sg>")
        assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs
        sg = rule.inputs["securityGroupId"]
        assert [x for x in r.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                if x.inputs["securityGroupId"] == sg] == [rule]  # the only way in
        assert not r.of_type("kubernetes:apps/v1:StatefulSet")
    prod = one(rendered("prod"), "aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert prod["numCacheClusters"] == 3 and prod["snapshotRetentionLimit"] == 7


def test_dev_keeps_the_gcs_in_a_persistent_in_cluster_redis(rendered: Render) -> None:
    r = rendered("dev")
    assert not r.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    kinds = {o["kind"] for o in r.kubernetes_objects() if o["metadata"].get("name") == "gcs-redis"}
    assert kinds == {"StatefulSet", "Service", "PodDisruptionBudget", "Secret", "NetworkPolicy"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_new_resource_comes_after_the_cluster(stack: str, rendered: Render) -> None:
    """Created after the EKS cluster, so destroyed before it; Kubernetes objects go through
    the cluster's provider."""
    r = rendered(stack)
    eks = one(r, EKS).urn
    provider = one(r, "pulumi:providers:kubernetes").urn
    mine = children(r, (STORE_COMPONENT, *GCS_COMPONENTS))
    assert len(mine) > 10
    for res in mine:
        assert eks in res.depends_on, f"{res.type} {res.name} does not depend on the cluster"
        if res.type.startswith("kubernetes:"):
            assert res.provider.startswith(provider), res.name


@pytest.mark.parametrize("stack", STACKS)
def test_new_kubernetes_objects_validate_against_the_kubernetes_schemas(
    stack: str, rendered: Render
) -> None:
    r = rendered(stack)
    mine = {x.urn for x in children(r, (STORE_COMPONENT, *GCS_COMPONENTS))}
    objects = [x.inputs for x in r.resources if x.urn in mine and "kind" in x.inputs]
    assert objects
    for obj in objects:
        if obj["kind"] == "Secret":  # its data is masked as "[secret]" in the render
            obj = {k: v for k, v in obj.items() if k != "stringData"}
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_no_secret_value_appears_in_the_render() -> None:
    hf, redis = "hf_e2eRenderCanary0123456789", "RedisCanary0123456789abcdef"
    r = render_stack("staging", overrides={"huggingFaceToken": hf, "redisAuthToken": redis},
                     secret_keys=["huggingFaceToken", "redisAuthToken"])
    text = json.dumps([x.inputs for x in r.resources])
    assert hf not in text and redis not in text
    secrets = [o for o in r.kubernetes_objects() if o["kind"] == "Secret"]
    assert {s["metadata"]["name"] for s in secrets} >= {"hf-token", "gcs-redis"}
    assert all(s["stringData"] == "[secret]" for s in secrets)
    # The token reaches the Ray containers by reference only, never through serveConfigV2.
    spec = one(r, "kubernetes:ray.io/v1:RayService").inputs["spec"]
    head = spec["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    (hf_env,) = [e for e in head["env"] if e["name"] == "HF_TOKEN"]
    assert hf_env == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "hf-token", "key": "token"}}}
    assert "HF_TOKEN" not in spec["serveConfigV2"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_rayservice_uses_the_store_identity_code_and_gcs_redis(
    stack: str, rendered: Render
) -> None:
    import yaml

    r = rendered(stack)
    rs = one(r, "kubernetes:ray.io/v1:RayService")
    spec = rs.inputs["spec"]
    cluster = spec["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["workerGroupSpecs"]]
    for pod in pods:
        assert pod["serviceAccountName"] == "ray-serving"
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["AWS_REGION"]["value"] == REGION
    bundle = code_bundle.build()
    uri = f"s3://llm-platform-{stack}-models-{ACCOUNT}/code/serve_app-{bundle.sha256}.zip"
    for app in yaml.safe_load(spec["serveConfigV2"])["applications"]:
        assert app["runtime_env"]["working_dir"] == uri
    gcs = cluster["gcsFaultToleranceOptions"]
    assert gcs["redisPassword"]["valueFrom"]["secretKeyRef"]["name"] == "gcs-redis"
    scheme = "redis://gcs-redis.serving.svc" if stack == "dev" else "rediss://<gcs-redis-primary"
    assert gcs["redisAddress"].startswith(scheme)
    # The pods' ServiceAccount and Secrets exist before the RayService, in its namespace.
    ns = r.named("kubernetes:core/v1:Namespace", "serving-ns")
    for res in children(r, (STORE_COMPONENT, *GCS_COMPONENTS)):
        if res.type.startswith("kubernetes:"):
            assert res.urn in rs.depends_on, res.name
            assert ns.urn in res.depends_on, res.name
