"""Config of the model store and the GCS Redis: profile defaults, and each bad input is a
ConfigError naming its key (and the numbers or values that are wrong)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.config import ConfigError, own_keys, validate
from infra.config.profiles import with_profile
from tools.render import stack_config

STORE = "llm-platform-prod-models-123456789012"
# An S3 source has no catalogued architecture: state it (Llama-3.1-8B's config.json) so that
# the capacity check passes and only the model-store checks speak.
LLAMA_8B_FACTS = {"parametersBillions": 8.03, "numLayers": 32, "numAttentionHeads": 32,
                  "numKvHeads": 8, "headDim": 128, "contextLength": 131072}


def values_of(stack: str) -> tuple[dict[str, Any], set[str]]:
    raw, secrets = stack_config(stack)
    values, secret_keys = own_keys(raw, set(secrets))
    return with_profile(values), secret_keys


def problems(values: dict[str, Any], secrets: set[str] | None = None) -> list[str]:
    """The config problems; `secrets` default: the stack file's (its huggingFaceToken)."""
    if secrets is None:
        secrets = {"huggingFaceToken"} & set(values)
    with pytest.raises(ConfigError) as exc:
        validate(values, set(secrets))
    return exc.value.problems


def with_source(stack: str, source: str, **store: Any) -> dict[str, Any]:
    values, _ = values_of(stack)
    values = copy.deepcopy(values)
    values["serving"]["models"][0]["source"] = source
    values["serving"]["models"][0]["facts"] = LLAMA_8B_FACTS
    values["modelStore"] = {**values.get("modelStore", {}), **store}
    return values


def test_profiles_put_redis_in_elasticache_outside_dev_and_protect_prod_store() -> None:
    dev, staging, prod = (validate(*values_of(s)) for s in ("dev", "staging", "prod"))
    assert dev.gcs_fault_tolerance.backend == "inCluster"
    assert staging.gcs_fault_tolerance.backend == prod.gcs_fault_tolerance.backend == "elasticache"
    assert prod.gcs_fault_tolerance.elasticache.replicas >= 1
    assert prod.model_store.protect and not dev.model_store.protect
    assert not prod.model_store.image_has_streamer


def test_s3_source_outside_the_store_without_grant_names_the_key() -> None:
    (p,) = problems(with_source("prod", "s3://someone-elses/llama/", bucketName=STORE))
    assert p.startswith("llm-platform:modelStore: serving.models[0].source "
                        "'s3://someone-elses/llama/' is outside the stack's bucket")
    assert "modelStore.extraReadGrants" in p and "'s3://someone-elses/llama/'" in p


def test_s3_source_without_a_named_store_bucket_says_how_to_fix_it() -> None:
    (p,) = problems(with_source("dev", "s3://my-models/models/llama/"))
    assert "serving.models[0].source" in p and "set modelStore.bucketName" in p


def test_explicit_grant_or_the_stack_bucket_make_an_s3_source_valid() -> None:
    granted = with_source("prod", "s3://shared/llama/8b/", extraReadGrants=["s3://shared/llama/"])
    assert validate(granted, {"huggingFaceToken"}).model_store.extra_read_grants == ["s3://shared/llama/"]
    own = with_source("prod", f"s3://{STORE}/models/llama-8b/", bucketName=STORE)
    assert validate(own, {"huggingFaceToken"}).serving.models[0].source.startswith("s3://")


def test_s3_source_in_the_bucket_but_outside_the_models_prefix_is_refused() -> None:
    (p,) = problems(with_source("prod", f"s3://{STORE}/code/x/", bucketName=STORE))
    assert "serving.models[0].source" in p and "outside modelStore.modelsPrefix 'models/'" in p


def test_grant_must_be_a_prefix() -> None:
    values = with_source("prod", "s3://shared/llama/", extraReadGrants=["s3://shared/llama"])
    (p,) = problems(values)
    assert p.startswith("llm-platform:modelStore.extraReadGrants: extraReadGrants[0]")


def test_streaming_load_format_needs_an_image_with_the_streamer() -> None:
    values = with_source("prod", f"s3://{STORE}/models/llama/", bucketName=STORE)
    values["serving"]["models"][0]["engineArgs"]["load_format"] = "runai_streamer"
    (p,) = problems(values)
    assert "serving.models[0].engineArgs.load_format 'runai_streamer'" in p
    assert "modelStore.imageHasStreamer" in p
    values["modelStore"]["imageHasStreamer"] = True
    assert validate(values, {"huggingFaceToken"})


def test_prod_must_not_keep_the_gcs_in_the_cluster() -> None:
    values, secrets = values_of("prod")
    values["gcsFaultTolerance"] = {"backend": "inCluster"}
    (p,) = problems(values, secrets)
    assert p.startswith("llm-platform:gcsFaultTolerance: backend 'inCluster' in prod")


