"""AWS rules (network, EKS, KMS, S3), run as CrossGuard would: one resource or the stack."""

from __future__ import annotations

from policy.core import Context
from policy.offline import run
from policy.rules import aws_eks, aws_kms, aws_network, aws_s3
from tests.unit.policy.builders import DEV, PROD, res


def names(found: list) -> set[str]:
    return {v.policy for v in found}


def messages(check, r, ctx: Context = PROD) -> list[str]:
    return list(check(r, ctx))


# ------------------------------------------------------------------------------------ network
def test_security_group_open_to_the_world_on_ssh_is_refused() -> None:
    sg = res("aws:ec2/securityGroup:SecurityGroup", {"ingress": [
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]})
    (msg,) = messages(aws_network.no_world_ingress, sg)
    assert "0.0.0.0/0" in msg and "ports 22-22" in msg and "allow-list" in msg


def test_world_https_and_private_ranges_pass() -> None:
    sg = res("aws:ec2/securityGroup:SecurityGroup", {"ingress": [
        {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]},
        {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["10.0.0.0/16"]}]})
    assert messages(aws_network.no_world_ingress, sg) == []


def test_standalone_ingress_rule_all_protocols_is_refused() -> None:
    rule = res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
               {"cidrIpv6": "::/0", "ipProtocol": "-1"})
    assert "all ports" in messages(aws_network.no_world_ingress, rule)[0]


def test_prod_vpc_without_flow_logs_is_advised() -> None:
    vpc = res("aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"})
    assert len(list(aws_network.flow_logs_in_prod([vpc], PROD))) == 1
    assert list(aws_network.flow_logs_in_prod([vpc], DEV)) == []
    logs = res("aws:ec2/flowLog:FlowLog", {"vpcId": "<vpc-id>"})
    assert list(aws_network.flow_logs_in_prod([vpc, logs], PROD)) == []


# ---------------------------------------------------------------------------------------- EKS
def eks(**props) -> object:
    return res("eks:index:Cluster", {"endpointPrivateAccess": True, **props})


def test_public_endpoint_in_prod_is_refused_with_the_key_to_change() -> None:
    c = eks(endpointPublicAccess=True, publicAccessCidrs=["203.0.113.0/24"])
    (msg,) = messages(aws_eks.endpoint_exposure, c, PROD)
    assert "cluster.endpointAccess: private" in msg
    assert messages(aws_eks.endpoint_exposure, c, DEV) == []


def test_public_endpoint_open_to_the_world_is_refused_everywhere() -> None:
    c = eks(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"])
    assert any("0.0.0.0/0" in m for m in messages(aws_eks.endpoint_exposure, c, DEV))
    unset = eks(endpointPublicAccess=True)  # AWS defaults the allow-list to 0.0.0.0/0
    assert any("publicAccessCidrs" in m for m in messages(aws_eks.endpoint_exposure, unset, DEV))


def test_private_endpoint_passes_and_the_child_cluster_is_read_too() -> None:
    assert messages(aws_eks.endpoint_exposure, eks(endpointPublicAccess=False)) == []
    child = res("aws:eks/cluster:Cluster", {"vpcConfig": {"endpointPublicAccess": True,
                                                          "publicAccessCidrs": ["0.0.0.0/0"]}})
    assert len(messages(aws_eks.endpoint_exposure, child, PROD)) == 2


def test_launch_template_needs_imdsv2_and_encrypted_volumes() -> None:
    good = {"metadataOptions": {"httpTokens": "required"},
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}]}
    lt = "aws:ec2/launchTemplate:LaunchTemplate"
    assert messages(aws_eks.launch_template_hardened, res(lt, good)) == []
    bad = {"metadataOptions": {"httpTokens": "optional"},
           "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}]}
    found = messages(aws_eks.launch_template_hardened, res(lt, bad))
    assert len(found) == 2 and "'required'" in found[0] and "encrypted" in found[1]


# ---------------------------------------------------------------------------------------- KMS
def test_kms_key_without_rotation_is_refused_but_asymmetric_keys_are_exempt() -> None:
    key = "aws:kms/key:Key"
    assert messages(aws_kms.key_rotation, res(key, {"enableKeyRotation": True})) == []
    (msg,) = messages(aws_kms.key_rotation, res(key, {}))
    assert "enable_key_rotation=True" in msg
    signing = res(key, {"keyUsage": "SIGN_VERIFY", "customerMasterKeySpec": "RSA_2048"})
    assert messages(aws_kms.key_rotation, signing) == []


# ----------------------------------------------------------------------------------------- S3
BUCKET = "aws:s3/bucket:Bucket"
PAB = aws_s3.PAB
SSE = next(iter(sorted(aws_s3.SSE)))
ALL_BLOCKED = dict.fromkeys(aws_s3.PAB_FLAGS, True)
KMS_RULE = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]}


