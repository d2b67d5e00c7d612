"""Model adapter for OpenAI chat completions, and any server that speaks them.

Works against api.openai.com, vLLM, llama.cpp's ``llama-server``, Ollama, ... through the
official ``openai`` SDK's async client. Streaming is the point: a call is announced
(:class:`ToolCallReady`) as soon as its arguments are known complete, i.e. when they close
a JSON object, when the next call starts in the stream or when the stream ends, so the
agent can dispatch it while the model is still decoding the rest of its turn.

Local servers have quirks this adapter absorbs so a run can continue:

* llama.cpp answers HTTP 500 "The model produced output that does not match the expected
  ... format" when it cannot parse the model's tool-call syntax. That is a bad model step,
  not a broken endpoint: it becomes an empty response with ``finish_reason="error"``.
* Small models write calls as JSON text instead of ``tool_calls``; with
  ``parse_text_calls=True`` those are recovered (see :mod:`asyncfc.models.text_calls`).
* Some servers send a call's ``arguments`` as a JSON object instead of its text; it is
  taken as its JSON text.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import openai
from openai import AsyncOpenAI
from openai._response import AsyncAPIResponse
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from ..errors import ModelError
from ._sdk import OwnedClient, client_kwargs, connection_error
from .base import (
    Message,
    ModelEvent,
    ModelRequest,
    ModelResponse,
    ResponseDone,
    TextDelta,
    ToolCall,
    ToolCallReady,
    Usage,
)
from .text_calls import format_error_response, is_format_error
from .text_calls import parse_text_calls as _parse_text_calls

__all__ = [
    "OpenAIChatModel",
    "usage_from_openai",
    "to_openai_messages",
    "to_openai_tools",
]

TEXT_CALLS_NOTE = "tool calls recovered from text"


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Neutral messages in chat-completions form (assistant ``tool_calls``, tool ``tool_call_id``)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content})
        elif m.role == "assistant" and m.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    # null, not "", is what the API documents for a calls-only message.
                    "content": m.content or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments or "{}"},
                        }
                        for c in m.tool_calls
                    ],
                }
            )
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _wire_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """:func:`to_openai_messages`, converting each message once per version of it.

    A step's request repeats the whole history: the converted form is kept on the message,
    keyed by what a host changes (``content``, replaced by delivery; the ``tool_calls`` list
    and ``tool_call_id``), so only new or edited messages are converted again.
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        state = m.__dict__
        key = (m.content, m.tool_call_id, m.tool_calls, len(m.tool_calls))
        cached = state.get(_WIRE)
        if cached is None or not _same(cached[0], key):
            cached = state[_WIRE] = (key, to_openai_messages([m])[0])
        out.append(cached[1])
    return out


_WIRE = "_asyncfc_openai_wire"


def _as_json_text(arguments: Any) -> str:
    """Call arguments as the protocol's JSON text; some servers send them as a JSON object."""
    if arguments is None or isinstance(arguments, str):
        return arguments or ""
    return json.dumps(arguments, default=str)


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Same content object (or equal text), same id, same calls list of the same length."""
    return (a[0] is b[0] or a[0] == b[0]) and a[1] == b[1] and a[2] is b[2] and a[3] == b[3]


def _sdk_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` for ``chat.completions.create`` with the messages and tools sent as they are.

    ``create`` re-validates every message of the history against its typed schema on every
    request (Python work that grows with the history, more than the rest of a step); these
    are plain JSON built here, so they go in ``extra_body``, which the SDK sends unchanged.
    """
    kwargs = dict(params)
    body = {
        "messages": kwargs.pop("messages"),
        **({"tools": kwargs.pop("tools")} if "tools" in kwargs else {}),
    }
    kwargs["messages"] = []  # required by create(); the body's messages take its place
    kwargs["extra_body"] = {**body, **(kwargs.get("extra_body") or {})}
    return kwargs


