"""S3: every bucket has explicit server-side encryption and a full public access block.

In pulumi-aws 7 both are separate resources that name their bucket; a bucket is matched to them
by the engine's property dependencies (`bucket` computed from the Bucket) or by its name/id.
"""

from __future__ import annotations

from collections.abc import Iterable

from policy.core import Context, Policy, Resource, get

BUCKETS = {"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"}
SSE = {
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
}
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
KMS = {"aws:kms", "aws:kms:dsse"}


def _targets(r: Resource, bucket: Resource) -> bool:
    if bucket.urn and bucket.urn in (r.property_deps.get("bucket") or []):
        return True
    names = {bucket.props.get("bucket"), f"<{bucket.name}-id>", bucket.name}
    return r.props.get("bucket") in names - {None}


def _algorithms(r: Resource) -> set[str]:
    rules = r.props.get("rules") or get(r.props, "serverSideEncryptionConfiguration.rules") or []
    if isinstance(rules, dict):
        rules = [rules]
    return {str(get(x, "applyServerSideEncryptionByDefault.sseAlgorithm")) for x in rules}


def bucket_encrypted(resources: list[Resource], ctx: Context) -> Iterable[tuple[str, str]]:
    for b in (r for r in resources if r.type in BUCKETS):
        algs = _algorithms(b) | {a for r in resources if r.type in SSE and _targets(r, b)
                                 for a in _algorithms(r)}
        algs.discard("None")
        if not algs:
            yield (f"bucket {b.name} has no server-side encryption configuration: add an "
                   f"aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm "
                   f"'aws:kms' and the stack's KMS key", b.urn)


def bucket_kms(resources: list[Resource], ctx: Context) -> Iterable[tuple[str, str]]:
    for b in (r for r in resources if r.type in BUCKETS):
        algs = {a for r in resources if r.type in SSE and _targets(r, b) for a in _algorithms(r)}
        if algs and not algs & KMS:
            yield (f"bucket {b.name} is encrypted with {sorted(algs)}: use 'aws:kms' with a "
                   f"customer key, so that reading needs kms:Decrypt too", b.urn)


def public_access_blocked(resources: list[Resource], ctx: Context) -> Iterable[tuple[str, str]]:
    for b in (r for r in resources if r.type in BUCKETS):
        blocks = [r for r in resources if r.type == PAB and _targets(r, b)]
        if not blocks:
            yield (f"bucket {b.name} has no public access block: add an "
                   f"aws.s3.BucketPublicAccessBlock with all four flags true", b.urn)
            continue
        off = [f for f in PAB_FLAGS if not any(x.props.get(f) is True for x in blocks)]
        if off:
            yield (f"bucket {b.name}: public access block leaves {', '.join(off)} off: "
                   f"set them to true", b.urn)


POLICIES = [
    Policy("s3-bucket-encrypted", "Every S3 bucket has explicit server-side encryption.",
           mandatory=True, stack_check=bucket_encrypted),
    Policy("s3-public-access-blocked", "Every S3 bucket blocks all public access.",
           mandatory=True, stack_check=public_access_blocked),
    Policy("s3-bucket-kms", "S3 buckets use SSE-KMS rather than SSE-S3.",
           mandatory=False, stack_check=bucket_kms),
]
