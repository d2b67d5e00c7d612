"""The simulated-decode server, spoken to with a plain HTTP client (no SDK)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from asyncfc.models.base import Message, ToolCall
from asyncfc.testing.scripted import Ref, ScriptedCall, Turn
from asyncfc.testing.simserver import (
    LLAMA_FORMAT_ERROR,
    SimServer,
    anthropic_to_messages,
    openai_to_messages,
    prompt_tokens,
    shared_prefix,
)

USER = [{"role": "user", "content": "hi"}]


def sse_data(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    event = ""
    for line in text.splitlines():
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            out.append((event, json.loads(line[len("data: ") :])))
    return out


def test_health_models_and_unknown_routes() -> None:
    with SimServer(["hi"], model_name="m1") as srv, httpx.Client(base_url=srv.anthropic_base_url) as http:
        assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
        assert http.get("/health").json() == {"status": "ok"}
        assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["m1"]
        assert http.get("/nope").status_code == 404
        assert http.post("/v1/other", json={}).status_code == 404
        assert http.post("/v1/chat/completions", content=b"{not json").status_code == 400
        assert [(r.method, r.path) for r in srv.requests][:2] == [("GET", "/health"), ("GET", "/v1/models")]


def test_non_stream_completion_plays_the_script_then_repeats_the_final_text() -> None:
    turns: list[Turn] = [[ScriptedCall("add", {"a": 1, "b": 2})], "the answer", "last words"]
    with SimServer(turns) as srv, httpx.Client(base_url=srv.base_url) as http:
        bodies = [
            http.post("/chat/completions", json={"model": "x", "messages": USER}).json() for _ in range(5)
        ]
    first = bodies[0]["choices"][0]
    assert first["finish_reason"] == "tool_calls"
    assert first["message"]["content"] is None
    assert first["message"]["tool_calls"] == [
        {"id": "call_0", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}
    ]
    texts = [b["choices"][0]["message"]["content"] for b in bodies[1:]]
    assert texts == ["the answer", "last words", "last words", "last words"]
    assert bodies[1]["choices"][0]["finish_reason"] == "stop"
    assert bodies[1]["usage"]["completion_tokens"] == 2  # 10 characters, 4 per token, as ScriptedModel counts
    assert len(srv.model_requests) == 5
    assert srv.model_requests[0].body["messages"] == USER


def test_streamed_completion_chunks() -> None:
    turns: list[Turn] = [
        [ScriptedCall("add", {"a": 1, "b": 2}), ScriptedCall("get", {"k": "v"})],
        "hello world",
    ]
    with SimServer(turns) as srv, httpx.Client(base_url=srv.base_url) as http:
        body = {"model": "x", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
        calls_sse = http.post("/chat/completions", json=body).text
        text_sse = http.post("/chat/completions", json={**body, "stream_options": None}).text
    data = sse_data(calls_sse)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    deltas = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    headers = [d for d in deltas if "id" in d]
    assert headers == [
        {"index": 0, "id": "call_0", "type": "function", "function": {"name": "add", "arguments": ""}},
        {"index": 1, "id": "call_1", "type": "function", "function": {"name": "get", "arguments": ""}},
    ]
    for i, expected in enumerate(['{"a": 1, "b": 2}', '{"k": "v"}']):
        pieces = [d["function"]["arguments"] for d in deltas if d["index"] == i]
        assert len(pieces) > 2  # streamed in token-sized pieces
        assert "".join(pieces) == expected
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0

    data = sse_data(text_sse)
    chunks = [json.loads(d) for d in data[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "hello world"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"] for c in chunks)  # no usage chunk unless asked for


def test_decode_is_paced() -> None:
    text = "x" * 200  # 50 tokens at 500 tok/s: at least 0.1 s after a 0.05 s first token
    with SimServer([text], ttft_s=0.05, tokens_per_s=500) as srv, httpx.Client(base_url=srv.base_url) as http:
        start = time.perf_counter()
        with http.stream("POST", "/chat/completions", json={"messages": USER, "stream": True}) as resp:
            arrivals = []
            for line in resp.iter_lines():
                if line.startswith("data: ") and '"content": "x' in line:
                    arrivals.append(time.perf_counter() - start)
    assert arrivals[0] >= 0.05
    assert arrivals[-1] - arrivals[0] >= 0.09
    assert len(arrivals) == 50


def test_injected_llama_error_does_not_advance_the_script() -> None:
    with SimServer(["first", "second"]) as srv, httpx.Client(base_url=srv.base_url) as http:
        srv.inject_error()
        resp = http.post("/chat/completions", json={"messages": USER})
        assert resp.status_code == 500
        assert resp.json()["error"]["message"] == LLAMA_FORMAT_ERROR
        after = http.post("/chat/completions", json={"messages": USER}).json()
        assert after["choices"][0]["message"]["content"] == "first"
        srv.inject_error("overloaded", status=503)
        resp = http.post(f"{srv.anthropic_base_url}/v1/messages", json={"messages": USER})
        assert resp.status_code == 503
        assert resp.json() == {"type": "error", "error": {"type": "api_error", "message": "overloaded"}}
    assert [r.status for r in srv.model_requests] == [500, 200, 503]


def test_injected_error_inside_a_stream_looks_like_llama_server() -> None:
    with (
        SimServer([[ScriptedCall("add", {"a": 1})], "next"]) as srv,
        httpx.Client(base_url=srv.base_url) as http,
    ):
        srv.inject_error(in_stream=True, count=3)
        whole = http.post("/chat/completions", json={"messages": USER})  # not streamed: a plain 500
        assert whole.status_code == 500
        streamed = http.post("/chat/completions", json={"messages": USER, "stream": True})
        assert streamed.status_code == 200
        data = sse_data(streamed.text)
        assert "[DONE]" not in data
        assert json.loads(data[-1]) == {
            "error": {"code": 500, "message": LLAMA_FORMAT_ERROR, "type": "server_error"}
        }
        assert any('"add"' in d for d in data)  # the turn was played before the error
        body = {"messages": USER, "stream": True, "max_tokens": 10}
        events = sse_events(http.post(f"{srv.anthropic_base_url}/v1/messages", json=body).text)
        assert events[-1] == (
            "error",
            {"type": "error", "error": {"type": "api_error", "message": LLAMA_FORMAT_ERROR}},
        )
        text = "".join(d["delta"].get("text", "") for e, d in events if e == "content_block_delta")
        assert text == "next"  # the turn streamed, then the error instead of message_delta/stop
        assert "message_stop" not in [e for e, _ in events]


def test_transcript_round_trip_resolves_refs() -> None:
    # the second turn passes the first call's result on: the server must rebuild the transcript
    turns: list[Turn] = [
        [ScriptedCall("get_weather", {"city": "Paris"})],
        [ScriptedCall("send_email", {"body": Ref(1)})],
    ]
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": '{"future": "f1", "status": "pending"}'},
    ]
    with SimServer(turns) as srv, httpx.Client(base_url=srv.base_url) as http:
        http.post("/chat/completions", json={"messages": USER})
        second = http.post("/chat/completions", json={"messages": messages}).json()
    call = second["choices"][0]["message"]["tool_calls"][0]
    assert call["id"] == "call_1"
    assert json.loads(call["function"]["arguments"]) == {"body": "f1"}


def test_anthropic_wire_stream_and_whole() -> None:
    turns: list[Turn] = [[ScriptedCall("add", {"a": 1}), ScriptedCall("get", {"k": "v"})], "hello there"]
    with SimServer(turns) as srv, httpx.Client(base_url=srv.anthropic_base_url) as http:
        body = {"model": "x", "max_tokens": 100, "messages": USER, "stream": True}
        events = sse_events(http.post("/v1/messages", json=body).text)
        whole = http.post("/v1/messages", json={**body, "stream": False}).json()
    names = [e for e, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert all(e == d["type"] for e, d in events)
    starts = [d for e, d in events if e == "content_block_start"]
    assert [s["content_block"]["name"] for s in starts] == ["add", "get"]
    assert [s["content_block"]["id"] for s in starts] == ["call_0", "call_1"]
    for s in starts:
        pieces = [
            d["delta"]["partial_json"]
            for e, d in events
            if e == "content_block_delta" and d["index"] == s["index"]
        ]
        assert json.loads("".join(pieces)) in ({"a": 1}, {"k": "v"})
    # each block stops before the next one starts
    order = [
        (e, d.get("index"))
        for e, d in events
        if e.startswith("content_block_") and e != "content_block_delta"
    ]
    assert order == [
        ("content_block_start", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_stop", 1),
    ]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert whole["content"] == [{"type": "text", "text": "hello there"}]
    assert whole["stop_reason"] == "end_turn"
    assert whole["usage"]["output_tokens"] == 2


def test_message_conversions_back_to_neutral() -> None:
    assert openai_to_messages(
        [
            {"role": "developer", "content": [{"type": "text", "text": "be brief"}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"name": "f"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "1"},
        ]
    ) == [
        Message("system", "be brief"),
        Message("assistant", "", tool_calls=[ToolCall("c", "f", "{}")]),
        Message("tool", "1", tool_call_id="c"),
    ]
    assert anthropic_to_messages(
        {
            "system": "sys",
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "ok"},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [{"type": "text", "text": "42"}],
                        },
                        {"type": "text", "text": "and now?"},
                    ],
                },
            ],
        }
    ) == [
        Message("system", "sys"),
        Message("user", "hi"),
        Message("assistant", "ok", tool_calls=[ToolCall("t1", "f", '{"x": 1}')]),
        Message("tool", "42", tool_call_id="t1"),
        Message("user", "and now?"),
    ]


def test_start_stop_releases_the_port() -> None:
    srv = SimServer(["x"]).start()
    assert srv.start() is srv  # idempotent
    url = srv.base_url
    srv.stop()
    srv.stop()
    try:
        httpx.get(url + "/models", timeout=1)
    except httpx.ConnectError:
        pass
    else:  # pragma: no cover
        raise AssertionError("server still answers after stop()")


def test_usage_reports_prompt_and_cached_tokens_like_llama_server() -> None:
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    first = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "add 1 and 2"}]
    second = [*first, {"role": "assistant", "content": "3"}, {"role": "user", "content": "and 3 and 4?"}]
    with (
        SimServer(["3", "7"], ttft_s=0.01, tokens_per_s=1000) as srv,
        httpx.Client(base_url=srv.base_url) as http,
    ):
        cold = http.post("/chat/completions", json={"model": "x", "messages": first, "tools": tools}).json()
        body = {"model": "x", "messages": second, "tools": tools, "stream": True}
        warm_sse = http.post(
            "/chat/completions", json={**body, "stream_options": {"include_usage": True}}
        ).text
        bare_sse = http.post("/chat/completions", json=body).text  # the same prompt again
    neutral = openai_to_messages(first)
    expected = len(prompt_tokens(neutral, tools))
    assert cold["usage"]["prompt_tokens"] == expected
    assert cold["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    timings = cold["timings"]
    assert (timings["prompt_n"], timings["cache_n"]) == (expected, 0)
    assert timings["prompt_ms"] == pytest.approx(10.0) and timings["predicted_n"] == 1

    chunks = [json.loads(d) for d in sse_data(warm_sse)[:-1]]
    assert all("timings" not in c for c in chunks[:-1])  # only the last chunk, the usage chunk, has them
    usage, timings = chunks[-1]["usage"], chunks[-1]["timings"]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    reused = prompt_tokens([*neutral, Message("assistant", "3")], tools)
    assert cached == len(reused) == timings["cache_n"]
    assert usage["prompt_tokens"] == len(prompt_tokens(openai_to_messages(second), tools))
    assert timings["prompt_n"] == usage["prompt_tokens"] - cached

    bare = [json.loads(d) for d in sse_data(bare_sse)[:-1]]
    assert (
        bare[-1]["choices"][0]["finish_reason"] == "stop" and "timings" in bare[-1]
    )  # no usage chunk: on the finish
    assert bare[-1]["timings"]["cache_n"] == usage["prompt_tokens"] - 1  # all but the last prompt token
    assert [(r.prompt_tokens, r.cached_tokens) for r in srv.model_requests] == [
        (expected, 0),
        (usage["prompt_tokens"], cached),
        (usage["prompt_tokens"], usage["prompt_tokens"] - 1),
    ]


def test_anthropic_usage_leaves_cache_reads_out_of_input_tokens() -> None:
    body = {"model": "x", "max_tokens": 10, "system": "be brief", "messages": USER}
    with (
        SimServer(["hello", "again"], timings=False) as srv,
        httpx.Client(base_url=srv.anthropic_base_url) as http,
    ):
        cold = http.post("/v1/messages", json=body).json()["usage"]
        events = sse_events(http.post("/v1/messages", json={**body, "stream": True}).text)
    total = len(prompt_tokens(anthropic_to_messages(body)))
    assert cold == {
        "input_tokens": total,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "output_tokens": 1,
    }
    start = next(d for e, d in events if e == "message_start")["message"]["usage"]
    delta = next(d for e, d in events if e == "message_delta")["usage"]
    assert (start["input_tokens"], start["cache_read_input_tokens"]) == (1, total - 1)
    assert delta["cache_read_input_tokens"] == total - 1 and delta["output_tokens"] == 1


def test_prompt_tokens_render_tools_after_the_system_prompt_and_cut_messages_apart() -> None:
    system, user = Message("system", "sys"), Message("user", "hello there")
    tool = {"name": "t", "description": "", "parameters": {"type": "object"}}
    tokens = prompt_tokens([system, user], [tool])
    alone = prompt_tokens([system]) + prompt_tokens([], [tool]) + prompt_tokens([user])
    assert tokens == alone  # each part tokenized on its own, system, tools, then the rest
    assert prompt_tokens([system, user], [{"type": "function", "function": tool}]) == tokens
    assert (
        prompt_tokens([system, user], [{"name": "t", "description": "", "input_schema": {"type": "object"}}])
        == tokens
    )
    assert all(len(t) <= 4 for t in tokens)
    assert shared_prefix(tokens, tokens[:5] + ["x"]) == 5 and shared_prefix([], tokens) == 0