def to_openai_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Tool specs ``{"name", "description", "parameters"}`` wrapped as function tools."""
    return [{"type": "function", "function": dict(spec)} for spec in tools]


def usage_from_openai(usage: CompletionUsage | Mapping[str, Any] | None, timings: object = None) -> Usage:
    """A step's :class:`Usage` from OpenAI ``usage`` and, if present, llama-server ``timings``.

    ``usage.prompt_tokens`` counts the whole prompt and ``prompt_tokens_details.cached_tokens``
    the part found in the prefix cache (OpenAI, vLLM, recent llama-server). llama-server's
    ``timings`` (``prompt_n`` tokens processed in ``prompt_ms``, ``predicted_n`` in
    ``predicted_ms``, ``cache_n`` reused) give the server's own prefill and decode times,
    and the token counts when a server sends no ``usage``.
    """
    out = Usage()
    if isinstance(usage, Mapping):  # the lean stream parser hands over the JSON object
        out.input_tokens = _count(usage.get("prompt_tokens"))
        out.output_tokens = _count(usage.get("completion_tokens"))
        details = usage.get("prompt_tokens_details")
        out.cached_input_tokens = _count(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    elif usage is not None:
        out.input_tokens = usage.prompt_tokens or 0
        out.output_tokens = usage.completion_tokens or 0
        details = usage.prompt_tokens_details
        if details is not None and details.cached_tokens:
            out.cached_input_tokens = details.cached_tokens
    if isinstance(timings, Mapping):
        cache_n = _number(timings.get("cache_n"))
        if usage is None:
            out.input_tokens = int(_number(timings.get("prompt_n")) + cache_n)
            out.output_tokens = int(_number(timings.get("predicted_n")))
        if not out.cached_input_tokens:
            out.cached_input_tokens = int(cache_n)
        if "prompt_ms" in timings or "predicted_ms" in timings:
            out.prefill_s = _number(timings.get("prompt_ms")) / 1000
            out.decode_s = _number(timings.get("predicted_ms")) / 1000
            out.timing = "server"
    return out


def _count(value: object) -> int:
    """A token count from JSON; anything but a number counts as 0."""
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _number(value: object) -> float:
    """A timings field as a float; anything else (missing, null, text) counts as 0."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


@dataclass
class _Slot:
    """One tool call being assembled from stream deltas."""

    index: int
    id: str = ""
    name: str = ""
    args: list[str] = field(default_factory=list)
    call: ToolCall | None = None
    open_braces: int = 0
    """``{`` minus ``}`` in the arguments so far (strings included): a cheap filter before
    trying to parse them as a finished object."""

    def closed_object(self) -> bool:
        """Whether the arguments so far are a whole JSON object: nothing valid can follow it,
        so the call is complete before the stream says so (the server still has to decode
        the closing tokens of its own format)."""
        if self.open_braces != 0 or not self.args or not self.args[-1].rstrip().endswith("}"):
            return False
        try:
            return isinstance(json.loads(self.arguments), dict)
        except (ValueError, RecursionError):
            return False

    @property
    def arguments(self) -> str:
        return "".join(self.args)


