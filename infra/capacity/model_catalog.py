"""Architecture facts of common models, for the capacity check (infra/capacity/fit.py).

Keyed by Hugging Face repo id; a model's `source` matches when it is the repo id or ends with
`/<repo id>` (an S3 mirror such as `s3://bucket/meta-llama/Llama-3.1-8B-Instruct`). Models not
listed here state `facts:` in their config entry.

Sources (each model's `config.json` on the Hugging Face Hub, read through public copies):
- Llama 3.1 8B / 70B: hidden 4096 / 8192, 32 / 80 layers, 32 / 64 attention heads, 8 KV heads
  (head_dim = hidden / heads = 128), max_position_embeddings 131072, torch_dtype bfloat16
  (meta-llama/Llama-3.1-{8B,70B}-Instruct config.json, as tabulated in oumi-ai/oumi
  configs/recipes/llama3_1/README.md). Parameters 8,030,261,248 and 70,562,938,880 (counted from
  original/params.json, thamada/modelQuery README.md).
- Qwen2.5 7B: hidden 3584, 28 layers, 28 heads, 4 KV heads (head_dim 128),
  max_position_embeddings 32768, bfloat16 (Qwen2 7B config.json; Qwen2.5-7B keeps the
  architecture); 7.61B parameters (the model card's "Number of Parameters").
"""

from __future__ import annotations

from serve_app.config import ModelFacts

CATALOG: dict[str, ModelFacts] = {
    "meta-llama/Llama-3.1-8B-Instruct": ModelFacts(
        parameters_billions=8.03, num_layers=32, num_attention_heads=32, num_kv_heads=8,
        head_dim=128, context_length=131072, dtype="bfloat16",
    ),
    "meta-llama/Llama-3.1-70B-Instruct": ModelFacts(
        parameters_billions=70.56, num_layers=80, num_attention_heads=64, num_kv_heads=8,
        head_dim=128, context_length=131072, dtype="bfloat16",
    ),
    "Qwen/Qwen2.5-7B-Instruct": ModelFacts(
        parameters_billions=7.61, num_layers=28, num_attention_heads=28, num_kv_heads=4,
        head_dim=128, context_length=32768, dtype="bfloat16",
    ),
}


def facts_for(source: str) -> ModelFacts | None:
    """The catalogued facts of the model at `source`, if it is a catalogued model."""
    for repo_id, facts in CATALOG.items():
        if source == repo_id or source.rstrip("/").endswith("/" + repo_id):
            return facts
    return None
