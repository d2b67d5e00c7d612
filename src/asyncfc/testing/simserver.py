"""A local HTTP server that plays scripted turns over the OpenAI and Anthropic wire formats.

Adapters are tested, and benchmarks run, against real HTTP and the real SDKs rather than
mocks: this server speaks chat completions (``POST /v1/chat/completions``), OpenAI Responses
(``POST /v1/responses``, with asynchronous tools: see :func:`responses_problem`) and
Anthropic messages (``POST /v1/messages``), streamed or not, with simulated decode time (a time to
first token, then ``tokens_per_s``, 4 characters a token). What it answers comes from the
same scripts as :class:`~asyncfc.testing.scripted.ScriptedModel`: each request is turned
back into neutral :class:`Message` objects and the next scripted turn is rendered against
them, so ``Ref`` arguments resolve exactly as they would in-process.

It reports usage as real servers do, so cost accounting and delivery policies can be
tested against it: prompt tokens over the rendered prompt (tools and messages, 4
characters a token), and cached tokens as llama-server's single slot finds them, the
longest token prefix the request shares with what the slot holds after the previous
request (that prompt and its answer). An edited earlier message therefore invalidates
the cache from that message on; an appended one does not. Prefill time proportional to
the uncached tokens can be simulated (``prefill_tokens_per_s``). OpenAI responses carry
``usage.prompt_tokens_details.cached_tokens`` and llama-style ``timings``; Anthropic
responses carry ``cache_read_input_tokens``.

It uses only the standard library (a threading HTTP server in a background thread), so
it can run next to any event loop. Every request is logged, and errors can be injected
(llama.cpp's HTTP 500 for unparsable model output by default).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..models.base import Message, ToolCall
from .scripted import ScriptedModel, Turn, tokens_of

__all__ = [
    "LLAMA_FORMAT_ERROR",
    "RecordedRequest",
    "SimServer",
    "anthropic_to_messages",
    "openai_to_messages",
    "prompt_tokens",
    "responses_problem",
    "responses_to_messages",
    "shared_prefix",
]

LLAMA_FORMAT_ERROR = "The model produced output that does not match the expected peg-native format"
"""What llama-server says (HTTP 500) when it cannot parse the model's tool-call syntax."""

_CHARS_PER_TOKEN = 4


@dataclass
class RecordedRequest:
    """One request the server received (``received_at``/``finished_at`` are ``time.perf_counter()``)."""

    method: str
    path: str
    body: Any
    received_at: float
    status: int = 200
    finished_at: float | None = None
    prompt_tokens: int = 0
    """The prompt's size in tokens, as reported in the response's usage."""
    cached_tokens: int = 0
    """How many of them the prefix cache held (not processed again)."""


def _text_of(content: Any) -> str:
    """Message content as plain text: a string, null, or a list of text parts/blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return "".join(str(p) for p in parts)
    return str(content)


def openai_to_messages(messages: Sequence[Mapping[str, Any]]) -> list[Message]:
    """Chat-completions messages back to neutral ones (the inverse of the adapter's mapping)."""
    out: list[Message] = []
    for m in messages:
        role = m.get("role")
        content = _text_of(m.get("content"))
        if role in ("system", "developer"):
            out.append(Message("system", content))
        elif role == "assistant":
            calls = [
                ToolCall(
                    id=str(tc.get("id", "")),
                    name=str(tc.get("function", {}).get("name", "")),
                    arguments=str(tc.get("function", {}).get("arguments") or "{}"),
                )
                for tc in m.get("tool_calls") or []
            ]
            out.append(Message("assistant", content, tool_calls=calls))
        elif role == "tool":
            out.append(Message("tool", content, tool_call_id=str(m.get("tool_call_id", ""))))
        else:
            out.append(Message("user", content))
    return out


def anthropic_to_messages(body: Mapping[str, Any]) -> list[Message]:
    """An Anthropic messages request back to neutral messages (``tool_result`` -> tool messages)."""
    out: list[Message] = []
    system = _text_of(body.get("system"))
    if system:
        out.append(Message("system", system))
    for m in body.get("messages", []):
        role = m.get("role")
        content = m.get("content")
        if isinstance(content, str):
            out.append(Message("assistant" if role == "assistant" else "user", content))
            continue
        blocks = [b for b in content or [] if isinstance(b, Mapping)]
        text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
        if role == "assistant":
            calls = [
                ToolCall(
                    id=str(b.get("id", "")),
                    name=str(b.get("name", "")),
                    arguments=json.dumps(b.get("input", {})),
                )
                for b in blocks
                if b.get("type") == "tool_use"
            ]
            out.append(Message("assistant", text, tool_calls=calls))
            continue
        for b in blocks:
            if b.get("type") == "tool_result":
                out.append(
                    Message("tool", _text_of(b.get("content")), tool_call_id=str(b.get("tool_use_id", "")))
                )
        if text:
            out.append(Message("user", text))
    return out


def responses_to_messages(body: Mapping[str, Any]) -> list[Message]:
    """A Responses request's ``instructions`` and ``input`` items back to neutral messages:
    consecutive ``function_call`` items join the assistant message before them, and each
    ``function_call_output`` becomes a tool message, wherever it comes (async tools answer later)."""
    out: list[Message] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        out.append(Message("system", instructions))
    items = body.get("input")
    if isinstance(items, str):
        return [*out, Message("user", items)]
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type", "message")
        if kind == "function_call":
            call = ToolCall(
                str(item.get("call_id", "")), str(item.get("name", "")), str(item.get("arguments") or "{}")
            )
            last = out[-1] if out else None
            if last is not None and last.role == "assistant":  # its text, then its calls
                last.tool_calls = [*last.tool_calls, call]
            else:
                out.append(Message("assistant", "", tool_calls=[call]))
        elif kind == "function_call_output":
            out.append(
                Message("tool", _text_of(item.get("output")), tool_call_id=str(item.get("call_id", "")))
            )
        elif kind == "message":
            role = item.get("role")
            content = item.get("content")
            text = (
                content
                if isinstance(content, str)
                else "".join(str(p.get("text", "")) for p in content or [] if isinstance(p, Mapping))
            )
            if role in ("system", "developer"):
                out.append(Message("system", text))
            elif role == "assistant":
                out.append(Message("assistant", text))
            else:
                out.append(Message("user", text))
    return out


def responses_problem(body: Mapping[str, Any]) -> str | None:
    """What the Responses API would refuse in this request's input, as its error message, or None.

    Checked as the asynchronous tool calling guide describes the protocol: an output must
    answer an earlier ``function_call`` by its ``call_id``, once; a call of a tool declared
    ``async: true`` may still be without an output (it comes in a later request); a call of
    any other tool of the request must have its output.
    """
    items = body.get("input")
    if not isinstance(items, list):
        return None
    tools = [t for t in body.get("tools") or [] if isinstance(t, Mapping)]
    sync_tools = {str(t.get("name")) for t in tools if t.get("async") is not True}
    calls: dict[str, str] = {}
    answered: set[str] = set()
    for item in items:
        if not isinstance(item, Mapping):
            continue
        call_id = str(item.get("call_id", ""))
        if item.get("type") == "function_call":
            calls[call_id] = str(item.get("name", ""))
        elif item.get("type") == "function_call_output":
            if call_id not in calls:
                return f"No tool call found for function call output with call_id {call_id}."
            if call_id in answered:
                return f"Duplicate function call output for call_id {call_id}."
            answered.add(call_id)
    for call_id, name in calls.items():
        if call_id not in answered and name in sync_tools:
            return f"No tool output found for function call {call_id}."
    return None


def _tool_spec(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI function tool or an Anthropic tool as one neutral spec, so both wires render alike."""
    fn = tool.get("function") if tool.get("type") == "function" else None
    spec = fn if isinstance(fn, Mapping) else tool
    params = spec.get("parameters", spec.get("input_schema"))
    return {"name": spec.get("name", ""), "description": spec.get("description", ""), "parameters": params}


def _render_message(m: Message) -> str:
    """One message as a chat template would write it (call ids are not part of the prompt)."""
    calls = "".join(f"\n<tool_call>{c.name} {c.arguments}</tool_call>" for c in m.tool_calls)
    return f"<|{m.role}|>\n{m.content}{calls}<|end|>\n"


def prompt_tokens(messages: Sequence[Message], tools: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    """The prompt as the server tokenizes it: leading system messages, the tools, then the rest.

    Each message and each tool is cut into 4-character tokens on its own, so a change in
    one leaves the tokens of the ones before it intact, as with a real tokenizer and template.
    """
    lead = 0
    while lead < len(messages) and messages[lead].role == "system":
        lead += 1
    segments = [_render_message(m) for m in messages[:lead]]
    segments += [f"<tool>{json.dumps(_tool_spec(t))}</tool>\n" for t in tools]
    segments += [_render_message(m) for m in messages[lead:]]
    return [piece for segment in segments for piece in _pieces(segment)]


def shared_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    """The number of leading tokens two token sequences share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass
class _Played:
    """One scripted turn played for a request, with what its prompt cost."""

    text: str
    calls: list[ToolCall]
    rid: str
    prompt: int
    cached: int
    prefill_s: float


def _pieces(text: str) -> list[str]:
    return [text[i : i + _CHARS_PER_TOKEN] for i in range(0, len(text), _CHARS_PER_TOKEN)]


class _Pacer:
    """Sleeps so that the n-th token goes out at ``start + ttft + n / tokens_per_s`` (no drift).

    Tokens are counted fractionally (characters / 4), so a turn takes as long as the same
    turn in :class:`ScriptedModel` at ``token_s = 1 / tokens_per_s`` (up to rounding), and
    benchmarks can attribute the difference to the transport.
    """

    def __init__(self, ttft_s: float, tokens_per_s: float | None) -> None:
        self.start = time.perf_counter()
        self.ttft_s = ttft_s
        self.per_token = 0.0 if not tokens_per_s else 1.0 / tokens_per_s
        self.tokens = 0.0

    def wait(self, tokens: float) -> None:
        self.tokens += tokens
        delay = self.start + self.ttft_s + self.tokens * self.per_token - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


class SimServer:
    """Simulated-decode model server on ``127.0.0.1`` for tests and benchmarks.

    ``with SimServer(turns, tokens_per_s=100) as srv:`` then point an OpenAI client at
    ``srv.base_url`` (``http://127.0.0.1:PORT/v1``) or an Anthropic client at
    ``srv.anthropic_base_url``. One script position is used per model request (either
    wire), and the last final text repeats once the script is exhausted.

    Like llama-server with ``cache_prompt`` (its default) and one slot, the server keeps
    the tokens of the last request and its answer; a request's cached tokens are the
    prefix it shares with them, less one (the last prompt token is always evaluated
    again). A request with ``"cache_prompt": false`` bypasses the cache.
    ``prefill_tokens_per_s`` adds ``uncached / prefill_tokens_per_s`` seconds before the
    first token (off by default); ``timings=False`` leaves llama's ``timings`` out of
    OpenAI responses, as other servers do.
    """

    def __init__(
        self,
        turns: Sequence[Turn],
        *,
        ttft_s: float = 0.0,
        tokens_per_s: float | None = None,
        port: int = 0,
        model_name: str = "sim-model",
        prefill_tokens_per_s: float | None = None,
        timings: bool = True,
    ) -> None:
        self.script = ScriptedModel(turns, name=model_name)
        self.ttft_s = ttft_s
        self.tokens_per_s = tokens_per_s
        self.prefill_tokens_per_s = prefill_tokens_per_s
        self.timings = timings
        self._slot: list[str] = []
        self.model_name = model_name
        self.requests: list[RecordedRequest] = []
        self._port = port
        self._lock = threading.Lock()
        self._errors: deque[tuple[int, str, bool]] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> SimServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        server = _Listener(("127.0.0.1", self._port), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="asyncfc-simserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """Base URL for OpenAI-compatible clients."""
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for Anthropic clients (they append ``/v1/messages``)."""
        return f"http://127.0.0.1:{self._port}"

    # -- control -----------------------------------------------------------------------

    def inject_error(
        self, message: str = LLAMA_FORMAT_ERROR, *, status: int = 500, count: int = 1, in_stream: bool = False
    ) -> None:
        """Answer the next ``count`` model requests with an error.

        By default the request fails with HTTP ``status`` and the script does not advance.
        With ``in_stream``, a streamed request instead plays its turn and then ends with an
        error event where the finish would be, as llama-server does when its final parse of
        the model output fails (``data: {"error": ...}``, no ``[DONE]``).
        """
        with self._lock:
            self._errors.extend([(status, message, in_stream)] * count)

    def clear_cache(self) -> None:
        """Empty the prefix cache (as a server restart would)."""
        with self._lock:
            self._slot = []

    @property
    def model_requests(self) -> list[RecordedRequest]:
        """The logged model requests (chat completions or messages), oldest first."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST"]

    # -- internals used by the handler -------------------------------------------------

    def _record(self, method: str, path: str, body: Any) -> RecordedRequest:
        rec = RecordedRequest(method, path, body, time.perf_counter())
        with self._lock:
            self.requests.append(rec)
        return rec

    def _take_error(self) -> tuple[int, str, bool] | None:
        with self._lock:
            return self._errors.popleft() if self._errors else None

    def _play(
        self, rec: RecordedRequest, transcript: Sequence[Message], tools: Sequence[Mapping[str, Any]]
    ) -> _Played:
        """The next scripted turn, with the prompt's size and the part of it the slot held."""
        body = rec.body if isinstance(rec.body, Mapping) else {}
        tokens = prompt_tokens(transcript, tools)
        with self._lock:
            text, calls = self.script.next_turn(transcript)
            self._counter += 1
            cached = 0
            if body.get("cache_prompt", True) is not False:
                cached = min(shared_prefix(tokens, self._slot), max(0, len(tokens) - 1))
            # the slot now holds this prompt and the answer, as the next request will repeat it
            self._slot = tokens + _pieces(_render_message(Message("assistant", text, tool_calls=calls)))
        rec.prompt_tokens, rec.cached_tokens = len(tokens), cached
        rate = self.prefill_tokens_per_s
        prefill_s = (len(tokens) - cached) / rate if rate else 0.0
        return _Played(text, calls, f"sim-{self._counter}", len(tokens), cached, prefill_s)


class _Listener(ThreadingHTTPServer):
    request_queue_size = 1024  # hundreds of concurrent sessions connect at once (default 5)


def _make_handler(sim: SimServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        server_sim = sim

    return Handler


class _Handler(BaseHTTPRequestHandler):
    server_sim: SimServer
    disable_nagle_algorithm = True  # each SSE chunk must leave at once, or pacing is lost
    server_version = "asyncfc-simserver"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`SimServer.requests` instead."""

    # -- plumbing ----------------------------------------------------------------------

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _sse(self, data: Any, event: str | None = None) -> None:
        head = f"event: {event}\n" if event else ""
        payload = data if isinstance(data, str) else json.dumps(data)
        self.wfile.write(f"{head}data: {payload}\n\n".encode())

    def do_GET(self) -> None:
        sim = self.server_sim
        path = self.path.split("?", 1)[0].rstrip("/")
        rec = sim._record("GET", path, None)
        if path in ("/health", "/v1/health"):
            self._send_json(200, {"status": "ok"})
        elif path in ("/v1/models", "/models"):
            model = {"id": sim.model_name, "object": "model", "created": 0, "owned_by": "asyncfc"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            rec.status = 404
            self._send_json(404, {"error": {"code": 404, "message": f"no route {path}", "type": "not_found"}})
        rec.finished_at = time.perf_counter()

    def do_POST(self) -> None:
        sim = self.server_sim
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        rec = sim._record("POST", path, body)
        anthropic = path in ("/v1/messages", "/messages")
        responses = path in ("/v1/responses", "/responses")
        try:
            if not isinstance(body, dict):
                rec.status = 400
                self._error(400, "request body is not a JSON object", anthropic)
            elif path not in ("/v1/chat/completions", "/chat/completions") and not (anthropic or responses):
                rec.status = 404
                self._error(404, f"no route {path}", anthropic)
            elif (injected := sim._take_error()) is not None and not (injected[2] and body.get("stream")):
                rec.status = injected[0]
                self._error(injected[0], injected[1], anthropic)
            elif anthropic:
                self._anthropic(rec, body, fail=injected[1] if injected else None)
            elif responses:
                problem = responses_problem(body)
                if problem is not None:
                    rec.status = 400
                    self._error(400, problem, False)
                else:
                    self._responses(rec, body, fail=injected[1] if injected else None)
            else:
                self._openai(rec, body, fail=injected[1] if injected else None)
        except (BrokenPipeError, ConnectionResetError):
            rec.status = 499  # the client went away mid-response
        rec.finished_at = time.perf_counter()

    def _error(self, status: int, message: str, anthropic: bool) -> None:
        if anthropic:
            self._send_json(status, {"type": "error", "error": {"type": "api_error", "message": message}})
        else:
            kind = "server_error" if status >= 500 else "invalid_request_error"
            self._send_json(status, {"error": {"code": status, "message": message, "type": kind}})

    # -- OpenAI chat completions -------------------------------------------------------

    def _openai(self, rec: RecordedRequest, body: Mapping[str, Any], fail: str | None = None) -> None:
        sim = self.server_sim
        transcript = openai_to_messages(body.get("messages", []))
        played = sim._play(rec, transcript, body.get("tools") or [])
        text, calls = played.text, played.calls
        pacer = _Pacer(sim.ttft_s + played.prefill_s, sim.tokens_per_s)
        finish = "tool_calls" if calls else "stop"
        envelope = {"id": f"chatcmpl-{played.rid}", "created": int(time.time()), "model": sim.model_name}
        steps = list(_openai_steps(text, calls))
        out_tokens = _output_tokens(text, calls)
        usage = _openai_usage(played, out_tokens)
        extra = {"timings": _timings(sim, played, steps, out_tokens)} if sim.timings else {}
        if not body.get("stream"):
            pacer.wait(sum(n for n, _ in steps))
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in calls
                ]
            self._send_json(
                200,
                {
                    **envelope,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                    "usage": usage,
                    **extra,
                },
            )
            return

        def chunk(delta: Mapping[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            return {**envelope, "object": "chat.completion.chunk", "choices": [choice]}

        self._start_sse()
        self._sse(chunk({"role": "assistant", "content": ""}))
        for tokens, delta in steps:
            pacer.wait(tokens)
            self._sse(chunk(delta))
        if fail is not None:
            self._sse({"error": {"code": 500, "message": fail, "type": "server_error"}})
            return
        # like llama-server: the timings ride on the last chunk, the usage chunk if asked for
        if (body.get("stream_options") or {}).get("include_usage"):
            self._sse(chunk({}, finish))
            self._sse({**envelope, "object": "chat.completion.chunk", "choices": [], "usage": usage, **extra})
        else:
            self._sse({**chunk({}, finish), **extra})
        self._sse("[DONE]")

    # -- OpenAI Responses ----------------------------------------------------------------

    def _responses(self, rec: RecordedRequest, body: Mapping[str, Any], fail: str | None = None) -> None:
        sim = self.server_sim
        tools = [t for t in body.get("tools") or [] if isinstance(t, Mapping)]
        transcript = responses_to_messages(body)
        played = sim._play(rec, transcript, tools)
        text, calls = played.text, played.calls
        is_async = {str(t.get("name")) for t in tools if t.get("async") is True}
        pacer = _Pacer(sim.ttft_s + played.prefill_s, sim.tokens_per_s)
        out_tokens = _output_tokens(text, calls)
        rid = f"resp_{played.rid}"
        output: list[dict[str, Any]] = []
        if text:
            part = {"type": "output_text", "text": text, "annotations": []}
            output.append(
                {
                    "type": "message",
                    "id": f"msg_{played.rid}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [part],
                }
            )
        for i, c in enumerate(calls):
            item: dict[str, Any] = {
                "type": "function_call",
                "id": f"fc_{played.rid}_{i}",
                "call_id": c.id,
                "name": c.name,
                "arguments": c.arguments,
                "status": "completed",
            }
            if c.name in is_async:
                item["async"] = True  # as the guide says: the call item of an async tool carries it
            output.append(item)
        usage = {
            "input_tokens": played.prompt,
            "input_tokens_details": {"cached_tokens": played.cached},
            "output_tokens": out_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": played.prompt + out_tokens,
        }
        envelope = {
            "id": rid,
            "object": "response",
            "created_at": int(time.time()),
            "model": sim.model_name,
            "error": None,
            "incomplete_details": None,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "tool_choice": "auto",
            "tools": tools,
        }
        extra = {"timings": _timings(sim, played, [(out_tokens, None)], out_tokens)} if sim.timings else {}
        whole = {**envelope, "status": "completed", "output": output, "usage": usage, **extra}
        if not body.get("stream"):
            pacer.wait(_cost(text) + sum(_cost(c.name) + _cost(c.arguments) for c in calls))
            self._send_json(200, whole)
            return
        seq = 0

        def event(kind: str, **fields: Any) -> None:
            nonlocal seq
            self._sse({"type": kind, "sequence_number": seq, **fields}, kind)
            seq += 1

        self._start_sse()
        pending = {**envelope, "status": "in_progress", "output": [], "usage": None}
        event("response.created", response=pending)
        event("response.in_progress", response=pending)
        index = 0
        if text:
            item = output[0]
            iid = item["id"]
            event(
                "response.output_item.added",
                output_index=0,
                item={**item, "status": "in_progress", "content": []},
            )
            empty = {"type": "output_text", "text": "", "annotations": []}
            event("response.content_part.added", item_id=iid, output_index=0, content_index=0, part=empty)
            for piece in _pieces(text):
                pacer.wait(_cost(piece))
                event(
                    "response.output_text.delta",
                    item_id=iid,
                    output_index=0,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            event(
                "response.output_text.done",
                item_id=iid,
                output_index=0,
                content_index=0,
                text=text,
                logprobs=[],
            )
            event(
                "response.content_part.done",
                item_id=iid,
                output_index=0,
                content_index=0,
                part=item["content"][0],
            )
            event("response.output_item.done", output_index=0, item=item)
            index = 1
        for item in output[index:]:
            iid = item["id"]
            pacer.wait(_cost(item["name"]))
            event(
                "response.output_item.added",
                output_index=index,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            for piece in _pieces(item["arguments"]):
                pacer.wait(_cost(piece))
                event("response.function_call_arguments.delta", item_id=iid, output_index=index, delta=piece)
            event(
                "response.function_call_arguments.done",
                item_id=iid,
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            )
            event("response.output_item.done", output_index=index, item=item)
            index += 1
        if fail is not None:
            event("error", code="server_error", message=fail, param=None)
            return
        event("response.completed", response=whole)

    # -- Anthropic messages ------------------------------------------------------------

    def _anthropic(self, rec: RecordedRequest, body: Mapping[str, Any], fail: str | None = None) -> None:
        sim = self.server_sim
        transcript = anthropic_to_messages(body)
        played = sim._play(rec, transcript, body.get("tools") or [])
        text, calls = played.text, played.calls
        pacer = _Pacer(sim.ttft_s + played.prefill_s, sim.tokens_per_s)
        stop = "tool_use" if calls else "end_turn"
        message = {
            "id": f"msg_{played.rid}",
            "type": "message",
            "role": "assistant",
            "model": sim.model_name,
            "stop_sequence": None,
        }
        # Anthropic's input_tokens leaves out what was read from (or written to) the cache
        prompt_usage = {
            "input_tokens": played.prompt - played.cached,
            "cache_read_input_tokens": played.cached,
            "cache_creation_input_tokens": 0,
        }
        if not body.get("stream"):
            steps = list(_anthropic_steps(text, calls))
            pacer.wait(sum(n for n, _ in steps))
            content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            content += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments)}
                for c in calls
            ]
            usage = {**prompt_usage, "output_tokens": _output_tokens(text, calls)}
            self._send_json(200, {**message, "content": content, "stop_reason": stop, "usage": usage})
            return
        self._start_sse()
        start_usage = {**prompt_usage, "output_tokens": 1}
        self._sse(
            {
                "type": "message_start",
                "message": {**message, "content": [], "stop_reason": None, "usage": start_usage},
            },
            "message_start",
        )
        for tokens, event in _anthropic_steps(text, calls):
            pacer.wait(tokens)
            self._sse(event, str(event["type"]))
        if fail is not None:
            self._sse({"type": "error", "error": {"type": "api_error", "message": fail}}, "error")
            return
        self._sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                # cumulative, input counts repeated, as the API sends them today
                "usage": {**prompt_usage, "output_tokens": _output_tokens(text, calls)},
            },
            "message_delta",
        )
        self._sse({"type": "message_stop"}, "message_stop")


def _cost(text: str) -> float:
    """Decode time of ``text`` in (fractional) tokens."""
    return len(text) / _CHARS_PER_TOKEN


def _timings(
    sim: SimServer, played: _Played, steps: Sequence[tuple[float, Any]], predicted_n: int
) -> dict[str, Any]:
    """llama-server's ``timings`` object for one response, from the simulated times."""
    processed = played.prompt - played.cached
    prompt_ms = (sim.ttft_s + played.prefill_s) * 1000
    decoded = sum(n for n, _ in steps)
    predicted_ms = decoded / sim.tokens_per_s * 1000 if sim.tokens_per_s else 0.0
    return {
        "cache_n": played.cached,
        "prompt_n": processed,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / processed if processed else 0.0,
        "prompt_per_second": processed / prompt_ms * 1000 if prompt_ms else 0.0,
        "predicted_n": predicted_n,
        "predicted_ms": predicted_ms,
        "predicted_per_token_ms": predicted_ms / predicted_n if predicted_n else 0.0,
        "predicted_per_second": predicted_n / predicted_ms * 1000 if predicted_ms else 0.0,
    }


def _output_tokens(text: str, calls: Sequence[ToolCall]) -> int:
    """Output tokens as :class:`ScriptedModel` counts them, so usage agrees in and out of process."""
    return (tokens_of(text) if text else 0) + sum(tokens_of(c.name + c.arguments) for c in calls)


def _openai_usage(played: _Played, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": played.prompt,
        "completion_tokens": completion,
        "total_tokens": played.prompt + completion,
        "prompt_tokens_details": {"cached_tokens": played.cached},
    }


def _openai_steps(text: str, calls: Sequence[ToolCall]) -> Iterator[tuple[float, dict[str, Any]]]:
    """(tokens to decode first, delta) pairs: text pieces, then each call's header and argument pieces."""
    for piece in _pieces(text):
        yield _cost(piece), {"content": piece}
    for i, c in enumerate(calls):
        header = {"index": i, "id": c.id, "type": "function", "function": {"name": c.name, "arguments": ""}}
        yield _cost(c.name), {"tool_calls": [header]}
        for piece in _pieces(c.arguments):
            yield _cost(piece), {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}


def _anthropic_steps(text: str, calls: Sequence[ToolCall]) -> Iterator[tuple[float, dict[str, Any]]]:
    """(tokens to decode first, event) pairs for the content blocks of one message."""
    index = 0
    if text:
        block: dict[str, Any] = {"type": "text", "text": ""}
        yield 0, {"type": "content_block_start", "index": index, "content_block": block}
        for piece in _pieces(text):
            delta = {"type": "text_delta", "text": piece}
            yield _cost(piece), {"type": "content_block_delta", "index": index, "delta": delta}
        yield 0, {"type": "content_block_stop", "index": index}
        index += 1
    for c in calls:
        block = {"type": "tool_use", "id": c.id, "name": c.name, "input": {}}
        yield _cost(c.name), {"type": "content_block_start", "index": index, "content_block": block}
        for piece in _pieces(c.arguments):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield _cost(piece), {"type": "content_block_delta", "index": index, "delta": delta}
        yield 0, {"type": "content_block_stop", "index": index}
        index += 1
