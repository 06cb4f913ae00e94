"""Capacity check at config load: does every model fit the GPUs and pool it is given?

Run by `infra.config.loader.validate()` after the schema check, so a model that cannot fit is a
config error naming its key and the numbers, not a crash loop on a paid GPU node. Per GPU model:
- its pool exists (`accelerator.nodePool`, or the one pool whose GPU is `acceleratorType`), and
  `acceleratorType` is what Ray detects on that pool's GPUs (g6e L40S, g5 A10G, p4d A100);
- tensor-parallel x pipeline-parallel size equals `gpusPerReplica`, the tensor-parallel size
  divides the attention heads, and `gpusPerReplica` fits one instance of the pool;
- weights + the KV cache of one `max_model_len` sequence (+ the LoRA adapter slots) fit in
  `gpusPerReplica x GPU memory x gpu_memory_utilization`. A lower bound: passing it does not
  prove the engine starts (activations, CUDA graphs), failing it proves it cannot.
- embed and score models (vLLM's pooling runner, `pooling_need`): weights + the activations of
  one `max_num_batched_tokens` forward pass, + one sequence of KV cache unless the model is
  encoder-only; and no more GPUs per replica than that needs (the rest would sit idle).
Per pool: its GPU limit covers the sum over its models of `maxReplicas x gpusPerReplica`, and
under the NewCluster upgrade strategy also the new cluster's first replicas on top.
(The CPU pods' check is infra/config/ray_service.py `cpu_pool_problems`.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from infra.capacity.catalog import CATALOG, InstanceType, instance_types
from infra.capacity.model_catalog import CATALOG as MODEL_CATALOG
from infra.capacity.model_catalog import facts_for
from serve_app.config import ModelFacts, ModelSpec


class PoolLimits(Protocol):
    @property
    def gpus(self) -> int: ...


class Pool(Protocol):
    """What the check reads of a GPU NodePool (infra.config.gpu_node_pools.Pool):
    a Protocol, so that the config imports this module and this module does not import it."""

    @property
    def name(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def sizes(self) -> list[str] | None: ...
    @property
    def limits(self) -> PoolLimits: ...


GIB = 1024**3
# vLLM's default `gpu_memory_utilization` (vllm EngineArgs) when engineArgs leaves it out.
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "half": 2, "float32": 4, "float": 4}
# Bytes per weight of quantized checkpoints (group scales ignored: a slight underestimate).
QUANTIZATION_BYTES = {"fp8": 1.0, "awq": 0.5, "awq_marlin": 0.5, "gptq": 0.5, "gptq_marlin": 0.5}
# Per node, left to the kubelet, the system reservation and the DaemonSets (CNI, kube-proxy,
# Pod Identity agent, EBS CSI node, NVIDIA device plugin, DCGM exporter, node exporter).
NODE_RESERVED_CPU = 1
NODE_RESERVED_MEMORY_FRACTION = 0.1
NODE_RESERVED_MEMORY_GIB = 1


def pool_gpu(pool: Pool) -> str:
    """The GPU of a pool's family, by the name Ray detects (catalog `gpu_model`)."""
    return next(iter(CATALOG[pool.family].values())).gpu_model


def tensor_parallel_size(model: ModelSpec) -> int:
    return int(model.engine_args.get("tensor_parallel_size", model.accelerator.gpus_per_replica))


def model_facts(model: ModelSpec) -> ModelFacts | None:
    return model.facts or facts_for(model.source)


@dataclass(frozen=True)
class PodShape:
    """A Ray GPU worker pod on a pool: its GPUs and the CPU/memory it may request."""

    instance: InstanceType  # the smallest catalogued instance of the pool that holds the pod
    gpus: int
    cpu: int
    memory_gib: int


def gpu_pod_shape(pool: Pool, gpus: int) -> PodShape | None:
    """The pod for `gpus` GPUs on `pool`: a share of the smallest instance in the pool with that
    many GPUs, less the node's reservations; None when no instance of the pool has enough."""
    fits = [t for t in instance_types(pool.family, pool.sizes) if t.gpus >= gpus]
    if not fits:
        return None
    inst = min(fits, key=lambda t: (t.gpus, t.vcpu, t.memory_gib))
    share = gpus / inst.gpus
    usable_mem = inst.memory_gib * (1 - NODE_RESERVED_MEMORY_FRACTION) - NODE_RESERVED_MEMORY_GIB
    return PodShape(
        instance=inst,
        gpus=gpus,
        cpu=max(1, math.floor((inst.vcpu - NODE_RESERVED_CPU) * share)),
        memory_gib=max(1, math.floor(usable_mem * share)),
    )


