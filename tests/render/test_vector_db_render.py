"""RAG on AWS as rendered under the Pulumi mocks (staging and prod enable serving.rag, dev does
not): the Aurora cluster and instances, its security group, KMS key, managed secret, the Ray
pods' IAM database login and the migration Job's own identity, the Job (kubernetes-validate)
and its creation order, the NetworkPolicy egress to the DB subnets, the pods' env and packages,
the cost in the summary."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from infra.config.cluster import ClusterConfig
from infra.config.network import NetworkConfig
from infra.serving.vector_db import (
    APP_ROLE,
    DSN_ENV_VAR,
    IAM_REGION_ENV_VAR,
    MIGRATE_SERVICE_ACCOUNT,
    PORT,
    SECRET_ARN_ENV_VAR,
    connect_policy,
    db_subnet_cidrs,
    secret_read_policy,
)
from policy.offline import from_render, run
from policy.pack import context
from tests.support.k8s_schema import core_object_errors
from tests.support.ordering import cluster_order_problems, cluster_urns, node_order_problems
from tools.checkov_scan import CHECKOV, scan
from tools.mocks import ACCOUNT, REGION
from tools.render import Rendered, stack_config, write

CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
JOB = "kubernetes:batch/v1:Job"
ON = ("staging", "prod")


def _net(stack: str) -> NetworkConfig:
    values, _ = stack_config(stack)
    return NetworkConfig.model_validate(json.loads(values.get("llm-platform:network", "{}")))


def test_dev_has_no_database(rendered: Callable[[str], Rendered]) -> None:
    r = rendered("dev")
    assert not r.of_type(CLUSTER) and not [x for x in r.resources if "vector-db" in x.name]


@pytest.mark.parametrize("stack", ON)
def test_aurora_is_private_encrypted_and_sized_per_environment(
    stack: str, rendered: Callable[[str], Rendered]
) -> None:
    r = rendered(stack)
    (db,) = r.of_type(CLUSTER)
    i = db.inputs
    key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:vector-db-key"
    assert (i["engine"], i["engineMode"]) == ("aurora-postgresql", "provisioned")
    assert i["storageEncrypted"] is True and i["kmsKeyId"] == key_arn
    assert i["manageMasterUserPassword"] is True and i["masterUserSecretKmsKeyId"] == key_arn
    assert "masterPassword" not in i
    assert i["vpcSecurityGroupIds"] == ["<vector-db-sg-id>"]
    key = r.named("aws:kms/key:Key", "vector-db-key")
    assert key.inputs["enableKeyRotation"] is True
    params = r.named("aws:rds/clusterParameterGroup:ClusterParameterGroup", "vector-db-params")
    assert {"name": "rds.force_ssl", "value": "1"} in params.inputs["parameters"]
    subnets = r.named("aws:rds/subnetGroup:SubnetGroup", "vector-db-subnets")
    assert all(s.startswith("<network-private-") for s in subnets.inputs["subnetIds"]), subnets
    instances = r.of_type(INSTANCE)
    assert all(x.inputs["instanceClass"] == "db.serverless" for x in instances)
    assert all(x.inputs["publiclyAccessible"] is False for x in instances)
    scaling = i["serverlessv2ScalingConfiguration"]
    if stack == "prod":
        assert len(instances) == 2 and i["deletionProtection"] is True and db.protect
        assert i["backupRetentionPeriod"] == 30 and scaling["minCapacity"] >= 0.5
        assert i["skipFinalSnapshot"] is False
    else:
        assert len(instances) == 1 and i["deletionProtection"] is False
        assert i["backupRetentionPeriod"] == 7


@pytest.mark.parametrize("stack", ON)
def test_security_group_admits_postgres_from_the_cluster_only(
    stack: str, rendered: Callable[[str], Rendered]
) -> None:
    r = rendered(stack)
    rules = [x for x in r.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
             if x.inputs.get("securityGroupId") == "<vector-db-sg-id>"]
    assert len(rules) == 1
    (rule,) = rules
    assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (
        PORT, PORT, "tcp")
    assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs
    graph = r.graph()
    # The peer is the EKS cluster security group (an output of the cluster), no CIDR.
    assert rule.inputs["referencedSecurityGroupId"]
    assert cluster_urns(graph) & set(graph.waits_for(rule.urn))
    assert not [x for x in r.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
                if x.inputs.get("securityGroupId") == "<vector-db-sg-id>"]


@pytest.mark.parametrize("stack", ON)
def test_ray_pods_connect_as_the_app_role_and_only_the_job_reads_the_secret(
    stack: str, rendered: Callable[[str], Rendered]
) -> None:
    """The Ray pods' role may rds-db:connect as rag_app on this cluster (IAM auth on) and
    nothing on the master secret; the migration Job's own role (its own ServiceAccount, by Pod
    Identity) reads that secret and the code bundle."""
    r = rendered(stack)
    (db,) = r.of_type(CLUSTER)
    assert db.inputs["iamDatabaseAuthenticationEnabled"] is True
    connect = r.named("aws:iam/rolePolicy:RolePolicy", "vector-db-connect")
    assert connect.inputs["role"] == r.named("aws:iam/role:Role", "model-store-reader").inputs.get(
        "name", "model-store-reader")
    assert json.loads(connect.inputs["policy"]) == connect_policy(
        region=REGION, account=ACCOUNT, cluster_resource_id="cluster-MOCKRESOURCEID0000000000")
    ray_docs = [x.inputs["policy"] for x in r.of_type("aws:iam/rolePolicy:RolePolicy")
                if x.inputs["role"] == connect.inputs["role"]]
    assert not [d for d in ray_docs if "secretsmanager" in d]
    migrate = r.named("aws:iam/rolePolicy:RolePolicy", "vector-db-migrate")
    doc = json.loads(migrate.inputs["policy"])
    assert doc["Statement"][:2] == secret_read_policy(
        secret_arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!vector-db-cluster",
        key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:vector-db-key", region=REGION)["Statement"]
    (code,) = r.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    read_code = next(s for s in doc["Statement"] if s["Sid"] == "ReadCodeBundle")
    assert read_code["Resource"].endswith("/" + code.inputs["key"])
    (assoc,) = [a for a in r.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                if a.name == "vector-db-migrate"]
    assert (assoc.inputs["namespace"], assoc.inputs["serviceAccount"]) == (
        "serving", MIGRATE_SERVICE_ACCOUNT)
    accounts = [o for o in r.kubernetes_objects() if o["kind"] == "ServiceAccount"
                and o["metadata"]["name"] == MIGRATE_SERVICE_ACCOUNT]
    assert len(accounts) == 1
    assert core_object_errors(accounts[0], ClusterConfig().kubernetes_version) == []


@pytest.mark.parametrize("stack", ON)
def test_migration_job_is_valid_and_waits_for_database_and_namespace(
    stack: str, rendered: Callable[[str], Rendered]
) -> None:
    r = rendered(stack)
    jobs = [o for o in r.kubernetes_objects() if o["kind"] == "Job"]
    (job,) = [j for j in jobs if j["metadata"]["name"].startswith("rag-migrate-")]
    assert core_object_errors(job, ClusterConfig().kubernetes_version) == []
    assert cluster_order_problems(r) == [] and node_order_problems(r) == []
    graph = r.graph()
    (job_res,) = [x for x in r.of_type(JOB) if x.name == "vector-db-migrate"]
    waits = {(graph.nodes[u].type, graph.nodes[u].name) for u in graph.waits_for(job_res.urn)}
    must = {(CLUSTER, "vector-db-cluster"), (INSTANCE, "vector-db-writer"),
            ("kubernetes:core/v1:Namespace", "serving-ns"),
            ("aws:iam/rolePolicy:RolePolicy", "vector-db-migrate"),
            ("aws:eks/podIdentityAssociation:PodIdentityAssociation", "vector-db-migrate"),
            ("kubernetes:core/v1:ServiceAccount", "vector-db-migrate-sa"),
            ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "vector-db-rag-migrate"),
            ("aws:s3/bucketObjectv2:BucketObjectv2", "model-store-code")}
    missing = must - waits
    assert not missing, missing
    # The RayService rolls out after the migration (which made its role) and its grant.
    (rs,) = [x for x in r.resources if x.type == "kubernetes:ray.io/v1:RayService"]
    assert job_res.urn in graph.waits_for(rs.urn)
    connect = r.named("aws:iam/rolePolicy:RolePolicy", "vector-db-connect")
    assert connect.urn in graph.waits_for(rs.urn)
    (pod,) = [j["spec"]["template"]["spec"] for j in jobs
              if j["metadata"]["name"].startswith("rag-migrate-")]
    assert pod["serviceAccountName"] == MIGRATE_SERVICE_ACCOUNT


@pytest.mark.parametrize("stack", ON)
def test_egress_to_the_db_subnets_by_ip_block(
    stack: str, rendered: Callable[[str], Rendered]
) -> None:
    r = rendered(stack)
    cidrs = [str(c) for c in db_subnet_cidrs(_net(stack))]
    policies = {o["metadata"]["name"]: o for o in r.kubernetes_objects()
                if o["kind"] == "NetworkPolicy"}
    for name in ("ray-egress-rag-db", "rag-migrate"):
        obj = policies[name]
        assert core_object_errors(obj, ClusterConfig().kubernetes_version) == []
        (rule,) = [e for e in obj["spec"]["egress"]
                   if e["ports"] == [{"protocol": "TCP", "port": PORT}]]
        assert [p["ipBlock"]["cidr"] for p in rule["to"]] == cidrs


@pytest.mark.parametrize("stack", ON)
def test_ray_pods_get_the_app_dsn_and_leave_the_schema_to_the_job(
    stack: str, rendered: Callable[[str], Rendered]
) -> None:
    (rs,) = [o for o in rendered(stack).custom_resources() if o.get("kind") == "RayService"]
    head = rs["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in head["env"]}
    assert SECRET_ARN_ENV_VAR not in env
    assert env[IAM_REGION_ENV_VAR] == REGION
    assert env[DSN_ENV_VAR].startswith("host=<vector-db-cluster-endpoint> port=5432 dbname=rag")
    assert f"user={APP_ROLE}" in env[DSN_ENV_VAR] and "password" not in env[DSN_ENV_VAR]
    serve = yaml.safe_load(rs["spec"]["serveConfigV2"])
    (gateway,) = [a for a in serve["applications"] if "rag" in a["args"].get("serving", a["args"])]
    args = gateway["args"].get("serving", gateway["args"])
    assert args["rag"]["database"]["migrateOnStart"] is False


def test_cost_summary_includes_the_database(
    rendered: Callable[[str], Rendered], tmp_path: Path
) -> None:
    target = write(rendered("prod"), tmp_path)
    summary = json.loads((target / "summary.json").read_text())
    assert summary["databaseCost"]["instances"] == 2
    assert summary["databaseCost"]["usdPerHourMax"] > summary["databaseCost"]["usdPerHourMin"]
    assert "RAG database" in (target / "summary.md").read_text()


@pytest.mark.parametrize("stack", ON)
def test_policy_pack_and_checkov_find_nothing(
    stack: str, rendered: Callable[[str], Rendered], tmp_path: Path
) -> None:
    r = rendered(stack)
    values, _ = stack_config(stack)
    found = run(from_render(r.resources), context(stack, values))  # type: ignore[arg-type]
    assert [str(v) for v in found if v.mandatory] == []
    assert not [v for v in found if v.policy.startswith("rds-")]
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make checkov-venv` (make test does)")
    findings, _ = scan([write(r, tmp_path) / "kubernetes"])
    assert findings == [], "\n".join(map(str, findings))


def test_cost_summary_shows_the_embedder_and_its_gpu_memory(
    rendered: Callable[[str], Rendered], tmp_path: Path
) -> None:
    """Prod's embedder (task embed) is priced with the chat models and its GPU memory need (a
    pooling model: weights + activations, no KV cache) is set against the L40S it holds."""
    target = write(rendered("prod"), tmp_path)
    cost = json.loads((target / "summary.json").read_text())["gpuCost"]
    (floor,) = [m for m in cost["minReplicas"] if m["model"] == "bge-small-en"]
    assert floor["task"] == "embed" and floor["usdPerHour"] > 0
    memory = {m["model"]: m for m in cost["gpuMemory"]}
    bge = memory["bge-small-en"]
    assert (bge["task"], bge["pool"], bge["gpus"]) == ("embed", "g6e", 1)
    assert 0.06 < bge["needGib"] < 0.1 and bge["budgetGib"] == 43.2
    assert memory["llama-3.1-8b-instruct"]["needGib"] > 15
    assert "| bge-small-en | embed | g6e | 1 | 0.07 | 43.2 | 0.1% |" in (
        target / "summary.md").read_text()
