"""serve_app/llm_config.py: routing per model (LLMConfig is built, no Ray is started)."""

from __future__ import annotations

import inspect

from ray.serve.config import RequestRouterConfig
from ray.serve.llm.request_router import PrefixCacheAffinityRouter

from serve_app.config import ServingConfig
from serve_app.llm_config import llm_config


def _config(**model) -> tuple:
    cfg = ServingConfig.model_validate(
        {"models": [{"id": "a", "source": "org/a", "accelerator": {"gpusPerReplica": 0},
                     **model}]}
    )
    return llm_config(cfg.models[0], cfg), cfg


def test_default_routing_is_serves_power_of_two():
    config, _ = _config()
    deployment = config.deployment_config
    assert "request_router_config" not in deployment
    assert "enable_prefix_caching" not in config.engine_kwargs


def test_prefix_affinity_sets_ray_serve_llm_router_and_vllm_prefix_caching():
    config, _ = _config(routing="prefixAffinity", autoscaling={"targetOngoingRequests": 8})
    router = RequestRouterConfig(**config.deployment_config["request_router_config"])
    # Serve imports the class path the way it does at deploy time, and the kwargs must be
    # parameters of the router's initialize_state.
    cls = router.get_request_router_class()
    assert cls.__name__ == PrefixCacheAffinityRouter.__name__
    params = inspect.signature(PrefixCacheAffinityRouter.initialize_state).parameters
    assert set(router.request_router_kwargs) <= set(params)
    assert router.request_router_kwargs["imbalanced_threshold"] == 8
    assert config.engine_kwargs["enable_prefix_caching"] is True
