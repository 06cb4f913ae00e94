"""`modelStore`: the stack's S3 bucket for weights and the serving code, and the
optional model imports (infra/serving/model_store.py, model_import.py).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from infra.config.base import DnsLabel
from serve_app.config import StrictModel

S3_BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
S3Uri = Annotated[str, Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$")]
KeyPrefix = Annotated[str, Field(pattern=r"^([A-Za-z0-9!_.*'()-]+/)+$")]
# runai_streamer streams safetensors from S3 into GPU memory; Ray Serve LLM then skips the
# download to local disk (ray/llm/_internal/common/utils/download_utils.py, Ray 2.60).
STREAMING_LOAD_FORMATS = ("runai_streamer", "runai_streamer_sharded")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b` -> (`bucket`, `a/b`)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def model_source_problem(
    source: str, store: ModelStoreConfig, *, lora: bool = False
) -> str | None:
    """Why an `s3://` model source (`lora`: a LoRA adapter folder) is not readable by the Ray
    pods' role, or None if it is (or is not an S3 source: Hugging Face ids and local paths need
    no grant)."""
    if not source.startswith("s3://"):
        return None
    bucket, key = split_s3_uri(source)
    folder = source if source.endswith("/") else source + "/"
    field, prefix = (("lorasPrefix", store.loras_prefix) if lora
                     else ("modelsPrefix", store.models_prefix))
    if bucket == store.bucket_name:
        if key.startswith(prefix):
            return None
        return (f"is in the stack's bucket but outside modelStore.{field} "
                f"{prefix!r}, which is all the Ray pods may read there")
    if any(folder.startswith(grant) for grant in store.extra_read_grants):
        return None
    own = (f"the stack's bucket {store.bucket_name!r}" if store.bucket_name
           else "the stack's bucket (set modelStore.bucketName to name it)")
    return (f"is outside {own} and not under any modelStore.extraReadGrants entry; add "
            f"{folder!r} there to grant the Ray pods read access explicitly")


# Moving refs: a revision that names one is not pinned (a re-run would copy other bytes).
MOVING_REVISIONS = ("main", "master", "HEAD")


class ModelImport(StrictModel):
    """One Hugging Face model copied once into the model store by a Kubernetes Job
    (infra/serving/model_import.py, docs/cold-start.md "Importing a model into the store")."""

    repo: str = Field(
        ..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$",
        description="Hugging Face model repository, `owner/name` (e.g. `Qwen/Qwen2.5-0.5B`).",
    )
    revision: str = Field(
        ..., pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="The pinned revision to copy: a 40-character commit sha (best) or a tag. "
        "Branch names such as `main` are refused: they move.",
    )
    prefix: str = Field(
        ..., pattern=r"^([A-Za-z0-9_-][A-Za-z0-9_.-]*/)+$",
        description="Destination key prefix (ending in `/`) under `modelStore.modelsPrefix`; "
        "the model lands at `s3://<bucket>/<modelsPrefix><prefix>`.",
    )
    scratch_gib: int = Field(
        40, ge=1, le=2000,
        description="GiB of node disk (emptyDir) the Job may fill with the download; at least "
        "the model's size.",
    )

    @field_validator("revision")
    @classmethod
    def _pinned(cls, v: str) -> str:
        if v in MOVING_REVISIONS:
            raise ValueError(f"revision {v!r} is a branch that moves; give a commit sha or a tag")
        return v

    @field_validator("prefix")
    @classmethod
    def _no_dot_segments(cls, v: str) -> str:
        if any(part in (".", "..") for part in v.split("/")):
            raise ValueError(f"prefix {v!r} has a '.' or '..' segment")
        return v


class ModelStoreConfig(StrictModel):
    """The stack's S3 bucket for model weights and the serving code (see docs/cold-start.md)."""

    bucket_name: str | None = Field(
        None, pattern=S3_BUCKET_PATTERN,
        description="S3 bucket of this stack's model store. Unset: "
        "`llm-platform-<stack>-models-<accountId>`. Set it to write `s3://` model sources "
        "that point into the stack's own bucket.",
    )
    models_prefix: KeyPrefix = Field(
        "models/", description="Key prefix (ending in `/`) under which the Ray pods may read "
        "model weights.",
    )
    loras_prefix: KeyPrefix = Field(
        "loras/", description="Key prefix (ending in `/`) under which the Ray pods may read "
        "and list LoRA adapters (`serving.models[].lora.source`).",
    )
    code_prefix: KeyPrefix = Field(
        "code/", description="Key prefix (ending in `/`) of the content-addressed serve_app "
        "bundles (`<prefix>serve_app-<sha256>.zip`).",
    )
    extra_read_grants: list[S3Uri] = Field(
        default_factory=list, max_length=20,
        description="Explicit read grants for `s3://bucket/prefix/` locations outside the "
        "stack's bucket; an `s3://` model source must lie in the stack's bucket or under one "
        "of these.",
    )
    image_has_streamer: bool = Field(
        False, description="The serving image ships `runai-model-streamer[s3]`, so models may "
        "set `engineArgs.load_format: runai_streamer` (stream weights from S3). The pinned "
        "`rayproject/ray-llm` image does not (docs/cold-start.md).",
    )
    protect: bool = Field(
        False, description="Pulumi `protect` on the bucket and its KMS key. The bucket is "
        "kept on `pulumi destroy` in every environment (retainOnDelete).",
    )
    noncurrent_version_days: int = Field(
        30, ge=1, le=3650,
        description="Days S3 keeps replaced object versions (old code bundles, weights).",
    )
    service_account: DnsLabel = Field(
        "ray-serving", description="Kubernetes ServiceAccount of the Ray pods; its Pod "
        "Identity role reads the model store.",
    )
    imports: list[ModelImport] = Field(
        default_factory=list, max_length=20,
        description="Hugging Face models to copy into the store, one one-shot Job each "
        "(docs/cold-start.md). Empty: no Job, no importer role.",
    )
    import_cpu: int = Field(
        2, ge=1, le=16, description="CPU cores (vCPU) requested by each import Job's pod.",
    )
    import_memory_gib: int = Field(
        4, ge=1, le=64, description="Memory (GiB) requested by each import Job's pod.",
    )
    import_timeout_minutes: int = Field(
        60, ge=5, le=1440,
        description="Minutes an import Job may run (activeDeadlineSeconds) and `pulumi up` "
        "waits for it.",
    )
    importer_service_account: DnsLabel = Field(
        "model-importer", description="Kubernetes ServiceAccount of the import Jobs; its Pod "
        "Identity role may write only under each import's prefix.",
    )

    @field_validator("importer_service_account")
    @classmethod
    def _importer_has_its_own_identity(cls, v: str, info: ValidationInfo) -> str:
        if v == info.data.get("service_account"):
            raise ValueError(f"importerServiceAccount {v!r} is the Ray pods' serviceAccount; "
                             "the importer's write role needs a ServiceAccount of its own")
        return v

    @field_validator("imports")
    @classmethod
    def _imports_distinct(cls, v: list[ModelImport]) -> list[ModelImport]:
        seen: dict[str, int] = {}
        for i, imp in enumerate(v):
            if imp.prefix in seen:
                raise ValueError(
                    f"imports[{i}].prefix {imp.prefix!r} is also imports[{seen[imp.prefix]}]'s;"
                    " two models would overwrite each other"
                )
            seen[imp.prefix] = i
        return v

    @field_validator("extra_read_grants")
    @classmethod
    def _grants_are_prefixes(cls, v: list[str]) -> list[str]:
        for i, uri in enumerate(v):
            if not uri.endswith("/"):
                raise ValueError(f"extraReadGrants[{i}] {uri!r} must end in '/' (a prefix)")
        return v