def resolve_pool(
    model: ModelSpec, pools: Sequence[Pool]
) -> tuple[Pool | None, str | None]:
    """(pool, None) or (None, problem) for a GPU model; the problem is `key: message` relative
    to the model's `accelerator`."""
    acc = model.accelerator
    names = ", ".join(f"{p.name} ({pool_gpu(p)})" for p in pools)
    if acc.node_pool is not None:
        pool = next((p for p in pools if p.name == acc.node_pool), None)
        if pool is None:
            return None, f"nodePool: GPU pool {acc.node_pool!r} does not exist (pools: {names})"
        return pool, None
    if acc.accelerator_type is None:
        return None, f"acceleratorType: required on EKS to pick the GPU pool (pools: {names})"
    matching = [p for p in pools if pool_gpu(p) == acc.accelerator_type]
    if len(matching) == 1:
        return matching[0], None
    if not matching:
        return None, (
            f"acceleratorType: no GPU pool has {acc.accelerator_type} GPUs (pools: {names})"
        )
    return None, (
        f"nodePool: pools {', '.join(p.name for p in matching)} all have "
        f"{acc.accelerator_type} GPUs; name one"
    )


# Tasks vLLM runs on its pooling runner (serve_app/llm_config.py: `runner: pooling`).
POOLING_TASKS = ("embed", "score")


def is_pooling(model: ModelSpec) -> bool:
    return model.task in POOLING_TASKS


def engine_dtype(model: ModelSpec, facts: ModelFacts) -> str:
    """The dtype vLLM runs the model in: engineArgs.dtype, or with "auto" the checkpoint's,
    except that float32 checkpoints are downcast, to float16 for pooling models and bfloat16
    otherwise on the GPUs of the catalog (vllm/config/model.py, _resolve_auto_dtype)."""
    dtype = str(model.engine_args.get("dtype", "auto"))
    if dtype != "auto":
        return dtype
    if facts.dtype == "float32":
        return "float16" if is_pooling(model) else "bfloat16"
    return facts.dtype


def _bytes_per_weight(model: ModelSpec, facts: ModelFacts) -> tuple[float | None, str]:
    quant = model.engine_args.get("quantization")
    if quant is not None:
        return QUANTIZATION_BYTES.get(str(quant)), f"quantization {quant}"
    name = engine_dtype(model, facts)
    return DTYPE_BYTES.get(name), name


def _kv_bytes(model: ModelSpec, facts: ModelFacts) -> float:
    kv = str(model.engine_args.get("kv_cache_dtype", "auto"))
    if kv.startswith("fp8"):
        return 1
    return DTYPE_BYTES.get(engine_dtype(model, facts), 2)


def weights_gib(model: ModelSpec, facts: ModelFacts) -> float | None:
    """GiB of the model's weights as the engine loads them (None: unknown quantization)."""
    per_weight, _ = _bytes_per_weight(model, facts)
    return None if per_weight is None else facts.parameters_billions * 1e9 * per_weight / GIB


def lora_gib(model: ModelSpec, facts: ModelFacts) -> float:
    """GPU memory vLLM preallocates for `lora.maxAdapters` adapter slots of rank `lora.maxRank`.

    Per slot and layer, vLLM holds A (rank x input) per output slice and B (output x rank) of
    every linear layer (vllm/lora/layers/base_linear.py, create_lora_weights): qkv (3 slices),
    o, gate_up (2 slices), down: rank x (9 h + 2 kv + 3 i) values, h the hidden size, kv the
    key/value width, i the MLP width. i is not in ModelFacts: it is bounded from the parameter
    count as if every parameter were in the layers (an overestimate, never an underestimate).
    """
    if model.lora is None:
        return 0.0
    h = facts.num_attention_heads * facts.head_dim
    kv = facts.num_kv_heads * facts.head_dim
    per_layer = facts.parameters_billions * 1e9 / facts.num_layers
    attention = h * (h + 2 * kv) + h * h
    inter = max(per_layer - attention, 0) / (3 * h)
    values = model.lora.max_rank * facts.num_layers * (9 * h + 2 * kv + 3 * inter)
    return model.lora.max_adapters * values * _kv_bytes(model, facts) / GIB


