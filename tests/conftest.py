"""Shared helpers for the runtime tests (no fixtures with side effects)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import pytest

from asyncfc import local
from asyncfc.model_text import EARLIER
from asyncfc.models.base import (
    Message,
    ModelEvent,
    ModelRequest,
    ModelResponse,
    ResponseDone,
    TextDelta,
    ToolCall,
    ToolCallReady,
)
from asyncfc.scheduler import Call

RawTurn = str | list[ToolCall]


class RawModel:
    """Plays raw responses (text, or tool calls with raw argument strings and ids as given).

    ``after_call`` (if set) is awaited after each announced call, before the next event:
    tests use it to hold the stream open until something has happened.
    """

    name = "raw"

    def __init__(
        self,
        turns: Sequence[RawTurn],
        *,
        after_call: Callable[[ToolCall], Any] | None = None,
        fail_after_calls: bool = False,
    ) -> None:
        self.turns = list(turns)
        self.after_call = after_call
        self.fail_after_calls = fail_after_calls
        self.requests: list[list[str]] = []
        self._next = 0

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.requests.append([m.content for m in request.messages])
        turn: RawTurn = self.turns[self._next] if self._next < len(self.turns) else "done"
        self._next += 1
        await asyncio.sleep(0)
        if isinstance(turn, str):
            yield TextDelta(turn)
            yield ResponseDone(ModelResponse(text=turn))
            return
        calls = [ToolCall(c.id, c.name, c.arguments) for c in turn]
        for c in calls:
            yield ToolCallReady(c)
            if self.after_call is not None:
                await self.after_call(c)
        if self.fail_after_calls:
            raise RuntimeError("connection reset by peer")
        yield ResponseDone(ModelResponse(tool_calls=calls, finish_reason="tool_calls"))


def tool_message(messages: Sequence[Message], tool_call_id: str) -> Message:
    """The tool message answering the given call id (exactly one must exist)."""
    found = [m for m in messages if m.role == "tool" and m.tool_call_id == tool_call_id]
    assert len(found) == 1, f"{len(found)} tool messages answer {tool_call_id}"
    return found[0]


def _items(message: Message) -> list[Any]:
    """The resolutions a tool message shows: itself, a list of them, and ``resolved_earlier``."""
    try:
        content = json.loads(message.content)
    except ValueError:
        return []
    items = content if isinstance(content, list) else [content]
    earlier = [e for it in items if isinstance(it, dict) for e in it.get(EARLIER, [])]
    return [it for it in [*items, *earlier] if isinstance(it, dict)]


def content_of(messages: Sequence[Message], call: Call) -> Any:
    """What the model read for ``call``: its resolution wherever it was delivered (its own
    tool message, a later one's ``resolved_earlier``, an await answer), else its own tool
    message (the placeholder, or text if not JSON)."""
    for m in messages:
        if m.role == "tool":
            for it in _items(m):
                if it.get("future") == call.id and it.get("status") in ("resolved", "failed"):
                    return {k: v for k, v in it.items() if k != EARLIER}
    text = tool_message(messages, call.tool_call_id).content
    try:
        return json.loads(text)
    except ValueError:
        return text


def error_of(messages: Sequence[Message], call: Call) -> dict[str, Any]:
    """The ``{"type", "message"}`` error the model reads for ``call`` (immediate or rewritten)."""
    content = content_of(messages, call)
    assert isinstance(content, dict) and "error" in content, content
    err = content["error"]
    assert isinstance(err, dict)
    return err


def assert_protocol_valid(messages: Sequence[Message]) -> None:
    """Every assistant tool call is answered by exactly one tool message, right after it."""
    i = 0
    while i < len(messages):
        m = messages[i]
        assert m.role != "tool", f"orphan tool message at {i}: {m}"
        i += 1
        if m.role == "assistant" and m.tool_calls:
            ids = [c.id for c in m.tool_calls]
            assert len(set(ids)) == len(ids), f"duplicate call ids {ids}"
            answers = messages[i : i + len(ids)]
            assert [a.role for a in answers] == ["tool"] * len(ids), answers
            assert sorted(a.tool_call_id or "" for a in answers) == sorted(ids)
            i += len(ids)


def deliveries_in_transcript(messages: Sequence[Message], fid: str) -> int:
    """How many tool messages show a resolution (value or error) of future ``fid``."""
    count = 0
    for m in messages:
        if m.role != "tool":
            continue
        count += sum(
            1 for it in _items(m) if it.get("future") == fid and it.get("status") in ("resolved", "failed")
        )
    return count


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def llm_server() -> Iterator[local.LocalServer]:
    """The embedded 1.5B's server for the whole test session, found or started once (so its
    prompt cache carries over from module to module); one started here is stopped when the
    session ends, so an llm test run leaves nothing running that it started."""
    was_running = local.running("1.5b")
    try:
        yield local.ensure_server("1.5b")
    finally:
        if was_running is None:
            local.stop("1.5b")
