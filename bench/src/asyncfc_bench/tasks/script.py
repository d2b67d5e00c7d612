"""Reference solutions as scripts for :class:`~asyncfc.models.ScriptedModel`.

Each task carries one correct solution, written the way a careful agent would do the
task: independent calls together, a chained value passed on (a future in async mode, the
value otherwise), and a value the decision depends on *seen* before acting (``await`` in
async mode when it is still pending). Tests play them in every mode to show that each
task's judge accepts a correct run; they are not shown to the model under test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asyncfc.model_text import AWAIT_TOOL
from asyncfc.models.base import (
    Message,
    ModelEvent,
    ModelRequest,
    ModelResponse,
    ResponseDone,
    TextDelta,
    ToolCallReady,
    Usage,
)
from asyncfc.testing.scripted import (
    Ref,
    ScriptedCall,
    Turn,
    TurnSpec,
    call_results,
    render_turn,
    shown,
    tokens_of,
)

__all__ = [
    "SolutionModel",
    "Text",
    "seeing",
    "step",
]


@dataclass(frozen=True)
class Text:
    """A string argument built from earlier results: ``Text("{0} and {1}", Ref(1), Ref(2))``."""

    template: str
    refs: tuple[Ref, ...]

    def __init__(self, template: str, *refs: Ref) -> None:
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "refs", refs)


def _fill(value: Any, transcript: Sequence[Message]) -> Any:
    if isinstance(value, Ref):
        return shown(value, call_results(transcript))
    if isinstance(value, Text):
        parts = [shown(r, call_results(transcript)) for r in value.refs]
        return value.template.format(*(p if isinstance(p, str) else json.dumps(p) for p in parts))
    if isinstance(value, Mapping):
        return {k: _fill(v, transcript) for k, v in value.items()}
    return value


def step(*calls: ScriptedCall) -> Turn:
    """One model response with these calls; ``Ref`` and ``Text`` arguments filled from the transcript."""

    def turn(transcript: Sequence[Message]) -> TurnSpec:
        return [ScriptedCall(c.name, _fill(dict(c.arguments), transcript)) for c in calls]

    return turn


def _pending(transcript: Sequence[Message], indices: Sequence[int]) -> list[str]:
    seen = call_results(transcript)
    out = []
    for i in indices:
        value = seen[i] if i < len(seen) else None
        if isinstance(value, Mapping) and value.get("status") == "pending":
            out.append(str(value["future"]))
    return out


def seeing(indices: Sequence[int], act: Turn, final: str) -> list[Turn]:
    """Look at the results of calls ``indices`` (awaiting them if pending), then ``act``, then ``final``.

    Three turns: in sync mode the first acts and the second answers; in async mode with a
    pending value the first awaits, the second acts and the third answers.
    """
    awaited = [False]

    def first(transcript: Sequence[Message]) -> TurnSpec:
        pending = _pending(transcript, indices)
        if pending:
            awaited[0] = True
            return [ScriptedCall(AWAIT_TOOL, {"ids": pending})]
        return act(transcript) if callable(act) else act

    def second(transcript: Sequence[Message]) -> TurnSpec:
        if awaited[0]:
            return act(transcript) if callable(act) else act
        return final

    return [first, second, final]


class SolutionModel:
    """Plays one script per user turn (the turn is the number of user messages so far).

    Unlike one :class:`~asyncfc.models.ScriptedModel` over the whole session, a turn's
    unused trailing responses (a sync run needs one step fewer than an async one that
    awaits) never leak into the next user turn.
    """

    def __init__(self, turns: Sequence[Sequence[Turn]], name: str = "reference") -> None:
        self.turns = [list(t) for t in turns]
        self.name = name
        self._next = [0] * len(self.turns)
        self._ids = 0

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        messages = request.messages
        turn = max(0, min(len(self.turns) - 1, sum(1 for m in messages if m.role == "user") - 1))
        script = self.turns[turn]
        if self._next[turn] < len(script):
            spec = script[self._next[turn]]
            self._next[turn] += 1
        else:
            spec = next((t for t in reversed(script) if isinstance(t, str)), "done")
        text, calls = render_turn(spec, messages, self._ids)
        self._ids += len(calls)
        for call in calls:
            yield ToolCallReady(call)
        if text:
            yield TextDelta(text)
        yield ResponseDone(
            ModelResponse(
                text=text,
                tool_calls=calls,
                usage=Usage(sum(tokens_of(m.content) for m in messages), tokens_of(text) if text else 1),
                finish_reason="tool_calls" if calls else "stop",
                ttft_s=0.0,
            )
        )
        await asyncio.sleep(0)
