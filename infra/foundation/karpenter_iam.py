"""Karpenter's AWS documents: the controller's IAM policy, interruption rules, queue policy.

Pure functions returning dicts; `infra/foundation/karpenter.py` turns them into resources and the
tests lint them with parliament.
"""

from __future__ import annotations

from typing import Any

from infra.foundation.network import DISCOVERY_TAG

# Reasoned exceptions to `parliament` findings above LOW, by statement Sid (tests enforce that
# nothing else is flagged). parliament checks each statement alone and expects one statement to
# name every resource type that ec2:RunInstances / ec2:CreateFleet touch; least privilege needs
# a different condition per resource type (public AMIs: none; subnets: our discovery tag;
# instances: our request tags), so these launch statements are split on purpose and only
# together grant a launch.
# Actions Karpenter 1.14.1's own policy grants (website/.../getting-started-with-karpenter/
# cloudformation.yaml at tag v1.14.1) that this policy leaves out, and why. A test compares the
# two policies action by action: a new upstream action, or one dropped here without a reason
# below, is a red test (a missing read once made `pulumi destroy` hang).
UPSTREAM_OMISSIONS: dict[str, str] = {
    "ec2:DescribeCapacityReservations": "no capacityReservationSelectorTerms in our "
    "EC2NodeClasses; Karpenter queries reservations only for those",
    "ec2:DescribePlacementGroups": "no placementGroupSelector in our EC2NodeClasses; "
    "Karpenter queries placement groups only for those",
    "arc-zonal-shift:GetManagedResource": "called only with settings.enableZonalShift "
    "(pkg/operator/operator.go, v1.14.1), which we leave off (chart default)",
    "iam:CreateInstanceProfile": "we hand Karpenter a ready-made instance profile "
    "(spec.instanceProfile), so it needs no IAM write",
    "iam:TagInstanceProfile": "as iam:CreateInstanceProfile: no Karpenter-managed profiles",
    "iam:AddRoleToInstanceProfile": "as iam:CreateInstanceProfile: no Karpenter-managed "
    "profiles",
    "iam:RemoveRoleFromInstanceProfile": "as iam:CreateInstanceProfile: no Karpenter-managed "
    "profiles",
    "iam:DeleteInstanceProfile": "as iam:CreateInstanceProfile: no Karpenter-managed profiles",
}

# The same for the node role's AWS-managed policies (`KarpenterNodeRole` there; ours is
# infra/iam.py's `node_role`, shared with the system node group).
NODE_ROLE_UPSTREAM_OMISSIONS: dict[str, str] = {
    "AmazonSSMManagedInstanceCore": "no SSM agent access to nodes: nobody gets a shell on a "
    "GPU node through SSM; debug with `kubectl debug node/...` under cluster RBAC",
}

# And for the EventBridge rules feeding the interruption queue (by `detail-type`).
RULE_UPSTREAM_OMISSIONS: dict[str, str] = {
    "EC2 Capacity Reservation Instance Interruption Warning": "no capacity reservations in "
    "our EC2NodeClasses, so no reserved instance can be interrupted",
}

PARLIAMENT_EXCEPTIONS: dict[str, set[str]] = {
    "LaunchFromPublicImages": {"RESOURCE_MISMATCH"},
    "LaunchIntoDiscoveredNetwork": {"RESOURCE_MISMATCH"},
    "LaunchFromOwnLaunchTemplates": {"RESOURCE_MISMATCH"},
    "CreateOwnTaggedResources": {"RESOURCE_MISMATCH"},
}


