"""One ModelSpec -> Ray Serve LLM's LLMConfig: the translation both gateways share
(`app.py`'s ingress and `direct.py`)."""

from __future__ import annotations

from typing import Any

from ray.serve.llm import LLMConfig

from serve_app.config import ModelSpec, ServingConfig


def llm_config(spec: ModelSpec, cfg: ServingConfig, **extra: Any) -> LLMConfig:
    """Translate one ModelSpec into Ray Serve LLM's LLMConfig (`extra`: more LLMConfig args)."""
    engine = dict(spec.engine_args)
    auto = spec.autoscaling
    kwargs: dict[str, Any] = {
        "model_loading_config": {"model_id": spec.id, "model_source": spec.source},
        "engine_kwargs": engine,
        "deployment_config": {
            "autoscaling_config": {
                "min_replicas": auto.min_replicas,
                "max_replicas": auto.max_replicas,
                "initial_replicas": max(auto.min_replicas, 1),
                "target_ongoing_requests": auto.target_ongoing_requests,
                "upscale_delay_s": auto.upscale_delay_s,
                "downscale_delay_s": auto.downscale_delay_s,
            },
            "max_ongoing_requests": spec.max_ongoing_requests,
            "max_queued_requests": spec.max_queued_requests,
        },
    }
    kwargs["experimental_configs"] = {
        "stream_batching_interval_ms": spec.stream_batching_interval_ms,
        **extra.pop("experimental_configs", {}),
    }
    if spec.routing == "prefixAffinity":
        kwargs["deployment_config"]["request_router_config"] = prefix_affinity_router(spec)
        engine.setdefault("enable_prefix_caching", True)
    if cfg.env:
        kwargs["runtime_env"] = {"env_vars": dict(cfg.env)}
    acc = spec.accelerator
    if acc.gpus_per_replica == 0:
        kwargs["accelerator_config"] = {"kind": "cpu"}
        kwargs["placement_group_config"] = {"bundles": [{"CPU": acc.cpus_per_replica}]}
    else:
        engine.setdefault("tensor_parallel_size", acc.gpus_per_replica)
        kwargs["placement_group_config"] = {
            "bundle_per_worker": {"GPU": 1, "CPU": acc.cpus_per_replica}
        }
        if acc.accelerator_type:
            kwargs["accelerator_type"] = acc.accelerator_type
    if spec.tool_calling is not None:
        # vLLM FrontendArgs (vllm/entrypoints/launchers/cli_args.py); Ray Serve LLM routes
        # frontend keys of engine_kwargs to them (ray.llm VLLMEngineConfig.from_llm_config).
        engine["enable_auto_tool_choice"] = True
        engine["tool_call_parser"] = spec.tool_calling.parser
        if spec.tool_calling.reasoning_parser:
            engine["reasoning_parser"] = spec.tool_calling.reasoning_parser  # AsyncEngineArgs
    if spec.lora is not None:
        # Ray Serve LLM downloads `<source>/<adapter>/` on the first request for
        # `<id>:<adapter>` and loads it into vLLM (LLMServer multiplexing, VLLMEngine.resolve_lora).
        kwargs["lora_config"] = {
            "dynamic_lora_loading_path": spec.lora.source,
            "max_num_adapters_per_replica": spec.lora.max_adapters,
        }
        engine["enable_lora"] = True
        engine["max_loras"] = spec.lora.max_adapters
        engine["max_lora_rank"] = spec.lora.max_rank
    if spec.task in ("embed", "score"):
        # vLLM 0.29 has no `task` argument: pooling models run on runner "pooling" with
        # convert "embed" or "classify" (vllm/config/model.py, _RUNNER_CONVERTS). Converting a
        # native pooling model (BertModel, *ForSequenceClassification) is a no-op
        # (vllm/model_executor/models/adapters.py: as_embedding_model / as_seq_cls_model).
        engine.setdefault("runner", "pooling")
        engine.setdefault("convert", "embed" if spec.task == "embed" else "classify")
    return LLMConfig(**kwargs, **extra)


# Public path of Ray Serve LLM's prefix-aware router (ray/serve/llm/request_router.py, stable API
# in ray 2.60.0); `request_router_config` is Serve's DeploymentConfig field for it
# (ray/serve/config.py RequestRouterConfig: request_router_class + request_router_kwargs; its
# docstring spells the class path this way).
PREFIX_ROUTER_CLASS = "ray.serve.llm.request_router.PrefixCacheAffinityRouter"


def prefix_affinity_router(spec: ModelSpec) -> dict[str, Any]:
    """Kwargs of PrefixCacheAffinityRouter.initialize_state (ray/llm/_internal/serve/
    routing_policies/prefix_aware/prefix_aware_router.py). Its default imbalanced_threshold is
    infinite (a hot prefix would pile onto one replica however long its queue): fall back to
    power-of-two once queues differ by more than the load a replica is scaled for. Eviction
    keeps the shared prefix tree (one actor per deployment) bounded (its default sizes)."""
    return {
        "request_router_class": PREFIX_ROUTER_CLASS,
        "request_router_kwargs": {
            "imbalanced_threshold": max(2.0, spec.autoscaling.target_ongoing_requests),
            "do_eviction": True,
        },
    }
