"""A model that plays turns given in advance, with simulated decode time.

Used by tests and benchmarks. A turn is a final text, a list of :class:`ScriptedCall`, or a
function of the transcript returning either. ``Ref(n)`` inside a call's arguments means
"the result of the n-th call of this session" (counted from 1, like ``fut_n``): it becomes
the future ID when the model
saw a placeholder, or the value itself when it saw the value, so one script runs
unchanged in sync, parallel and async mode.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from ..errors import ModelError
from ..model_text import AWAIT_TOOL
from ..models.base import (
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

__all__ = [
    "Ref",
    "ScriptedCall",
    "ScriptedModel",
    "Turn",
    "TurnSpec",
]


@dataclass(frozen=True)
class Ref:
    """The result of the ``n``-th call of the session (from 1, like ``fut_n``; program order,
    ``await_future`` calls and a profile's worked example not counted), optionally a field
    path such as ``".city"``."""

    n: int
    path: str = ""


@dataclass(frozen=True)
class ScriptedCall:
    """A call the scripted model will emit (the runtime's record of a call is :class:`asyncfc.Call`)."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


TurnSpec = Union[str, Sequence[ScriptedCall]]
Turn = Union[TurnSpec, Callable[[Sequence[Message]], TurnSpec]]


def tokens_of(text: str) -> int:
    """A rough output-token count (4 characters per token), for simulated decode time."""
    return max(1, len(text) // 4)


EXAMPLE_CALL_PREFIX = "example_"
"""Calls whose id starts with this belong to a model profile's worked example (the embedded
profile's are ``example_1``, ...): a fixed prefix of the conversation, not calls of the session,
so :class:`Ref` does not count them."""


def call_results(transcript: Sequence[Message]) -> list[Any]:
    """What the model saw for each of its calls so far, in program order (await calls and a
    profile's worked example skipped)."""
    answers = {m.tool_call_id: m.content for m in transcript if m.role == "tool"}
    seen: list[Any] = []
    for m in transcript:
        for c in m.tool_calls:
            if c.name == AWAIT_TOOL or c.id.startswith(EXAMPLE_CALL_PREFIX):
                continue
            if c.id not in answers:  # no output yet (a native async tool): pending, named by its call id
                seen.append({"future": c.id, "status": "pending"})
                continue
            content = answers[c.id]
            try:
                seen.append(json.loads(content))
            except ValueError:
                seen.append(content)
    return seen


def shown(ref: Ref, seen: Sequence[Any]) -> Any:
    """What the model knows of the referenced result: the future id (with the path) while it
    is pending, else the value, followed along the path as far as it goes."""
    if not 1 <= ref.n <= len(seen):
        raise ModelError(
            f"the script refers to call {ref.n} (Ref({ref.n})), but only {len(seen)} were made "
            "before this turn: Ref(n) is the n-th call of the earlier turns, counted from 1"
        )
    value = seen[ref.n - 1]
    if isinstance(value, Mapping) and "future" in value:
        if value.get("status") == "pending":
            return f"{value['future']}{ref.path}"
        value = value.get("value")
    for part in [p for p in ref.path.replace("[", ".[").split(".") if p]:
        if part.startswith("[") and isinstance(value, list):
            value = value[int(part[1:-1])]
        elif isinstance(value, Mapping) and part in value:
            value = value[part]
        else:  # an error text, say: the model sees no such field
            break
    return value


def render_turn(turn: Turn, transcript: Sequence[Message], first_id: int = 0) -> tuple[str, list[ToolCall]]:
    """Play one scripted turn against the transcript: its text and its calls (IDs from ``first_id``)."""
    spec = turn(transcript) if callable(turn) else turn
    if isinstance(spec, str):
        return spec, []
    seen = call_results(transcript)
    calls = [
        ToolCall(id=f"call_{first_id + i}", name=c.name, arguments=json.dumps(_fill(dict(c.arguments), seen)))
        for i, c in enumerate(spec)
    ]
    return "", calls


def _fill(v: Any, seen: Sequence[Any]) -> Any:
    """``v`` with every :class:`Ref` resolved (a module function: a recursive closure is a cycle)."""
    if isinstance(v, Ref):
        return shown(v, seen)
    if isinstance(v, Mapping):
        return {k: _fill(x, seen) for k, x in v.items()}
    if isinstance(v, list):
        return [_fill(x, seen) for x in v]
    return v


class ScriptedModel:
    """Plays ``turns`` in order; once they run out it repeats the last final text.

    Decode time is simulated: ``turn_s`` before the first token of every response, then
    ``call_s`` per emitted call and ``token_s`` per output token (4 characters a token).
    Calls are announced one by one as they are "decoded", as a streaming model would.
    """

    def __init__(
        self,
        turns: Sequence[Turn],
        *,
        turn_s: float = 0.0,
        call_s: float = 0.0,
        text_s: float = 0.0,
        token_s: float = 0.0,
        name: str = "scripted",
    ) -> None:
        self.turns = list(turns)
        self.turn_s = turn_s
        self.call_s = call_s
        self.text_s = text_s
        self.token_s = token_s
        self.name = name
        self.requests: list[ModelRequest] = []
        self._next = 0
        self._ids = 0

    def next_turn(self, transcript: Sequence[Message]) -> tuple[str, list[ToolCall]]:
        """The next response of the script (advances it)."""
        if self._next < len(self.turns):
            turn = self.turns[self._next]
            self._next += 1
        else:
            finals = [t for t in self.turns if isinstance(t, str)]
            turn = finals[-1] if finals else "done"
        text, calls = render_turn(turn, transcript, self._ids)
        self._ids += len(calls)
        return text, calls

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.requests.append(request)
        start = time.perf_counter()
        text, calls = self.next_turn(request.messages)
        await _sleep(self.turn_s)
        ttft = time.perf_counter() - start
        out_tokens = 0
        for call in calls:
            n = tokens_of(call.name + call.arguments)
            out_tokens += n
            await _sleep(self.call_s + n * self.token_s)
            yield ToolCallReady(call)
        if text:
            n = tokens_of(text)
            out_tokens += n
            await _sleep(self.text_s + n * self.token_s)
            yield TextDelta(text)
        yield ResponseDone(
            ModelResponse(
                text=text,
                tool_calls=calls,
                usage=Usage(sum(tokens_of(m.content) for m in request.messages), out_tokens),
                finish_reason="tool_calls" if calls else "stop",
                ttft_s=ttft,
                duration_s=time.perf_counter() - start,
            )
        )


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)
    else:
        await asyncio.sleep(0)