# Ray Serve LLM starts vLLM with UsageContext.OPENAI_API_SERVER (ray/llm/_internal/serve/engines/
# vllm/vllm_engine.py), whose default max_num_batched_tokens on GPUs under 70 GiB (every GPU in
# infra/capacity/catalog.py) is 2048 (vllm/engine/arg_utils.py, get_batch_defaults). Without
# chunked prefill (encoder-only pooling models: vllm/config/model.py,
# is_chunked_prefill_supported) it is raised to max_model_len (_set_default_max_num_seqs_and_
# batched_tokens_args).
DEFAULT_MAX_NUM_BATCHED_TOKENS = 2048


@dataclass(frozen=True)
class MemoryNeed:
    """GPU memory one replica needs at least, against what vLLM may use of its GPUs."""

    weights_gib: float
    kv_gib: float
    lora_gib: float
    activations_gib: float
    gpus: int
    gpu_memory_gib: int
    utilization: float
    terms: str  # how the need adds up, for the error message

    @property
    def total_gib(self) -> float:
        return self.weights_gib + self.kv_gib + self.lora_gib + self.activations_gib

    @property
    def budget_gib(self) -> float:
        return self.gpus * self.gpu_memory_gib * self.utilization

    def fewest_gpus(self) -> int:
        """The fewest GPUs of this kind whose `gpu_memory_utilization` share holds the need."""
        return max(1, math.ceil(self.total_gib / (self.gpu_memory_gib * self.utilization)))


def max_num_batched_tokens(model: ModelSpec, facts: ModelFacts) -> int:
    """Tokens of the engine's largest forward pass (vLLM's default unless engineArgs sets it)."""
    if "max_num_batched_tokens" in model.engine_args:
        return int(model.engine_args["max_num_batched_tokens"])
    if is_pooling(model) and facts.encoder_only:
        tokens = int(model.engine_args.get("max_model_len", facts.context_length))
        return max(tokens, DEFAULT_MAX_NUM_BATCHED_TOKENS)
    return DEFAULT_MAX_NUM_BATCHED_TOKENS


def memory_need(model: ModelSpec, pool: Pool, facts: ModelFacts) -> MemoryNeed | str:
    """The replica's GPU memory need, or a problem (`engineArgs: ...`) when it cannot be told.

    Generative models: weights + the KV cache of one max_model_len sequence + LoRA slots (vLLM
    refuses to start when its KV cache cannot hold one: vllm/v1/core/kv_cache_utils.py,
    check_enough_kv_cache_memory).

    Pooling models (task embed/score): a request ends with its prefill, so there is no decode
    KV cache to size; vLLM still takes `gpu_memory_utilization` of each GPU at start-up
    (vllm/v1/worker/utils.py, request_memory), profiles one forward pass of
    max_num_batched_tokens tokens through the model and its pooler (gpu_model_runner.py,
    profile_run / _dummy_pooler_run), and gives encoder-only attention layers no KV cache at
    all (kv_cache_interface.py, EncoderOnlyAttentionSpec.max_memory_usage_bytes is 0); causal
    ones (decoder embedders) still need one max_model_len sequence. Activations are counted as
    two hidden-state tensors of the pass (the layer's input and output are both alive), a
    lower bound of what the profile run allocates."""
    per_weight, weight_kind = _bytes_per_weight(model, facts)
    if per_weight is None:
        return f"engineArgs: the capacity check does not know {weight_kind!r}"
    tokens = int(model.engine_args.get("max_model_len", facts.context_length))
    util = float(model.engine_args.get("gpu_memory_utilization", DEFAULT_GPU_MEMORY_UTILIZATION))
    weights = facts.parameters_billions * 1e9 * per_weight / GIB
    # K and V, per layer, per KV head, per head dimension, per token.
    kv_per_token = 2 * facts.num_layers * facts.num_kv_heads * facts.head_dim * _kv_bytes(
        model, facts)
    kv_gib = kv_per_token * tokens / GIB
    gpu_mem = next(iter(CATALOG[pool.family].values())).gpu_memory_gib
    digits = 2 if is_pooling(model) else 1  # small embedders are a fraction of a GiB
    head = (f"{facts.parameters_billions:g}B parameters in {weight_kind} are "
            f"{weights:.{digits}f} GiB of weights")
    if not is_pooling(model):
        lora = lora_gib(model, facts)
        lora_part = f" + {lora:.1f} GiB of LoRA slots (lora.maxAdapters x maxRank)" if lora else ""
        terms = f"{head} + {kv_gib:.1f} GiB of KV cache for max_model_len {tokens}{lora_part}"
        return MemoryNeed(weights, kv_gib, lora, 0.0, model.accelerator.gpus_per_replica,
                          gpu_mem, util, terms)
    batch = max_num_batched_tokens(model, facts)
    hidden = facts.num_attention_heads * facts.head_dim
    activations = 2 * batch * hidden * DTYPE_BYTES.get(engine_dtype(model, facts), 2) / GIB
    if facts.encoder_only:
        kv_gib, kv_part = 0.0, "no KV cache (encoder-only)"
    else:
        kv_part = f"{kv_gib:.2f} GiB of KV cache for max_model_len {tokens}"
    terms = (f"{head} + {kv_part} + {activations:.2f} GiB of activations for "
             f"max_num_batched_tokens {batch} (task {model.task}, pooling runner)")
    return MemoryNeed(weights, kv_gib, 0.0, activations, model.accelerator.gpus_per_replica,
                      gpu_mem, util, terms)


