"""The Responses API file_search tool's pure parts (serve_app/rag/file_search.py): tool
validation, the question, and the answer as the official `openai` client parses it."""

from __future__ import annotations

import asyncio
import json

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from serve_app.errors import GatewayError
from serve_app.rag.file_search import Answer, instructions, parse_tools, query_text, rewrite_stream
from serve_app.rag.store import ChunkHit

HITS = [
    ChunkHit(1, "vs_1", "file-a", "tides.pdf", 0, "The Moon pulls the water.", 0.9, {}),
    ChunkHit(2, "vs_1", "file-a", "tides.pdf", 1, "Two high tides a day.", 0.8, {}),
    ChunkHit(3, "vs_1", "file-b", "moon.md", 0, "The Moon orbits.", 0.5, {"k": "v"}),
]
FUNCTION = {"type": "function", "name": "f", "parameters": {"type": "object"}}


def _tool(**fields):
    return {"type": "file_search", "vector_store_ids": ["vs_1"], **fields}


def test_parse_tools_keeps_the_other_tools():
    search, rest = parse_tools([FUNCTION, _tool(max_num_results=3)])
    assert rest == [FUNCTION]
    assert (search.index, search.vector_store_ids, search.max_num_results) == (1, ["vs_1"], 3)
    assert parse_tools([FUNCTION]) == (None, [FUNCTION])
    assert parse_tools([_tool()])[0].max_num_results == 10


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([_tool(max_num_results=0)], "tools[0].max_num_results"),
        ([FUNCTION, _tool(max_num_results=51)], "tools[1].max_num_results"),
        ([_tool(max_num_results=True)], "tools[0].max_num_results"),
        ([_tool(vector_store_ids=[])], "tools[0].vector_store_ids"),
        ([_tool(filters={"type": "eq", "key": "a", "value": 1})], "tools[0].filters"),
        ([_tool(ranking_options={"score_threshold": 2})],
         "tools[0].ranking_options.score_threshold"),
        ([_tool(ranking_options={"hybrid_search": {"embedding_weight": 1, "text_weight": 1}})],
         "tools[0].ranking_options.hybrid_search"),
        ([_tool(), _tool()], "tools[1]"),
    ],
)
def test_bad_tools_name_the_field(tools, param):
    with pytest.raises(GatewayError) as info:
        parse_tools(tools)
    assert info.value.status == 400 and info.value.param == param


def test_query_is_the_last_user_text():
    assert query_text(" tides? ") == "tides?"
    assert query_text([
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": [{"type": "input_text", "text": "why"},
                                     {"type": "input_image", "image_url": "x"},
                                     {"type": "input_text", "text": "tides"}]},
    ]) == "why tides"
    assert query_text([{"role": "system", "content": "x"}]) == ""


def test_instructions_carry_the_chunks_after_the_callers():
    text = instructions(HITS[:1], "Be brief.")
    assert text.startswith("Be brief.") and "[1] tides.pdf\nThe Moon pulls the water." in text


def _answer(with_results: bool = True) -> Answer:
    search, _ = parse_tools([FUNCTION, _tool(max_num_results=3)])
    return Answer(search, "why tides", HITS, with_results)


def _vllm_response(text: str) -> dict:
    return {
        "id": "resp_1", "object": "response", "created_at": 1, "model": "tiny-chat",
        "status": "completed", "parallel_tool_calls": True, "tool_choice": "auto",
        "tools": [FUNCTION],
        "output": [{"id": "msg_1", "type": "message", "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}],
    }


def test_response_has_the_call_then_the_cited_message():
    parsed = Response.model_validate(_answer().response(_vllm_response("Gravity.")))
    call, message = parsed.output
    assert call.type == "file_search_call" and call.queries == ["why tides"]
    assert [r.filename for r in call.results] == ["tides.pdf", "tides.pdf", "moon.md"]
    annotations = message.content[0].annotations
    assert [(a.type, a.file_id, a.index) for a in annotations] == [
        ("file_citation", "file-a", 8), ("file_citation", "file-b", 8)]
    assert [t.type for t in parsed.tools] == ["function", "file_search"]
    assert Response.model_validate(_answer(False).response(_vllm_response("x"))
                                   ).output[0].results is None


def _events(text: str) -> list[dict]:
    done = _vllm_response(text)
    started = {**done, "status": "in_progress", "output": []}
    item = done["output"][0]
    ids = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    return [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {**item, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", **ids,
         "part": {"type": "output_text", "text": "", "annotations": []}},
        {"type": "response.output_text.delta", **ids, "delta": text[:3], "logprobs": []},
        {"type": "response.output_text.delta", **ids, "delta": text[3:], "logprobs": []},
        {"type": "response.output_text.done", **ids, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **ids,
         "part": {"type": "output_text", "text": text, "annotations": []}},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": done},
    ]


def test_stream_is_rewritten_in_order():
    async def batches():
        events = _events("Gravity.")
        for start in range(0, len(events), 3):  # the replica sends batches of events
            yield "".join(f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': i})}"
                          "\n\n" for i, e in enumerate(events[start:start + 3], start))

    async def collect():
        return [chunk async for chunk in rewrite_stream(_answer(), batches())]

    text = "".join(asyncio.run(collect()))
    adapter = TypeAdapter(ResponseStreamEvent)
    events = [adapter.validate_python(json.loads(block.split("data: ", 1)[1]))
              for block in text.split("\n\n") if block.strip()]
    types = [e.type for e in events]
    assert types[:7] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.file_search_call.in_progress", "response.file_search_call.searching",
        "response.file_search_call.completed", "response.output_item.done"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[2].item.type == "file_search_call" and events[2].output_index == 0
    added = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert [(e.annotation.file_id, e.output_index) for e in added] == [
        ("file-a", 1), ("file-b", 1)]
    assert types.index("response.output_text.annotation.added") < types.index(
        "response.output_text.done")
    message_done = [e for e in events if e.type == "response.output_item.done"][-1]
    assert message_done.output_index == 1 and message_done.item.content[0].annotations
    final = events[-1].response
    assert [o.type for o in final.output] == ["file_search_call", "message"]
    assert final.output[0].results[0].filename == "tides.pdf"
