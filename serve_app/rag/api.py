"""OpenAI's Files + Vector Stores API and pipelines-as-models, as a mixin of the ingress.

`RagRoutes` adds the routes in `RAG_ENDPOINTS` to `GatewayIngress` (serve_app/app.py), which
provides `_call_model` (deployment handles), `_aliases`, `_cfg` and the caller's key. Shapes and
paths follow the official `openai` client (openai-python 3.54: `client.files`,
`client.vector_stores`, `.files`, `.search`), so it works unchanged.

Files are processed synchronously: attaching returns `completed` (or an error), so the client's
`create_and_poll` / `upload_and_poll` return at once.

Pipelines answer `chat.completions` and add a top-level `sources` field (each chunk's id,
file id, file name, store id, score): on the response object and, when streaming, on the first
chunk. The openai client keeps unknown fields: `completion.sources` /
`completion.model_extra["sources"]`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from serve_app.errors import GatewayError
from serve_app.rag import metrics
from serve_app.rag.chunking import split
from serve_app.rag.config import Pipeline, RagConfig
from serve_app.rag.extract import check_upload, extract_text
from serve_app.rag.file_search import RESULTS_INCLUDE, Answer, FileSearch, instructions, query_text
from serve_app.rag.models import embed, is_error, score
from serve_app.rag.store import ChunkHit, Page, VectorDB
from serve_app.ray_compat import OpenAIHTTPException

logger = logging.getLogger("ray.serve")
ANONYMOUS = "anonymous"  # the tenant when auth is disabled
_FILE_PURPOSES = ("assistants", "user_data")
_STORE_SIZE_INTERVAL_S = 30.0


def _route(method: str, path: str):
    return lambda app: getattr(app, method)(path, include_in_schema=True)


RAG_ENDPOINTS = {
    "rag_create_file": _route("post", "/v1/files"),
    "rag_list_files": _route("get", "/v1/files"),
    "rag_get_file": _route("get", "/v1/files/{file_id}"),
    "rag_file_content": _route("get", "/v1/files/{file_id}/content"),
    "rag_delete_file": _route("delete", "/v1/files/{file_id}"),
    "rag_create_store": _route("post", "/v1/vector_stores"),
    "rag_list_stores": _route("get", "/v1/vector_stores"),
    "rag_get_store": _route("get", "/v1/vector_stores/{store_id}"),
    "rag_update_store": _route("post", "/v1/vector_stores/{store_id}"),
    "rag_delete_store": _route("delete", "/v1/vector_stores/{store_id}"),
    "rag_search": _route("post", "/v1/vector_stores/{store_id}/search"),
    "rag_attach": _route("post", "/v1/vector_stores/{store_id}/files"),
    "rag_list_store_files": _route("get", "/v1/vector_stores/{store_id}/files"),
    "rag_get_store_file": _route("get", "/v1/vector_stores/{store_id}/files/{file_id}"),
    "rag_detach": _route("delete", "/v1/vector_stores/{store_id}/files/{file_id}"),
}


def _bad(message: str, param: str | None = None, code: str = "invalid_parameter") -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _bad("The request body is not valid JSON.", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", code="invalid_json")
    return body


def _page(request: Request) -> Page:
    q = request.query_params
    try:
        limit = int(q.get("limit", "20"))
    except ValueError as exc:
        raise _bad("limit must be an integer", "limit") from exc
    if not 1 <= limit <= 100:
        raise _bad("limit must be between 1 and 100", "limit")
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _bad("order must be 'asc' or 'desc'", "order")
    return Page(limit, order, q.get("after"), q.get("before"))


def _list(rows: list[dict[str, Any]], page: Page) -> dict[str, Any]:
    data = rows[: page.limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(rows) > page.limit,
    }


def _metadata(value: Any, param: str = "metadata") -> dict[str, str] | None:
    """OpenAI metadata: at most 16 string pairs, keys <= 64 chars, values <= 512."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 16:
        raise _bad("metadata must be an object of at most 16 string pairs", param)
    for k, v in value.items():
        if not isinstance(v, str) or len(k) > 64 or len(v) > 512:
            raise _bad(f"metadata[{k!r}] must be a string (key <= 64, value <= 512 chars)", param)
    return value