def memory_problem(model: ModelSpec, pool: Pool, facts: ModelFacts) -> str | None:
    """The replica's need vs its usable GPU memory (`: message` relative to the model)."""
    need = memory_need(model, pool, facts)
    if isinstance(need, str):
        return need
    if need.total_gib <= need.budget_gib:
        return None
    return (
        f"does not fit: {need.terms} = {need.total_gib:.1f} GiB, but {need.gpus} x "
        f"{need.gpu_memory_gib} GiB ({pool_gpu(pool)}, pool {pool.name}) x gpu_memory_utilization "
        f"{need.utilization:g} = {need.budget_gib:.1f} GiB"
    )


def idle_gpus_problem(model: ModelSpec, pool: Pool, facts: ModelFacts) -> str | None:
    """A pooling model given more GPUs per replica than its need takes: with no KV cache to grow,
    the extra GPUs would sit idle (`gpusPerReplica: message`). More replicas, each on the
    fewest GPUs, give the throughput instead."""
    need = memory_need(model, pool, facts)
    if not is_pooling(model) or isinstance(need, str) or need.total_gib > need.budget_gib:
        return None
    fewest = need.fewest_gpus()
    if fewest >= need.gpus:
        return None
    return (
        f"gpusPerReplica: {need.gpus} GPUs, but this {model.task} model needs "
        f"{need.total_gib:.2f} GiB ({need.terms}), which {fewest} x {need.gpu_memory_gib} GiB "
        f"({pool_gpu(pool)}, pool {pool.name}) x gpu_memory_utilization {need.utilization:g} "
        f"holds; a pooling model has no KV cache to use the other "
        f"{need.gpus - fewest}: set gpusPerReplica {fewest} (and tensor_parallel_size) and "
        f"raise autoscaling.maxReplicas for throughput"
    )