class _CallAssembler:
    """Accumulates tool-call deltas by index and releases calls, in order, once complete:
    when a later call starts, when the stream ends, or (the last call) as soon as its
    arguments close a JSON object."""

    def __init__(self, new_id: Callable[[], str], used: set[str] | None = None) -> None:
        self._new_id = new_id
        self._used = used if used is not None else set()
        self.slots: list[_Slot] = []
        self._current: dict[int, _Slot] = {}
        self._released = 0

    def add(self, delta: ChoiceDeltaToolCall) -> list[ToolCall]:
        """Feed one SDK delta; returns the calls that became ready because a later one started."""
        fn = delta.function
        return self.add_parts(delta.index, delta.id, fn and fn.name, fn and fn.arguments)

    def add_parts(self, index: Any, id: Any, name: Any, arguments: Any) -> list[ToolCall]:
        """Feed one delta's fields (``None`` where absent); see :meth:`add`."""
        slot = self._current.get(index)
        # A new index starts a new call; so does a fresh id at a reused index (some servers
        # send every call complete at index 0).
        if slot is None or (id and slot.id and id != slot.id):
            slot = _Slot(index=index)
            self.slots.append(slot)
            self._current[index] = slot
        if id:
            slot.id = id
            self._used.add(id)  # generated ids must not collide with the server's
        if name and not slot.name:
            slot.name = name  # sent once; some servers repeat it, never split it
        if arguments:
            arguments = _as_json_text(arguments)
            slot.args.append(arguments)
            slot.open_braces += arguments.count("{") - arguments.count("}")
        ready = self._release(upto=len(self.slots) - 1, force=False)
        if (
            self._released == len(self.slots) - 1
            and slot is self.slots[-1]
            and slot.id
            and slot.name
            and slot.closed_object()
        ):
            ready += self._release(upto=len(self.slots), force=True)
        return ready

    def finish(self) -> list[ToolCall]:
        """The stream ended: every remaining call is as complete as it will get."""
        return self._release(upto=len(self.slots), force=True)

    def released(self) -> list[ToolCall]:
        return [s.call for s in self.slots[: self._released] if s.call is not None]

    def _release(self, upto: int, force: bool) -> list[ToolCall]:
        ready: list[ToolCall] = []
        while self._released < upto:
            slot = self.slots[self._released]
            if not force and not _is_complete_json(slot.arguments):
                break  # wait for the end rather than dispatch a truncated call
            slot.call = ToolCall(
                id=slot.id or self._new_id(), name=slot.name, arguments=slot.arguments or "{}"
            )
            ready.append(slot.call)
            self._released += 1
        return ready


def _is_complete_json(text: str) -> bool:
    if not text.strip():
        return True
    try:
        json.loads(text)
    except (ValueError, RecursionError):  # model text: any depth
        return False
    return True


def _transport_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(timeouts, other transport errors) of the HTTP library under the SDK, as its stream maps them."""
    try:  # openai 3.x runs on httpx2
        from openai._httpx2 import request_exceptions, timeout_exceptions

        return timeout_exceptions(), request_exceptions()
    except ImportError:  # older SDKs run on httpx
        import httpx

        return (httpx.TimeoutException,), (httpx.RequestError,)


_TIMEOUTS, _TRANSPORT = _transport_errors()
_DRAIN_S = 0.1


async def _sse_objects(response: AsyncAPIResponse[Any]) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of a chat-completions event stream, until ``[DONE]``.

    Like the SDK's stream: an object with an ``error`` raises :class:`openai.APIError`, and a
    timeout or broken connection while reading raises the SDK's timeout or connection error.
    """
    data: list[str] = []
    lines = response.iter_lines()
    try:
        async for line in lines:
            if line.startswith("data:"):
                data.append(line[6:] if line.startswith("data: ") else line[5:])
            elif not line and data:  # a blank line ends an event
                text, data = "\n".join(data), []
                if text.startswith("[DONE]"):
                    # read the rest of the body (briefly) so an HTTP/1.1 connection can be reused
                    with anyio.move_on_after(_DRAIN_S):
                        async for _ in lines:
                            pass
                    return
                obj = _event_object(text, response)
                if obj is not None:
                    yield obj
            # other lines (event names, ids, comments) carry nothing for chat completions
        obj = _event_object("\n".join(data), response) if data else None  # no blank line at the end
        if obj is not None:
            yield obj
    except openai.APIError:
        raise
    except _TIMEOUTS as err:
        raise openai.APITimeoutError(request=response.http_response.request) from err
    except _TRANSPORT as err:
        raise openai.APIConnectionError(request=response.http_response.request) from err


def _event_object(text: str, response: AsyncAPIResponse[Any]) -> dict[str, Any] | None:
    if text.startswith("[DONE]"):
        return None
    obj = json.loads(text)
    if not isinstance(obj, dict):
        return None
    if obj.get("error"):
        raise _stream_error(obj["error"], response)
    return obj


