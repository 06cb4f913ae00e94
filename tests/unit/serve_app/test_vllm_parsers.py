"""serve_app/vllm_parsers.py lists exactly the parsers the pinned vLLM registers."""

from __future__ import annotations

import importlib.util

import pytest

from serve_app.vllm_parsers import REASONING_PARSERS, TOOL_CALL_PARSERS


@pytest.fixture(scope="module")
def vllm_registries():
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed (make venv installs requirements-dev.txt)")
    from vllm.reasoning import ReasoningParserManager
    from vllm.tool_parsers import ToolParserManager

    return set(ToolParserManager.list_registered()), set(ReasoningParserManager.list_registered())


def test_tool_call_parsers_match_the_pinned_vllm(vllm_registries):
    assert set(TOOL_CALL_PARSERS) == vllm_registries[0]


def test_reasoning_parsers_match_the_pinned_vllm(vllm_registries):
    assert set(REASONING_PARSERS) == vllm_registries[1]