def controller_policy(
    *,
    partition: str,
    region: str,
    account: str,
    cluster_name: str,
    queue_arn: str,
    node_role_arn: str,
) -> dict[str, Any]:
    """Least privilege for the Karpenter controller of one cluster.

    Compared with the upstream policy (Karpenter 1.14.1's CloudFormation), actions it leaves
    out are in `UPSTREAM_OMISSIONS` with the reason; within the shared actions it narrows
    resources: subnets and security groups only with this cluster's discovery tag, the
    interruption queue and node role of this cluster only. A test compares both action by
    action.
    """
    ec2 = f"arn:{partition}:ec2:{region}"
    owned = f"kubernetes.io/cluster/{cluster_name}"
    created = [
        f"{ec2}:{account}:fleet/*",
        f"{ec2}:{account}:instance/*",
        f"{ec2}:{account}:volume/*",
        f"{ec2}:{account}:network-interface/*",
        f"{ec2}:{account}:launch-template/*",
        f"{ec2}:{account}:spot-instances-request/*",
    ]
    request_tags = {
        "StringEquals": {
            f"aws:RequestTag/{owned}": "owned",
            "aws:RequestTag/eks:eks-cluster-name": cluster_name,
        },
        "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
    }
    resource_tags = {
        "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
        "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
    }
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LaunchFromPublicImages",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Resource": [f"{ec2}::image/*", f"{ec2}::snapshot/*"],
            },
            {
                "Sid": "LaunchIntoDiscoveredNetwork",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Resource": [f"{ec2}:{account}:subnet/*", f"{ec2}:{account}:security-group/*"],
                "Condition": {
                    "StringEquals": {f"aws:ResourceTag/{DISCOVERY_TAG}": cluster_name}
                },
            },
            {
                "Sid": "LaunchFromOwnLaunchTemplates",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Resource": f"{ec2}:{account}:launch-template/*",
                "Condition": resource_tags,
            },
            {
                "Sid": "CreateOwnTaggedResources",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
                "Resource": created,
                "Condition": request_tags,
            },
            {
                "Sid": "TagOnCreate",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": created,
                "Condition": {
                    "StringEquals": {
                        **request_tags["StringEquals"],
                        "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                    },
                    "StringLike": request_tags["StringLike"],
                },
            },
            {
                "Sid": "TagOwnInstances",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": f"{ec2}:{account}:instance/*",
                "Condition": {
                    **resource_tags,
                    "StringEqualsIfExists": {
                        "aws:RequestTag/eks:eks-cluster-name": cluster_name
                    },
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                    },
                },
            },
            {
                "Sid": "DeleteOwnResources",
                "Effect": "Allow",
                "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                "Resource": [f"{ec2}:{account}:instance/*", f"{ec2}:{account}:launch-template/*"],
                "Condition": resource_tags,
            },
            {
                # Describe* and pricing cannot be scoped to resources; the region condition
                # is the narrowest AWS offers.
                "Sid": "RegionalReads",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeImages",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceStatus",
                    "ec2:DescribeInstanceTypeOfferings",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplates",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSpotPriceHistory",
                    "ec2:DescribeSubnets",
                ],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
            },
            {
                "Sid": "PricingReads",
                "Effect": "Allow",
                "Action": "pricing:GetProducts",
                "Resource": "*",
            },
            {
                "Sid": "PublicAmiParameters",
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                # Public parameters have an empty account field; `*` also matches empty.
                "Resource": f"arn:{partition}:ssm:{region}:*:parameter/aws/service/*",
            },
            {
                "Sid": "PassNodeRole",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": node_role_arn,
                "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            },
            {
                # The EC2NodeClass finalizer (pkg/controllers/nodeclass/controller.go at
                # v1.14.1) lists and reads instance profiles, ours and others, before it lets
                # go; without these reads it keeps the finalizer and `pulumi destroy` hangs.
                # Read-only, scoped as Karpenter's own 1.14.1 CloudFormation scopes them.
                "Sid": "ListInstanceProfiles",
                "Effect": "Allow",
                "Action": "iam:ListInstanceProfiles",
                "Resource": "*",
            },
            {
                "Sid": "ReadInstanceProfiles",
                "Effect": "Allow",
                "Action": "iam:GetInstanceProfile",
                "Resource": f"arn:{partition}:iam::{account}:instance-profile/*",
            },
            {
                "Sid": "DiscoverApiServer",
                "Effect": "Allow",
                "Action": "eks:DescribeCluster",
                "Resource": f"arn:{partition}:eks:{region}:{account}:cluster/{cluster_name}",
            },
            {
                "Sid": "ConsumeInterruptionQueue",
                "Effect": "Allow",
                "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
                "Resource": queue_arn,
            },
        ],
    }


def interruption_rules() -> dict[str, dict[str, Any]]:
    """EventBridge patterns for the events Karpenter acts on, keyed by a short rule name."""
    return {
        "spot-interruption": {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Spot Instance Interruption Warning"],
        },
        "rebalance": {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Instance Rebalance Recommendation"],
        },
        "instance-state-change": {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Instance State-change Notification"],
        },
        "scheduled-change": {
            "source": ["aws.health"],
            "detail-type": ["AWS Health Event"],
            "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]},
        },
    }


def queue_policy(queue_arn: str, rule_arns: list[str]) -> dict[str, Any]:
    """Only our EventBridge rules may send; nothing may use the queue over plain HTTP."""
    return {
        "Version": "2012-10-17",
        "Id": "KarpenterInterruptionQueue",
        "Statement": [
            {
                "Sid": "EventBridgeRulesSend",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }
