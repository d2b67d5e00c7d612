"""The chat-completions adapter through the real ``openai`` SDK against the local SimServer."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncGenerator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall, ChoiceDeltaToolCallFunction

from asyncfc.errors import ModelError
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
from asyncfc.models.openai_chat import (
    TEXT_CALLS_NOTE,
    OpenAIChatModel,
    _CallAssembler,
    to_openai_messages,
)
from asyncfc.testing.scripted import Ref, ScriptedCall, tokens_of
from asyncfc.testing.simserver import SimServer, prompt_tokens

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
    {
        "name": "send_email",
        "description": "Send an email.",
        "parameters": {
            "type": "object",
            "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
        },
    },
]
USER = [Message("user", "What is the weather in Paris and Tokyo?")]

Timed = list[tuple[float, ModelEvent]]


def run(srv: SimServer, request: ModelRequest, **kwargs: Any) -> Timed:
    """One request through a fresh adapter; events with their arrival times (perf_counter)."""

    async def go() -> Timed:
        async with OpenAIChatModel("sim", base_url=srv.base_url, **kwargs) as model:
            return [(time.perf_counter(), ev) async for ev in model.stream(request)]

    return asyncio.run(go())


def done(events: Timed) -> ModelResponse:
    last = events[-1][1]
    assert isinstance(last, ResponseDone)
    assert sum(isinstance(e, ResponseDone) for _, e in events) == 1
    return last.response


def ready(events: Timed) -> list[ToolCall]:
    return [e.call for _, e in events if isinstance(e, ToolCallReady)]


@pytest.mark.parametrize("stream", [True, False])
def test_parallel_calls_in_one_turn(stream: bool) -> None:
    turns = [
        [
            ScriptedCall("get_weather", {"city": "Paris"}),
            ScriptedCall("get_weather", {"city": "Tokyo"}),
            ScriptedCall("send_email", {"to": "a@b.c", "body": "hi"}),
        ]
    ]
    with SimServer(turns) as srv:
        events = run(srv, ModelRequest(USER, TOOLS, stream=stream))
    response = done(events)
    calls = ready(events)
    assert calls == response.tool_calls
    assert [c.id for c in calls] == ["call_0", "call_1", "call_2"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
        ("send_email", {"to": "a@b.c", "body": "hi"}),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.text == ""
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert (response.ttft_s is not None) == stream
    # every ToolCallReady precedes the single ResponseDone
    assert all(not isinstance(e, ResponseDone) for _, e in events[:-1])
    body = srv.model_requests[0].body
    assert body["stream"] is stream
    assert ("stream_options" in body) == stream


def test_streamed_text_usage_and_ttft() -> None:
    text = "The weather is fine in both cities."
    with SimServer([text], ttft_s=0.1, tokens_per_s=400) as srv:
        events = run(srv, ModelRequest(USER, TOOLS))
    response = done(events)
    deltas = [e.text for _, e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 3 and "".join(deltas) == text == response.text
    assert response.finish_reason == "stop" and response.tool_calls == []
    assert response.ttft_s is not None
    assert 0.1 <= response.ttft_s < response.duration_s
    assert response.usage.output_tokens == tokens_of(text)  # from the final usage chunk
    assert response.usage.input_tokens == len(prompt_tokens(USER, TOOLS))  # the rendered prompt, tools too
    assert response.usage.cached_input_tokens == 0
    # llama-style timings on the last chunk: the server's own prefill and decode time
    assert response.usage.timing == "server"
    assert response.usage.prefill_s == pytest.approx(0.1)
    assert response.usage.decode_s == pytest.approx(len(text) / 4 / 400)


@pytest.mark.parametrize("stream", [True, False])
def test_cached_tokens_of_a_repeated_prefix(stream: bool) -> None:
    follow_up = [*USER, Message("assistant", "Sunny."), Message("user", "And in Rome?")]
    with SimServer(["Sunny.", "Rainy."]) as srv:
        first = done(run(srv, ModelRequest(USER, TOOLS, stream=stream))).usage
        second = done(run(srv, ModelRequest(follow_up, TOOLS, stream=stream))).usage
    assert first.cached_input_tokens == 0
    # the first prompt and its answer are reused: prompt_tokens_details.cached_tokens
    assert second.cached_input_tokens == len(prompt_tokens([*USER, follow_up[1]], TOOLS))
    assert second.input_tokens == len(prompt_tokens(follow_up, TOOLS))
    assert second.timing == "server"


class HeldTurnServer(ThreadingHTTPServer):
    """Streams one turn of two calls, holding back everything after the first call until
    ``release`` is set, so a test sees by events, not by the clock, what the client did
    while the rest of the turn was still to come.

    ``rest_sent`` is set just before the rest goes out. With ``endless`` the stream then
    never ends (comment lines every 10 ms, as a server still decoding), so ``client_closed``
    is set only when the client closed the connection (a write failed).
    """

    daemon_threads = True

    def __init__(self, first: ToolCall, second: ToolCall, *, endless: bool = False) -> None:
        self.release = threading.Event()
        self.rest_sent = threading.Event()
        self.client_closed = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    self.event({"role": "assistant", "content": ""})
                    self.event(self.call(0, first))
                    server.release.wait(60)  # the test releases it; 60 s only if it never does
                    server.rest_sent.set()
                    self.event(self.call(1, second))
                    self.event({}, "tool_calls")
                    while endless:
                        self.wfile.write(b": still decoding\n\n")
                        time.sleep(0.01)
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    server.client_closed.set()

            def event(self, delta: dict[str, Any], finish: str | None = None) -> None:
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
                chunk = {"id": "1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
                self.wfile.write(f"data: {json.dumps({**chunk, 'choices': [choice]})}\n\n".encode())

            @staticmethod
            def call(index: int, call: ToolCall) -> dict[str, Any]:
                fn = {"name": call.name, "arguments": call.arguments}
                return {"tool_calls": [{"index": index, "id": call.id, "type": "function", "function": fn}]}

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def __enter__(self) -> HeldTurnServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


WEATHER = ToolCall("c1", "get_weather", '{"city": "Paris"}')
EMAIL = ToolCall("c2", "send_email", json.dumps({"to": "a@b.c", "body": "word " * 30}))


def test_early_dispatch_first_call_is_ready_before_the_turn_ends() -> None:
    """The first call is handed over while the server still holds the rest of the turn."""
    with HeldTurnServer(WEATHER, EMAIL) as srv:

        async def go() -> list[tuple[ToolCall, bool]]:
            ready: list[tuple[ToolCall, bool]] = []
            async with OpenAIChatModel("m", base_url=srv.base_url) as model:
                async for ev in model.stream(ModelRequest(USER, TOOLS)):
                    if isinstance(ev, ToolCallReady):
                        ready.append((ev.call, srv.rest_sent.is_set()))
                        srv.release.set()
            return ready

        ready = asyncio.run(go())
    (first, first_after_rest), (second, second_after_rest) = ready
    assert first == WEATHER and not first_after_rest, "the first call waited for the rest of the turn"
    assert second == EMAIL and second_after_rest


def test_messages_round_trip_through_the_wire() -> None:
    turns: list[Any] = [
        [ScriptedCall("get_weather", {"city": "Paris"})],
        [ScriptedCall("send_email", {"to": "me@x.y", "body": Ref(1)})],
        "sent",
    ]
    with SimServer(turns) as srv:

        async def go() -> list[ModelResponse]:
            async with OpenAIChatModel("sim", base_url=srv.base_url) as model:
                transcript = [Message("system", "be brief"), *USER]
                out = []
                for result in ['{"future": "f1", "status": "pending"}', "mailed"]:
                    response = await complete(model, ModelRequest(transcript, TOOLS))
                    out.append(response)
                    transcript.append(Message("assistant", response.text, tool_calls=response.tool_calls))
                    for call in response.tool_calls:
                        transcript.append(Message("tool", result, tool_call_id=call.id))
                out.append(await complete(model, ModelRequest(transcript, TOOLS, parallel_tool_calls=False)))
                return out

        first, second, third = asyncio.run(go())
    assert json.loads(second.tool_calls[0].arguments) == {"to": "me@x.y", "body": "f1"}
    assert third.text == "sent"
    body = srv.model_requests[2].body
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": USER[0].content},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": '{"future": "f1", "status": "pending"}'},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "send_email", "arguments": '{"to": "me@x.y", "body": "f1"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "mailed"},
    ]
    assert body["tools"] == [{"type": "function", "function": t} for t in TOOLS]
    assert body["parallel_tool_calls"] is False
    assert srv.model_requests[0].body["parallel_tool_calls"] is True


def test_no_tools_means_no_tool_parameters() -> None:
    with SimServer(["hello"]) as srv:
        run(
            srv,
            ModelRequest(USER, [], stream=False),
            temperature=0.0,
            seed=7,
            max_tokens=50,
            extra_body={"top_k": 1},
        )
    body = srv.model_requests[0].body
    assert "tools" not in body and "parallel_tool_calls" not in body
    assert (body["temperature"], body["seed"], body["max_tokens"], body["top_k"]) == (0.0, 7, 50, 1)


@pytest.mark.parametrize("stream", [True, False])
def test_llama_format_error_becomes_an_empty_step(stream: bool) -> None:
    with SimServer(["recovered"]) as srv:
        srv.inject_error()  # llama.cpp: "... does not match the expected peg-native format"

        async def go() -> list[Timed]:
            async with OpenAIChatModel("sim", base_url=srv.base_url, max_retries=0) as model:
                out = []
                for _ in range(2):
                    req = ModelRequest(USER, TOOLS, stream=stream)
                    out.append([(time.perf_counter(), ev) async for ev in model.stream(req)])
                return out

        failed, after = asyncio.run(go())
    response = done(failed)
    assert len(failed) == 1
    assert (response.text, response.tool_calls, response.finish_reason) == ("", [], "error")
    assert any("could not parse" in n for n in response.notes)
    assert done(after).text == "recovered"  # the run goes on with the next step


@pytest.mark.parametrize(
    ("status", "message"), [(500, "out of memory"), (400, "bad request"), (401, "no key")]
)
def test_other_http_errors_raise_model_error(status: int, message: str) -> None:
    with SimServer(["x"]) as srv:
        srv.inject_error(message, status=status)
        with pytest.raises(ModelError, match=f"HTTP {status}.*{message}"):
            run(srv, ModelRequest(USER, TOOLS), max_retries=0)


def test_unreachable_server_raises_model_error() -> None:
    srv = SimServer(["x"]).start()
    srv.stop()
    with pytest.raises(ModelError, match="cannot reach"):
        run(srv, ModelRequest(USER, TOOLS), max_retries=0)


@pytest.mark.parametrize("stream", [True, False])
def test_fenced_json_text_calls_are_recovered(stream: bool) -> None:
    text = 'Let me check.\n```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```'
    with SimServer([text, text]) as srv:
        events = run(srv, ModelRequest(USER, TOOLS, stream=stream), parse_text_calls=True)
        plain = run(srv, ModelRequest(USER, TOOLS, stream=stream))
    response = done(events)
    assert [(c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert ready(events) == response.tool_calls
    assert response.tool_calls[0].id.startswith("call_")
    assert TEXT_CALLS_NOTE in response.notes
    assert response.finish_reason == "tool_calls" and response.text == ""
    # without the option the text stays text
    assert done(plain).text == text and done(plain).tool_calls == []


def test_text_naming_an_unknown_tool_stays_text() -> None:
    text = '{"name": "hello", "arguments": {"lang": "fr"}}'
    with SimServer([text]) as srv:
        response = done(run(srv, ModelRequest(USER, TOOLS), parse_text_calls=True))
    assert response.text == text and response.tool_calls == [] and response.notes == []


def test_consumer_stopping_early_closes_the_stream() -> None:
    """Closing the event stream after the first call closes the HTTP stream at once: the
    server, whose stream never ends by itself, sees the client go away (before the model
    itself is closed, so it is the generator's ``aclose`` that did it)."""
    with HeldTurnServer(WEATHER, EMAIL, endless=True) as srv:

        async def go() -> tuple[ToolCall, bool]:
            async with OpenAIChatModel("m", base_url=srv.base_url) as model:
                gen = cast(AsyncGenerator[ModelEvent, None], model.stream(ModelRequest(USER, TOOLS)))
                async for ev in gen:
                    if isinstance(ev, ToolCallReady):
                        await gen.aclose()
                        srv.release.set()  # the server writes again, and finds the stream closed
                        closed = await asyncio.to_thread(srv.client_closed.wait, 60)
                        return ev.call, closed
            raise AssertionError("no call")

        call, closed = asyncio.run(go())
    assert call == WEATHER
    assert closed, "the HTTP stream stayed open after the consumer stopped"


def test_adapter_is_a_model() -> None:
    model = OpenAIChatModel("m", base_url="http://127.0.0.1:1/v1", name="local")
    assert isinstance(model, Model) and model.name == "local"
    asyncio.run(model.aclose())


def test_assembler_without_ids_and_with_reused_indices() -> None:
    n = iter(range(100))
    asm = _CallAssembler(lambda: f"call_{next(n)}")

    def delta(
        index: int, id: str | None = None, name: str | None = None, args: str | None = None
    ) -> ChoiceDeltaToolCall:
        return ChoiceDeltaToolCall(
            index=index, id=id, function=ChoiceDeltaToolCallFunction(name=name, arguments=args)
        )

    assert asm.add(delta(0, name="a", args='{"x":')) == []
    assert asm.add(delta(0, args=" 1}")) == []  # complete, but without an id it waits
    released = asm.add(delta(1, name="b", args="{"))
    assert released == [ToolCall("call_0", "a", '{"x": 1}')]
    # a server that sends each complete call at index 0 with its own id
    assert asm.add(delta(1, id="srv_7", args="}")) == [ToolCall("srv_7", "b", "{}")]  # id and a closed object
    assert asm.add(delta(1, id="srv_8", name="c", args='{"y": 2}')) == [ToolCall("srv_8", "c", '{"y": 2}')]
    # a truncated call is not released early (nor the calls after it), only at the end
    assert asm.add(delta(2, name="d", args='{"z": ')) == []
    assert asm.add(delta(3, name="e")) == []
    assert asm.finish() == [ToolCall("call_1", "d", '{"z": '), ToolCall("call_2", "e", "{}")]
    assert [c.name for c in asm.released()] == ["a", "b", "c", "d", "e"]


def test_assembler_releases_the_last_call_when_its_arguments_close() -> None:
    """llama-server still decodes a few tokens of its own format after the arguments (about
    0.3 s on a CPU): the call is dispatched without waiting for them."""
    asm = _CallAssembler(lambda: "unused")
    parts = ["{", '\n    "', "city", '":', ' "', "Paris", '"', "\n  }"]
    out = [
        asm.add_parts(0, "c1" if i == 0 else None, "get_weather" if i == 0 else None, p)
        for i, p in enumerate(parts)
    ]
    assert out[:-1] == [[]] * (len(parts) - 1)
    assert out[-1] == [ToolCall("c1", "get_weather", '{\n    "city": "Paris"\n  }')]
    assert asm.finish() == []
    # balanced braces that do not close the object (one is inside an open string) do not
    # release it; unbalanced ones inside strings only delay it to the end of the stream
    asm = _CallAssembler(lambda: "unused")
    assert asm.add_parts(0, "c2", "note", '{"text": "a }') == []
    assert asm.add_parts(0, None, None, ' and }"}') == []
    assert asm.finish() == [ToolCall("c2", "note", '{"text": "a } and }"}')]


def test_assembler_takes_arguments_sent_as_a_json_object() -> None:
    """Some OpenAI-compatible servers send ``arguments`` as an object, not its JSON text:
    that was an ``AttributeError`` inside the stream parser (a ``ModelError``)."""
    asm = _CallAssembler(lambda: "unused")
    assert asm.add_parts(0, "c1", "get", {"k": "x"}) == [ToolCall("c1", "get", '{"k": "x"}')]


def test_generated_ids_avoid_ids_already_in_the_transcript() -> None:
    model = OpenAIChatModel("m", base_url="http://127.0.0.1:1/v1")
    used = {"call_0", "call_2"}
    assert [model._new_id(used) for _ in range(3)] == ["call_1", "call_3", "call_4"]
    asyncio.run(model.aclose())


def test_to_openai_messages_keeps_text_next_to_calls() -> None:
    msg = Message("assistant", "checking", tool_calls=[ToolCall("c1", "f", "")])
    assert to_openai_messages([msg]) == [
        {
            "role": "assistant",
            "content": "checking",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        }
    ]


async def complete(model: OpenAIChatModel, request: ModelRequest) -> ModelResponse:
    async for ev in model.stream(request):
        if isinstance(ev, ResponseDone):
            return ev.response
    raise AssertionError("no response")


class KeepAliveServer(ThreadingHTTPServer):
    """A chat completions endpoint that keeps connections open (HTTP/1.1), as llama-server
    does, and counts those the client has not closed yet."""

    daemon_threads = True

    def __init__(self) -> None:
        self.open_connections = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                server.open_connections += 1
                try:
                    super().handle()
                finally:
                    server.open_connections -= 1

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                message = {"role": "assistant", "content": "sunny"}
                body = json.dumps(
                    {
                        "id": "1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "m",
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    }
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_run_sync_closes_its_connections_and_runs_again() -> None:
    """Each ``run_sync`` has its own event loop and the connections belong to it: none is
    left open when it returns, and the next ``run_sync`` opens new ones."""
    from asyncfc import Agent

    server = KeepAliveServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        agent = Agent(OpenAIChatModel("m", base_url=url, stream=False), [])
        for _ in range(2):
            assert agent.run_sync("Weather?").text == "sunny"
            deadline = time.monotonic() + 5
            while server.open_connections and time.monotonic() < deadline:
                time.sleep(0.01)
            assert server.open_connections == 0
    finally:
        server.shutdown()
        server.server_close()
