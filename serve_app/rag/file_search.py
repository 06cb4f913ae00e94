"""The `file_search` tool of the Responses API, run by the gateway.

OpenAI runs `file_search` on its side: the model never sees the tool, only the results. This
gateway does the same before the call reaches vLLM (whose Responses implementation has no
file_search): it takes `{"type": "file_search", "vector_store_ids": [...], "max_num_results": N}`
out of `tools`, searches the caller's stores with the question (the last user input), puts the
chunks into `instructions`, and adds to the answer what OpenAI's does (shapes from the `openai`
package, openai/types/responses/): a `file_search_call` output item first (`queries`,
`status`, and `results` when `include` has "file_search_call.results"), then the model's
message, whose output_text parts carry a `file_citation` annotation per file searched.

The model is not asked where it used a file: every file whose chunks went into the prompt is
cited once, at the end of the text (`index` = the text's length). Streamed answers get the
same: the call's events (`response.file_search_call.in_progress|searching|completed`) come
after `response.in_progress`, every later `output_index` moves up by one, `sequence_number`s
are renumbered, and `response.output_text.annotation.added` events precede each
`response.output_text.done`. Pure (no Ray, no database).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from serve_app.errors import GatewayError

MAX_RESULTS = 50  # OpenAI: "between 1 and 50 inclusive" (FileSearchTool.max_num_results)
DEFAULT_RESULTS = 10  # as the Vector Stores search endpoint of this gateway
RESULTS_INCLUDE = "file_search_call.results"
INSTRUCTIONS = (
    "Answer the user's question using these excerpts from their files when they are relevant."
    "\n\n{context}"
)


def _bad(message: str, param: str, code: str = "invalid_parameter") -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


@dataclass(frozen=True)
class FileSearch:
    """One validated file_search tool: where it was in `tools` (for error params)."""

    index: int
    vector_store_ids: list[str]
    max_num_results: int
    score_threshold: float
    tool: dict[str, Any]  # as sent, echoed back in the response's `tools`

    def param(self, name: str) -> str:
        return f"tools[{self.index}].{name}"


def parse_tools(tools: list[Any] | None) -> tuple[FileSearch | None, list[Any]]:
    """(the file_search tool or None, the other tools). At most one file_search tool, as
    OpenAI's API; every bad field is named by its path (`tools[0].max_num_results`)."""
    search: FileSearch | None = None
    rest: list[Any] = []
    for i, tool in enumerate(tools or []):
        if _get(tool, "type") != "file_search":
            rest.append(tool)
            continue
        if search is not None:
            raise _bad("Only one file_search tool may be given.", f"tools[{i}]")
        ids = _get(tool, "vector_store_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(s, str) and s for s in ids):
            raise _bad("vector_store_ids must be a non-empty list of vector store ids.",
                       f"tools[{i}].vector_store_ids")
        k = _get(tool, "max_num_results")
        k = DEFAULT_RESULTS if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_RESULTS:
            raise _bad(f"max_num_results must be an integer between 1 and {MAX_RESULTS}.",
                       f"tools[{i}].max_num_results")
        if _get(tool, "filters") is not None:
            raise _bad("filters are not supported by this gateway.", f"tools[{i}].filters",
                       "unsupported_parameter")
        ranking = _get(tool, "ranking_options")
        if _get(ranking, "hybrid_search") is not None:
            raise _bad("hybrid_search is not supported by this gateway (vector search only).",
                       f"tools[{i}].ranking_options.hybrid_search", "unsupported_parameter")
        threshold = _get(ranking, "score_threshold")
        threshold = 0.0 if threshold is None else threshold
        if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise _bad("score_threshold must be a number between 0 and 1.",
                       f"tools[{i}].ranking_options.score_threshold")
        dumped = tool.model_dump(exclude_none=True) if hasattr(tool, "model_dump") else dict(tool)
        search = FileSearch(i, list(dict.fromkeys(ids)), k, float(threshold), dumped)
    return search, rest


def query_text(input_: Any) -> str:
    """The question: `input` when it is a string, else the text of the last user message."""
    if isinstance(input_, str):
        return input_.strip()
    for item in reversed(input_ or []):
        if _get(item, "role") != "user":
            continue
        content = _get(item, "content")
        if isinstance(content, str):
            return content.strip()
        parts = [_get(p, "text") or "" for p in content or []
                 if _get(p, "type") in ("input_text", "text")]
        return " ".join(parts).strip()
    return ""


def instructions(hits: list[Any], original: str | None) -> str:
    context = "\n\n".join(f"[{i + 1}] {h.filename}\n{h.content}" for i, h in enumerate(hits))
    text = INSTRUCTIONS.format(context=context or "(no matching excerpts)")
    return f"{original}\n\n{text}" if original else text


@dataclass
class Answer:
    """What the gateway adds to the model's answer for one file_search call."""

    search: FileSearch
    query: str
    hits: list[Any]
    with_results: bool
    call_id: str = field(default_factory=lambda: "fs_" + secrets.token_hex(12))

    def call_item(self, status: str = "completed", final: bool = True) -> dict[str, Any]:
        results = None
        if final and self.with_results:
            results = [{"file_id": h.file_id, "filename": h.filename, "score": h.score,
                        "text": h.content, "attributes": h.attributes or {}} for h in self.hits]
        return {"id": self.call_id, "type": "file_search_call", "status": status,
                "queries": [self.query], "results": results}

    def citations(self, text: str) -> list[dict[str, Any]]:
        cited: dict[str, str] = {}
        for h in self.hits:
            cited.setdefault(h.file_id, h.filename)
        return [{"type": "file_citation", "file_id": f, "filename": n, "index": len(text)}
                for f, n in cited.items()]

    def tools(self, tools: list[Any] | None) -> list[Any]:
        """The response's `tools` with the file_search tool back where the caller put it."""
        out = list(tools or [])
        out.insert(min(self.search.index, len(out)), self.search.tool)
        return out

    def _annotate_item(self, item: dict[str, Any]) -> dict[str, Any]:
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    part["annotations"] = [*(part.get("annotations") or []),
                                           *self.citations(part.get("text") or "")]
        return item

    def response(self, body: dict[str, Any]) -> dict[str, Any]:
        """A whole Responses object (not streamed, or in a stream's created/completed event)."""
        output = [self._annotate_item(item) for item in body.get("output") or []]
        if body.get("status") not in ("queued", "in_progress") or output:
            output.insert(0, self.call_item())
        body["output"] = output
        body["tools"] = self.tools(body.get("tools"))
        return body


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


def _parse(text: str) -> list[dict[str, Any] | str]:
    """SSE text -> its events' JSON payloads (anything unparsable is kept as raw text)."""
    out: list[dict[str, Any] | str] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        data = next((line[len("data: "):] for line in block.split("\n")
                     if line.startswith("data: ")), None)
        try:
            out.append(json.loads(data) if data is not None else block + "\n\n")
        except ValueError:
            out.append(block + "\n\n")
    return out


async def rewrite_stream(answer: Answer, batches: AsyncIterator[str]) -> AsyncIterator[str]:
    """The model's Responses SSE stream with the file_search call and citations added."""
    seq = 0
    injected = False
    texts: dict[tuple[str, int], str] = {}  # (item id, content index) -> text so far

    def emit(event: dict[str, Any]) -> str:
        nonlocal seq
        if "sequence_number" in event:
            event["sequence_number"], seq = seq, seq + 1
        return _sse(event)

    def call_events() -> list[dict[str, Any]]:
        ids = {"item_id": answer.call_id, "output_index": 0, "sequence_number": 0}
        return [
            {"type": "response.output_item.added", "output_index": 0, "sequence_number": 0,
             "item": answer.call_item("in_progress", final=False)},
            {**ids, "type": "response.file_search_call.in_progress"},
            {**ids, "type": "response.file_search_call.searching"},
            {**ids, "type": "response.file_search_call.completed"},
            {"type": "response.output_item.done", "output_index": 0, "sequence_number": 0,
             "item": answer.call_item()},
        ]

    async for batch in batches:
        out: list[str] = []
        for event in _parse(batch):
            if isinstance(event, str):
                out.append(event)
                continue
            kind = event.get("type", "")
            if not injected and kind not in ("response.created", "response.in_progress"):
                out.extend(emit(e) for e in call_events())
                injected = True
            if isinstance(event.get("output_index"), int):
                event["output_index"] += 1
            if isinstance(event.get("response"), dict):
                answer.response(event["response"])
            key = (event.get("item_id"), event.get("content_index"))
            if kind == "response.output_text.delta":
                texts[key] = texts.get(key, "") + (event.get("delta") or "")
            elif kind == "response.output_text.done":
                text = event.get("text") or texts.get(key, "")
                for n, citation in enumerate(answer.citations(text)):
                    out.append(emit({
                        "type": "response.output_text.annotation.added", "annotation": citation,
                        "annotation_index": n, "content_index": event.get("content_index", 0),
                        "item_id": event.get("item_id"), "output_index": event["output_index"],
                        "sequence_number": 0,
                    }))
            elif kind == "response.content_part.done" and isinstance(event.get("part"), dict):
                answer._annotate_item({"type": "message", "content": [event["part"]]})
            elif kind == "response.output_item.done" and isinstance(event.get("item"), dict):
                answer._annotate_item(event["item"])
            out.append(emit(event))
        if out:
            yield "".join(out)
