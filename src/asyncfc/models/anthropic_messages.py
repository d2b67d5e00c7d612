"""Model adapter for the Anthropic messages API, through the official ``anthropic`` SDK.

The neutral (OpenAI-like) transcript is mapped onto Anthropic's shape: system messages go
to ``system``, assistant calls become ``tool_use`` blocks and tool messages become
``tool_result`` blocks of one user message, since the API wants strictly alternating roles.
Streaming uses the raw server-sent events: a ``tool_use`` block's ``content_block_stop``
is the moment its arguments are complete, so that is when :class:`ToolCallReady` is sent.
Like the OpenAI adapter, it turns llama.cpp's "output does not match the expected format"
error (llama-server also serves ``/v1/messages``) into an empty step instead of raising.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import anthropic
from anthropic import AsyncAnthropic, AsyncStream
from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageStreamEvent

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

__all__ = ["AnthropicMessagesModel", "to_anthropic_messages", "to_anthropic_tools"]

_STOP_REASONS = {
    "tool_use": "tool_calls",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
}


def _input_of(arguments: str) -> dict[str, Any]:
    """A call's JSON arguments as the object ``tool_use.input`` requires."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except (ValueError, RecursionError):  # model text: any depth
        return {"_raw_arguments": arguments}  # keep what the model wrote; the API needs an object
    return value if isinstance(value, dict) else {"_arguments": value}


def to_anthropic_messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """Neutral messages as ``(system, messages)``; same-role neighbours are merged into one turn."""
    system: list[str] = []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        if m.role == "system":
            if m.content:
                system.append(m.content)
        elif m.role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}])
        elif m.role == "assistant":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": _input_of(c.arguments)}
                for c in m.tool_calls
            ]
            add("assistant", blocks)
        elif m.content:
            add("user", [{"type": "text", "text": m.content}])
    return "\n\n".join(system), out


