"""RDS / Aurora (the RAG vector database): encrypted with a key of ours, never public."""

from __future__ import annotations

from collections.abc import Iterable

from policy.core import Context, Policy, Resource

CLUSTER = "aws:rds/cluster:Cluster"
INSTANCES = ("aws:rds/clusterInstance:ClusterInstance", "aws:rds/instance:Instance")


def _true(value: object) -> bool:
    return value in (True, "true")


def encrypted(r: Resource, ctx: Context) -> Iterable[str]:
    if r.type != CLUSTER:
        return
    if not _true(r.props.get("storageEncrypted")):
        yield ("storageEncrypted is not true: set it (the vector stores hold the tenants' "
               "documents)")
    elif not r.props.get("kmsKeyId"):
        yield "no kmsKeyId: encrypt with a customer managed key that rotates, not aws/rds"
    if not _true(r.props.get("manageMasterUserPassword")) and r.props.get("masterPassword"):
        yield ("masterPassword is set in the program: use manageMasterUserPassword (RDS keeps and "
               "rotates it in Secrets Manager, out of the Pulumi state)")


def not_public(r: Resource, ctx: Context) -> Iterable[str]:
    if r.type in INSTANCES and _true(r.props.get("publiclyAccessible")):
        yield ("publiclyAccessible is true: set it to false, the database must be reachable "
               "from the VPC only")


POLICIES = [
    Policy("rds-encrypted",
           "Aurora/RDS clusters encrypt storage with a customer managed key and let RDS manage "
           "the master password.", mandatory=True, check=encrypted),
    Policy("rds-not-public", "Aurora/RDS instances are not publicly accessible.",
           mandatory=True, check=not_public),
]