class RagRoutes:
    """Mixin for GatewayIngress. Needs `_cfg`, `_aliases`, `_key(request)`, `_call_model`."""

    _cfg: Any
    _aliases: Any

    def _init_rag(self) -> None:
        rag: RagConfig = self._cfg.rag
        self._rag = rag
        self._db = VectorDB(rag.database) if rag.enabled else None
        self._pipelines = {p.name: p for p in rag.pipelines}
        self._sizes_task: asyncio.Task | None = None

    # ---- helpers -------------------------------------------------------------------------

    def _tenant(self, request: Request | None) -> str:
        key = self._key(request)  # type: ignore[attr-defined]
        return key.name if key is not None else ANONYMOUS

    def _require_db(self) -> VectorDB:
        if self._db is None:
            raise GatewayError(404, "Vector stores are not enabled on this gateway"
                               " (serving.rag.enabled).", code="not_found")
        if self._sizes_task is None:
            self._sizes_task = asyncio.get_running_loop().create_task(self._report_sizes())
        return self._db

    async def _report_sizes(self) -> None:
        """Store-size gauges, refreshed in the background (cheap: one aggregate query)."""
        while True:
            try:
                metrics.set_store_sizes(await self._db.store_sizes())  # type: ignore[union-attr]
            except Exception as exc:  # a down database must not kill the loop
                logger.debug("RAG store sizes not refreshed: %s", exc)
            await asyncio.sleep(_STORE_SIZE_INTERVAL_S)

    async def _db_call(self, operation: str, coro: Any) -> Any:
        try:
            return await coro
        except GatewayError as exc:
            if exc.status == 503:
                metrics.db_error(operation)
            raise

    def _tokenizer_source(self, embedder: str) -> str:
        return self._cfg.model(embedder).source

    # ---- files ---------------------------------------------------------------------------

    async def rag_create_file(self, request: Request) -> Response:
        db = self._require_db()
        limit = self._rag.limits.max_file_bytes
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit + 64 * 1024:
            raise self._too_large(limit)
        form = await request.form(max_files=1, max_fields=8)
        upload, purpose = form.get("file"), form.get("purpose")
        if upload is None or isinstance(upload, str):
            raise _bad("`file` (multipart file field) is required", "file")
        if purpose not in _FILE_PURPOSES:
            raise _bad(f"purpose must be one of {', '.join(_FILE_PURPOSES)}", "purpose")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise self._too_large(limit)
        filename = upload.filename or "upload"
        check_upload(filename, data)
        row = await self._db_call("create_file", db.create_file(
            self._tenant(request), filename, purpose, data))
        return JSONResponse(row)

    @staticmethod
    def _too_large(limit: int) -> GatewayError:
        return GatewayError(413, f"File is larger than the {limit}-byte limit"
                            " (rag.limits.maxFileBytes).", param="file", code="file_too_large")

    async def rag_list_files(self, request: Request) -> Response:
        db, page = self._require_db(), _page(request)
        rows = await self._db_call("list_files", db.list_files(self._tenant(request), page))
        return JSONResponse(_list(rows, page))

    async def rag_get_file(self, file_id: str, request: Request) -> Response:
        db = self._require_db()
        return JSONResponse(await self._db_call(
            "get_file", db.get_file(self._tenant(request), file_id)))

    async def rag_file_content(self, file_id: str, request: Request) -> Response:
        db = self._require_db()
        _, data = await self._db_call("file_content",
                                      db.file_content(self._tenant(request), file_id))
        return Response(data, media_type="application/octet-stream")

    async def rag_delete_file(self, file_id: str, request: Request) -> Response:
        db = self._require_db()
        await self._db_call("delete_file", db.delete_file(self._tenant(request), file_id))
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    # ---- vector stores -------------------------------------------------------------------

    async def rag_create_store(self, request: Request) -> Response:
        db, body = self._require_db(), await _json(request)
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise _bad("name must be a string", "name")
        file_ids = body.get("file_ids") or []
        if not isinstance(file_ids, list) or not all(isinstance(f, str) for f in file_ids):
            raise _bad("file_ids must be a list of file ids", "file_ids")
        chunking = self._chunking(body.get("chunking_strategy"))
        tenant = self._tenant(request)
        for i, file_id in enumerate(file_ids):  # all exist before anything is created
            try:
                await db.get_file(tenant, file_id)
            except GatewayError as exc:
                raise GatewayError(404, exc.message, param=f"file_ids[{i}]",
                                   code="not_found") from exc
        store_id = await self._db_call("create_store", db.create_store(
            tenant, name, _metadata(body.get("metadata")) or {}, self._rag.embedder))
        for file_id in file_ids:
            await self._ingest(tenant, store_id, file_id, chunking, {})
        return JSONResponse(await db.get_store(tenant, store_id))

    async def rag_list_stores(self, request: Request) -> Response:
        db, page = self._require_db(), _page(request)
        rows = await self._db_call("list_stores", db.list_stores(self._tenant(request), page))
        return JSONResponse(_list(rows, page))

    async def rag_get_store(self, store_id: str, request: Request) -> Response:
        db = self._require_db()
        return JSONResponse(await self._db_call(
            "get_store", db.get_store(self._tenant(request), store_id)))

    async def rag_update_store(self, store_id: str, request: Request) -> Response:
        db, body = self._require_db(), await _json(request)
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise _bad("name must be a string", "name")
        tenant = self._tenant(request)
        await self._db_call("update_store", db.update_store(
            tenant, store_id, name, _metadata(body.get("metadata"))))
        return JSONResponse(await db.get_store(tenant, store_id))

    async def rag_delete_store(self, store_id: str, request: Request) -> Response:
        db = self._require_db()
        await self._db_call("delete_store", db.delete_store(self._tenant(request), store_id))
        return JSONResponse({"id": store_id, "object": "vector_store.deleted", "deleted": True})

    # ---- store files ---------------------------------------------------------------------

    def _chunking(self, strategy: Any) -> dict[str, Any]:
        """OpenAI's chunking_strategy: auto (our configured defaults) or static (bounded)."""
        c = self._rag.chunking
        size, overlap = c.max_chunk_size_tokens, c.chunk_overlap_tokens
        if strategy not in (None, {"type": "auto"}):
            if not isinstance(strategy, dict) or strategy.get("type") != "static":
                raise _bad("chunking_strategy.type must be 'auto' or 'static'",
                           "chunking_strategy.type")
            static = strategy.get("static") or {}
            size = static.get("max_chunk_size_tokens", size)
            overlap = static.get("chunk_overlap_tokens", overlap)
            if not isinstance(size, int) or not 100 <= size <= 4096:
                raise _bad("max_chunk_size_tokens must be an integer in 100..4096",
                           "chunking_strategy.static.max_chunk_size_tokens")
            if not isinstance(overlap, int) or not 0 <= overlap * 2 <= size:
                raise _bad("chunk_overlap_tokens must be >= 0 and at most half of"
                           " max_chunk_size_tokens",
                           "chunking_strategy.static.chunk_overlap_tokens")
        return {"type": "static",
                "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}

    async def _ingest(
        self, tenant: str, store_id: str, file_id: str, chunking: dict[str, Any],
        attributes: dict[str, Any],
    ) -> dict[str, Any]:
        """Extract, split, embed (outside any transaction), then write in one transaction."""
        db = self._require_db()
        started = time.monotonic()
        store = await self._db_call("attach", db.get_store(tenant, store_id))
        existing = await db.store_file(tenant, store_id, file_id)
        if existing is not None and existing["status"] == "completed":
            return existing  # idempotent: attached before, nothing re-embedded
        filename, data = await self._db_call("attach", db.file_content(tenant, file_id))
        limit = self._rag.limits.max_store_bytes
        if store["usage_bytes"] + len(data) > limit:  # early, before any embedding work
            raise _bad(f"Vector store {store_id} would hold {store['usage_bytes'] + len(data)}"
                       f" bytes, over its limit of {limit} (rag.limits.maxStoreBytes).",
                       "file_id", "vector_store_full")
        text = extract_text(filename, data)
        static = chunking["static"]
        embedder = self._rag.embedder
        chunks = await asyncio.to_thread(
            split, text,
            kind="markdown" if filename.lower().endswith((".md", ".markdown")) else "text",
            tokenizer_source=self._tokenizer_source(embedder),
            max_tokens=static["max_chunk_size_tokens"],
            overlap=static["chunk_overlap_tokens"],
        )
        if not chunks:
            raise _bad(f"File {filename!r} has no text to index.", "file_id", "empty_file")
        if len(chunks) > self._rag.limits.max_chunks_per_file:
            raise _bad(f"File {filename!r} splits into {len(chunks)} chunks, over the limit of"
                       f" {self._rag.limits.max_chunks_per_file} (rag.limits.maxChunksPerFile).",
                       "file_id", "file_too_large")
        vectors = await embed(self._call_model, embedder, chunks)  # type: ignore[attr-defined]
        await self._db_call("attach", db.attach(
            tenant, store_id, file_id, chunks=chunks, embeddings=vectors,
            usage_bytes=len(data), max_store_bytes=self._rag.limits.max_store_bytes,
            chunking=chunking, attributes=attributes,
        ))
        metrics.observe_ingest(time.monotonic() - started, len(chunks), len(data))
        row = await db.store_file(tenant, store_id, file_id)
        assert row is not None
        return row

    async def rag_attach(self, store_id: str, request: Request) -> Response:
        self._require_db()
        body = await _json(request)
        file_id = body.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise _bad("file_id is required", "file_id")
        attributes = body.get("attributes") or {}
        if not isinstance(attributes, dict) or len(attributes) > 16:
            raise _bad("attributes must be an object of at most 16 pairs", "attributes")
        chunking = self._chunking(body.get("chunking_strategy"))
        return JSONResponse(await self._ingest(
            self._tenant(request), store_id, file_id, chunking, attributes))

    async def rag_list_store_files(self, store_id: str, request: Request) -> Response:
        db, page = self._require_db(), _page(request)
        status = request.query_params.get("filter")
        if status not in (None, "in_progress", "completed", "failed", "cancelled"):
            raise _bad("filter must be in_progress, completed, failed or cancelled", "filter")
        rows = await self._db_call("list_store_files", db.list_store_files(
            self._tenant(request), store_id, page, status))
        return JSONResponse(_list(rows, page))

    async def rag_get_store_file(self, store_id: str, file_id: str, request: Request) -> Response:
        db = self._require_db()
        tenant = self._tenant(request)
        await self._db_call("get_store", db.get_store(tenant, store_id))
        row = await self._db_call("get_store_file", db.store_file(tenant, store_id, file_id))
        if row is None:
            raise GatewayError(404, f"No file found with id '{file_id}' in vector store"
                               f" '{store_id}'.", param="file_id", code="not_found")
        return JSONResponse(row)

    async def rag_detach(self, store_id: str, file_id: str, request: Request) -> Response:
        db = self._require_db()
        await self._db_call("detach", db.detach(self._tenant(request), store_id, file_id))
        return JSONResponse({"id": file_id, "object": "vector_store.file.deleted",
                             "deleted": True})

    # ---- search --------------------------------------------------------------------------

    async def _retrieve(
        self, tenant: str | None, store_ids: list[str], query: str, k: int, embedder: str,
        source: str, reranker: str | None = None, top_k: int | None = None,
    ) -> list[ChunkHit]:
        db = self._require_db()
        vector = (await embed(self._call_model, embedder, [query]))[0]  # type: ignore[attr-defined]
        started = time.monotonic()
        hits = await self._db_call("search", db.search(
            tenant, store_ids, vector, k, self._rag.database.hnsw_ef_search))
        if reranker and hits:
            scores = await score(self._call_model, reranker, query,  # type: ignore[attr-defined]
                                 [h.content for h in hits])
            hits = sorted((dataclasses.replace(h, rerank_score=s)
                           for s, h in zip(scores, hits, strict=True)),
                          key=lambda h: -(h.rerank_score or 0.0))
            metrics.observe_rerank(len(hits))
        hits = hits[: top_k or k]
        metrics.observe_retrieval(source, time.monotonic() - started, len(hits))
        return hits

    async def rag_search(self, store_id: str, request: Request) -> Response:
        self._require_db()
        body = await _json(request)
        query = body.get("query")
        if isinstance(query, list) and query and all(isinstance(q, str) for q in query):
            query_text = " ".join(query)
        elif isinstance(query, str) and query.strip():
            query_text = query
        else:
            raise _bad("query must be a non-empty string or list of strings", "query")
        k = body.get("max_num_results", 10)
        if not isinstance(k, int) or not 1 <= k <= 50:
            raise _bad("max_num_results must be an integer in 1..50", "max_num_results")
        if body.get("filters") is not None:
            raise _bad("filters are not supported by this gateway", "filters", "unsupported")
        threshold = (body.get("ranking_options") or {}).get("score_threshold", 0.0)
        hits = await self._retrieve(self._tenant(request), [store_id], query_text, k,
                                    self._rag.embedder, "search")
        data = [
            {
                "file_id": h.file_id,
                "filename": h.filename,
                "score": h.score,
                "attributes": h.attributes,
                "content": [{"type": "text", "text": h.content}],
            }
            for h in hits if h.score >= threshold
        ]
        return JSONResponse({
            "object": "vector_store.search_results.page",
            "search_query": query if isinstance(query, list) else [query],
            "data": data,
            "has_more": False,
            "next_page": None,
        })

    # ---- Responses API file_search -------------------------------------------------------

    async def file_search(
        self, search: FileSearch, other_tools: list[Any], body: Any, request: Request
    ) -> tuple[Answer, Any]:
        """Search the caller's stores for the Responses call's question; return what to add to
        the answer and the body to send to the model (chunks in `instructions`, tool gone)."""
        if self._db is None:
            raise _bad("The file_search tool needs vector stores, which are not enabled on this"
                       " gateway (serving.rag.enabled).", f"tools[{search.index}]",
                       "unsupported_tool")
        query = query_text(body.input)
        if not query:
            raise _bad("file_search needs a user message with text to search for.", "input")
        try:
            hits = await self._retrieve(self._tenant(request), search.vector_store_ids, query,
                                        search.max_num_results, self._rag.embedder,
                                        "file_search")
        except GatewayError as exc:
            if exc.status == 404:  # a store that is not the caller's: named by its path
                exc.param = search.param("vector_store_ids")
            raise
        hits = [h for h in hits if h.score >= search.score_threshold]
        answer = Answer(search, query, hits, RESULTS_INCLUDE in (body.include or []))
        choice = body.tool_choice
        if getattr(choice, "type", None) == "file_search" or (
            isinstance(choice, dict) and choice.get("type") == "file_search"
        ) or (choice == "required" and not other_tools):
            choice = "auto" if other_tools else "none"  # the search was that call
        routed = body.model_copy(update={
            "tools": other_tools, "tool_choice": choice,
            "instructions": instructions(hits, body.instructions),
        })
        return answer, routed

    # ---- pipelines -----------------------------------------------------------------------

    def is_pipeline(self, name: str | None) -> bool:
        return name in self._pipelines

    async def pipeline_chat(self, body: Any, request: Request) -> Response:
        """Embed the last user message, search, (rerank), build the prompt, generate."""
        pipe: Pipeline = self._pipelines[body.model]
        messages = [m if isinstance(m, dict) else m.model_dump() for m in body.messages]
        last = next((i for i in range(len(messages) - 1, -1, -1)
                     if messages[i].get("role") == "user"), None)
        question = _text(messages[last].get("content")) if last is not None else ""
        if not question.strip():
            raise _bad("a pipeline needs a user message with text", "messages")
        tenant: str | None = self._tenant(request)
        if pipe.vector_store_ids:
            # Stores the platform configured for this pipeline: every caller allowed to use the
            # pipeline may read them (per-key access is the pipeline's allowedModels).
            stores, tenant = list(pipe.vector_store_ids), None
        else:
            stores = await self._db_call("search", self._require_db().tenant_store_ids(tenant))
        hits: list[ChunkHit] = []
        if stores:
            k = pipe.rerank_candidates if pipe.reranker else pipe.top_k
            hits = await self._retrieve(tenant, stores, question, k, pipe.embedder,
                                        "pipeline", pipe.reranker, pipe.top_k)
        context = "\n\n".join(f"[{i + 1}] {h.filename}\n{h.content}" for i, h in enumerate(hits))
        prompt = pipe.prompt_template.format(context=context or "(no documents)",
                                             question=question)
        messages[last] = {"role": "user", "content": prompt}
        key = self._key(request)  # type: ignore[attr-defined]
        # The generator may be an alias: the ingress resolves it (canary split, rollback) from
        # `user`, set to the caller so each caller keeps its side of the split.
        caller = getattr(body, "user", None) or (key.name if key else ANONYMOUS)
        generator = pipe.generator
        gen_body = body.model_copy(
            update={"model": generator, "messages": messages, "user": caller}
        )
        sources = [_source(h) for h in hits]
        stream = self._call_model(generator, "chat", gen_body)  # type: ignore[attr-defined]
        first = await stream.__anext__()
        item = first[0] if isinstance(first, list) and first else first
        _raise_if_error(item)
        if hasattr(item, "model_dump") and getattr(item, "object", "") == "chat.completion":
            out = item.model_dump()
            out["model"], out["sources"] = pipe.name, sources
            return JSONResponse(out)
        return StreamingResponse(_sse(first, stream, pipe.name, sources),
                                 media_type="text/event-stream")


def _source(hit: ChunkHit) -> dict[str, Any]:
    """One entry of a pipeline answer's `sources`: `score` is the reranker's when the pipeline
    has one (then `vector_score` and `rerank_score` carry both), else the vector search's."""
    out = {"chunk_id": str(hit.chunk_id), "file_id": hit.file_id, "filename": hit.filename,
           "vector_store_id": hit.vector_store_id, "chunk_index": hit.chunk_index,
           "score": hit.score}
    if hit.rerank_score is not None:
        out.update(score=hit.rerank_score, vector_score=hit.score, rerank_score=hit.rerank_score)
    return out


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content
                        if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _raise_if_error(item: Any) -> None:
    if is_error(item):
        raise OpenAIHTTPException(message=item.error.message, status_code=item.error.code,
                                  type=item.error.type)


def _events(item: Any) -> list[str]:
    """The `data: ...` payloads of one LLMServer stream item (a string of SSE events, a
    response object, or a list of either)."""
    items = item if isinstance(item, list) else [item]
    payloads: list[str] = []
    for part in items:
        text = part if isinstance(part, str) else f"data: {part.model_dump_json()}\n\n"
        payloads.extend(e[len("data: "):] for e in text.split("\n\n") if e.startswith("data: "))
    return payloads


async def _sse(first: Any, rest: AsyncIterator[Any], name: str, sources: list[dict]
               ) -> AsyncIterator[str]:
    """Re-emit the generator's stream under the pipeline's name; `sources` on the first chunk."""
    pending_sources: list[dict] | None = sources

    async def items() -> AsyncIterator[Any]:
        yield first
        async for item in rest:
            yield item

    async for item in items():
        head = item[0] if isinstance(item, list) and item else item
        if is_error(head):
            # Headers are sent: report the engine's error in-band, as vLLM does, and stop.
            yield f"data: {json.dumps({'error': head.error.model_dump()})}\n\n"
            break
        out = []
        for payload in _events(item):
            if payload.strip() == "[DONE]":
                continue
            event = json.loads(payload)
            event["model"] = name
            if pending_sources is not None:
                event["sources"], pending_sources = pending_sources, None
            out.append(f"data: {json.dumps(event)}\n\n")
        if out:
            yield "".join(out)
    yield "data: [DONE]\n\n"