def store(pab: dict | None = ALL_BLOCKED, sse: dict | None = KMS_RULE, by_dep: bool = True):
    bucket = res(BUCKET, {"bucket": "models"}, name="models")
    deps = {"bucket": [bucket.urn]} if by_dep else {}
    target = {} if by_dep else {"bucket": "models"}
    out = [bucket]
    if pab is not None:
        out.append(res(PAB, {**target, **pab}, name="models-pab", deps=deps))
    if sse is not None:
        out.append(res(SSE, {**target, **sse}, name="models-sse", deps=deps))
    return out


def test_bucket_with_kms_encryption_and_full_block_passes() -> None:
    assert run(store(), PROD, aws_s3.POLICIES) == []
    assert run(store(by_dep=False), PROD, aws_s3.POLICIES) == []  # matched by bucket name


def test_bucket_without_encryption_or_public_access_block_is_refused() -> None:
    found = run(store(pab=None, sse=None), PROD, aws_s3.POLICIES)
    assert names(found) == {"s3-bucket-encrypted", "s3-public-access-blocked"}
    assert all(v.mandatory for v in found)


def test_partial_public_access_block_names_the_flags_left_off() -> None:
    (v,) = run(store(pab={**ALL_BLOCKED, "restrictPublicBuckets": False}), PROD,
               aws_s3.POLICIES)
    assert "restrictPublicBuckets" in v.message


def test_sse_s3_is_only_advised() -> None:
    aes = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
    (v,) = run(store(sse=aes), PROD, aws_s3.POLICIES)
    assert v.policy == "s3-bucket-kms" and not v.mandatory


# ------------------------------------------------------------------------------- ElastiCache
def test_elasticache_without_encryption_or_token_is_advised() -> None:
    from policy.rules import aws_elasticache

    group = aws_elasticache.GROUP
    good = {"atRestEncryptionEnabled": True, "transitEncryptionEnabled": True,
            "authToken": "[secret]"}
    assert messages(aws_elasticache.encrypted, res(group, good)) == []
    found = messages(aws_elasticache.encrypted, res(group, {"transitEncryptionEnabled": True}))
    assert len(found) == 2 and "atRestEncryptionEnabled" in found[0] and "authToken" in found[1]
    assert not aws_elasticache.POLICIES[0].mandatory


# ------------------------------------------------------------------------------- RDS / Aurora
def test_unencrypted_or_password_in_program_db_is_refused() -> None:
    from policy.rules import aws_rds

    good = {"storageEncrypted": True, "kmsKeyId": "arn:aws:kms:us-west-2:1:key/k",
            "manageMasterUserPassword": True}
    assert messages(aws_rds.encrypted, res(aws_rds.CLUSTER, good)) == []
    (msg,) = messages(aws_rds.encrypted, res(aws_rds.CLUSTER, {**good, "storageEncrypted": False}))
    assert "storageEncrypted" in msg
    (msg,) = messages(aws_rds.encrypted, res(aws_rds.CLUSTER, {**good, "kmsKeyId": None}))
    assert "customer managed key" in msg
    plain = {**good, "manageMasterUserPassword": False, "masterPassword": "[secret]"}
    (msg,) = messages(aws_rds.encrypted, res(aws_rds.CLUSTER, plain))
    assert "manageMasterUserPassword" in msg
    assert all(p.mandatory for p in aws_rds.POLICIES)


def test_public_db_instance_is_refused() -> None:
    from policy.rules import aws_rds

    inst = "aws:rds/clusterInstance:ClusterInstance"
    assert messages(aws_rds.not_public, res(inst, {"publiclyAccessible": False})) == []
    (msg,) = messages(aws_rds.not_public, res(inst, {"publiclyAccessible": True}))
    assert "publiclyAccessible" in msg
