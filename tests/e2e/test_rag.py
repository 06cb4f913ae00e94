"""Vector stores and the `docs` pipeline end to end: the official `openai` client against the local
app with `make local`'s RAG settings, a real PostgreSQL + pgvector (tests/support/postgres.py)
and a real embedder (all-MiniLM-L6-v2 served by vLLM on the CPU, `minilm` in serve_app/local.py).

Its own app (one chat model + the embedder), so the session app stays as it was and the test
owns the database it stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator

import openai
import psycopg
import pytest

from tests.e2e.conftest import KEY_ADMIN, KEY_OTHER, LOG_DIR, LocalApp, _require, running_app
from tests.support.pdf import make_pdf
from tests.support.postgres import postgres  # noqa: F401  (a fixture)
from tools.process import free_port

pytestmark = pytest.mark.e2e

VOLCANO = (
    "# Volcanoes\n\nA volcano erupts when magma from the mantle rises through cracks in the"
    " crust. Pressure from dissolved gases drives lava, ash and volcanic bombs out of the vent."
    " Shield volcanoes such as Mauna Loa build gentle slopes from runny basalt lava, while"
    " stratovolcanoes explode violently.\n\n## Monitoring\n\nSeismometers record the small"
    " earthquakes that come before an eruption, and gas sensors measure sulfur dioxide.\n"
)
SOURDOUGH = (
    "Sourdough bread is leavened by a starter: a culture of wild yeast and lactic acid bacteria"
    " kept alive by feeding it flour and water. The bacteria make the bread sour. Bakers mix"
    " flour, water, salt and starter, let the dough ferment slowly, shape the loaf and bake it"
    " in a very hot oven, often inside a covered pot so steam forms a crisp crust.\n"
)
TIDES = [
    "Ocean tides are caused mainly by the gravity of the Moon. The Moon pulls the water on the"
    " near side of the Earth towards it, and a second bulge forms on the far side.",
    "As the Earth rotates through both bulges, most coasts see two high tides and two low tides"
    " every day. When the Sun and Moon line up, spring tides are the largest.",
]
QUESTIONS = {
    "volcano.md": "What makes magma rise and a volcano erupt with lava and ash?",
    "sourdough.txt": "How do bakers use a starter of wild yeast to make sour bread?",
    "tides.pdf": "Why does the moon cause high tides in the ocean twice a day?",
}


RAG_MAX_FILE_BYTES, RAG_MAX_STORE_BYTES = 64 * 1024, 96 * 1024


@pytest.fixture(scope="module")
def rag_app(postgres) -> Iterator[LocalApp]:  # noqa: F811  (the imported fixture)
    """`make local`'s RAG config (minilm, vector stores, pipeline `docs` over alias `chat`) with
    one chat model behind `chat`, small limits, and the tests' own database; plus a tiny random
    cross-encoder `tiny-reranker` (a score model) and the pipeline `docs-reranked` using it."""
    _require(["ray", "vllm", "openai", "transformers"])
    from serve_app.local import local_serving_config, tiny_reranker_model

    data = local_serving_config(rag=True).model_dump(mode="json", by_alias=True)
    data["models"] = [m for m in data["models"] if m["id"] in ("tiny-chat", "minilm")]
    data["models"].append(tiny_reranker_model())
    data["rag"]["pipelines"].append({
        "name": "docs-reranked", "embedder": "minilm", "generator": "chat",
        "reranker": "tiny-reranker", "topK": 1, "rerankCandidates": 3})
    data["aliases"] = [{"name": "chat", "targets": [{"model": "tiny-chat", "weight": 1}]}]
    data["appName"] = "rag-e2e"
    data["rag"]["limits"] = {"maxFileBytes": RAG_MAX_FILE_BYTES,
                             "maxStoreBytes": RAG_MAX_STORE_BYTES}
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    serving = LOG_DIR / "serving-rag.json"
    serving.write_text(json.dumps(data))
    env = dict(
        os.environ, PORT=str(free_port()), LLM_PLATFORM_SERVING_FILE=str(serving),
        LLM_PLATFORM_API_KEYS=f"admin:{KEY_ADMIN},other:{KEY_OTHER}",
        LLM_PLATFORM_RAG_DSN=postgres.dsn, LLM_PLATFORM_METRICS_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    with running_app(env, LOG_DIR / "local-rag.log") as app:
        yield app


def _client(app: LocalApp, key: str = KEY_ADMIN) -> openai.OpenAI:
    # No retries: a 503 must reach the test as it reached the client.
    return app.client(key, max_retries=0, timeout=120)


def _count(dsn: str, sql: str, *params: object) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchone()[0]


@pytest.fixture(scope="module")
def corpus(rag_app: LocalApp) -> Iterator[dict]:
    """Three documents (Markdown, text, PDF) uploaded and attached to one store."""
    client = _client(rag_app)
    store = client.vector_stores.create(name="e2e-docs")
    files = {}
    for name, data in (
        ("volcano.md", VOLCANO.encode()),
        ("sourdough.txt", SOURDOUGH.encode()),
        ("tides.pdf", make_pdf(TIDES)),
    ):
        uploaded = client.files.create(file=(name, data), purpose="assistants")
        attached = client.vector_stores.files.create_and_poll(
            file_id=uploaded.id, vector_store_id=store.id
        )
        assert attached.status == "completed", attached.last_error
        files[name] = uploaded.id
    yield {"store": store.id, "files": files}
    with contextlib.suppress(openai.NotFoundError):  # the delete test removes it itself
        client.vector_stores.delete(store.id)


def test_search_returns_the_right_file_first(rag_app: LocalApp, corpus: dict) -> None:
    client = _client(rag_app)
    store = client.vector_stores.retrieve(corpus["store"])
    assert store.file_counts.completed == 3 and store.usage_bytes > 0
    for filename, question in QUESTIONS.items():
        results = client.vector_stores.search(corpus["store"], query=question, max_num_results=3)
        names = [r.filename for r in results.data]
        assert names and names[0] == filename, (question, [(r.filename, r.score)
                                                           for r in results.data])
        assert results.data[0].content[0].text.strip()


def test_pipeline_answers_with_sources_naming_the_right_file(
    rag_app: LocalApp, corpus: dict
) -> None:
    client = _client(rag_app)
    assert "docs" in {m.id for m in client.models.list().data}
    question = QUESTIONS["tides.pdf"]
    answer = client.chat.completions.create(
        model="docs", messages=[{"role": "user", "content": question}], max_tokens=8
    )
    assert answer.model == "docs"
    assert answer.choices[0].message.content is not None
    sources = answer.sources  # the documented extra field (serve_app/rag/api.py)
    assert sources[0]["filename"] == "tides.pdf"
    assert {"chunk_id", "file_id", "score", "vector_store_id"} <= set(sources[0])

    stream = client.chat.completions.create(
        model="docs", messages=[{"role": "user", "content": QUESTIONS["volcano.md"]}],
        max_tokens=8, stream=True,
    )
    chunks = list(stream)
    assert chunks and all(c.model == "docs" for c in chunks)
    first_sources = chunks[0].model_extra.get("sources")
    assert first_sources and first_sources[0]["filename"] == "volcano.md"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_pipeline_with_a_reranker_calls_it(rag_app: LocalApp, corpus: dict) -> None:
    """`docs-reranked` fetches 3 candidates, has `tiny-reranker` (vLLM's score API on the
    pooling runner, through its deployment handle) score them and keeps the best one. Its
    weights are random: this proves the wiring (the scores are the reranker's, not the vector
    search's), not the ranking's quality."""
    client = _client(rag_app)
    question = QUESTIONS["tides.pdf"]
    answer = client.chat.completions.create(
        model="docs-reranked", messages=[{"role": "user", "content": question}], max_tokens=4)
    (source,) = answer.sources  # topK 1
    assert source["score"] == source["rerank_score"], source
    assert 0.0 < source["rerank_score"] < 1.0  # a one-label classifier's sigmoid
    # Each corpus file is one chunk: the vector search's own score for the file is the
    # candidate's vector score, which the reranker's differs from.
    searched = {r.file_id: r.score
                for r in client.vector_stores.search(corpus["store"], query=question,
                                                     max_num_results=3).data}
    assert abs(searched[source["file_id"]] - source["vector_score"]) < 1e-4, (searched, source)
    assert abs(source["rerank_score"] - source["vector_score"]) > 1e-6
    # The kept chunk is the one the reranker scores highest: ask it directly (/v1/score on
    # the gateway, vLLM's score API) about the three candidates' texts.
    import httpx

    texts = {r.file_id: r.content[0].text
             for r in client.vector_stores.search(corpus["store"], query=question,
                                                  max_num_results=3).data}
    ids = list(texts)
    scored = httpx.post(f"{rag_app.base_url}/v1/score", timeout=60,
                        headers={"Authorization": f"Bearer {KEY_ADMIN}"},
                        json={"model": "tiny-reranker", "text_1": question,
                              "text_2": [texts[i] for i in ids]})
    assert scored.status_code == 200, scored.text
    direct = {ids[d["index"]]: d["score"] for d in scored.json()["data"]}
    assert max(direct, key=direct.get) == source["file_id"], (direct, source)
    assert abs(direct[source["file_id"]] - source["rerank_score"]) < 1e-4


def _file_search(store: str, **fields: object) -> dict:
    return {"type": "file_search", "vector_store_ids": [store], **fields}


def test_responses_file_search_cites_the_right_file(rag_app: LocalApp, corpus: dict) -> None:
    """The Responses API's file_search tool (serve_app/rag/file_search.py): the gateway
    searches the caller's store, and the answer parsed by the openai client has the
    file_search_call item (with results when included) and file citations."""
    client = _client(rag_app)
    question = QUESTIONS["tides.pdf"]
    response = client.responses.create(
        model="tiny-chat", input=question, max_output_tokens=8,
        tools=[_file_search(corpus["store"], max_num_results=1)],
        include=["file_search_call.results"],
    )
    call, message = response.output[0], response.output[-1]
    assert call.type == "file_search_call" and call.status == "completed"
    assert call.queries == [question]
    assert [r.filename for r in call.results] == ["tides.pdf"] and call.results[0].text
    assert message.type == "message"
    citations = message.content[0].annotations
    assert [(c.type, c.filename) for c in citations] == [("file_citation", "tides.pdf")]
    assert citations[0].file_id == corpus["files"]["tides.pdf"]
    assert [t.type for t in response.tools] == ["file_search"]
    # Without `include`, the call item carries no results (as OpenAI's).
    plain = client.responses.create(
        model="tiny-chat", input=QUESTIONS["volcano.md"], max_output_tokens=4,
        tools=[_file_search(corpus["store"], max_num_results=1)],
    )
    assert plain.output[0].type == "file_search_call" and plain.output[0].results is None
    assert plain.output[-1].content[0].annotations[0].filename == "volcano.md"

    events = []
    with client.responses.create(
        model="tiny-chat", input=QUESTIONS["sourdough.txt"], max_output_tokens=8, stream=True,
        tools=[_file_search(corpus["store"], max_num_results=1)],
        include=["file_search_call.results"],
    ) as stream:
        events = list(stream)
    types = [e.type for e in events]
    assert "response.file_search_call.completed" in types, types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [(e.output_index, e.item.type) for e in added][:2] == [
        (0, "file_search_call"), (1, "message")]
    annotated = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert annotated and annotated[0].annotation.filename == "sourdough.txt"
    final = events[-1].response
    assert [o.type for o in final.output] == ["file_search_call", "message"]
    assert final.output[0].results[0].filename == "sourdough.txt"


def test_responses_file_search_bad_input(rag_app: LocalApp, corpus: dict) -> None:
    other = _client(rag_app, KEY_OTHER)
    with pytest.raises(openai.NotFoundError) as info:  # the admin key's store
        other.responses.create(model="tiny-chat", input="tides?",
                               tools=[_file_search(corpus["store"])])
    assert info.value.body["param"] == "tools[0].vector_store_ids"
    client = _client(rag_app)
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="tiny-chat", input="tides?",
                                tools=[_file_search("vs_missing")])
    assert info.value.body["param"] == "tools[0].vector_store_ids"
    for bad in (0, 51):
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="tiny-chat", input="tides?",
                                    tools=[_file_search(corpus["store"], max_num_results=bad)])
        assert info.value.body["param"] == "tools[0].max_num_results"


def test_rag_metrics_are_exported(rag_app: LocalApp, corpus: dict) -> None:
    """The names the dashboard row and alerts use (serve_app/rag/metrics.py) reach Ray's
    Prometheus endpoint after ingestion and searches (Ray exports every few seconds)."""
    import httpx

    assert rag_app.metrics_port, "the session app was started without a metrics port"
    _client(rag_app).vector_stores.search(corpus["store"], query="lava")
    wanted = {
        "ray_llm_platform_rag_retrieval_seconds_bucket",
        "ray_llm_platform_rag_chunks_searched_bucket",
        "ray_llm_platform_rag_ingested_chunks_total",
        "ray_llm_platform_rag_ingested_bytes_total",
        "ray_llm_platform_rag_ingest_seconds_bucket",
        "ray_llm_platform_rag_store_chunks",
        "ray_llm_platform_rag_store_bytes",
        "ray_llm_platform_rag_reranked_chunks_total",
    }
    deadline = time.monotonic() + 90
    while True:
        text = httpx.get(f"http://127.0.0.1:{rag_app.metrics_port}/metrics", timeout=30).text
        found = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
                 if line.startswith("ray_llm_platform_rag_")}
        if wanted <= found or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert wanted <= found, sorted(wanted - found)
    assert 'source="search"' in text


def test_reupload_is_deduplicated(rag_app: LocalApp, corpus: dict, postgres) -> None:  # noqa: F811
    client = _client(rag_app)
    before = _count(postgres.dsn, "SELECT count(*) FROM rag_chunks WHERE vector_store_id = %s",
                    corpus["store"])
    again = client.files.create(file=("sourdough.txt", SOURDOUGH.encode()), purpose="assistants")
    assert again.id == corpus["files"]["sourdough.txt"]
    attached = client.vector_stores.files.create_and_poll(
        file_id=again.id, vector_store_id=corpus["store"]
    )
    assert attached.status == "completed"
    after = _count(postgres.dsn, "SELECT count(*) FROM rag_chunks WHERE vector_store_id = %s",
                   corpus["store"])
    assert before == after > 0
    assert _count(postgres.dsn, "SELECT count(*) FROM rag_files WHERE tenant = 'admin'"
                  " AND filename = 'sourdough.txt'") == 1


def test_another_key_cannot_see_the_store(rag_app: LocalApp, corpus: dict) -> None:
    other = _client(rag_app, KEY_OTHER)
    with pytest.raises(openai.NotFoundError):
        other.vector_stores.retrieve(corpus["store"])
    with pytest.raises(openai.NotFoundError):
        other.vector_stores.search(corpus["store"], query="tides")
    with pytest.raises(openai.NotFoundError):
        other.files.retrieve(corpus["files"]["tides.pdf"])
    assert corpus["store"] not in {s.id for s in other.vector_stores.list().data}
    # The other key's pipeline searches its own (empty) stores: no admin file leaks.
    answer = other.chat.completions.create(
        model="docs", messages=[{"role": "user", "content": QUESTIONS["tides.pdf"]}],
        max_tokens=4,
    )
    assert answer.sources == []


def test_bad_uploads_get_clear_errors(rag_app: LocalApp) -> None:
    client = _client(rag_app)
    cases = [
        (("empty.txt", b""), 400, "empty"),
        (("data.csv", b"a,b\n1,2\n"), 400, "Unsupported file type"),
        (("fake.pdf", b"not a pdf"), 400, "not a PDF"),
        (("big.txt", b"x" * (RAG_MAX_FILE_BYTES + 1)), 413, "limit"),
    ]
    for upload, status, text in cases:
        with pytest.raises(openai.APIStatusError) as info:
            client.files.create(file=upload, purpose="assistants")
        err = info.value
        assert err.status_code == status, (upload[0], err.status_code, err.message)
        assert text in err.message and err.body["param"] == "file", err.body
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="docs", messages=[{"role": "user", "content": " "}])
    assert info.value.body["param"] == "messages"


def test_store_size_limit(rag_app: LocalApp) -> None:
    client = _client(rag_app)
    store = client.vector_stores.create(name="e2e-limit")
    try:
        ids = [
            client.files.create(file=(f"part{i}.txt", (f"part {i} " + "lorem ipsum " * 4400)
                                      .encode()), purpose="assistants").id
            for i in range(2)
        ]
        client.vector_stores.files.create_and_poll(file_id=ids[0], vector_store_id=store.id)
        with pytest.raises(openai.BadRequestError) as info:
            client.vector_stores.files.create_and_poll(file_id=ids[1], vector_store_id=store.id)
        assert "maxStoreBytes" in info.value.message
    finally:
        client.vector_stores.delete(store.id)


def test_delete_removes_every_chunk(rag_app: LocalApp, corpus: dict, postgres) -> None:  # noqa: F811
    client = _client(rag_app)
    file_id = corpus["files"]["volcano.md"]
    sql = "SELECT count(*) FROM rag_chunks WHERE vector_store_id = %s AND file_id = %s"
    assert _count(postgres.dsn, sql, corpus["store"], file_id) > 0
    deleted = client.vector_stores.files.delete(file_id=file_id, vector_store_id=corpus["store"])
    assert deleted.deleted
    assert _count(postgres.dsn, sql, corpus["store"], file_id) == 0
    results = client.vector_stores.search(corpus["store"], query=QUESTIONS["volcano.md"])
    assert "volcano.md" not in {r.filename for r in results.data}
    client.vector_stores.delete(corpus["store"])
    assert _count(postgres.dsn, "SELECT count(*) FROM rag_chunks WHERE vector_store_id = %s",
                  corpus["store"]) == 0


def test_ingest_cli_loads_a_folder_and_resumes(
    rag_app: LocalApp, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m tools.ingest` (h18b) against the app: supported files loaded, the rest left,
    a second run skips every file already stored (by SHA-256)."""
    from tools.ingest import main

    (tmp_path / "deep").mkdir()
    (tmp_path / "volcano.md").write_text(VOLCANO)
    (tmp_path / "deep" / "sourdough.txt").write_text(SOURDOUGH)
    (tmp_path / "photo.png").write_bytes(b"\x89PNG not a document")
    args = [str(tmp_path), "--store", "ingest-e2e", "--base-url", f"{rag_app.base_url}/v1",
            "--api-key", KEY_ADMIN, "--no-progress", "--concurrency", "2"]
    assert main(args) == 0
    assert "ingest-e2e: 2 loaded, 0 already stored, 0 failed" in capsys.readouterr().out
    assert main(args) == 0
    assert "ingest-e2e: 0 loaded, 2 already stored, 0 failed" in capsys.readouterr().out
    client = _client(rag_app)
    store = next(s for s in client.vector_stores.list() if s.name == "ingest-e2e")
    files = list(client.vector_stores.files.list(vector_store_id=store.id))
    assert sorted(f.attributes["source"] for f in files) == ["deep/sourdough.txt", "volcano.md"]
    client.vector_stores.delete(store.id)


def test_database_stopped_mid_request_gives_503_and_nothing_half_written(
    rag_app: LocalApp, postgres  # noqa: F811
) -> None:
    """The attach is held inside its transaction (the test locks rag_chunks), the database is
    killed, and the client gets a 503; after a restart nothing of that attach exists."""
    client = _client(rag_app)
    store = client.vector_stores.create(name="e2e-outage")
    uploaded = client.files.create(file=("outage.txt", SOURDOUGH.encode() * 3),
                                   purpose="assistants")
    outcome: dict = {}

    def attach() -> None:
        try:
            client.vector_stores.files.create(file_id=uploaded.id, vector_store_id=store.id)
            outcome["result"] = "completed"
        except openai.APIStatusError as exc:
            outcome["result"] = exc
    lock = psycopg.connect(postgres.dsn)
    try:
        lock.execute("LOCK TABLE rag_chunks IN EXCLUSIVE MODE")  # blocks the attach's COPY
        worker = threading.Thread(target=attach)
        worker.start()
        deadline = time.monotonic() + 120
        while _count(postgres.dsn, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type"
                     " = 'Lock' AND query LIKE 'COPY rag_chunks%%'") == 0:
            assert time.monotonic() < deadline, "the attach never reached its chunk COPY"
            assert worker.is_alive(), outcome
            time.sleep(0.2)
        postgres.stop("immediate")  # a crash: no clean shutdown, in-flight transactions lost
        worker.join(timeout=60)
        error = outcome.get("result")
        assert isinstance(error, openai.APIStatusError), outcome
        assert error.status_code == 503 and error.body["code"] == "database_unavailable"
        with pytest.raises(openai.APIStatusError) as info:  # and while it stays down
            client.vector_stores.list()
        assert info.value.status_code == 503
    finally:
        lock.close()
        postgres.start()
    assert _count(postgres.dsn, "SELECT count(*) FROM rag_vector_store_files WHERE file_id = %s",
                  uploaded.id) == 0
    assert _count(postgres.dsn, "SELECT count(*) FROM rag_chunks WHERE file_id = %s",
                  uploaded.id) == 0
    # And the gateway recovers by itself once the database is back (the pool reconnects with
    # backoff: allow it some seconds).
    deadline = time.monotonic() + 60
    while True:
        try:
            attached = client.vector_stores.files.create_and_poll(file_id=uploaded.id,
                                                                  vector_store_id=store.id)
            break
        except openai.APIStatusError as exc:
            assert exc.status_code == 503 and time.monotonic() < deadline, exc
            time.sleep(2)
    assert attached.status == "completed"
    client.vector_stores.delete(store.id)
