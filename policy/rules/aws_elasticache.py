"""ElastiCache (the GCS fault-tolerance Redis): encrypted at rest and in transit, with auth."""

from __future__ import annotations

from collections.abc import Iterable

from policy.core import Context, Policy, Resource

GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"


def encrypted(r: Resource, ctx: Context) -> Iterable[str]:
    if r.type != GROUP:
        return
    for key in ("atRestEncryptionEnabled", "transitEncryptionEnabled"):
        if r.props.get(key) not in (True, "true"):
            yield f"{key} is not true: set it (Ray's GCS state and its auth token travel here)"
    if r.props.get("transitEncryptionEnabled") in (True, "true") and not r.props.get("authToken"):
        yield "no authToken: set it from a Pulumi secret so that only Ray can reach the GCS store"


POLICIES = [
    Policy("elasticache-encrypted",
           "ElastiCache replication groups encrypt at rest and in transit and require a token.",
           mandatory=False, check=encrypted),
]
