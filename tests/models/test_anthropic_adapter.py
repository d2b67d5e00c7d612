"""The Anthropic messages adapter through the real ``anthropic`` SDK against the local SimServer."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from anthropic.types import MessageDeltaUsage
from anthropic.types import Usage as AnthropicUsage

from asyncfc.errors import ModelError
from asyncfc.models.anthropic_messages import (
    AnthropicMessagesModel,
    _Counts,
    to_anthropic_messages,
    to_anthropic_tools,
)
from asyncfc.models.base import (
    Message,
    Model,
    ModelEvent,
    ModelRequest,
    ModelResponse,
    ResponseDone,
    TextDelta,
    ToolCall,
    ToolCallReady,
)
from asyncfc.testing.scripted import Ref, ScriptedCall, Turn
from asyncfc.testing.simserver import SimServer

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
    {"name": "send_email", "parameters": {"type": "object", "properties": {"body": {"type": "string"}}}},
]
USER = [Message("user", "What is the weather in Paris and Tokyo?")]

Timed = list[tuple[float, ModelEvent]]


def run(srv: SimServer, request: ModelRequest, **kwargs: Any) -> Timed:
    """One request through a fresh adapter; events with their arrival times (perf_counter)."""

    async def go() -> Timed:
        async with AnthropicMessagesModel(
            "claude-sim", base_url=srv.anthropic_base_url, api_key="test", **kwargs
        ) as model:
            return [(time.perf_counter(), ev) async for ev in model.stream(request)]

    return asyncio.run(go())


def done(events: Timed) -> ModelResponse:
    last = events[-1][1]
    assert isinstance(last, ResponseDone)
    assert sum(isinstance(e, ResponseDone) for _, e in events) == 1
    return last.response


@pytest.mark.parametrize("stream", [True, False])
def test_parallel_tool_use(stream: bool) -> None:
    turns: list[Turn] = [
        [ScriptedCall("get_weather", {"city": "Paris"}), ScriptedCall("get_weather", {"city": "Tokyo"})],
        "Sunny, both.",
    ]
    with SimServer(turns) as srv:
        events = run(srv, ModelRequest(USER, TOOLS, stream=stream))
        text_events = run(srv, ModelRequest(USER, TOOLS, stream=stream))
    response = done(events)
    calls = [e.call for _, e in events if isinstance(e, ToolCallReady)]
    assert calls == response.tool_calls
    assert [(c.id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("call_0", "get_weather", {"city": "Paris"}),
        ("call_1", "get_weather", {"city": "Tokyo"}),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 1
    assert (response.ttft_s is not None) == stream

    text = done(text_events)
    assert text.text == "Sunny, both." and text.finish_reason == "stop" and text.tool_calls == []
    # the same prompt again: all but its last token from the cache; input_tokens counts them too
    assert text.usage.input_tokens == response.usage.input_tokens
    assert text.usage.cached_input_tokens == text.usage.input_tokens - 1
    assert response.usage.cached_input_tokens == 0

    deltas = [e.text for _, e in text_events if isinstance(e, TextDelta)]
    assert "".join(deltas) == text.text
    assert len(deltas) == (3 if stream else 1)
    body = srv.model_requests[0].body
    assert body["stream"] is stream
    assert body["max_tokens"] == 1024
    assert body["tools"] == to_anthropic_tools(TOOLS)
    assert "tool_choice" not in body


def test_cache_reads_and_writes_from_start_and_delta_usage() -> None:
    counts = _Counts()
    start = AnthropicUsage(
        input_tokens=12, output_tokens=1, cache_read_input_tokens=900, cache_creation_input_tokens=88
    )
    counts.update(start)
    # a delta's counts are cumulative; missing input counts keep what message_start said
    counts.update(MessageDeltaUsage(output_tokens=40, input_tokens=None, cache_read_input_tokens=None))
    usage = counts.usage()
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens) == (1000, 900, 88)
    assert usage.output_tokens == 40 and usage.uncached_input_tokens == 100


def test_early_dispatch_at_content_block_stop() -> None:
    long_body = "word " * 30  # ~40 tokens at 100 tok/s: ~0.4 s after the first call is complete
    turns: list[Turn] = [
        [ScriptedCall("get_weather", {"city": "Paris"}), ScriptedCall("send_email", {"body": long_body})]
    ]
    with SimServer(turns, ttft_s=0.05, tokens_per_s=100) as srv:
        events = run(srv, ModelRequest(USER, TOOLS))
    finished_at = srv.model_requests[0].finished_at
    assert finished_at is not None
    (t1, first), (t2, second) = [(t, e) for t, e in events if isinstance(e, ToolCallReady)]
    assert isinstance(first, ToolCallReady) and isinstance(second, ToolCallReady)
    assert first.call.name == "get_weather"
    assert json.loads(second.call.arguments) == {"body": long_body}
    # the first call is handed over while the server is still decoding the second one's
    # ~40 tokens (0.4 s of paced decode): it arrives before the response ends
    assert t1 < t2 <= events[-1][0]
    assert t1 < finished_at
    response = done(events)
    assert response.ttft_s is not None and 0.05 <= response.ttft_s < response.duration_s


def test_tool_use_and_tool_result_conversion_on_the_wire() -> None:
    turns: list[Any] = [
        [ScriptedCall("get_weather", {"city": "Paris"}), ScriptedCall("get_weather", {"city": "Tokyo"})]
    ]
    turns += [[ScriptedCall("send_email", {"body": Ref(2, ".temp")})], "done"]
    with SimServer(turns) as srv:

        async def go() -> list[ModelResponse]:
            async with AnthropicMessagesModel(
                "claude-sim", base_url=srv.anthropic_base_url, api_key="k"
            ) as m:
                transcript = [Message("system", "be brief"), *USER]
                out = []
                for results in (['{"temp": 20}', '{"temp": 25}'], ["sent"]):
                    response = await complete(m, ModelRequest(transcript, TOOLS, parallel_tool_calls=False))
                    out.append(response)
                    transcript.append(Message("assistant", "", tool_calls=response.tool_calls))
                    for call, result in zip(response.tool_calls, results, strict=True):
                        transcript.append(Message("tool", result, tool_call_id=call.id))
                transcript.append(Message("user", "thanks"))
                out.append(await complete(m, ModelRequest(transcript, TOOLS)))
                return out

        first, second, third = asyncio.run(go())
    assert json.loads(second.tool_calls[0].arguments) == {"body": 25}  # Ref resolved through tool_result
    assert third.text == "done"
    body = srv.model_requests[2].body
    assert body["system"] == "be brief"
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": USER[0].content}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_0", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Tokyo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_0", "content": '{"temp": 20}'},
                {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp": 25}'},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "call_2", "name": "send_email", "input": {"body": 25}}],
        },
        # the tool result and the next user message share one user turn (roles must alternate)
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_2", "content": "sent"},
                {"type": "text", "text": "thanks"},
            ],
        },
    ]
    assert srv.model_requests[0].body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "tool_choice" not in body


def test_conversion_edge_cases() -> None:
    system, messages = to_anthropic_messages(
        [
            Message("system", "a"),
            Message("system", "b"),
            Message("user", ""),
            Message(
                "assistant",
                "thinking aloud",
                tool_calls=[ToolCall("t", "f", "not json"), ToolCall("u", "g", "")],
            ),
        ]
    )
    assert system == "a\n\nb"
    assert messages == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "thinking aloud"},
                {"type": "tool_use", "id": "t", "name": "f", "input": {"_raw_arguments": "not json"}},
                {"type": "tool_use", "id": "u", "name": "g", "input": {}},
            ],
        }
    ]
    assert to_anthropic_tools([{"name": "n"}]) == [
        {"name": "n", "input_schema": {"type": "object", "properties": {}}}
    ]


@pytest.mark.parametrize("stream", [True, False])
def test_http_errors_raise_model_error(stream: bool) -> None:
    with SimServer(["x"]) as srv:
        srv.inject_error("overloaded", status=529)
        with pytest.raises(ModelError, match="HTTP 529.*overloaded"):
            run(srv, ModelRequest(USER, TOOLS, stream=stream), max_retries=0)


@pytest.mark.parametrize("stream", [True, False])
def test_llama_format_error_becomes_an_empty_step(stream: bool) -> None:
    with SimServer(["recovered"]) as srv:
        srv.inject_error()
        failed = done(run(srv, ModelRequest(USER, TOOLS, stream=stream), max_retries=0))
        after = done(run(srv, ModelRequest(USER, TOOLS, stream=stream), max_retries=0))
    assert (failed.text, failed.tool_calls, failed.finish_reason) == ("", [], "error")
    assert any("could not parse" in n for n in failed.notes)
    assert after.text == "recovered"


def test_llama_format_error_inside_the_stream_keeps_closed_blocks() -> None:
    turns: list[Turn] = [
        [ScriptedCall("get_weather", {"city": "Paris"}), ScriptedCall("send_email", {"body": "y"})]
    ]
    with SimServer(turns) as srv:
        srv.inject_error(in_stream=True)
        events = run(srv, ModelRequest(USER, TOOLS), max_retries=0)
    response = done(events)
    announced = [e.call for _, e in events if isinstance(e, ToolCallReady)]
    assert [c.name for c in announced] == ["get_weather", "send_email"]  # both blocks were closed
    assert response.tool_calls == announced
    assert response.finish_reason == "error"


def test_unreachable_server_raises_model_error() -> None:
    srv = SimServer(["x"]).start()
    srv.stop()
    with pytest.raises(ModelError, match="cannot reach"):
        run(srv, ModelRequest(USER, TOOLS), max_retries=0)


def test_adapter_is_a_model() -> None:
    model = AnthropicMessagesModel("m", base_url="http://127.0.0.1:1", api_key="k")
    assert isinstance(model, Model) and model.name == "m"
    asyncio.run(model.aclose())


async def complete(model: AnthropicMessagesModel, request: ModelRequest) -> ModelResponse:
    async for ev in model.stream(request):
        if isinstance(ev, ResponseDone):
            return ev.response
    raise AssertionError("no response")


def test_temperature_reaches_the_server() -> None:
    with SimServer(["ok"]) as srv:
        done(run(srv, ModelRequest(USER, TOOLS), temperature=0.0))
    assert srv.model_requests[0].body["temperature"] == 0.0
