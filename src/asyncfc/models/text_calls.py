"""Model-output quirks: tool calls written as text, and servers rejecting malformed output.

Small local models (and servers without a matching chat template) often put a call in the
message content: a bare ``{"name": ..., "arguments": {...}}`` object, a JSON list of them, or
a ```json fenced block. This module finds such objects with a JSON decoder only (model
output is untrusted: never evaluated) and keeps just those naming a known tool, so prose
that merely contains JSON is not mistaken for a call.

llama.cpp's server fails a request (HTTP 500, or an error event mid-stream) when it cannot
parse the model's tool-call syntax; :func:`is_format_error` recognises that case, which is a
bad model step rather than a broken endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import Any

from .base import ModelResponse, ToolCall, Usage

__all__ = ["format_error_response", "is_format_error", "parse_text_calls"]

_DECODER = json.JSONDecoder()
_FORMAT_ERROR_MARKERS = ("does not match the expected", "failed to parse tool call")
_MAX_CHARS = 200_000
"""Longer content is not scanned: real calls are short, and scanning is quadratic at worst."""


def parse_text_calls(content: str, tool_names: Collection[str]) -> list[tuple[str, str]]:
    """The calls written as JSON in ``content``, as ``(name, arguments_json)`` in text order.

    Accepts objects ``{"name": <known tool>, "arguments": {...}}`` (``"parameters"`` is read
    as an alias, and arguments given as a JSON string are decoded), alone, in a JSON list,
    bare or inside fenced code blocks, several per message. Everything else is ignored.
    """
    if not content or len(content) > _MAX_CHARS:
        return []
    known = set(tool_names)
    calls: list[tuple[str, str]] = []
    for value in _json_values(content):
        calls.extend(_calls_in(value, known))
    return calls


def _json_values(text: str) -> Iterator[Any]:
    """Every top-level JSON object or array embedded in ``text``, left to right."""
    i = 0
    n = len(text)
    while i < n:
        j = _next_start(text, i)
        if j < 0:
            return
        try:
            value, end = _DECODER.raw_decode(text, j)
        except (ValueError, RecursionError):  # model text: any depth
            i = j + 1
            continue
        yield value
        i = end


def _next_start(text: str, i: int) -> int:
    brace = text.find("{", i)
    bracket = text.find("[", i)
    if brace < 0:
        return bracket
    if bracket < 0:
        return brace
    return min(brace, bracket)


def _calls_in(value: Any, known: set[str]) -> list[tuple[str, str]]:
    if isinstance(value, list):
        out: list[tuple[str, str]] = []
        for item in value:
            call = _as_call(item, known)
            if call is not None:
                out.append(call)
        return out
    call = _as_call(value, known)
    return [call] if call is not None else []


def _as_call(value: Any, known: set[str]) -> tuple[str, str] | None:
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    if not isinstance(name, str) or name not in known:
        return None
    args = value.get("arguments", value.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except (ValueError, RecursionError):  # model text: any depth
            return None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return None
    return name, json.dumps(args)


def is_format_error(error: BaseException) -> bool:
    """Whether an SDK error is the server failing to parse the model's output (llama.cpp).

    Works for both SDKs: a 500 response, or an error event inside a 200 stream, whose
    message says the output "does not match the expected <format> format".
    """
    if getattr(error, "status_code", None) not in (None, 200, 500):
        return False
    text = f"{getattr(error, 'message', '')} {getattr(error, 'body', '')} {error}".lower()
    return any(marker in text for marker in _FORMAT_ERROR_MARKERS)


def format_error_response(
    message: str, calls: list[ToolCall], usage: Usage, ttft_s: float | None = None
) -> ModelResponse:
    """The step a format error turns into: no text, finish ``"error"``, and a note saying why.

    ``calls`` are those already announced to the agent (they may be running already);
    anything the model was still writing is dropped, since the server found it malformed.
    """
    return ModelResponse(
        text="",
        tool_calls=calls,
        usage=usage,
        finish_reason="error",
        ttft_s=ttft_s,
        notes=[f"server could not parse the model output, step treated as empty: {message}"],
    )
