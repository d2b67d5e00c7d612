"""The OpenAI Responses adapter against SimServer's ``/v1/responses`` (real HTTP, the real SDK),
and native async tools (``async: true``) end to end through the Agent."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from asyncfc import Agent, ModelError, tool
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.models import (
    Message,
    ModelEvent,
    ModelRequest,
    ModelResponse,
    OpenAIResponsesModel,
    ResponseDone,
    TextDelta,
    ToolCall,
    ToolCallReady,
)
from asyncfc.models.openai_responses import to_responses_input, to_responses_tools
from asyncfc.testing import Ref, ScriptedCall, SimServer
from asyncfc.testing.simserver import responses_problem, responses_to_messages

USER = [Message("user", "weather in Paris, then mail it")]
TOOLS = [
    {"name": "get_weather", "description": "weather", "parameters": {"type": "object", "properties": {}}},
    {"name": "send_email", "description": "mail", "parameters": {"type": "object", "properties": {}}},
]


async def _collect(model: OpenAIResponsesModel, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in model.stream(request)]


def _done(events: list[ModelEvent]) -> ModelResponse:
    assert isinstance(events[-1], ResponseDone)
    return events[-1].response


def test_streamed_calls_and_text_through_the_wire() -> None:
    turns: list[Any] = [
        [ScriptedCall("get_weather", {"city": "Paris"}), ScriptedCall("get_weather", {"city": "Rome"})],
        "It is sunny.",
    ]
    with SimServer(turns) as srv:

        async def go() -> tuple[list[ModelEvent], list[ModelEvent]]:
            async with OpenAIResponsesModel("sim", base_url=srv.base_url) as model:
                first = await _collect(model, ModelRequest(USER, TOOLS))
                calls = _done(first).tool_calls
                history = [
                    *USER,
                    Message("assistant", "", calls),
                    *(Message("tool", '{"temp": 20}', tool_call_id=c.id) for c in calls),
                ]
                return first, await _collect(model, ModelRequest(history, TOOLS))

        first, second = asyncio.run(go())
        bodies = [r.body for r in srv.model_requests]
    ready = [e.call for e in first if isinstance(e, ToolCallReady)]
    response = _done(first)
    assert [(c.name, json.loads(c.arguments)) for c in ready] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert response.tool_calls == ready and response.finish_reason == "tool_calls"
    assert "".join(e.text for e in second if isinstance(e, TextDelta)) == "It is sunny."
    assert _done(second).text == "It is sunny." and _done(second).finish_reason == "stop"
    # what went over the wire: function tools, function_call and function_call_output items
    assert bodies[0]["tools"][0] == {**to_responses_tools(TOOLS)[0]}
    assert "async" not in bodies[0]["tools"][0]
    kinds = [item.get("type", "message") for item in bodies[1]["input"]]
    assert kinds == [
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
    ]
    assert bodies[1]["input"][1]["call_id"] == ready[0].id == bodies[1]["input"][3]["call_id"]
    assert bodies[0]["stream"] is True and bodies[0]["store"] is False


def test_non_streamed_request() -> None:
    turns: list[Any] = [[ScriptedCall("get_weather", {"city": "Oslo"})], "cold"]
    with SimServer(turns) as srv:

        async def go() -> list[ModelEvent]:
            async with OpenAIResponsesModel("sim", base_url=srv.base_url, stream=False) as model:
                return await _collect(model, ModelRequest(USER, TOOLS))

        events = asyncio.run(go())
        assert srv.model_requests[0].body["stream"] is False
    response = _done(events)
    assert [c.name for c in response.tool_calls] == ["get_weather"]
    assert [e.call for e in events if isinstance(e, ToolCallReady)] == response.tool_calls
    assert response.ttft_s is None and response.usage.output_tokens > 0


def test_usage_counts_cached_tokens() -> None:
    """The second request repeats the first one's prompt and answer: the server's prefix
    cache holds them, and ``input_tokens_details.cached_tokens`` reaches ``Usage``."""
    turns: list[Any] = [[ScriptedCall("get_weather", {"city": "Paris"})], "sunny"]
    with SimServer(turns) as srv:

        async def go() -> list[ModelResponse]:
            async with OpenAIResponsesModel("sim", base_url=srv.base_url) as model:
                first = _done(await _collect(model, ModelRequest(USER, TOOLS)))
                history = [
                    *USER,
                    Message("assistant", "", first.tool_calls),
                    Message("tool", "20C", tool_call_id=first.tool_calls[0].id),
                ]
                return [first, _done(await _collect(model, ModelRequest(history, TOOLS)))]

        first, second = asyncio.run(go())
        recorded = srv.model_requests
    assert first.usage.input_tokens == recorded[0].prompt_tokens > 0
    assert first.usage.cached_input_tokens == 0
    assert second.usage.input_tokens == recorded[1].prompt_tokens
    assert second.usage.cached_input_tokens == recorded[1].cached_tokens > 0
    assert second.usage.uncached_input_tokens < second.usage.input_tokens
    assert second.usage.timing == "server"  # llama-style timings ride on the response


class HeldResponsesServer(ThreadingHTTPServer):
    """Streams one response of two function calls over the Responses wire, holding back
    everything after the first call's ``response.output_item.done`` until ``release`` is
    set: what the client did meanwhile is seen by events, not by the clock."""

    daemon_threads = True

    def __init__(self, first: ToolCall, second: ToolCall) -> None:
        self.release = threading.Event()
        self.rest_sent = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                response = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
                self.event("response.created", response=response)
                self.call(0, first)
                server.release.wait(60)  # the test releases it; 60 s only if it never does
                server.rest_sent.set()
                self.call(1, second)
                usage = {"input_tokens": 10, "output_tokens": 5, "input_tokens_details": {"cached_tokens": 4}}
                self.event("response.completed", response={**response, "status": "completed", "usage": usage})

            def call(self, index: int, call: ToolCall) -> None:
                item = {"type": "function_call", "id": f"fc_{index}", "call_id": call.id, "name": call.name}
                self.event("response.output_item.added", output_index=index, item={**item, "arguments": ""})
                half = len(call.arguments) // 2
                for piece in (call.arguments[:half], call.arguments[half:]):
                    self.event(
                        "response.function_call_arguments.delta",
                        item_id=f"fc_{index}",
                        output_index=index,
                        delta=piece,
                    )
                self.event(
                    "response.function_call_arguments.done",
                    item_id=f"fc_{index}",
                    output_index=index,
                    arguments=call.arguments,
                )
                self.event(
                    "response.output_item.done",
                    output_index=index,
                    item={**item, "arguments": call.arguments},
                )

            def event(self, kind: str, **fields: Any) -> None:
                data = json.dumps({"type": kind, "sequence_number": 0, **fields})
                self.wfile.write(f"event: {kind}\ndata: {data}\n\n".encode())
                self.wfile.flush()

        super().__init__(("127.0.0.1", 0), Handler)

    def __enter__(self) -> HeldResponsesServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


def test_early_dispatch_first_call_is_ready_before_the_response_ends() -> None:
    weather = ToolCall("call_a", "get_weather", '{"city": "Paris"}')
    email = ToolCall("call_b", "send_email", json.dumps({"to": "a@b.c", "body": "word " * 30}))
    with HeldResponsesServer(weather, email) as srv:

        async def go() -> tuple[list[tuple[ToolCall, bool]], ModelResponse]:
            ready: list[tuple[ToolCall, bool]] = []
            done: ModelResponse | None = None
            async with OpenAIResponsesModel("m", base_url=srv.base_url) as model:
                async for ev in model.stream(ModelRequest(USER, TOOLS)):
                    if isinstance(ev, ToolCallReady):
                        ready.append((ev.call, srv.rest_sent.is_set()))
                        srv.release.set()
                    elif isinstance(ev, ResponseDone):
                        done = ev.response
            assert done is not None
            return ready, done

        ready, response = asyncio.run(go())
    (first, first_after_rest), (second, second_after_rest) = ready
    assert first == weather and not first_after_rest, "the first call waited for the rest of the response"
    assert second == email and second_after_rest
    assert response.tool_calls == [weather, email]  # each call announced once
    assert response.usage.input_tokens == 10 and response.usage.cached_input_tokens == 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_error_names_the_url_and_the_embedded_model() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"

    async def go() -> None:
        async with OpenAIResponsesModel("m", base_url=url, max_retries=0) as model:
            await _collect(model, ModelRequest(USER, TOOLS))

    with pytest.raises(ModelError) as err:
        asyncio.run(go())
    assert url in str(err.value) and "asyncfc model serve" in str(err.value)


def test_http_error_is_a_model_error_and_format_errors_are_a_bad_step() -> None:
    with SimServer([[ScriptedCall("get_weather", {"city": "Paris"})], "ok"]) as srv:

        async def go() -> tuple[str, ModelResponse, ModelResponse]:
            async with OpenAIResponsesModel("sim", base_url=srv.base_url, max_retries=0) as model:
                srv.inject_error("bad request", status=400)
                try:
                    await _collect(model, ModelRequest(USER, TOOLS))
                except ModelError as e:
                    message = str(e)
                else:
                    raise AssertionError("no error")
                srv.inject_error()  # llama.cpp's HTTP 500 for output it cannot parse
                bad = _done(await _collect(model, ModelRequest(USER, TOOLS)))
                srv.inject_error(in_stream=True)  # the same, as an error event at the end of a stream
                late = _done(await _collect(model, ModelRequest(USER, TOOLS)))
                return message, bad, late

        message, bad, late = asyncio.run(go())
    assert "HTTP 400" in message and "bad request" in message and srv.base_url in message
    assert bad.finish_reason == "error" and bad.tool_calls == []
    # the calls announced before the error event are kept (they may be running already)
    assert late.finish_reason == "error" and [c.name for c in late.tool_calls] == ["get_weather"]


def test_input_items_round_trip() -> None:
    messages = [
        Message("system", "be brief"),
        *USER,
        Message("assistant", "checking", [ToolCall("c1", "get_weather", '{"city": "Paris"}')]),
        Message("user", "and mail me"),  # while c1 runs: no output for it yet
        Message("assistant", "", [ToolCall("c2", "send_email", "{}")]),
        Message("tool", "sent", tool_call_id="c2"),
        Message("tool", "20C", tool_call_id="c1"),  # an async tool's output, later
    ]
    body = {"input": to_responses_input(messages)}
    assert responses_problem(body) is None
    back = responses_to_messages(body)
    assert [(m.role, m.content, m.tool_call_id) for m in back] == [
        (m.role, m.content, m.tool_call_id) for m in messages
    ]
    assert [m.tool_calls for m in back] == [m.tool_calls for m in messages]


def test_simserver_checks_outputs_as_the_api_does() -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "c1", "output": "20C"}
    sync_tool = [{"type": "function", "name": "get_weather", "parameters": {}}]
    async_tool = [{**sync_tool[0], "async": True}]
    user = {"role": "user", "content": "hi"}
    assert responses_problem({"input": [user, call, user], "tools": sync_tool}) is not None
    assert responses_problem({"input": [user, call, user], "tools": async_tool}) is None
    assert responses_problem({"input": [user, call, user, output], "tools": async_tool}) is None
    assert "Duplicate" in str(responses_problem({"input": [call, output, output], "tools": async_tool}))
    assert "No tool call" in str(responses_problem({"input": [output, call], "tools": async_tool}))


# -- native async tools ------------------------------------------------------------------


def test_native_async_round_trip_with_a_dependent_call() -> None:
    """``native_async_tools=True``: tools go out ``async: true`` (``await_future`` does not),
    a pending call gets no output at once, its value goes back later as a
    ``function_call_output`` with the original call_id (appended, once), and a later call
    that names the pending call by its call_id is ordered after it by the scheduler."""
    gate: dict[str, Any] = {}
    sent: list[str] = []
    seen_at_step_2: list[list[str]] = []

    @tool(writes=["weather"])
    async def get_weather(city: str) -> dict[str, Any]:
        """The weather of a city."""
        await gate["open"].wait()  # held until the model has gone on without the result
        return {"city": city, "temp": 21}

    email_gate = threading.Event()

    @tool(reads=["outbox"], writes=["outbox"])
    def send_email(to: str, body: str) -> str:
        """Send an email."""
        email_gate.wait(60)  # held until the model has answered: pending at the answer
        sent.append(body)
        return "sent"

    def step_2(transcript: list[Message]) -> list[ScriptedCall]:
        # the model goes on while get_weather runs: no output for it yet
        seen_at_step_2.append([m.tool_call_id or "" for m in transcript if m.role == "tool"])
        gate["loop"].call_soon_threadsafe(gate["open"].set)
        return [ScriptedCall("send_email", {"to": "me@x.y", "body": Ref(1, ".temp")})]

    def answer(transcript: list[Message]) -> str:
        email_gate.set()  # the answer is given while the email is pending: revise="always" asks again
        return "Sent: 21 degrees."

    turns: list[Any] = [
        [ScriptedCall("get_weather", {"city": "Paris"})],
        step_2,
        answer,
        "Done.",
    ]
    with SimServer(turns) as srv:

        async def go() -> Any:
            gate["open"], gate["loop"] = asyncio.Event(), asyncio.get_running_loop()
            model = OpenAIResponsesModel("sim", base_url=srv.base_url, native_async_tools=True)
            async with Agent(
                model, [get_weather, send_email], mode="async", grace_s=0, revise="always"
            ) as agent:
                return await agent.run("weather in Paris, then mail it to me")

        result = asyncio.run(go())
        bodies = [r.body for r in srv.model_requests]
        statuses = [r.status for r in srv.model_requests]
    assert statuses == [200] * len(bodies), "the server refused a request (see responses_problem)"
    assert seen_at_step_2 == [[]]  # step 2 was asked with no output for the pending call
    weather, email = result.calls
    assert sent == ["21"]  # the dependent call got the value, not the call id
    assert email.waited_for == (weather.seq,) or weather.seq in email.deps
    assert email.started_at is not None and weather.finished_at is not None
    assert email.started_at >= weather.finished_at
    assert [c.deliveries for c in result.calls] == [1, 1]
    # async: true on every tool but the wait tool
    flags = {t["name"]: t.get("async") for t in bodies[0]["tools"]}
    assert flags == {"get_weather": True, "send_email": True, AWAIT_TOOL: None}
    # append-only: each request's input starts with the previous request's input
    for before, after in zip(bodies, bodies[1:], strict=False):
        assert after["input"][: len(before["input"])] == before["input"]
    # exactly one output per call, each with the original call_id; get_weather's came later
    last = bodies[-1]["input"]
    outputs = [i for i in last if i.get("type") == "function_call_output"]
    call_ids = [i["call_id"] for i in last if i.get("type") == "function_call"]
    assert (
        sorted(o["call_id"] for o in outputs)
        == sorted(call_ids)
        == sorted([weather.tool_call_id, email.tool_call_id])
    )
    weather_output = next(o for o in outputs if o["call_id"] == weather.tool_call_id)
    assert json.loads(weather_output["output"]) == {"city": "Paris", "temp": 21}
    assert last.index(weather_output) > call_ids.index(email.tool_call_id)  # after the later call
    assert result.text == "Done."


def test_native_await_future_answers_with_the_call_outputs() -> None:
    """``await_future`` names the pending call by its call_id; its answer says which calls are
    ready and their values follow as those calls' own outputs (not twice)."""
    gate: dict[str, Any] = {}

    @tool
    async def lookup(key: str) -> str:
        """Look a key up."""
        await gate["open"].wait()
        return f"value of {key}"

    def step_2(transcript: list[Message]) -> list[ScriptedCall]:
        gate["loop"].call_soon_threadsafe(gate["open"].set)
        pending = next(c.id for m in transcript for c in m.tool_calls)
        return [ScriptedCall(AWAIT_TOOL, {"ids": [pending]})]

    def step_3(transcript: list[Message]) -> list[ScriptedCall]:  # asks again: not given twice
        return step_2(transcript)

    turns: list[Any] = [[ScriptedCall("lookup", {"key": "k"})], step_2, step_3, "value of k"]
    with SimServer(turns) as srv:

        async def go() -> Any:
            gate["open"], gate["loop"] = asyncio.Event(), asyncio.get_running_loop()
            model = OpenAIResponsesModel("sim", base_url=srv.base_url, native_async_tools=True)
            async with Agent(model, [lookup], mode="async", grace_s=0, revise="always") as agent:
                return await agent.run("look up k")

        result = asyncio.run(go())
        last = srv.model_requests[-1].body["input"]
        assert all(r.status == 200 for r in srv.model_requests)
    (call,) = result.calls
    outputs = {i["call_id"]: i["output"] for i in last if i.get("type") == "function_call_output"}
    first_await, second_await = (i["call_id"] for i in last if i.get("name") == AWAIT_TOOL)
    assert json.loads(outputs[first_await])["ready"] == [call.tool_call_id]
    assert json.loads(outputs[second_await]) == {"ready": [], "given_earlier": [call.tool_call_id]}
    assert outputs[call.tool_call_id] == "value of k"
    assert call.deliveries == 1
    assert sum("value of k" in o for o in outputs.values()) == 1  # the value once
