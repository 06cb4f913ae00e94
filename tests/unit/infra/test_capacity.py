"""Capacity check at config load: each bad input is a ConfigError at the model's (or pool's) key
path that names the numbers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.capacity import fit as capacity
from infra.capacity.model_catalog import facts_for
from infra.config import ConfigError, own_keys, validate
from tools.render import stack_config

P = "llm-platform:"


def dev_values() -> tuple[dict[str, Any], set[str]]:
    values, secrets = stack_config("dev")
    return own_keys(values, set(secrets))


def problems_of(edit: Any) -> str:
    values, secrets = dev_values()
    values = copy.deepcopy(values)
    edit(values)
    with pytest.raises(ConfigError) as exc:
        validate(values, secrets)
    return str(exc.value)


def model(**kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "m", "source": "meta-llama/Llama-3.1-8B-Instruct",
        "engineArgs": {"max_model_len": 8192},
        "accelerator": {"gpusPerReplica": 1, "acceleratorType": "L40S"},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 1},
    }
    for k, v in kw.items():
        out[k] = {**out[k], **v} if isinstance(v, dict) and k in out else v
    return out


def pools(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": "g6e", "family": "g6e", "limits": {"gpus": 8}},
            {"name": "g5", "family": "g5", "limits": {"gpus": 8}}, *extra]


def serve(*models: dict[str, Any], pool_list: list[dict[str, Any]] | None = None) -> Any:
    def edit(v: dict[str, Any]) -> None:
        v["serving"] = {"models": list(models)}
        v["gpuNodePools"] = pool_list or pools()
    return edit


def test_stack_files_pass_the_check() -> None:
    values, secrets = dev_values()
    cfg = validate(values, secrets)
    new_cluster = cfg.ray_service.upgrade_strategy == "NewCluster"
    assert capacity.problems(cfg.serving.models, cfg.gpu_node_pools,
                             new_cluster_upgrade=new_cluster) == []


def test_70b_in_bf16_on_g5_does_not_fit() -> None:
    msg = problems_of(serve(
        model(source="meta-llama/Llama-3.1-70B-Instruct",
              engineArgs={"max_model_len": 8192, "tensor_parallel_size": 4},
              accelerator={"gpusPerReplica": 4, "acceleratorType": "A10G"}),
    ))
    assert f"{P}serving.models[0]: does not fit: 70.56B parameters in bfloat16 are 131.4 GiB" \
        in msg
    assert "2.5 GiB of KV cache for max_model_len 8192 = 133.9 GiB" in msg
    assert "but 4 x 24 GiB (A10G, pool g5) x gpu_memory_utilization 0.9 = 86.4 GiB" in msg


def test_tensor_parallel_3_does_not_divide_32_heads() -> None:
    big_g6e = pools()
    big_g6e[0]["sizes"] = ["12xlarge"]
    msg = problems_of(serve(
        model(accelerator={"gpusPerReplica": 3}, autoscaling={"maxReplicas": 1}),
        pool_list=big_g6e,
    ))
    assert (f"{P}serving.models[0].accelerator.gpusPerReplica: tensor-parallel size 3 does not "
            "divide the model's 32 attention heads") in msg


def test_tp8_on_a_pool_of_4_gpu_instances() -> None:
    four = pools()
    four[0]["sizes"] = ["xlarge", "12xlarge", "24xlarge"]
    four[0]["limits"] = {"gpus": 32}
    msg = problems_of(serve(
        model(source="meta-llama/Llama-3.1-70B-Instruct", accelerator={"gpusPerReplica": 8}),
        pool_list=four,
    ))
    assert (f"{P}serving.models[0].accelerator.gpusPerReplica: 8 GPUs per replica, but the "
            "largest instance in pool g6e (g6e.24xlarge) has 4") in msg


def test_model_naming_a_pool_that_does_not_exist() -> None:
    msg = problems_of(serve(model(accelerator={"nodePool": "g7"})))
    assert (f"{P}serving.models[0].accelerator.nodePool: GPU pool 'g7' does not exist "
            "(pools: g6e (L40S), g5 (A10G))") in msg


def test_pool_limit_below_max_replicas_times_tp() -> None:
    msg = problems_of(serve(
        model(id="a", autoscaling={"maxReplicas": 6}),
        model(id="b", autoscaling={"maxReplicas": 3}),
    ))
    assert (f"{P}gpuNodePools[0].limits.gpus: 8 GPUs, but the models on pool g6e may use 9 at "
            "their maxReplicas x gpusPerReplica (models[0] 6 x 1 + models[1] 3 x 1)") in msg


def test_a10g_model_on_the_g6e_pool() -> None:
    msg = problems_of(serve(model(accelerator={"nodePool": "g6e", "acceleratorType": "A10G"})))
    assert (f"{P}serving.models[0].accelerator.acceleratorType: A10G does not match pool g6e, "
            "whose g6e instances Ray detects as L40S") in msg


def test_new_cluster_upgrade_needs_headroom_for_the_new_clusters_first_replicas() -> None:
    msg = problems_of(serve(model(autoscaling={"minReplicas": 2, "maxReplicas": 7})))
    assert (f"{P}gpuNodePools[0].limits.gpus: 8 GPUs, but a NewCluster upgrade needs 7 (old "
            "cluster at maxReplicas) + 2 (new cluster's first replicas) = 9") in msg

    def none_strategy(v: dict[str, Any]) -> None:
        serve(model(autoscaling={"minReplicas": 2, "maxReplicas": 7}))(v)
        v["rayService"] = {"upgradeStrategy": "None"}

    values, secrets = dev_values()
    none_strategy(values)
    assert validate(values, secrets).ray_service.upgrade_strategy == "None"


def test_uncatalogued_model_needs_its_facts() -> None:
    msg = problems_of(serve(model(source="acme/secret-model")))
    assert f"{P}serving.models[0].facts: no architecture facts for 'acme/secret-model'" in msg
    values, secrets = dev_values()
    serve(model(source="acme/secret-model", facts={
        "parametersBillions": 3, "numLayers": 28, "numAttentionHeads": 24, "numKvHeads": 8,
        "headDim": 128, "contextLength": 32768,
    }))(values)
    assert validate(values, secrets).serving.models[0].facts is not None


def test_tensor_parallel_engine_arg_must_match_gpus_per_replica() -> None:
    msg = problems_of(serve(model(engineArgs={"tensor_parallel_size": 2})))
    assert (f"{P}serving.models[0].engineArgs.tensor_parallel_size: 2 x pipeline_parallel_size "
            "1 = 2 GPUs, but accelerator.gpusPerReplica is 1") in msg


def test_cpu_models_are_local_only_and_gpu_models_name_their_gpu() -> None:
    msg = problems_of(serve(model(accelerator={"gpusPerReplica": 0, "acceleratorType": None})))
    assert f"{P}serving.models[0].accelerator.gpusPerReplica: 0 (CPU) is for local mode" in msg
    msg = problems_of(serve(model(accelerator={"acceleratorType": None})))
    assert f"{P}serving.models[0].accelerator.acceleratorType: required on EKS" in msg


def test_fp8_quantization_halves_the_weights() -> None:
    """The 70B model that does not fit 4 A10G in bf16 (131.4 GiB) fits in fp8 (65.7 GiB)."""
    values, secrets = dev_values()
    serve(model(source="meta-llama/Llama-3.1-70B-Instruct",
                engineArgs={"max_model_len": 8192, "tensor_parallel_size": 4,
                            "quantization": "fp8"},
                accelerator={"gpusPerReplica": 4, "acceleratorType": "A10G"}))(values)
    assert validate(values, secrets).serving.models[0].engine_args["quantization"] == "fp8"


def test_catalog_matches_s3_mirrors_of_the_repo_id() -> None:
    assert facts_for("s3://models/meta-llama/Llama-3.1-8B-Instruct") is not None
    assert facts_for("meta-llama/Llama-3.1-8B-Instruct") is not None
    assert facts_for("s3://models/other/Llama-3.1-8B-Instruct") is None


def test_lora_adapter_slots_count_against_gpu_memory() -> None:
    """vLLM preallocates maxAdapters slots of rank maxRank on every linear layer: 16 slots of
    rank 512 on Llama-3.1-8B do not fit one L40S next to the weights; 4 of rank 16 do."""
    big = {"source": "s3://store-bucket/loras/m/", "maxAdapters": 16, "maxRank": 512}

    def edit(lora: dict[str, Any]) -> Any:
        def apply(v: dict[str, Any]) -> None:
            serve(model(lora=lora))(v)
            v["modelStore"] = {**v.get("modelStore", {}), "bucketName": "store-bucket"}
        return apply

    msg = problems_of(edit(big))
    assert f"{P}serving.models[0]: does not fit: 8.03B parameters in bfloat16 are 15.0 GiB" in msg
    assert "KV cache for max_model_len 8192 + 43.9 GiB of LoRA slots" in msg
    values, secrets = dev_values()
    edit({**big, "maxAdapters": 4, "maxRank": 16})(values)
    validate(values, secrets)  # no ConfigError: 4 slots of rank 16 fit


# Pooling (embed / score) models: vLLM's pooling runner has no decode KV cache to size.

BGE_FACTS = {  # BAAI/bge-small-en-v1.5 config.json, as the staging and prod stack files state
    "parametersBillions": 0.0334, "numLayers": 12, "numAttentionHeads": 12, "numKvHeads": 12,
    "headDim": 32, "contextLength": 512, "dtype": "float32", "encoderOnly": True,
}


def embedder(**kw: Any) -> dict[str, Any]:
    return model(**{"id": "emb", "source": "BAAI/bge-small-en-v1.5", "task": "embed",
                    "engineArgs": {"max_model_len": 512}, "facts": BGE_FACTS,
                    "autoscaling": {"minReplicas": 1, "maxReplicas": 2}, **kw})


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_stack_file_passes_the_check(stack: str) -> None:
    """Staging and prod serve bge-small-en (task embed) next to their chat models."""
    values, secrets = stack_config(stack)
    cfg = validate(*own_keys(values, set(secrets)))
    new_cluster = cfg.ray_service.upgrade_strategy == "NewCluster"
    assert capacity.problems(cfg.serving.models, cfg.gpu_node_pools,
                             new_cluster_upgrade=new_cluster) == []
    tasks = {m.task for m in cfg.serving.models}
    assert stack == "dev" or "embed" in tasks


def test_an_embedder_too_large_for_its_pool() -> None:
    """An 8B decoder embedder kept in float32 (engineArgs.dtype) needs 29.8 GiB of weights plus
    one 32k sequence of KV cache: more than one A10G's 0.9 x 24 GiB."""
    big = {"parametersBillions": 8, "numLayers": 32, "numAttentionHeads": 32, "numKvHeads": 8,
           "headDim": 128, "contextLength": 32768, "dtype": "float32"}
    msg = problems_of(serve(embedder(
        source="acme/embed-8b", facts=big,
        engineArgs={"max_model_len": 32768, "dtype": "float32"},
        accelerator={"acceleratorType": "A10G"})))
    assert (f"{P}serving.models[0]: does not fit: 8B parameters in float32 are 29.80 GiB of "
            "weights + 8.00 GiB of KV cache for max_model_len 32768 + 0.06 GiB of activations "
            "for max_num_batched_tokens 2048 (task embed, pooling runner) = 37.9 GiB, but 1 x "
            "24 GiB (A10G, pool g5) x gpu_memory_utilization 0.9 = 21.6 GiB") in msg
    # With dtype auto vLLM downcasts the float32 checkpoint to float16 (14.9 GiB): it fits.
    values, secrets = dev_values()
    serve(embedder(source="acme/embed-8b", facts=big, engineArgs={"max_model_len": 8192},
                   accelerator={"acceleratorType": "A10G"}))(values)
    validate(values, secrets)


