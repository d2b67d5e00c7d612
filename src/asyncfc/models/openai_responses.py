"""Model adapter for the OpenAI Responses API (``POST /v1/responses``), through the ``openai`` SDK.

The Responses API is what the OpenAI Agents SDK uses by default; llama.cpp's
``llama-server`` serves it too. Requests are stateless here (no ``previous_response_id``,
``store=False``): every request carries the whole transcript as input items, so the
adapter works the same against api.openai.com, llama-server and
:class:`~asyncfc.testing.SimServer`.

Mapping of asyncfc's neutral transcript onto input items:

* system, user and assistant text: ``{"role": ..., "content": text}`` messages;
* each call of an assistant message: a ``function_call`` item (``call_id``, ``name``,
  ``arguments``);
* each tool message: a ``function_call_output`` item with the ``call_id`` it answers.

Tools are sent as ``{"type": "function", "name", "description", "parameters"}`` (and
``"strict": False``, since asyncfc's schemas accept future references). A streamed call is
announced (:class:`ToolCallReady`) at ``response.function_call_arguments.done`` (or at its
``response.output_item.done``, whichever comes first), so the agent can dispatch it while the
model is still writing the rest of the response.

Native async tools (``native_async_tools=True``): OpenAI's asynchronous tool calling
(developers.openai.com/api/docs/guides/async-tool-calling) lets a ``function`` tool be
declared with ``"async": true``; the model goes on after calling it and the application
sends the result later, as a ``function_call_output`` with the original ``call_id``. With
the option on, a tool spec carrying ``"async": True`` (the :class:`~asyncfc.Agent` marks
every tool but ``await_future``) is declared that way, and the agent leaves a pending call
without an output until its value is ready. Without it the key is dropped, so an endpoint
that does not know the field never sees it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI

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
from .openai_chat import _sse_objects, usage_from_openai
from .text_calls import format_error_response, is_format_error

__all__ = [
    "OpenAIResponsesModel",
    "to_responses_input",
    "to_responses_tools",
    "usage_from_responses",
]


def to_responses_input(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Neutral messages as Responses input items (messages, ``function_call``, ``function_call_output``)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"type": "function_call_output", "call_id": m.tool_call_id or "", "output": m.content})
            continue
        if m.content or not m.tool_calls:
            out.append(
                {"type": "message", "role": m.role, "content": m.content}
            )  # llama-server wants the type
        for c in m.tool_calls:
            out.append(
                {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments or "{}"}
            )
    return out


def to_responses_tools(
    tools: Sequence[Mapping[str, Any]], *, native_async: bool = False
) -> list[dict[str, Any]]:
    """Tool specs ``{"name", "description", "parameters"}`` as Responses function tools.

    A spec with ``"async": True`` is declared ``"async": true`` when ``native_async`` is on
    (the endpoint supports asynchronous tool calling); otherwise the key is left out.
    """
    out: list[dict[str, Any]] = []
    for spec in tools:
        tool: dict[str, Any] = {
            "type": "function",
            "name": spec["name"],
            "description": spec.get("description") or "",
            "parameters": spec.get("parameters") or {"type": "object", "properties": {}},
            "strict": False,
        }
        if native_async and spec.get("async") is True:
            tool["async"] = True
        out.append(tool)
    return out


def usage_from_responses(usage: Any, timings: object = None) -> Usage:
    """A step's :class:`Usage` from a Responses ``usage`` object (or its JSON) and llama ``timings``.

    ``input_tokens`` counts the whole prompt, ``input_tokens_details.cached_tokens`` the part
    served from the prompt cache and ``input_tokens_details.cache_write_tokens`` (when the
    server reports it) the part written to it.
    """
    data = _as_dict(usage)
    if data is None:
        return usage_from_openai(None, timings)
    details = _as_dict(data.get("input_tokens_details")) or {}
    out = usage_from_openai(
        {
            "prompt_tokens": data.get("input_tokens"),
            "completion_tokens": data.get("output_tokens"),
            "prompt_tokens_details": {"cached_tokens": details.get("cached_tokens")},
        },
        timings,
    )
    write = details.get("cache_write_tokens")
    if isinstance(write, int) and not isinstance(write, bool):
        out.cache_write_tokens = write
    return out


def _as_dict(value: Any) -> dict[str, Any] | None:
    """An SDK model or a JSON object as a plain dict (None for anything else)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        data = dump(by_alias=True)
        extra = getattr(value, "model_extra", None)
        if isinstance(extra, Mapping):
            data.update(extra)
        return data if isinstance(data, dict) else None
    return None


_STATUS = {"completed": "stop", "incomplete": "length", "failed": "error"}