@pytest.mark.parametrize(("gcs", "expected"), [
    ({"backend": "external"}, "gcsFaultTolerance: backend external needs externalAddress"),
    ({"backend": "elasticache", "externalAddress": "rediss://r.example:6379"},
     "gcsFaultTolerance: externalAddress is only used with backend external"),
    ({"backend": "external", "externalAddress": "r.example:6379"},
     "gcsFaultTolerance.externalAddress: String should match pattern"),
    ({"elasticache": {"replicas": 0}},
     "gcsFaultTolerance.elasticache.replicas: Input should be greater than or equal to 1"),
    ({"inCluster": {"storageGib": 0}},
     "gcsFaultTolerance.inCluster.storageGib: Input should be greater than or equal to 1"),
])
def test_bad_gcs_settings_name_their_key(gcs: dict[str, Any], expected: str) -> None:
    values, secrets = values_of("staging")
    values["gcsFaultTolerance"] = gcs
    assert any(p.startswith(f"llm-platform:{expected}") for p in problems(values, secrets))


def test_secrets_must_be_pulumi_secrets_and_errors_never_echo_them() -> None:
    values, _ = values_of("prod")
    values["huggingFaceToken"] = "hf_plaintext_token_value"
    (p,) = problems(values, set())
    assert p.startswith("llm-platform:huggingFaceToken: must be a Pulumi secret")
    values, _ = values_of("prod")
    values["redisAuthToken"] = "short@"
    (p,) = problems(values, {"redisAuthToken", "huggingFaceToken"})
    assert p.startswith("llm-platform:redisAuthToken: must be 16 to 128 printable characters")
    assert "(got 6 characters)" in p and "short@" not in p


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("bucketName", "Bad_Bucket", "modelStore.bucketName: String should match pattern"),
    ("modelsPrefix", "models", "modelStore.modelsPrefix: String should match pattern"),
    ("noncurrentVersionDays", 0,
     "modelStore.noncurrentVersionDays: Input should be greater than or equal to 1"),
    ("serviceAccount", "Ray_SA", "modelStore.serviceAccount: String should match pattern"),
])
def test_bad_model_store_settings_name_their_key(path: str, value: Any, expected: str) -> None:
    values, secrets = values_of("dev")
    values["modelStore"] = {path: value}
    assert any(p.startswith(f"llm-platform:{expected}") for p in problems(values, secrets))


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_gated_hugging_face_sources_without_a_token_are_refused_by_path(stack: str) -> None:
    values, secrets = values_of(stack)
    assert values.get("huggingFaceToken")  # the stack files carry the placeholder
    values = copy.deepcopy(values)
    del values["huggingFaceToken"]
    found = problems(values, secrets - {"huggingFaceToken"})
    gated = [p for p in found if "gated Hugging Face repository" in p]
    assert gated and all(p.startswith("llm-platform:serving.models[") for p in gated)
    assert "pulumi config set --secret huggingFaceToken" in gated[0]


def test_gated_imports_need_the_token_and_ungated_sources_do_not() -> None:
    values, secrets = values_of("dev")
    values = copy.deepcopy(values)
    del values["huggingFaceToken"]
    values["serving"]["models"][0]["source"] = "Qwen/Qwen2.5-7B-Instruct"
    values["modelStore"] = {"imports": [{"repo": "meta-llama/Llama-3.1-8B-Instruct",
                                         "revision": "0e9e39f249a16976918f6564b8830bc894c89659",
                                         "prefix": "llama-8b/"}]}
    found = [p for p in problems(values, secrets - {"huggingFaceToken"}) if "gated" in p]
    assert len(found) == 1 and found[0].startswith("llm-platform:modelStore.imports[0].repo")


def test_lora_source_must_be_readable_by_the_ray_pods() -> None:
    """A LoRA source in the stack's bucket lies under modelStore.lorasPrefix (which the reader
    role may read and list); anywhere else it needs an extraReadGrants entry."""
    def with_lora(source: str) -> dict[str, Any]:
        values = with_source("prod", f"s3://{STORE}/models/llama-8b/", bucketName=STORE)
        values["serving"]["models"][0]["lora"] = {"source": source, "maxAdapters": 2}
        return values

    (p,) = problems(with_lora(f"s3://{STORE}/models/loras/llama-8b/"))
    assert p.startswith("llm-platform:modelStore: serving.models[0].lora.source ")
    assert "outside modelStore.lorasPrefix 'loras/'" in p
    (p,) = problems(with_lora("s3://other-bucket/loras/x/"))
    assert "serving.models[0].lora.source" in p and "modelStore.extraReadGrants" in p
    good = with_lora(f"s3://{STORE}/loras/llama-8b/")
    ok = validate(good, {"huggingFaceToken"} & set(good))
    assert ok.serving.models[0].lora.source.endswith("/loras/llama-8b/")