def test_a_reranker_too_large_names_task_score() -> None:
    facts = {**BGE_FACTS, "parametersBillions": 12, "numAttentionHeads": 16, "headDim": 64}
    msg = problems_of(serve(embedder(id="rr", task="score", source="acme/rerank-12b",
                                     facts=facts, accelerator={"acceleratorType": "A10G"})))
    assert (f"{P}serving.models[0]: does not fit: 12B parameters in float16 are 22.35 GiB of "
            "weights + no KV cache (encoder-only) + 0.01 GiB of activations for "
            "max_num_batched_tokens 2048 (task score, pooling runner)") in msg


def test_encoder_only_embedders_count_no_kv_cache_but_their_activations() -> None:
    """A BERT-style embedder's memory is its weights and one forward pass of
    max_num_batched_tokens (raised to max_model_len: no chunked prefill for it); a decoder
    embedder of the same shape also needs one max_model_len sequence of KV cache."""
    values, secrets = dev_values()
    serve(embedder(engineArgs={"max_model_len": 8192}))(values)
    cfg = validate(values, secrets)
    (spec,) = cfg.serving.models
    pool = next(p for p in cfg.gpu_node_pools if p.name == "g6e")
    need = capacity.memory_need(spec, pool, spec.facts)
    assert not isinstance(need, str)
    assert need.kv_gib == 0 and need.lora_gib == 0
    assert capacity.max_num_batched_tokens(spec, spec.facts) == 8192
    assert need.activations_gib == pytest.approx(2 * 8192 * 384 * 2 / 2**30)
    assert need.weights_gib == pytest.approx(0.0334e9 * 2 / 2**30)  # float32 -> float16
    causal = spec.model_copy(update={"facts": spec.facts.model_copy(
        update={"encoder_only": False})})
    need = capacity.memory_need(causal, pool, causal.facts)
    assert not isinstance(need, str)
    assert need.kv_gib == pytest.approx(2 * 12 * 12 * 32 * 2 * 8192 / 2**30)
    assert capacity.max_num_batched_tokens(causal, causal.facts) == 2048


def test_an_embedder_on_more_gpus_than_it_needs_wastes_them() -> None:
    big_g6e = pools()
    big_g6e[0]["sizes"] = ["12xlarge"]
    msg = problems_of(serve(
        embedder(engineArgs={"max_model_len": 512, "tensor_parallel_size": 2},
                 accelerator={"gpusPerReplica": 2}),
        pool_list=big_g6e,
    ))
    assert (f"{P}serving.models[0].accelerator.gpusPerReplica: 2 GPUs, but this embed model "
            "needs 0.07 GiB") in msg
    assert ("which 1 x 48 GiB (L40S, pool g6e) x gpu_memory_utilization 0.9 holds; a pooling "
            "model has no KV cache to use the other 1: set gpusPerReplica 1") in msg
    # A generative model on 2 GPUs it does not strictly need is fine: the rest is KV cache.
    values, secrets = dev_values()
    serve(model(engineArgs={"max_model_len": 8192, "tensor_parallel_size": 2},
                accelerator={"gpusPerReplica": 2}), pool_list=big_g6e)(values)
    validate(values, secrets)
