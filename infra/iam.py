"""IAM roles and trust documents shared by the components: one home for every IAM helper.

- `service_trust_policy` / `pod_identity_trust`: pure trust documents (dicts), unit-testable.
- `managed_policy_arn`: an AWS-managed policy's ARN in the current partition.
- `node_role`: the EC2 role of EKS nodes (system node group and Karpenter nodes).
- `pod_identity_role`: THE helper for a role that a Kubernetes service account assumes through
  EKS Pod Identity (EBS CSI driver, Karpenter controller, model store, load balancer controller).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

# As Karpenter 1.14.1's own node role (its getting-started CloudFormation), but without SSM
# (see infra/foundation/karpenter_iam.py NODE_ROLE_UPSTREAM_OMISSIONS). PullOnly: pull images,
# nothing else (ReadOnly would also list and describe every repository).
NODE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
)


# ------------------------------------------------------------------------- trust documents
def service_trust_policy(
    service: str, account_id: str | None = None, actions: str | list[str] = "sts:AssumeRole"
) -> dict[str, Any]:
    """Trust for one AWS service principal; with `account_id`, only on this account's behalf
    (`aws:SourceAccount`, against the confused-deputy problem)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": actions,
    }
    if account_id is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def pod_identity_trust(account_id: str) -> dict[str, Any]:
    """Trust for EKS Pod Identity, limited to this account's clusters."""
    return service_trust_policy(
        "pods.eks.amazonaws.com", account_id, ["sts:AssumeRole", "sts:TagSession"]
    )


def managed_policy_arn(policy: str) -> pulumi.Output[str]:
    """`arn:<partition>:iam::aws:policy/<policy>`; `policy` may carry a path
    (`service-role/AmazonEBSCSIDriverPolicy`)."""
    partition = aws.get_partition_output().partition
    return partition.apply(lambda part: f"arn:{part}:iam::aws:policy/{policy}")


# ----------------------------------------------------------------------------------- roles
def node_role(
    name: str, tags: dict[str, str], parent: pulumi.Resource
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """An EC2 role with the managed policies every EKS node needs: the system node group's and
    Karpenter's nodes both use it."""
    child = pulumi.ResourceOptions(parent=parent)
    trust = json.dumps(service_trust_policy("ec2.amazonaws.com"))
    role = aws.iam.Role(name, assume_role_policy=trust, tags=tags, opts=child)
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{p}", role=role.name, policy_arn=managed_policy_arn(p), opts=child
        )
        for p in NODE_MANAGED_POLICIES
    ]
    return role, attachments


@dataclass(frozen=True)
class PodIdentityRole:
    """What `pod_identity_role` created. `policies` are the attachments and inline policy:
    depend on them (not only on the role) before starting the pods that use the role."""

    role: aws.iam.Role
    policies: list[pulumi.CustomResource]
    association: aws.eks.PodIdentityAssociation | None
    namespace: str
    service_account: str


def pod_identity_role(
    name: str,
    *,
    namespace: str,
    service_account: str,
    policy_json: pulumi.Input[str] | None = None,
    managed_policies: Sequence[str] = (),
    cluster_name: pulumi.Input[str] | None = None,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> PodIdentityRole:
    """An IAM role that the service account `namespace/service_account` assumes through EKS Pod
    Identity (trust: `pods.eks.amazonaws.com`, this account only).

    Resources, all named `name` (pass e.g. `f"{component}-model-store"`):
    - `aws.iam.Role` with the Pod Identity trust and `tags`;
    - `aws.iam.RolePolicy` with `policy_json` (a JSON string or Output of one), if given;
    - one `aws.iam.RolePolicyAttachment` per AWS-managed policy in `managed_policies` (names
      such as `"service-role/AmazonEBSCSIDriverPolicy"`; the ARN follows the partition). With
      more than one, each attachment is named `name-<policy name>`;
    - `aws.eks.PodIdentityAssociation` binding the role to the service account, if
      `cluster_name` is given. Leave it out when an EKS add-on associates the role itself
      (`pod_identity_associations` of `aws.eks.Addon`, as the EBS CSI driver does).

    `opts` is applied to every resource (usually `ResourceOptions(parent=self)`).
    """
    if policy_json is None and not managed_policies:
        raise ValueError(f"pod_identity_role {name}: give policy_json or managed_policies")
    account = aws.get_caller_identity_output().account_id
    role = aws.iam.Role(
        name,
        assume_role_policy=account.apply(lambda a: json.dumps(pod_identity_trust(a))),
        tags=tags,
        opts=opts,
    )
    policies: list[pulumi.CustomResource] = []
    if policy_json is not None:
        policies.append(aws.iam.RolePolicy(name, role=role.id, policy=policy_json, opts=opts))
    for policy in managed_policies:
        suffix = "" if len(managed_policies) == 1 else f"-{policy.rsplit('/', 1)[-1]}"
        policies.append(
            aws.iam.RolePolicyAttachment(
                f"{name}{suffix}",
                role=role.name,
                policy_arn=managed_policy_arn(policy),
                opts=opts,
            )
        )
    association = None
    if cluster_name is not None:
        association = aws.eks.PodIdentityAssociation(
            name,
            cluster_name=cluster_name,
            namespace=namespace,
            service_account=service_account,
            role_arn=role.arn,
            tags=tags,
            opts=opts,
        )
    return PodIdentityRole(role, policies, association, namespace, service_account)
