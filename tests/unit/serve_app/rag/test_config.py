"""serving.rag: every bad value gets an error naming its field path."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from serve_app.config import ServingConfig
from serve_app.llm_config import llm_config


def _data(**rag: Any) -> dict[str, Any]:
    base = {"source": "/m", "accelerator": {"gpusPerReplica": 0}}
    return {
        "models": [
            dict(base, id="gen"),
            dict(base, id="emb", task="embed"),
            dict(base, id="rank", task="score"),
        ],
        "aliases": [{"name": "chat", "targets": [{"model": "gen", "weight": 1}]}],
        "rag": {
            "enabled": True,
            "embedder": "emb",
            "pipelines": [{"name": "docs", "embedder": "emb", "generator": "chat"}],
            **rag,
        },
    }


def _pipeline(**fields: Any) -> dict[str, Any]:
    return _data(pipelines=[{"name": "docs", "embedder": "emb", "generator": "chat", **fields}])


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(pydantic.ValidationError) as info:
        ServingConfig.model_validate(data)
    return str(info.value)


def test_a_valid_rag_config_lists_its_pipelines_as_models() -> None:
    cfg = ServingConfig.model_validate(_pipeline(reranker="rank", topK=3))
    assert cfg.public_names() == ["gen", "emb", "rank", "chat", "docs"]
    pipe = cfg.rag.pipelines[0]
    assert (pipe.top_k, pipe.reranker, pipe.vector_store_ids) == (3, "rank", None)
    assert cfg.rag.chunking.max_chunk_size_tokens == 800  # OpenAI's defaults
    assert cfg.rag.chunking.chunk_overlap_tokens == 400


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_pipeline(embedder="nope"), "rag.pipelines[0].embedder 'nope' is not a served model"),
        (_pipeline(generator="emb"), "rag.pipelines[0].generator 'emb' has task embed"),
        (_pipeline(reranker="gen"), "rag.pipelines[0].reranker 'gen' has task generate"),
        (_pipeline(topK=0), "rag.pipelines.0.topK"),
        (_pipeline(name="gen"), "rag.pipelines[0].name 'gen' clashes with a model or alias"),
        (_pipeline(vectorStoreIds=["x"]), "vectorStoreIds[0] 'x' is not a vector store id"),
        (_pipeline(promptTemplate="{question}"), "missing ['context']"),
        (_pipeline(promptTemplate="{context}{question}{x}"), "unknown ['x']"),
        (_pipeline(reranker="rank", topK=10, rerankCandidates=5), "rerankCandidates (5)"),
        (_data(embedder="gen"), "rag.embedder 'gen' has task generate"),
        (_data(embedder=None), "embedder is required when rag is enabled"),
        (_data(enabled=False), "pipelines need enabled: true"),
        (_data(chunking={"maxChunkSizeTokens": 200, "chunkOverlapTokens": 150}),
         "chunkOverlapTokens (150) must be at most half"),
        (_data(chunking={"maxChunkSizeTokens": 50}), "rag.chunking.maxChunkSizeTokens"),
        (_data(database={"dsnEnvVar": "1X"}), "rag.database.dsnEnvVar"),
        (_data(database={"poolMinSize": 9, "poolMaxSize": 2}), "poolMinSize (9)"),
        (_data(limits={"maxFileBytes": 0}), "rag.limits.maxFileBytes"),
        (_data(bogus=1), "rag.bogus"),
    ],
)
def test_bad_rag_settings_name_their_field(data: dict[str, Any], expected: str) -> None:
    assert expected in _error(data)


def test_allowed_models_may_name_a_pipeline() -> None:
    data = _pipeline()
    data["auth"] = {"allowedModels": {"team": ["docs"]}}
    assert ServingConfig.model_validate(data).auth.allowed_models == {"team": ["docs"]}


def test_pooling_models_use_vllms_pooling_runner_not_task() -> None:
    cfg = ServingConfig.model_validate(_pipeline())
    for model_id, convert in (("emb", "embed"), ("rank", "classify")):
        engine = llm_config(cfg.model(model_id), cfg).engine_kwargs
        assert (engine["runner"], engine["convert"]) == ("pooling", convert)
        assert "task" not in engine
    assert "runner" not in llm_config(cfg.model("gen"), cfg).engine_kwargs


def test_rag_needs_the_ingress_gateway() -> None:
    data = _pipeline()
    data.update(gateway="direct", throughputOptimized=True, aliases=[])
    data["rag"]["pipelines"][0]["generator"] = "gen"
    assert "rag.enabled needs gateway: ingress" in _error(data)


def test_the_ray_workers_get_the_same_pins_as_the_dev_venv() -> None:
    from pathlib import Path

    from serve_app.rag import PIP_REQUIREMENTS
    from serve_app.serve_config import serve_applications

    dev = Path(__file__).resolve().parents[4] / "requirements-dev.txt"
    pins = {line.strip() for line in dev.read_text().splitlines()}
    assert set(PIP_REQUIREMENTS) <= pins
    cfg = ServingConfig.model_validate(_pipeline())
    [app] = serve_applications(cfg)
    assert app["runtime_env"]["pip"] == list(PIP_REQUIREMENTS)
    [local] = serve_applications(cfg, install_rag_packages=False)
    assert "runtime_env" not in local
    plain = ServingConfig.model_validate({"models": _data()["models"][:1]})
    assert "runtime_env" not in serve_applications(plain)[0]
