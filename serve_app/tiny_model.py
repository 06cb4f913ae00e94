"""Generate tiny random-weight Llama models with a locally trained tokenizer (no download).

Used by local mode, the e2e tests and the benchmark. Models are written under build/models/
and reused when present.
"""

from __future__ import annotations

import argparse
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent.parent / "build" / "models"
VOCAB_SIZE = 512
MAX_POSITIONS = 2048
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "An inference platform serves language models to many users at once.",
    "Ray Serve scales each deployment by its own load.",
    "vLLM batches requests continuously and pages its key value cache.",
    "Hello! How are you today? I am fine, thank you.",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000",
    "system user assistant: answer briefly and politely.",
]


def _train_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = MAX_POSITIONS
    fast.save_pretrained(out)


def ensure_tiny_model(name: str, seed: int, models_dir: Path = MODELS_DIR) -> Path:
    """Return the directory of model `name`, generating it first if it is missing."""
    out = models_dir / name
    if (out / "config.json").exists() and (out / "tokenizer.json").exists():
        return out
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    _train_tokenizer(tmp)
    torch.manual_seed(seed)
    # head_dim 64: the CPU attention backend rejects smaller heads.
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
        tie_word_embeddings=True,
        torch_dtype="float32",
    )
    LlamaForCausalLM(config).save_pretrained(tmp, safe_serialization=True)
    tmp.rename(out)  # atomic: a half-written model is never picked up
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=MODELS_DIR)
    args = parser.parse_args()
    for name, seed in (("tiny-chat", 1), ("tiny-chat-v2", 2)):
        print(ensure_tiny_model(name, seed, args.dir))


if __name__ == "__main__":
    main()
