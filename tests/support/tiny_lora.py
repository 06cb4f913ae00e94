"""A tiny LoRA adapter for a tiny model (serve_app/tiny_model.py), made with PEFT (pinned in
requirements-dev.txt): the files an operator would upload under `lora.source`."""

from __future__ import annotations

from pathlib import Path


def make_tiny_lora(base: Path, out: Path, *, rank: int = 8, seed: int = 7) -> Path:
    """Write `adapter_config.json` + `adapter_model.safetensors` for `base` into `out`.

    The weights are random (PEFT's init_lora_weights=False), not zero, so the adapter changes
    what the model generates."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"],
                        init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(out, safe_serialization=True)
    return out
