"""Text -> chunks sized in the embedder's own tokens, with semantic-text-splitter.

semantic-text-splitter (the Rust `text-splitter` crate) fills each chunk with the largest
semantic units that fit (headings, paragraphs, sentences, words) and supports overlap;
`MarkdownSplitter` respects Markdown structure. Tokens are counted with the embedder's
Hugging Face tokenizer (its `tokenizer.json`), so a chunk never exceeds what the embedder reads.
When the tokenizer cannot be loaded (e.g. a model stored only in S3), sizes fall back to
characters at 4 per token, the rule of thumb OpenAI documents for English.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger("ray.serve")
CHARS_PER_TOKEN = 4


@lru_cache(maxsize=8)
def load_tokenizer(source: str):  # -> tokenizers.Tokenizer | None
    """The tokenizer of a model source: a local directory's tokenizer.json, else the Hub."""
    from tokenizers import Tokenizer

    try:
        path = Path(source) / "tokenizer.json"
        if path.is_file():
            tok = Tokenizer.from_file(str(path))
        else:
            # tokenizers sends only the token it is given (tokenizers/src/utils/
            # from_pretrained.rs: `auth_token`, no environment lookup), and a gated embedder's
            # repository needs one: the pods carry HF_TOKEN for that.
            tok = Tokenizer.from_pretrained(source, token=os.environ.get("HF_TOKEN") or None)
    except Exception as exc:  # any load failure means "count characters"; say so once
        logger.warning("no tokenizer for %s (%s): chunk sizes counted in characters", source, exc)
        return None
    # The splitter must see true lengths (its docs say so): sentence-transformers tokenizers
    # often ship truncation and fixed padding (MiniLM: both at 128).
    tok.no_truncation()
    tok.no_padding()
    return tok


@lru_cache(maxsize=32)
def _splitter(source: str, kind: str, max_tokens: int, overlap: int):
    from semantic_text_splitter import MarkdownSplitter, TextSplitter

    cls = MarkdownSplitter if kind == "markdown" else TextSplitter
    tok = load_tokenizer(source)
    if tok is None:
        return cls(max_tokens * CHARS_PER_TOKEN, overlap=overlap * CHARS_PER_TOKEN)
    return cls.from_huggingface_tokenizer(tok, max_tokens, overlap=overlap)


def split(
    text: str, *, kind: str, tokenizer_source: str, max_tokens: int, overlap: int
) -> list[str]:
    """Chunks of `text` (kind "markdown" keeps Markdown structure), empty ones dropped."""
    chunks = _splitter(tokenizer_source, kind, max_tokens, overlap).chunks(text)
    return [c for c in chunks if c.strip()]