def _stream_error(error: Any, response: AsyncAPIResponse[Any]) -> openai.APIError:
    message = error.get("message") if isinstance(error, Mapping) else None
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"
    return openai.APIError(message=message, request=response.http_response.request, body=error)


class OpenAIChatModel(OwnedClient[AsyncOpenAI]):
    """A :class:`~asyncfc.models.base.Model` over the chat completions API.

    ``client`` lets callers share or configure an ``AsyncOpenAI``; otherwise one is made
    from ``base_url``/``api_key`` (a placeholder key is used for keyless local servers) and
    closed by :meth:`aclose`. ``stream=False`` forces non-streaming requests (no early
    dispatch); a request with ``stream=False`` is also honoured.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: AsyncOpenAI | None = None,
        stream: bool = True,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        parse_text_calls: bool = False,
        name: str | None = None,
        max_retries: int = 2,
        timeout: float | None = None,
    ) -> None:
        self.model = model
        self.name = name or model
        self.use_stream = stream
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body) if extra_body else None
        self.parse_text_calls = parse_text_calls
        kwargs = client_kwargs(base_url, api_key, ("OPENAI_API_KEY",), max_retries, timeout)
        self._adopt(client, lambda: AsyncOpenAI(**kwargs))
        self._ids = 0

    def request_params(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for ``request``."""
        stream = self.use_stream and request.stream
        params: dict[str, Any] = {
            "model": self.model,
            "messages": _wire_messages(request.messages),
            "stream": stream,
        }
        if request.tools:
            params["tools"] = to_openai_tools(request.tools)
            params["parallel_tool_calls"] = request.parallel_tool_calls
            if request.tool_choice == "none":
                params["tool_choice"] = "none"
        if stream:
            params["stream_options"] = {"include_usage": True}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.seed is not None:
            params["seed"] = self.seed
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        if self.extra_body:
            params["extra_body"] = self.extra_body
        return params

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Text deltas and each call as soon as it is complete, then the whole response."""
        params = self.request_params(request)
        used = {c.id for m in request.messages for c in m.tool_calls}
        start = time.perf_counter()
        events = self._streamed(params, used, start) if params["stream"] else self._whole(params, used, start)
        try:
            async for event in events:
                if isinstance(event, ResponseDone):
                    for extra in self._recover_text_calls(event.response, request, used):
                        yield ToolCallReady(extra)
                    event.response.duration_s = time.perf_counter() - start
                    event.response.usage.estimate_timing(event.response.ttft_s, event.response.duration_s)
                yield event
        finally:
            await events.aclose()  # a consumer that stops early must not leave the HTTP stream open

    def _new_id(self, used: set[str]) -> str:
        """A fresh ``call_<n>`` for servers that send calls without ids, unique in the session."""
        while True:
            candidate = f"call_{self._ids}"
            self._ids += 1
            if candidate not in used:
                used.add(candidate)
                return candidate

    async def _streamed(
        self, params: dict[str, Any], used: set[str], start: float
    ) -> AsyncGenerator[ModelEvent, None]:
        calls = _CallAssembler(lambda: self._new_id(used), used)
        text: list[str] = []
        reported: Any = None
        timings: object = None
        finish: str | None = None
        ttft: float | None = None
        try:
            # The SDK makes the request (auth, retries, HTTP errors); the stream's lines are
            # parsed here with json.loads: the SDK's model object per small chunk cost more
            # client CPU than the rest of a step.
            create = self.client.chat.completions.with_streaming_response.create
            async with create(**_sdk_kwargs(params)) as http:
                async for chunk in _sse_objects(http):
                    usage = chunk.get("usage")
                    if usage is not None:
                        reported = usage
                    # llama-server puts its timings on the last chunk (the usage chunk, if asked for)
                    timings = chunk.get("timings", timings)
                    choices = chunk.get("choices")
                    if not choices:
                        continue
                    choice = choices[0]
                    delta = choice.get("delta") or {}
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
                    content = delta.get("content")
                    if content:
                        if ttft is None:
                            ttft = time.perf_counter() - start
                        text.append(content)
                        yield TextDelta(content)
                    for tc in delta.get("tool_calls") or ():
                        if ttft is None:
                            ttft = time.perf_counter() - start
                        fn = tc.get("function") or {}
                        ready = calls.add_parts(
                            tc.get("index"), tc.get("id"), fn.get("name"), fn.get("arguments")
                        )
                        for call in ready:
                            yield ToolCallReady(call)
            for call in calls.finish():
                yield ToolCallReady(call)
        except openai.APIError as e:
            if not is_format_error(e):
                raise self._error(e) from e
            # calls already announced may be running: keep them; drop the unfinished rest
            usage = usage_from_openai(reported, timings)
            yield ResponseDone(format_error_response(e.message, calls.released(), usage, ttft))
            return
        tool_calls = calls.released()
        yield ResponseDone(
            ModelResponse(
                text="".join(text),
                tool_calls=tool_calls,
                usage=usage_from_openai(reported, timings),
                finish_reason=finish or ("tool_calls" if tool_calls else "stop"),
                ttft_s=ttft,
            )
        )

    async def _whole(
        self, params: dict[str, Any], used: set[str], start: float
    ) -> AsyncGenerator[ModelEvent, None]:
        try:
            completion = cast(
                ChatCompletion, await self.client.chat.completions.create(**_sdk_kwargs(params))
            )
        except openai.APIError as e:
            if not is_format_error(e):
                raise self._error(e) from e
            yield ResponseDone(format_error_response(e.message, [], Usage(), None))
            return
        if not completion.choices:
            raise ModelError(f"model {self.name!r}: the server answered without choices")
        choice = completion.choices[0]
        message = choice.message
        tool_calls: list[ToolCall] = []
        for tc in message.tool_calls or []:
            if tc.type != "function":
                continue  # custom (free-form) tools are not part of the neutral protocol
            tool_calls.append(
                ToolCall(
                    id=tc.id or self._new_id(used),
                    name=tc.function.name,
                    arguments=_as_json_text(tc.function.arguments) or "{}",
                )
            )
        if message.content:
            yield TextDelta(message.content)  # one delta, so printers need not special-case stream=False
        for call in tool_calls:
            yield ToolCallReady(call)
        usage = usage_from_openai(completion.usage, (completion.model_extra or {}).get("timings"))
        yield ResponseDone(
            ModelResponse(
                text=message.content or "",
                tool_calls=tool_calls,
                usage=usage,
                finish_reason=choice.finish_reason or ("tool_calls" if tool_calls else "stop"),
            )
        )

    def _recover_text_calls(
        self, response: ModelResponse, request: ModelRequest, used: set[str]
    ) -> list[ToolCall]:
        """With ``parse_text_calls``, turn calls written as JSON text into real calls."""
        if not self.parse_text_calls or response.tool_calls or not response.text or not request.tools:
            return []
        names: Collection[str] = [str(t.get("name", "")) for t in request.tools]
        found = _parse_text_calls(response.text, names)
        if not found:
            return []
        calls = [ToolCall(id=self._new_id(used), name=n, arguments=a) for n, a in found]
        response.tool_calls = calls
        response.text = ""
        response.finish_reason = "tool_calls"
        response.notes.append(TEXT_CALLS_NOTE)
        return calls

    def _error(self, error: openai.APIError) -> ModelError:
        where = str(self.client.base_url)
        if isinstance(error, openai.APIStatusError):
            return ModelError(f"model {self.name!r} at {where}: HTTP {error.status_code}: {error.message}")
        if isinstance(error, openai.APIConnectionError):
            timed_out = isinstance(error, openai.APITimeoutError)
            return connection_error(self.name, where, error.message, timed_out=timed_out)
        return ModelError(f"model {self.name!r} at {where}: {error.message}")
