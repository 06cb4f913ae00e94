"""serve_app/tool_calling.py and the toolCalling config key (no Ray needed for the config)."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest

from serve_app.config import ServingConfig
from serve_app.errors import GatewayError
from serve_app.tool_calling import asks_for_tools, require_tool_calling, tool_models
from tests.unit.serve_app.test_config import _cfg, _error

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {}}}]


def _models(**tool_calling) -> list[dict]:
    return [{"id": "a", "source": "org/a", "toolCalling": tool_calling},
            {"id": "a-v2", "source": "org/a-v2"}]


def test_tool_calling_config_is_accepted():
    cfg = ServingConfig.model_validate(
        _cfg(models=_models(parser="hermes", reasoningParser="qwen3"))
    )
    assert cfg.models[0].tool_calling.parser == "hermes"
    assert cfg.models[0].tool_calling.reasoning_parser == "qwen3"
    assert tool_models(cfg) == {"a"}


@pytest.mark.parametrize(
    ("models", "loc", "fragment"),
    [
        (_models(parser="hermez"), ("models", 0, "toolCalling", "parser"),
         "'hermez' is not a tool-call parser registered in the pinned vLLM"),
        (_models(parser="hermes", reasoningParser="qwen9"),
         ("models", 0, "toolCalling", "reasoningParser"), "valid: cohere_command3"),
        (_models(), ("models", 0, "toolCalling", "parser"), "Field required"),
        (_models(parser="hermes", extra=1), ("models", 0, "toolCalling", "extra"), "Extra"),
        ([{"id": "e", "source": "x", "task": "embed", "toolCalling": {"parser": "hermes"}}],
         ("models", 0, "toolCalling"), "needs task: generate"),
        ([{"id": "a", "source": "x", "engineArgs": {"tool_call_parser": "hermes"}}],
         ("models", 0, "engineArgs"), "engineArgs.tool_call_parser is set by toolCalling"),
        ([{"id": "a", "source": "x", "engineArgs": {"reasoning_parser": "qwen3"},
           "toolCalling": {"parser": "hermes", "reasoningParser": "qwen3"}}],
         ("models", 0, "toolCalling"), "both set"),
    ],
)
def test_tool_calling_errors_name_the_key(models, loc, fragment):
    got_loc, msg = _error(_cfg(models=models, aliases=[]))
    assert got_loc == loc
    assert fragment in msg


def test_parser_error_lists_valid_names():
    _, msg = _error(_cfg(models=_models(parser="nope"), aliases=[]))
    assert "hermes" in msg and "pythonic" in msg and "llama3_json" in msg


@pytest.mark.parametrize(
    ("tools", "choice", "asks"),
    [(TOOLS, "auto", True), (TOOLS, "required", True),
     (TOOLS, {"type": "function", "function": {"name": "f"}}, True),
     (TOOLS, "none", False), (None, None, False), ([], "auto", False)],
)
def test_asks_for_tools(tools, choice, asks):
    assert asks_for_tools(SimpleNamespace(tools=tools, tool_choice=choice)) is asks


def test_model_without_tool_calling_gets_a_400_naming_the_key():
    body = SimpleNamespace(model="a-v2", tools=TOOLS, tool_choice="auto")
    with pytest.raises(GatewayError) as exc:
        require_tool_calling(body, frozenset({"a"}))
    assert exc.value.status == 400
    assert "serving.models[].toolCalling" in exc.value.message
    assert exc.value.code == "tool_calling_not_enabled"
    require_tool_calling(SimpleNamespace(model="a", tools=TOOLS, tool_choice="auto"),
                         frozenset({"a"}))
    # A LoRA adapter of a tool-calling model inherits its parser.
    require_tool_calling(SimpleNamespace(model="a:ft", tools=TOOLS, tool_choice="required"),
                         frozenset({"a"}))


def test_llm_config_sets_vllm_frontend_args():
    """Ray Serve LLM must route the keys to vLLM's FrontendArgs (and the reasoning parser to
    the engine args), else the engine would reject them as unknown."""
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("vllm") is None:
        pytest.skip("ray/vllm are not installed (make venv installs requirements-dev.txt)")
    from ray.llm._internal.serve.engines.vllm.vllm_models import VLLMEngineConfig

    from serve_app.llm_config import llm_config

    cfg = ServingConfig.model_validate(
        _cfg(models=_models(parser="pythonic", reasoningParser="qwen3"), aliases=[])
    )
    engine = VLLMEngineConfig.from_llm_config(llm_config(cfg.models[0], cfg))
    assert engine.frontend_kwargs == {"enable_auto_tool_choice": True,
                                      "tool_call_parser": "pythonic"}
    assert engine.engine_kwargs["reasoning_parser"] == "qwen3"
    plain = VLLMEngineConfig.from_llm_config(llm_config(cfg.models[1], cfg))
    assert "tool_call_parser" not in plain.frontend_kwargs


def test_stack_file_error_names_the_full_path():
    """The stack file's serving section is the same model: its error names the stack key."""
    import copy

    from infra.config import ConfigError, own_keys, validate
    from infra.config.profiles import with_profile
    from tools.render import stack_config

    raw, secrets = stack_config("dev")
    values, secret_keys = own_keys(raw, set(secrets))
    values = copy.deepcopy(with_profile(values))
    values["serving"]["models"][0]["toolCalling"] = {"parser": "hermez"}
    with pytest.raises(ConfigError) as exc:
        validate(values, secret_keys)
    assert any(p.startswith("llm-platform:serving.models[0].toolCalling.parser:")
               and "'hermez' is not a tool-call parser" in p for p in exc.value.problems)
