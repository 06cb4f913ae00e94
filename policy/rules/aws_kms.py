"""KMS: symmetric keys rotate."""

from __future__ import annotations

from collections.abc import Iterable

from policy.core import Context, Policy, Resource


def key_rotation(r: Resource, ctx: Context) -> Iterable[str]:
    if r.type != "aws:kms/key:Key":
        return
    # AWS rotates only symmetric encryption keys; asymmetric and HMAC keys cannot rotate.
    spec = r.props.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    usage = r.props.get("keyUsage") or "ENCRYPT_DECRYPT"
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
        return
    if r.props.get("enableKeyRotation") is not True:
        yield "key rotation off: set enable_key_rotation=True on the aws.kms.Key"


POLICIES = [
    Policy("kms-key-rotation", "Symmetric KMS keys rotate yearly.",
           mandatory=True, check=key_rotation),
]