def _model_problems(
    i: int, model: ModelSpec, pools: Sequence[Pool], cpus_fit: dict[str, int]
) -> tuple[Pool | None, list[str]]:
    at = f"serving.models[{i}]"
    acc = model.accelerator
    if acc.gpus_per_replica == 0:
        return None, [
            f"{at}.accelerator.gpusPerReplica: 0 (CPU) is for local mode only; on EKS every "
            "model runs on a GPU pool"
        ]
    pool, problem = resolve_pool(model, pools)
    if pool is None:
        return None, [f"{at}.accelerator.{problem}"]
    out: list[str] = []
    gpu = pool_gpu(pool)
    if acc.accelerator_type is None:
        out.append(f"{at}.accelerator.acceleratorType: required on EKS; pool {pool.name} has {gpu}")
    elif acc.accelerator_type != gpu:
        out.append(
            f"{at}.accelerator.acceleratorType: {acc.accelerator_type} does not match pool "
            f"{pool.name}, whose {pool.family} instances Ray detects as {gpu}"
        )
    tp = tensor_parallel_size(model)
    pp = int(model.engine_args.get("pipeline_parallel_size", 1))
    if tp * pp != acc.gpus_per_replica:
        out.append(
            f"{at}.engineArgs.tensor_parallel_size: {tp} x pipeline_parallel_size {pp} = "
            f"{tp * pp} GPUs, but accelerator.gpusPerReplica is {acc.gpus_per_replica}"
        )
    biggest = max(instance_types(pool.family, pool.sizes), key=lambda t: (t.gpus, t.vcpu))
    if acc.gpus_per_replica > biggest.gpus:
        out.append(
            f"{at}.accelerator.gpusPerReplica: {acc.gpus_per_replica} GPUs per replica, but the "
            f"largest instance in pool {pool.name} ({biggest.name}) has {biggest.gpus}"
        )
    elif acc.cpus_per_replica * acc.gpus_per_replica > cpus_fit[pool.name]:
        out.append(
            f"{at}.accelerator.cpusPerReplica: {acc.cpus_per_replica:g} x "
            f"{acc.gpus_per_replica} GPUs = {acc.cpus_per_replica * acc.gpus_per_replica:g} "
            f"CPUs, but a Ray worker pod on pool {pool.name} has {cpus_fit[pool.name]}"
        )
    facts = model_facts(model)
    if facts is None:
        out.append(
            f"{at}.facts: no architecture facts for {model.source!r}: state facts "
            f"(parametersBillions, numLayers, numAttentionHeads, numKvHeads, headDim, "
            f"contextLength) or use a catalogued model ({', '.join(MODEL_CATALOG)})"
        )
        return pool, out
    if facts.num_attention_heads % tp:
        out.append(
            f"{at}.accelerator.gpusPerReplica: tensor-parallel size {tp} does not divide the "
            f"model's {facts.num_attention_heads} attention heads"
        )
    elif acc.gpus_per_replica <= biggest.gpus:
        problem = memory_problem(model, pool, facts)
        if problem:
            out.append(f"{at}: {problem}")
        idle = idle_gpus_problem(model, pool, facts)
        if idle:
            out.append(f"{at}.accelerator.{idle}")
    return pool, out


def initial_replicas(model: ModelSpec) -> int:
    """Replicas a new Serve application starts with (app.py: max(minReplicas, 1))."""
    return max(model.autoscaling.min_replicas, 1)


def problems(
    models: Sequence[ModelSpec], pools: Sequence[Pool], *, new_cluster_upgrade: bool
) -> list[str]:
    """Every capacity problem of a schema-valid stack config's `serving.models` on its
    `gpuNodePools`, as `path: message` (no prefix). `new_cluster_upgrade`: rayService's
    upgradeStrategy is NewCluster (an upgrade runs two clusters for a while)."""
    out: list[str] = []
    by_pool: dict[str, list[tuple[int, ModelSpec]]] = {}
    pods = {p.name: pool_pod_shape(p, models, pools) for p in pools}
    cpus_fit = {name: (shape.cpu if shape else 0) for name, shape in pods.items()}
    for i, model in enumerate(models):
        pool, found = _model_problems(i, model, pools, cpus_fit)
        out += found
        if pool is not None:
            by_pool.setdefault(pool.name, []).append((i, model))
    for j, pool in enumerate(pools):
        on_pool = by_pool.get(pool.name, [])
        peak = sum(m.autoscaling.max_replicas * m.accelerator.gpus_per_replica for _, m in on_pool)
        terms = " + ".join(
            f"models[{i}] {m.autoscaling.max_replicas} x {m.accelerator.gpus_per_replica}"
            for i, m in on_pool
        )
        if peak > pool.limits.gpus:
            out.append(
                f"gpuNodePools[{j}].limits.gpus: {pool.limits.gpus} GPUs, but the models on pool "
                f"{pool.name} may use {peak} at their maxReplicas x gpusPerReplica ({terms})"
            )
            continue
        if new_cluster_upgrade and on_pool:
            surge = sum(initial_replicas(m) * m.accelerator.gpus_per_replica for _, m in on_pool)
            if peak + surge > pool.limits.gpus:
                out.append(
                    f"gpuNodePools[{j}].limits.gpus: {pool.limits.gpus} GPUs, but a NewCluster "
                    f"upgrade needs {peak} (old cluster at maxReplicas) + {surge} (new cluster's "
                    f"first replicas) = {peak + surge}; raise the limit or use upgradeStrategy None"
                )
    return out


def pool_pod_shape(
    pool: Pool, models: Sequence[ModelSpec], pools: Sequence[Pool]
) -> PodShape | None:
    """The worker pod shape of `pool`: as many GPUs as the largest replica of its models."""
    gpus = [
        m.accelerator.gpus_per_replica for m in models
        if m.accelerator.gpus_per_replica > 0 and resolve_pool(m, pools)[0] is pool
    ]
    if not gpus:
        return None
    return gpu_pod_shape(pool, max(gpus))

