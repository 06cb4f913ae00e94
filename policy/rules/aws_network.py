"""AWS network: nothing open to the world except web ports, flow logs where they matter."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from policy.core import Context, Policy, Resource, is_known

WORLD = {"0.0.0.0/0", "::/0"}
# An internet-facing load balancer listens here; anything else open to the world is a mistake.
WEB_PORTS = {80, 443}


def _ingress_rules(r: Resource) -> Iterator[Mapping[str, Any]]:
    p = r.props
    if r.type == "aws:ec2/securityGroup:SecurityGroup":
        yield from (x for x in p.get("ingress") or [] if isinstance(x, Mapping))
    elif r.type == "aws:ec2/securityGroupRule:SecurityGroupRule" and p.get("type") == "ingress":
        yield p
    elif r.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        yield {"cidrBlocks": [p.get("cidrIpv4")], "ipv6CidrBlocks": [p.get("cidrIpv6")],
               "fromPort": p.get("fromPort"), "toPort": p.get("toPort"),
               "protocol": p.get("ipProtocol")}


def _ports(rule: Mapping[str, Any]) -> set[int] | None:
    """The ports a rule opens; None for all ports (protocol -1 or no range)."""
    if str(rule.get("protocol")) in ("-1", "all"):
        return None
    lo, hi = rule.get("fromPort"), rule.get("toPort")
    if not isinstance(lo, int) or not isinstance(hi, int):
        return None
    return set(range(lo, hi + 1)) if hi - lo < 1024 else None


def no_world_ingress(r: Resource, ctx: Context) -> Iterable[str]:
    for rule in _ingress_rules(r):
        cidrs = {c for key in ("cidrBlocks", "ipv6CidrBlocks") for c in rule.get(key) or []
                 if is_known(c)}
        if not cidrs & WORLD:
            continue
        ports = _ports(rule)
        if ports is None or ports - WEB_PORTS:
            span = f"ports {rule.get('fromPort')}-{rule.get('toPort')}"
            shown = "all ports" if ports is None else span
            yield (f"ingress from {', '.join(sorted(cidrs & WORLD))} on {shown}: allow-list the "
                   f"sources (a VPC CIDR, a security group, an office range) or open only "
                   f"80/443 for a load balancer")


def flow_logs_in_prod(resources: list[Resource], ctx: Context) -> Iterable[tuple[str, str]]:
    if ctx.environment != "prod":
        return
    vpcs = [r for r in resources if r.type == "aws:ec2/vpc:Vpc"]
    if vpcs and not any(r.type == "aws:ec2/flowLog:FlowLog" for r in resources):
        for vpc in vpcs:
            yield ("prod VPC without flow logs: set llm-platform:network.flowLogs: true",
                   vpc.urn)


POLICIES = [
    Policy("no-world-open-ingress",
           "Security groups open nothing but 80/443 to 0.0.0.0/0 or ::/0.",
           mandatory=True, check=no_world_ingress),
    Policy("vpc-flow-logs-in-prod", "A prod VPC has flow logs.",
           mandatory=False, stack_check=flow_logs_in_prod),
]
