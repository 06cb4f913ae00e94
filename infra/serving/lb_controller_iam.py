"""IAM policy of the AWS Load Balancer Controller v3.5.0, written out statement by statement.

It is the controller's published policy for this version (kubernetes-sigs/aws-load-balancer-
controller, tag v3.5.0, docs/install/iam_policy.json), with one change: ARNs follow the stack's
partition instead of the fixed `arn:aws`, so the same code works in GovCloud and China. A test
compares this document with the upstream file statement by statement and action by action; any
other difference fails it until it is listed in `DIFFERENCES` with its reason.

The broad statements (Describe* on `*`, security-group ingress on `*`) are the controller's own:
it discovers subnets, security groups and certificates at run time, and narrowing them breaks
reconciliation in ways that show only in AWS. Writes to load balancers, target groups and security
groups it did not create are conditioned on the `elbv2.k8s.aws/cluster` tag, as upstream has it.
"""

from __future__ import annotations

from typing import Any

CLUSTER_TAG = "elbv2.k8s.aws/cluster"
# Differences from the upstream document, each with its reason (checked by the tests).
DIFFERENCES: dict[str, str] = {
    "partition": "ARNs use the stack's partition (`arn:aws` upstream), for GovCloud/China.",
}
# Parliament findings accepted, by Sid, with the reason (the tests check each is still needed).
PARLIAMENT_EXCEPTIONS: dict[str, set[str]] = {
    # `elasticloadbalancing:CreateAction` (tag-on-create) is a condition key AWS added after
    # parliament 1.6.4's IAM data was collected; it is in the Service Authorization Reference
    # for Elastic Load Balancing V2 and in the controller's own policy.
    "TagOnCreate": {"UNKNOWN_CONDITION_FOR_ACTION"},
}


def _tag_null(request: str | None = None, resource: str | None = None) -> dict[str, Any]:
    """`Null` condition on the cluster tag: "false" = the tag is present, "true" = absent."""
    null: dict[str, str] = {}
    if request is not None:
        null[f"aws:RequestTag/{CLUSTER_TAG}"] = request
    if resource is not None:
        null[f"aws:ResourceTag/{CLUSTER_TAG}"] = resource
    return {"Null": null}


def controller_policy(partition: str) -> dict[str, Any]:
    """The controller's IAM policy (see the module docstring) for `partition` (e.g. `aws`)."""
    elb = f"arn:{partition}:elasticloadbalancing:*:*"
    sg = f"arn:{partition}:ec2:*:*:security-group/*"
    lb_and_tg = [f"{elb}:targetgroup/*/*", f"{elb}:loadbalancer/net/*/*",
                 f"{elb}:loadbalancer/app/*/*"]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ElbServiceLinkedRole",
            "Action": ["iam:CreateServiceLinkedRole"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}
            },
        },
        {
            "Sid": "Describe",
            "Action": [
                "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses",
                "ec2:DescribeAvailabilityZones", "ec2:DescribeInternetGateways",
                "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections", "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups", "ec2:DescribeInstances",
                "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:GetCoipPoolUsage",
                "ec2:DescribeCoipPools", "ec2:GetSecurityGroupsForVpc", "ec2:DescribeIpamPools",
                "ec2:DescribeRouteTables",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeListenerCertificates",
                "elasticloadbalancing:DescribeSSLPolicies", "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTrustStores",
                "elasticloadbalancing:DescribeListenerAttributes",
                "elasticloadbalancing:DescribeCapacityReservation",
            ],
            "Resource": "*",
        },
        {
            # Certificates for HTTPS, and the WAF / Shield / Cognito integrations (used only when
            # an Ingress asks for them).
            "Sid": "IntegrationsReadAndAttach",
            "Action": [
                "cognito-idp:DescribeUserPoolClient", "acm:ListCertificates",
                "acm:DescribeCertificate", "iam:ListServerCertificates",
                "iam:GetServerCertificate", "waf-regional:GetWebACL",
                "waf-regional:GetWebACLForResource", "waf-regional:AssociateWebACL",
                "waf-regional:DisassociateWebACL", "wafv2:GetWebACL",
                "wafv2:GetWebACLForResource", "wafv2:AssociateWebACL",
                "wafv2:DisassociateWebACL", "shield:GetSubscriptionState",
                "shield:DescribeProtection", "shield:CreateProtection",
                "shield:DeleteProtection",
            ],
            "Resource": "*",
        },
        {
            "Sid": "SecurityGroupIngress",
            "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
            "Resource": "*",
        },
        {"Sid": "CreateSecurityGroup", "Action": ["ec2:CreateSecurityGroup"], "Resource": "*"},
        {
            "Sid": "TagNewSecurityGroup",
            "Action": ["ec2:CreateTags"],
            "Resource": sg,
            "Condition": {
                "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"},
                **_tag_null(request="false"),
            },
        },
        {
            "Sid": "TagOwnSecurityGroup",
            "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
            "Resource": sg,
            "Condition": _tag_null(request="true", resource="false"),
        },
        {
            "Sid": "ManageOwnSecurityGroup",
            "Action": [
                "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
            ],
            "Resource": "*",
            "Condition": _tag_null(resource="false"),
        },
        {
            "Sid": "CreateTaggedLoadBalancer",
            "Action": [
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:CreateTargetGroup",
            ],
            "Resource": "*",
            "Condition": _tag_null(request="false"),
        },
        {
            "Sid": "ListenersAndRules",
            "Action": [
                "elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule",
            ],
            "Resource": "*",
        },
        {
            "Sid": "TagOwnLoadBalancer",
            "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            "Resource": lb_and_tg,
            "Condition": _tag_null(request="true", resource="false"),
        },
        {
            "Sid": "TagListenersAndRules",
            "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            "Resource": [
                f"{elb}:listener/net/*/*/*", f"{elb}:listener/app/*/*/*",
                f"{elb}:listener-rule/net/*/*/*", f"{elb}:listener-rule/app/*/*/*",
            ],
        },
        {
            "Sid": "ManageOwnLoadBalancer",
            "Action": [
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:SetIpAddressType", "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets", "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:ModifyListenerAttributes",
                "elasticloadbalancing:ModifyCapacityReservation",
                "elasticloadbalancing:ModifyIpPools",
            ],
            "Resource": "*",
            "Condition": _tag_null(resource="false"),
        },
        {
            "Sid": "TagOnCreate",
            "Action": ["elasticloadbalancing:AddTags"],
            "Resource": lb_and_tg,
            "Condition": {
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"]
                },
                **_tag_null(request="false"),
            },
        },
        {
            "Sid": "RegisterTargets",
            "Action": [
                "elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"
            ],
            "Resource": f"{elb}:targetgroup/*/*",
        },
        {
            "Sid": "ListenerSettings",
            "Action": [
                "elasticloadbalancing:SetWebAcl", "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:AddListenerCertificates",
                "elasticloadbalancing:RemoveListenerCertificates",
                "elasticloadbalancing:ModifyRule", "elasticloadbalancing:SetRulePriorities",
            ],
            "Resource": "*",
        },
    ]
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": st.pop("Sid"), "Effect": "Allow", **st} for st in statements],
    }