PROFILES = {
    "dev": {"noncurrentVersionDays": 7},
    "prod": {"protect": True, "noncurrentVersionDays": 90},
}


# Hugging Face organisations whose model repositories are gated: downloading needs a token of
# an account that accepted the licence (each meta-llama model card: "You need to agree to share
# your contact information to access this model"; the Hub answers 401 otherwise, when the
# replica starts on a GPU node, not at `pulumi up`).
GATED_HF_OWNERS = ("meta-llama",)


def is_gated_hf_source(source: str) -> bool:
    """A Hugging Face repo id (`owner/name`, no scheme, not a path) of a gated organisation."""
    if "://" in source or source.startswith(("/", ".")) or source.count("/") != 1:
        return False
    return source.split("/", 1)[0] in GATED_HF_OWNERS


def gated_source_problems(
    sources: list[str], imports: list[ModelImport], has_token: bool
) -> list[str]:
    """Gated Hugging Face repositories read with no `huggingFaceToken`: each model source
    (`serving.models[i].source`) and each `modelStore.imports[i].repo`, by path."""
    if has_token:
        return []
    fix = ("is a gated Hugging Face repository: set `pulumi config set --secret "
           "huggingFaceToken hf_...` (an account that accepted its licence), or serve a copy "
           "from the model store (an s3:// source)")
    out = [f"serving.models[{i}].source {s!r} {fix}"
           for i, s in enumerate(sources) if is_gated_hf_source(s)]
    out += [f"modelStore.imports[{i}].repo {imp.repo!r} {fix}"
            for i, imp in enumerate(imports) if is_gated_hf_source(imp.repo)]
    return out
