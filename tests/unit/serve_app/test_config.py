"""serve_app/config.py: ServingConfig validation (no Ray needed)."""

from __future__ import annotations

import pydantic
import pytest

from serve_app.config import ServingConfig, StrictModel


def _cfg(**overrides) -> dict:
    data = {
        "models": [
            {"id": "a", "source": "org/a"},
            {"id": "a-v2", "source": "org/a-v2"},
        ],
        "aliases": [
            {"name": "chat", "targets": [{"model": "a", "weight": 90},
                                         {"model": "a-v2", "weight": 10}]}
        ],
    }
    data.update(overrides)
    return data


def _error(data: dict) -> tuple[tuple, str]:
    with pytest.raises(pydantic.ValidationError) as exc:
        ServingConfig.model_validate(data)
    err = exc.value.errors()[0]
    return err["loc"], err["msg"]


def test_valid_config_and_camel_case_round_trip():
    cfg = ServingConfig.model_validate(_cfg())
    dumped = cfg.model_dump(mode="json", by_alias=True)
    assert "targetOngoingRequests" in dumped["models"][0]["autoscaling"]
    assert ServingConfig.model_validate(dumped) == cfg
    assert cfg.public_names() == ["a", "a-v2", "chat"]


def test_strict_model_contract():
    assert issubclass(ServingConfig, StrictModel)
    conf = StrictModel.model_config
    assert conf["extra"] == "forbid" and conf["frozen"] and conf["populate_by_name"]


def test_target_ongoing_requests_is_always_set():
    cfg = ServingConfig.model_validate(_cfg())
    for model in cfg.models:
        assert 0 < model.autoscaling.target_ongoing_requests < 1e6


@pytest.mark.parametrize(
    ("patch", "loc", "fragment"),
    [
        ({"models": []}, ("models",), "at least 1"),
        ({"models": [{"id": "a", "source": "x", "extra": 1}]}, ("models", 0, "extra"), "Extra"),
        ({"models": [{"id": "bad name", "source": "x"}]}, ("models", 0, "id"), "pattern"),
        ({"models": [{"id": "a", "source": "x", "autoscaling": {"minReplicas": 3,
                                                                "maxReplicas": 2}}]},
         ("models", 0, "autoscaling"), "must be <= maxReplicas"),
        ({"models": [{"id": "a", "source": "x", "autoscaling": {"minReplicas": 0}}]},
         ("models", 0, "autoscaling"), "allowScaleToZero"),
        ({"models": [{"id": "a", "source": "x", "autoscaling": {"maxReplicas": 0}}]},
         ("models", 0, "autoscaling", "maxReplicas"), "greater than or equal to 1"),
        ({"models": [{"id": "a", "source": "x", "maxQueuedRequests": 0}]},
         ("models", 0, "maxQueuedRequests"), "greater than or equal to 1"),
        ({"models": [{"id": "a", "source": "x", "engineArgs": {"model": "y"}}]},
         ("models", 0, "engineArgs"), "engineArgs.model"),
        ({"models": [{"id": "a", "source": "x"}, {"id": "a", "source": "y"}]},
         ("models",), "models[1].id 'a'"),
    ],
)
def test_model_errors_are_precise(patch, loc, fragment):
    got_loc, msg = _error(_cfg(aliases=[], **patch))
    assert got_loc == loc
    assert fragment in msg


def test_scale_to_zero_allowed_when_explicit():
    model = {"id": "a", "source": "x",
             "autoscaling": {"minReplicas": 0, "allowScaleToZero": True}}
    cfg = ServingConfig.model_validate(_cfg(models=[model], aliases=[]))
    assert cfg.models[0].autoscaling.min_replicas == 0