@dataclass
class _Item:
    """One function call being streamed, by its output item id."""

    call_id: str = ""
    name: str = ""
    args: list[str] = field(default_factory=list)
    call: ToolCall | None = None


class OpenAIResponsesModel(OwnedClient[AsyncOpenAI]):
    """A :class:`~asyncfc.models.base.Model` over the OpenAI Responses API.

    ``client`` lets callers share or configure an ``AsyncOpenAI``; otherwise one is made
    from ``base_url``/``api_key`` (a placeholder key for keyless local servers) and closed
    by :meth:`aclose`. ``stream=False`` sends non-streamed requests (no early dispatch).
    ``native_async_tools=True`` is for endpoints with asynchronous tool calling (see the
    module docstring and docs/protocols/openai-responses.md); the :class:`~asyncfc.Agent`
    reads it. ``max_output_tokens`` bounds each response.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: AsyncOpenAI | None = None,
        stream: bool = True,
        native_async_tools: bool = False,
        temperature: float | None = None,
        seed: int | None = None,
        max_output_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        name: str | None = None,
        max_retries: int = 2,
        timeout: float | None = None,
    ) -> None:
        self.model = model
        self.name = name or model
        self.use_stream = stream
        self.native_async_tools = native_async_tools
        self.temperature = temperature
        self.seed = seed
        self.max_output_tokens = max_output_tokens
        self.extra_body = dict(extra_body) if extra_body else None
        kwargs = client_kwargs(base_url, api_key, ("OPENAI_API_KEY",), max_retries, timeout)
        self._adopt(client, lambda: AsyncOpenAI(**kwargs))
        self._ids = 0

    def request_params(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of ``responses.create`` for ``request``.

        The input items and tools are plain JSON built here; they travel in ``extra_body``,
        which the SDK sends unchanged (``create`` would walk the whole history on every request).
        """
        body: dict[str, Any] = {"input": to_responses_input(request.messages)}
        if request.tools:
            body["tools"] = to_responses_tools(request.tools, native_async=self.native_async_tools)
            body["parallel_tool_calls"] = request.parallel_tool_calls
            if request.tool_choice == "none":
                body["tool_choice"] = "none"
        if self.seed is not None:
            body["seed"] = self.seed  # not in the official API; llama-server honours it
        if self.extra_body:
            body.update(self.extra_body)
        params: dict[str, Any] = {
            "model": self.model,
            "stream": self.use_stream and request.stream,
            "store": False,
            "extra_body": body,
        }
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_output_tokens is not None:
            params["max_output_tokens"] = self.max_output_tokens
        return params

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Text deltas and each call as soon as its arguments are done, then the whole response."""
        params = self.request_params(request)
        used = {c.id for m in request.messages for c in m.tool_calls}
        start = time.perf_counter()
        events = self._streamed(params, used, start) if params["stream"] else self._whole(params, used)
        try:
            async for event in events:
                if isinstance(event, ResponseDone):
                    event.response.duration_s = time.perf_counter() - start
                    event.response.usage.estimate_timing(event.response.ttft_s, event.response.duration_s)
                yield event
        finally:
            await events.aclose()  # a consumer that stops early must not leave the HTTP stream open

    def _new_id(self, used: set[str]) -> str:
        while True:
            candidate = f"call_{self._ids}"
            self._ids += 1
            if candidate not in used:
                used.add(candidate)
                return candidate

    def _ready(self, item: _Item, arguments: str | None, used: set[str]) -> ToolCall | None:
        """The item's call, made once, when its arguments are known complete (None if already made)."""
        if item.call is not None:
            return None
        args = arguments if arguments is not None else "".join(item.args)
        item.call = ToolCall(item.call_id or self._new_id(used), item.name, args or "{}")
        used.add(item.call.id)
        return item.call

    async def _streamed(
        self, params: dict[str, Any], used: set[str], start: float
    ) -> AsyncGenerator[ModelEvent, None]:
        items: dict[str, _Item] = {}
        order: list[_Item] = []
        text: list[str] = []
        final: dict[str, Any] = {}
        ttft: float | None = None
        try:
            # The SDK makes the request (auth, retries, HTTP errors); the events are parsed
            # here with json.loads, as the chat adapter does: a typed SDK object per small
            # event cost more client CPU than the rest of a step.
            create = self.client.responses.with_streaming_response.create
            async with create(**params) as http:
                async for event in _sse_objects(http):
                    kind = event.get("type")
                    if kind == "response.output_text.delta":
                        delta = event.get("delta")
                        if delta and isinstance(delta, str):
                            if ttft is None:
                                ttft = time.perf_counter() - start
                            text.append(delta)
                            yield TextDelta(delta)
                    elif kind in ("response.output_item.added", "response.output_item.done"):
                        raw = event.get("item")
                        if not isinstance(raw, dict) or raw.get("type") != "function_call":
                            continue
                        if ttft is None:
                            ttft = time.perf_counter() - start
                        key = str(raw.get("id") or raw.get("call_id") or len(order))
                        item = items.get(key)
                        if item is None:
                            item = items[key] = _Item()
                            order.append(item)
                        item.call_id = item.call_id or str(raw.get("call_id") or "")
                        item.name = item.name or str(raw.get("name") or "")
                        if kind == "response.output_item.done":
                            call = self._ready(item, _text(raw.get("arguments")), used)
                            if call is not None:
                                yield ToolCallReady(call)
                    elif kind == "response.function_call_arguments.delta":
                        item = items.get(str(event.get("item_id", "")))
                        if item is not None:
                            item.args.append(_text(event.get("delta")) or "")
                    elif kind == "response.function_call_arguments.done":
                        item = items.get(str(event.get("item_id", "")))
                        if item is not None and item.name:
                            call = self._ready(item, _text(event.get("arguments")), used)
                            if call is not None:
                                yield ToolCallReady(call)
                    elif kind in ("response.completed", "response.incomplete", "response.failed"):
                        final = _as_dict(event.get("response")) or {}
                        if kind == "response.failed":
                            error = _as_dict(final.get("error")) or {}
                            raise openai.APIError(
                                message=str(error.get("message") or "the response failed"),
                                request=http.http_response.request,
                                body=error,
                            )
                    elif kind == "error":
                        raise openai.APIError(
                            message=str(event.get("message") or "an error occurred during streaming"),
                            request=http.http_response.request,
                            body=event,
                        )
        except openai.APIError as e:
            if not is_format_error(e):
                raise self._error(e) from e
            done = [i.call for i in order if i.call is not None]
            yield ResponseDone(format_error_response(e.message, done, Usage(), ttft))
            return
        for item in order:  # a server that never said a call was done: the stream's end says it
            if item.name:
                call = self._ready(item, None, used)
                if call is not None:
                    yield ToolCallReady(call)
        calls = [i.call for i in order if i.call is not None]
        yield ResponseDone(
            ModelResponse(
                text="".join(text),
                tool_calls=calls,
                usage=usage_from_responses(final.get("usage"), final.get("timings")),
                finish_reason=_finish(final.get("status"), calls),
                ttft_s=ttft,
            )
        )

    async def _whole(self, params: dict[str, Any], used: set[str]) -> AsyncGenerator[ModelEvent, None]:
        try:
            response = await self.client.responses.create(**params)
        except openai.APIError as e:
            if not is_format_error(e):
                raise self._error(e) from e
            yield ResponseDone(format_error_response(e.message, [], Usage(), None))
            return
        data = _as_dict(response) or {}
        if data.get("status") == "failed":
            error = _as_dict(data.get("error")) or {}
            raise ModelError(
                f"model {self.name!r} at {self.client.base_url}: {error.get('message') or 'the response failed'}"
            )
        texts: list[str] = []
        calls: list[ToolCall] = []
        for raw in data.get("output") or []:
            item = _as_dict(raw) or {}
            if item.get("type") == "message":
                for part in item.get("content") or []:
                    part = _as_dict(part) or {}
                    if part.get("type") == "output_text":
                        texts.append(str(part.get("text") or ""))
            elif item.get("type") == "function_call":
                call_id = str(item.get("call_id") or "") or self._new_id(used)
                calls.append(
                    ToolCall(call_id, str(item.get("name") or ""), _text(item.get("arguments")) or "{}")
                )
        text = "".join(texts)
        if text:
            yield TextDelta(text)
        for call in calls:
            yield ToolCallReady(call)
        yield ResponseDone(
            ModelResponse(
                text=text,
                tool_calls=calls,
                usage=usage_from_responses(data.get("usage"), data.get("timings")),
                finish_reason=_finish(data.get("status"), calls),
            )
        )

    def _error(self, error: openai.APIError) -> ModelError:
        where = str(self.client.base_url)
        if isinstance(error, openai.APIStatusError):
            return ModelError(f"model {self.name!r} at {where}: HTTP {error.status_code}: {error.message}")
        if isinstance(error, openai.APIConnectionError):
            timed_out = isinstance(error, openai.APITimeoutError)
            return connection_error(self.name, where, error.message, timed_out=timed_out)
        return ModelError(f"model {self.name!r} at {where}: {error.message}")


def _text(arguments: Any) -> str | None:
    """Call arguments as JSON text (some servers send an object); None when absent."""
    if arguments is None:
        return None
    return arguments if isinstance(arguments, str) else json.dumps(arguments, default=str)


def _finish(status: Any, calls: Sequence[ToolCall]) -> str:
    if calls:
        return "tool_calls"
    return _STATUS.get(str(status), "stop")
