"""serve_app/rag/chunking.py: where the embedder's tokenizer comes from."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from serve_app.rag import chunking


class _Tok:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def no_truncation(self) -> None:
        self.calls.append("no_truncation")

    def no_padding(self) -> None:
        self.calls.append("no_padding")


def test_a_hub_tokenizer_is_fetched_with_the_pods_hf_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """tokenizers' Hub download reads no environment (tokenizers/src/utils/from_pretrained.rs
    sends `auth_token` only when passed), so a gated embedder's tokenizer needs HF_TOKEN handed
    over; without it the chunker falls back to counting characters."""
    seen: list[dict[str, Any]] = []

    class Tokenizer:  # the `tokenizers` API this module uses
        @staticmethod
        def from_pretrained(identifier: str, revision: str = "main",
                            token: str | None = None) -> _Tok:
            seen.append({"identifier": identifier, "token": token})
            return _Tok()

    monkeypatch.setitem(sys.modules, "tokenizers", types.SimpleNamespace(Tokenizer=Tokenizer))
    monkeypatch.setenv("HF_TOKEN", "hf_gatedRepoToken0123")
    chunking.load_tokenizer.cache_clear()
    try:
        tok = chunking.load_tokenizer("org/gated-embedder")
    finally:
        chunking.load_tokenizer.cache_clear()
    assert seen == [{"identifier": "org/gated-embedder", "token": "hf_gatedRepoToken0123"}]
    assert isinstance(tok, _Tok) and tok.calls == ["no_truncation", "no_padding"]
