"""EKS: the API endpoint, the system nodes' launch template, control-plane hardening."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from policy.core import Context, Policy, Resource, get, is_known

WORLD = {"0.0.0.0/0", "::/0"}
COMPONENT = "eks:index:Cluster"  # pulumi-eks (camelCase inputs at top level)
CLUSTER = "aws:eks/cluster:Cluster"  # its child, as a real preview registers it


def _endpoint(r: Resource) -> tuple[Any, Any] | None:
    if r.type == COMPONENT:
        return r.props.get("endpointPublicAccess"), r.props.get("publicAccessCidrs")
    if r.type == CLUSTER:
        vpc = r.props.get("vpcConfig") or {}
        return vpc.get("endpointPublicAccess"), vpc.get("publicAccessCidrs")
    return None


def endpoint_exposure(r: Resource, ctx: Context) -> Iterable[str]:
    found = _endpoint(r)
    if found is None:
        return
    public, cidrs = found
    # pulumi-eks and the EKS API both default to a public endpoint when it is not set.
    if public is None or public is True:
        if ctx.environment == "prod":
            yield ("public API endpoint in prod: set llm-platform:cluster.endpointAccess: "
                   "private (reach it from the VPC or a peered network)")
        known = [c for c in cidrs or [] if is_known(c)]
        if not known:
            yield ("public API endpoint without publicAccessCidrs (AWS then allows 0.0.0.0/0): "
                   "set llm-platform:cluster.publicAccessCidrs to your office/VPN ranges")
        elif WORLD & set(known):
            yield ("public API endpoint open to 0.0.0.0/0: replace it in "
                   "llm-platform:cluster.publicAccessCidrs with your office/VPN ranges")


def launch_template_hardened(r: Resource, ctx: Context) -> Iterable[str]:
    if r.type != "aws:ec2/launchTemplate:LaunchTemplate":
        return
    tokens = get(r.props, "metadataOptions.httpTokens")
    if tokens != "required":
        yield (f"metadataOptions.httpTokens is {tokens!r}: set it to 'required' (IMDSv2 only)")
    for i, bdm in enumerate(r.props.get("blockDeviceMappings") or []):
        enc = get(bdm, "ebs.encrypted")
        if get(bdm, "ebs") is not None and str(enc).lower() != "true":
            yield f"blockDeviceMappings[{i}].ebs.encrypted is {enc!r}: set it to true"


def secrets_encrypted(r: Resource, ctx: Context) -> Iterable[str]:
    if r.type == COMPONENT and not r.props.get("encryptionConfigKeyArn"):
        yield "no KMS envelope encryption of Kubernetes Secrets: set encryptionConfigKeyArn"


def audit_logs(r: Resource, ctx: Context) -> Iterable[str]:
    if r.type == COMPONENT and "audit" not in (r.props.get("enabledClusterLogTypes") or []):
        yield "control-plane audit log off: add audit to llm-platform:cluster.logTypes"


POLICIES = [
    Policy("eks-endpoint-exposure",
           "No public EKS API endpoint in prod; a public one anywhere has an allow-list "
           "without 0.0.0.0/0.", mandatory=True, check=endpoint_exposure),
    Policy("launch-template-imdsv2-encrypted",
           "Node launch templates require IMDSv2 and encrypt their EBS volumes.",
           mandatory=True, check=launch_template_hardened),
    Policy("eks-secrets-encryption", "EKS encrypts Kubernetes Secrets with a KMS key.",
           mandatory=False, check=secrets_encrypted),
    Policy("eks-audit-logs", "EKS sends its audit log to CloudWatch.",
           mandatory=False, check=audit_logs),
]