def to_anthropic_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-style function specs as Anthropic tools (``input_schema`` instead of ``parameters``)."""
    out: list[dict[str, Any]] = []
    for spec in tools:
        tool: dict[str, Any] = {
            "name": spec["name"],
            "input_schema": spec.get("parameters") or {"type": "object", "properties": {}},
        }
        if spec.get("description"):
            tool["description"] = spec["description"]
        out.append(tool)
    return out


class AnthropicMessagesModel(OwnedClient[AsyncAnthropic]):
    """A :class:`~asyncfc.models.base.Model` over Anthropic's messages API.

    ``client`` lets callers share or configure an ``AsyncAnthropic``; otherwise one is made
    from ``base_url``/``api_key`` (a placeholder key for keyless local servers) and closed
    by :meth:`aclose`.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: AsyncAnthropic | None = None,
        stream: bool = True,
        max_tokens: int = 1024,
        temperature: float | None = None,
        name: str | None = None,
        max_retries: int = 2,
        timeout: float | None = None,
    ) -> None:
        self.model = model
        self.name = name or model
        self.use_stream = stream
        self.max_tokens = max_tokens
        self.temperature = temperature
        keys = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
        kwargs = client_kwargs(base_url, api_key, keys, max_retries, timeout)
        self._adopt(client, lambda: AsyncAnthropic(**kwargs))

    def request_params(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` for ``request``."""
        system, messages = to_anthropic_messages(request.messages)
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": messages,
            "stream": self.use_stream and request.stream,
        }
        if system:
            params["system"] = system
        if request.tools:
            params["tools"] = to_anthropic_tools(request.tools)
            if request.tool_choice == "none":
                params["tool_choice"] = {"type": "none"}
            elif not request.parallel_tool_calls:
                params["tool_choice"] = {"type": "auto", "disable_parallel_tool_use": True}
        if self.temperature is not None:
            # recent SDKs dropped ``temperature`` from ``create``; servers still read it from the body
            params["extra_body"] = {"temperature": self.temperature}
        return params

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Text deltas and each ``tool_use`` block as soon as it closes, then the whole response."""
        params = self.request_params(request)
        start = time.perf_counter()
        events = self._streamed(params, start) if params["stream"] else self._whole(params)
        try:
            async for event in events:
                if isinstance(event, ResponseDone):
                    event.response.duration_s = time.perf_counter() - start
                    event.response.usage.estimate_timing(event.response.ttft_s, event.response.duration_s)
                yield event
        except anthropic.APIError as e:
            raise self._error(e) from e
        finally:
            await events.aclose()  # a consumer that stops early must not leave the HTTP stream open

    async def _streamed(self, params: dict[str, Any], start: float) -> AsyncGenerator[ModelEvent, None]:
        text: list[str] = []
        calls: list[ToolCall] = []
        open_calls: dict[int, tuple[str, str, list[str], str]] = {}  # index -> id, name, json pieces, input
        counts = _Counts()
        stop: str | None = None
        ttft: float | None = None
        try:
            stream = cast("AsyncStream[RawMessageStreamEvent]", await self.client.messages.create(**params))
        except anthropic.APIError as e:
            if not is_format_error(e):
                raise
            yield ResponseDone(format_error_response(e.message, [], Usage()))
            return
        try:
            async for ev in stream:
                if ev.type == "message_start":
                    counts.update(ev.message.usage)
                elif ev.type == "content_block_start":
                    block = ev.content_block
                    if block.type == "tool_use":
                        if ttft is None:
                            ttft = time.perf_counter() - start
                        initial = json.dumps(block.input) if block.input else ""
                        open_calls[ev.index] = (block.id, block.name, [], initial)
                    elif block.type == "text" and block.text:
                        ttft = ttft if ttft is not None else time.perf_counter() - start
                        text.append(block.text)
                        yield TextDelta(block.text)
                elif ev.type == "content_block_delta":
                    delta = ev.delta
                    if delta.type == "text_delta" and delta.text:
                        ttft = ttft if ttft is not None else time.perf_counter() - start
                        text.append(delta.text)
                        yield TextDelta(delta.text)
                    elif delta.type == "input_json_delta" and ev.index in open_calls:
                        open_calls[ev.index][2].append(delta.partial_json)
                elif ev.type == "content_block_stop":
                    if ev.index in open_calls:
                        call_id, name, pieces, initial = open_calls.pop(ev.index)
                        call = ToolCall(id=call_id, name=name, arguments="".join(pieces) or initial or "{}")
                        calls.append(call)
                        yield ToolCallReady(call)
                elif ev.type == "message_delta":
                    stop = ev.delta.stop_reason or stop
                    counts.update(ev.usage)
        except anthropic.APIError as e:
            if not is_format_error(e):
                raise
            # closed blocks were announced and may be running: keep them; drop open ones
            yield ResponseDone(format_error_response(e.message, calls, counts.usage(), ttft))
            return
        finally:
            await stream.close()
        for (
            call_id,
            name,
            pieces,
            initial,
        ) in open_calls.values():  # blocks never closed: as complete as they get
            call = ToolCall(id=call_id, name=name, arguments="".join(pieces) or initial or "{}")
            calls.append(call)
            yield ToolCallReady(call)
        yield ResponseDone(
            ModelResponse(
                text="".join(text),
                tool_calls=calls,
                usage=counts.usage(),
                finish_reason=_finish(stop, calls),
                ttft_s=ttft,
            )
        )

    async def _whole(self, params: dict[str, Any]) -> AsyncGenerator[ModelEvent, None]:
        try:
            message = cast(AnthropicMessage, await self.client.messages.create(**params))
        except anthropic.APIError as e:
            if not is_format_error(e):
                raise
            yield ResponseDone(format_error_response(e.message, [], Usage()))
            return
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in message.content:
            if block.type == "text":
                text.append(block.text)
            elif block.type == "tool_use":
                calls.append(ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input)))
        if text:
            yield TextDelta("".join(text))  # one delta, so printers need not special-case stream=False
        for call in calls:
            yield ToolCallReady(call)
        counts = _Counts()
        counts.update(message.usage)
        yield ResponseDone(
            ModelResponse(
                text="".join(text),
                tool_calls=calls,
                usage=counts.usage(),
                finish_reason=_finish(message.stop_reason, calls),
            )
        )

    def _error(self, error: anthropic.APIError) -> ModelError:
        where = str(self.client.base_url)
        if isinstance(error, anthropic.APIStatusError):
            return ModelError(f"model {self.name!r} at {where}: HTTP {error.status_code}: {error.message}")
        if isinstance(error, anthropic.APIConnectionError):
            timed_out = isinstance(error, anthropic.APITimeoutError)
            return connection_error(self.name, where, error.message, timed_out=timed_out)
        return ModelError(f"model {self.name!r} at {where}: {error.message}")


class _AnthropicUsage(Protocol):
    """The usage fields of ``message_start``, ``message_delta`` and a whole message alike."""

    @property
    def input_tokens(self) -> int | None: ...
    @property
    def output_tokens(self) -> int | None: ...
    @property
    def cache_read_input_tokens(self) -> int | None: ...
    @property
    def cache_creation_input_tokens(self) -> int | None: ...


@dataclass
class _Counts:
    """Anthropic's usage as it arrives: ``message_start`` first, then cumulative ``message_delta``s."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def update(self, u: _AnthropicUsage) -> None:
        # a delta repeats the input counts or leaves them out (null, or 0 from some servers)
        self.input = u.input_tokens or self.input
        self.cache_read = u.cache_read_input_tokens or self.cache_read
        self.cache_write = u.cache_creation_input_tokens or self.cache_write
        if u.output_tokens is not None:
            self.output = u.output_tokens

    def usage(self) -> Usage:
        """Neutral usage: Anthropic's ``input_tokens`` leaves out cache reads and writes, ours counts them."""
        return Usage(
            input_tokens=self.input + self.cache_read + self.cache_write,
            output_tokens=self.output,
            cached_input_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
        )


def _finish(stop_reason: str | None, calls: Sequence[ToolCall]) -> str:
    if stop_reason is None:
        return "tool_calls" if calls else "stop"
    return _STOP_REASONS.get(stop_reason, stop_reason)
