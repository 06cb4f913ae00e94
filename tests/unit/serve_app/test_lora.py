"""The `lora` config key and serve_app/lora.py's adapter catalog (no Ray needed except for the
LLMConfig translation)."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from serve_app.config import ServingConfig
from serve_app.lora import AdapterCatalog, split_ref
from tests.unit.serve_app.test_config import _cfg, _error

SOURCE = "s3://store-bucket/loras/a/"


def _models(**lora) -> list[dict]:
    return [{"id": "a", "source": "org/a", "lora": lora}, {"id": "a-v2", "source": "org/a-v2"}]


def test_lora_config_and_adapter_references_are_accepted():
    cfg = ServingConfig.model_validate(_cfg(
        models=_models(source=SOURCE, maxAdapters=4, maxRank=32),
        aliases=[{"name": "chat", "targets": [{"model": "a", "weight": 9},
                                              {"model": "a:ft", "weight": 1}]}],
        auth={"allowedModels": {"team": ["a:ft", "chat"]}},
    ))
    assert cfg.models[0].lora.max_rank == 32 and cfg.models[1].lora is None


@pytest.mark.parametrize(
    ("patch", "loc", "fragment"),
    [
        ({"models": _models(source="https://x/loras/", maxAdapters=1)},
         ("models", 0, "lora", "source"), "pattern"),
        ({"models": _models(source="s3://b/loras/a", maxAdapters=1)},
         ("models", 0, "lora", "source"), "pattern"),  # a folder: ends with /
        ({"models": _models(source=SOURCE, maxAdapters=0)},
         ("models", 0, "lora", "maxAdapters"), "greater than or equal to 1"),
        ({"models": _models(source=SOURCE, maxAdapters=1, maxRank=12)},
         ("models", 0, "lora", "maxRank"), "Input should be 1, 8, 16"),
        ({"models": _models(source=SOURCE)}, ("models", 0, "lora", "maxAdapters"), "required"),
        ({"models": [{"id": "e", "source": "x", "task": "embed",
                      "lora": {"source": SOURCE, "maxAdapters": 1}}]},
         ("models", 0, "lora"), "needs task: generate"),
        ({"models": [{"id": "a", "source": "x", "engineArgs": {"max_loras": 2}}]},
         ("models", 0, "engineArgs"), "engineArgs.max_loras is set by lora"),
        ({"models": _models(source=SOURCE, maxAdapters=1),
          "aliases": [{"name": "c", "targets": [{"model": "a-v2:ft", "weight": 1}]}]},
         ("aliases",), "'a-v2:ft' names a LoRA adapter, but model 'a-v2' has no `lora`"),
        ({"models": _models(source=SOURCE, maxAdapters=1),
          "aliases": [{"name": "c", "targets": [{"model": "a:bad name", "weight": 1}]}]},
         ("aliases", 0, "targets", 0, "model"), "pattern"),
        ({"models": _models(source=SOURCE, maxAdapters=1), "aliases": [],
          "auth": {"allowedModels": {"t": ["a-v2:ft"]}}},
         ("auth",), "allowedModels.t[0] 'a-v2:ft' names a LoRA adapter"),
    ],
)
def test_lora_errors_name_the_key(patch, loc, fragment):
    got_loc, msg = _error(_cfg(**{"aliases": [], **patch}))
    assert got_loc == loc
    assert fragment in msg


def test_split_ref():
    assert split_ref("a:ft") == ("a", "ft") and split_ref("a") == ("a", None)


def test_catalog_lists_through_the_lister_and_caches():
    calls = []

    def lister(path: str, base: str) -> list[str]:
        calls.append((path, base))
        return [f"{base}:ft", f"{base}:ft2"]

    catalog = AdapterCatalog({"a": SOURCE}, lister)
    assert catalog.may_have("a:ft") and not catalog.may_have("a") and not catalog.may_have("b:x")
    assert asyncio.run(catalog.exists("a:ft"))
    assert not asyncio.run(catalog.exists("a:nope"))
    assert not asyncio.run(catalog.exists("b:ft"))
    assert calls == [(SOURCE, "a")]  # cached for CACHE_TTL_S


def test_llm_config_sets_ray_lora_config_and_vllm_engine_args():
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("vllm") is None:
        pytest.skip("ray/vllm are not installed (make venv installs requirements-dev.txt)")
    from ray.llm._internal.serve.engines.vllm.vllm_models import VLLMEngineConfig

    from serve_app.llm_config import llm_config

    cfg = ServingConfig.model_validate(
        _cfg(models=_models(source=SOURCE, maxAdapters=3, maxRank=32), aliases=[])
    )
    config = llm_config(cfg.models[0], cfg)
    # Ray strips the trailing slash; adapters are `<path>/<adapter>`.
    assert config.lora_config.dynamic_lora_loading_path == SOURCE.rstrip("/")
    assert config.lora_config.max_num_adapters_per_replica == 3
    engine = VLLMEngineConfig.from_llm_config(config).engine_kwargs
    assert (engine["enable_lora"], engine["max_loras"], engine["max_lora_rank"]) == (True, 3, 32)
