"""The VPC: public and private subnets across N zones, NAT, endpoints, flow logs.

Subnet ranges come from `subnet_plan`, a pure function of the config, so they can be checked
without a cloud. Private subnets carry the `karpenter.sh/discovery` tag that the EC2NodeClass
selects on; public ones carry the load balancer role tag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.component import register_declared_outputs
from infra.config.network import NetworkConfig
from infra.context import StackContext
from infra.iam import service_trust_policy

DISCOVERY_TAG = "karpenter.sh/discovery"


@dataclass(frozen=True)
class SubnetPlan:
    private: list[IPv4Network]
    public: list[IPv4Network]
    pods: list[IPv4Network]


def subnet_plan(
    vpc_cidr: IPv4Network, az_count: int, pod_cidr: IPv4Network | None = None
) -> SubnetPlan:
    """Split the VPC range into eighths: one large private subnet per AZ (up to 6), one eighth
    left spare, and the last eighth cut into eight small public subnets. Pod subnets (when a
    secondary range is set) are eighths of that range."""
    if not 1 <= az_count <= 6:
        raise ValueError(f"az_count must be 1..6, got {az_count}")
    eighths = list(vpc_cidr.subnets(prefixlen_diff=3))
    private = eighths[:az_count]
    public = list(eighths[7].subnets(prefixlen_diff=3))[:az_count]
    pods = list(pod_cidr.subnets(prefixlen_diff=3))[:az_count] if pod_cidr else []
    return SubnetPlan(private, public, pods)


def flow_log_policy(log_group_arn: str) -> dict[str, Any]:
    """Write access to the one flow-log group; the actions are those the VPC User Guide lists
    for the flow-log role ("IAM role for publishing flow logs to CloudWatch Logs"), minus
    logs:CreateLogGroup (the program creates the group)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "FindFlowLogGroup",
                "Effect": "Allow",
                # The service looks its group up (DescribeLogGroups) before it writes; that
                # action takes no resource narrower than "*" (IAM service authorization
                # reference; parliament enforces it).
                "Action": "logs:DescribeLogGroups",
                "Resource": "*",
            },
            {
                "Sid": "WriteFlowLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"],
            }
        ],
    }