@pytest.mark.parametrize(
    ("aliases", "loc", "fragment"),
    [
        ([{"name": "chat", "targets": [{"model": "a", "weight": 0}]}],
         ("aliases", 0, "targets", 0, "weight"), "greater than 0"),
        ([{"name": "chat", "targets": [{"model": "zzz", "weight": 1}]}],
         ("aliases",), "aliases[0].targets[0].model 'zzz' is not a configured model"),
        ([{"name": "a", "targets": [{"model": "a-v2", "weight": 1}]}],
         ("aliases",), "clashes with a model id"),
        ([{"name": "chat", "targets": []}], ("aliases", 0, "targets"), "at least 1"),
        ([{"name": "chat", "targets": [{"model": "a", "weight": 1}, {"model": "a", "weight": 2}]}],
         ("aliases", 0, "targets"), "listed twice"),
    ],
)
def test_alias_errors_are_precise(aliases, loc, fragment):
    got_loc, msg = _error(_cfg(aliases=aliases))
    assert got_loc == loc
    assert fragment in msg


def test_auth_errors():
    loc, msg = _error(_cfg(auth={"allowedModels": {"team": ["nope"]}}))
    assert loc == ("auth",) and "'nope' is not a configured model or alias" in msg
    loc, _ = _error(_cfg(auth={"keysEnvVar": "1BAD"}))
    assert loc == ("auth", "keysEnvVar")
    loc, msg = _error(_cfg(env={"OPENAI_API_KEY": "x"}))
    assert loc == ("env",) and "secret" in msg
    ServingConfig.model_validate(_cfg(env={"TOKENIZERS_PARALLELISM": "false"}))


def _canary(rollback) -> list[dict]:
    return [{"name": "chat", "rollback": rollback,
             "targets": [{"model": "a", "weight": 90}, {"model": "a-v2", "weight": 10}]}]


@pytest.mark.parametrize(
    ("aliases", "loc", "fragment"),
    [
        (_canary({"minRequests": 5}), ("aliases", 0, "rollback", "maxErrorRatio"), "required"),
        (_canary({"maxErrorRatio": 1.5}), ("aliases", 0, "rollback", "maxErrorRatio"),
         "less than 1"),
        (_canary({"maxErrorRatio": 0.1, "windowS": 1}), ("aliases", 0, "rollback", "windowS"),
         "greater than or equal to 5"),
        (_canary({"maxErrorRatio": 0.1, "minRequests": 0}),
         ("aliases", 0, "rollback", "minRequests"), "greater than or equal to 1"),
        (_canary({"maxErrorRatio": 0.1, "maxTtftS": 0}), ("aliases", 0, "rollback", "maxTtftS"),
         "greater than 0"),
        (_canary({"maxErrorRatio": 0.1, "window": 60}), ("aliases", 0, "rollback", "window"),
         "Extra"),
        ([{"name": "chat", "rollback": {"maxErrorRatio": 0.1},
           "targets": [{"model": "a", "weight": 1}]}],
         ("aliases", 0, "rollback"), "at least two targets"),
    ],
)
def test_rollback_errors_name_their_path(aliases, loc, fragment):
    got_loc, msg = _error(_cfg(aliases=aliases))
    assert got_loc == loc
    assert fragment in msg


def test_rollback_defaults_and_round_trip():
    cfg = ServingConfig.model_validate(_cfg(aliases=_canary({"maxErrorRatio": 0.05})))
    rule = cfg.aliases[0].rollback
    assert (rule.min_requests, rule.window_s, rule.max_ttft_s) == (20, 60.0, None)
    assert ServingConfig.model_validate(cfg.model_dump(mode="json", by_alias=True)) == cfg


@pytest.mark.parametrize(
    ("model", "loc", "fragment"),
    [
        ({"routing": "roundRobin"}, ("models", 0, "routing"), "'powerOfTwo' or 'prefixAffinity'"),
        ({"routing": "prefixAffinity", "engineArgs": {"enable_prefix_caching": False}},
         ("models", 0, "routing"), "engineArgs.enable_prefix_caching"),
    ],
)
def test_routing_errors_name_their_path(model, loc, fragment):
    got_loc, msg = _error(_cfg(aliases=[], models=[{"id": "a", "source": "x", **model}]))
    assert got_loc == loc
    assert fragment in msg


def test_fault_hooks_cannot_be_set_from_the_serving_config():
    loc, msg = _error(_cfg(env={"LLM_PLATFORM_FAULT_ERROR_MODELS": "a"}))
    assert loc == ("env",) and "local tests only" in msg