class Network(pulumi.ComponentResource):
    """VPC for one cluster."""

    vpc: aws.ec2.Vpc
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    # (zone, subnet id) per zone; empty without `podCidr`.
    pod_subnets: list[tuple[pulumi.Output[str], pulumi.Output[str]]]
    zones: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        cfg: NetworkConfig,
        ctx: StackContext,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llm-platform:aws:Network", name, None, opts)
        cluster_name, tags = ctx.cluster_name, ctx.tags
        child = pulumi.ResourceOptions(parent=self)
        plan = subnet_plan(cfg.vpc_cidr, cfg.az_count, cfg.pod_cidr)

        def t(extra: dict[str, str] | None = None, **kw: str) -> dict[str, str]:
            return {**tags, **(extra or {}), **kw}

        zones = aws.get_availability_zones_output(state="available").names.apply(
            lambda names: _first_zones(names, cfg.az_count)
        )
        self.zones = zones
        region = aws.get_region_output().region

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(cfg.vpc_cidr),
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=t(Name=f"{cluster_name}-vpc"),
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags=t(Name=f"{cluster_name}-igw"), opts=child
        )
        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=self.vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags=t(Name=f"{cluster_name}-public"),
            opts=child,
        )

        public: list[aws.ec2.Subnet] = []
        private: list[aws.ec2.Subnet] = []
        for i in range(cfg.az_count):
            zone = zones.apply(lambda z, i=i: z[i])
            pub = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=self.vpc.id,
                cidr_block=str(plan.public[i]),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags=t({"kubernetes.io/role/elb": "1"}, Name=f"{cluster_name}-public-{i}"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}", subnet_id=pub.id, route_table_id=public_rt.id, opts=child
            )
            public.append(pub)
            private.append(
                aws.ec2.Subnet(
                    f"{name}-private-{i}",
                    vpc_id=self.vpc.id,
                    cidr_block=str(plan.private[i]),
                    availability_zone=zone,
                    tags=t(
                        {"kubernetes.io/role/internal-elb": "1", DISCOVERY_TAG: cluster_name},
                        Name=f"{cluster_name}-private-{i}",
                    ),
                    opts=child,
                )
            )

        # NAT: one per zone (a zone outage keeps the others' egress) or one for the VPC.
        nat_count = cfg.az_count if cfg.nat_gateways == "perAz" else 1
        nats = []
        for i in range(nat_count):
            eip = aws.ec2.Eip(
                f"{name}-nat-{i}", domain="vpc", tags=t(Name=f"{cluster_name}-nat-{i}"), opts=child
            )
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    allocation_id=eip.id,
                    subnet_id=public[i].id,
                    tags=t(Name=f"{cluster_name}-nat-{i}"),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )
        private_rts = []
        for i, subnet in enumerate(private):
            rt = aws.ec2.RouteTable(
                f"{name}-private-{i}",
                vpc_id=self.vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nats[i % nat_count].id}],
                tags=t(Name=f"{cluster_name}-private-{i}"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}", subnet_id=subnet.id, route_table_id=rt.id, opts=child
            )
            private_rts.append(rt)

        # Optional secondary range for pods (VPC CNI custom networking uses these subnets).
        self.pod_subnets = []
        if cfg.pod_cidr is not None:
            assoc = aws.ec2.VpcIpv4CidrBlockAssociation(
                f"{name}-pod-cidr", vpc_id=self.vpc.id, cidr_block=str(cfg.pod_cidr), opts=child
            )
            for i, block in enumerate(plan.pods):
                zone = zones.apply(lambda z, i=i: z[i])
                sub = aws.ec2.Subnet(
                    f"{name}-pods-{i}",
                    vpc_id=self.vpc.id,
                    cidr_block=str(block),
                    availability_zone=zone,
                    tags=t(Name=f"{cluster_name}-pods-{i}"),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[assoc]),
                )
                aws.ec2.RouteTableAssociation(
                    f"{name}-pods-{i}",
                    subnet_id=sub.id,
                    route_table_id=private_rts[i].id,
                    opts=child,
                )
                self.pod_subnets.append((zone, sub.id))

        # Image layers come from S3 (ECR's storage): a free gateway endpoint keeps them off NAT.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc.id,
            service_name=region.apply(lambda r: f"com.amazonaws.{r}.s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_rts],
            tags=t(Name=f"{cluster_name}-s3"),
            opts=child,
        )
        if cfg.interface_endpoints:
            inside = [str(cfg.vpc_cidr)] + ([str(cfg.pod_cidr)] if cfg.pod_cidr else [])
            sg = aws.ec2.SecurityGroup(
                f"{name}-endpoints",
                vpc_id=self.vpc.id,
                description="HTTPS from inside the VPC to interface endpoints",
                ingress=[
                    {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": inside}
                ],
                tags=t(Name=f"{cluster_name}-endpoints"),
                opts=child,
            )
            for svc in cfg.interface_endpoints:
                aws.ec2.VpcEndpoint(
                    f"{name}-{svc.replace('.', '-')}",
                    vpc_id=self.vpc.id,
                    service_name=region.apply(lambda r, svc=svc: f"com.amazonaws.{r}.{svc}"),
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in private],
                    security_group_ids=[sg.id],
                    tags=t(Name=f"{cluster_name}-{svc}"),
                    opts=child,
                )

        if cfg.flow_logs:
            self._flow_logs(name, cluster_name, cfg, t)

        self.vpc_id = self.vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        register_declared_outputs(self)

    def _flow_logs(self, name: str, cluster_name: str, cfg: NetworkConfig, t: Any) -> None:
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output().account_id
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/aws/vpc/{cluster_name}/flow-logs",
            retention_in_days=cfg.flow_log_retention_days,
            tags=t(),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=account.apply(
                lambda a: json.dumps(service_trust_policy("vpc-flow-logs.amazonaws.com", a))
            ),
            tags=t(),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=group.arn.apply(lambda arn: json.dumps(flow_log_policy(arn))),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=t(),
            opts=child,
        )


def _first_zones(names: list[str], count: int) -> list[str]:
    if len(names) < count:
        raise ValueError(
            f"network.azCount is {count} but the region has only {len(names)} available zones"
        )
    return list(names[:count])
