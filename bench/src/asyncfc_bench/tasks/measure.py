"""What a real model's run cost, step by step, and the ideal asynchronous time it allows.

:class:`RecordingModel` wraps any model and keeps, for every request, when it started
and ended, when each call was complete in the stream, what it asked for (awaits) and
its usage (prompt tokens, cached prompt tokens, prefill and decode time when the
adapter reports them).

:func:`turn_ideal` is the completion time of a zero-overhead asynchronous runtime given
those *measured* steps and the *measured* durations of the calls (the definition of
:mod:`asyncfc_bench.ideal`, with gates): the model never waits for a call unless it must
see its value, each call starts when it is complete in the stream and the calls it
depends on have finished, and the user turn ends when its last step and every call are
done. A call depends on an earlier one when it references its future, when their
read/write sets conflict, or when the earlier value appears in its arguments (in sync
mode the model copies values instead of passing futures). A step must wait for (is
gated on) the calls it asked to await, a call of a tool the task decides on, and, for a
text answer, the calls whose values or failures it reports.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncfc.futures import REFERENCE
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.models.base import Model, ModelEvent, ModelRequest, ModelResponse, ResponseDone, ToolCallReady
from asyncfc.scheduler import Call
from asyncfc.tools import Tool, labels_conflict

__all__ = [
    "RecordingModel",
    "StepRecord",
    "atoms",
    "blind_writes",
    "call_duration",
    "copies",
    "critical_path",
    "turn_ideal",
]


@dataclass
class StepRecord:
    """One model request as the recorder saw it (seconds from perf_counter)."""

    start: float
    end: float = 0.0
    ready: list[float] = field(default_factory=list)
    """When each non-await call was complete in the stream, offset from ``start``."""
    awaited: list[int] = field(default_factory=list)
    """Future sequence numbers the step asked to await."""
    text: str = ""
    calls: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end - self.start)


class RecordingModel:
    """A transparent wrapper that records every step of the model it wraps."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.name = inner.name
        self.profile = getattr(inner, "profile", None)  # transparent: the agent sees the model's profile
        self.steps: list[StepRecord] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        rec = StepRecord(start=time.perf_counter())
        self.steps.append(rec)
        async for event in self.inner.stream(request):
            if isinstance(event, ToolCallReady) and event.call.name != AWAIT_TOOL:
                rec.ready.append(time.perf_counter() - rec.start)
            elif isinstance(event, ResponseDone):
                rec.end = time.perf_counter()
                _fill(rec, event.response)
            yield event
        if not rec.end:
            rec.end = time.perf_counter()


def _fill(rec: StepRecord, response: ModelResponse) -> None:
    usage = response.usage
    rec.text = response.text
    rec.calls = sum(1 for c in response.tool_calls if c.name != AWAIT_TOOL)
    rec.awaited = [
        int(m.group(1))
        for c in response.tool_calls
        if c.name == AWAIT_TOOL
        for m in REFERENCE.finditer(c.arguments)
    ]
    rec.input_tokens = int(getattr(usage, "input_tokens", 0) or 0)
    rec.cached_input_tokens = int(getattr(usage, "cached_input_tokens", 0) or 0)
    rec.output_tokens = int(getattr(usage, "output_tokens", 0) or 0)
    rec.prefill_s = float(getattr(usage, "prefill_s", 0.0) or 0.0)
    rec.decode_s = float(getattr(usage, "decode_s", 0.0) or 0.0)


# ---------------------------------------------------------------- value dependencies

_SPLIT = re.compile(r"[,;:\n()\[\]{}\"]+")


def atoms(value: Any) -> set[str]:
    """Distinctive pieces of a result that a later call or answer would copy.

    Strings and their comma/colon-separated parts of four characters or more; numbers
    that are not tiny integers (``3`` occurs everywhere, ``412.6`` does not).
    """
    out: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, bool) or v is None:
            return
        if isinstance(v, (int, float)):
            if isinstance(v, float) and not v.is_integer():
                out.add(repr(v))
            elif abs(v) >= 10:
                out.add(str(int(v)))
            return
        if isinstance(v, str):
            text = v.strip().lower()
            if len(text) >= 4:
                out.add(text)
            out.update(p.strip() for p in _SPLIT.split(text) if len(p.strip()) >= 4)
            return
        if isinstance(v, Mapping):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    walk(value)
    return out


def _numbers(text: str) -> set[str]:
    return {m.group() for m in re.finditer(r"\d+(?:\.\d+)?", text)}


def copies(value_atoms: set[str], text: str, known: str = "") -> bool:
    """Whether ``text`` contains one of the atoms (not already in ``known``, the caller's own input)."""
    low = text.lower()
    nums = _numbers(low)
    for atom in value_atoms:
        if atom in known:
            continue
        if re.fullmatch(r"-?\d+(?:\.\d+)?", atom):
            if atom in nums or atom.rstrip("0").rstrip(".") in nums:
                return True
        elif atom in low:
            return True
    return False


def _labels(tools: Mapping[str, Tool], call: Call) -> tuple[set[str], set[str]]:
    tool = tools.get(call.name)
    args = call.resolved_arguments if call.resolved_arguments is not None else call.arguments
    if tool is None or args is None:
        return set(), set()
    reads, writes = tool.labels(args, lambda v: False)
    return reads - writes, writes


def _conflict(a: tuple[set[str], set[str]], b: tuple[set[str], set[str]]) -> bool:
    (ra, wa), (rb, wb) = a, b
    return any(labels_conflict(x, y) for x in wa for y in rb | wb) or any(
        labels_conflict(x, y) for x in ra for y in wb
    )


def _shown(call: Call) -> Any:
    return call.error.message if call.error is not None else call.value


def _text_of_args(call: Call) -> str:
    return call.raw_arguments


# ---------------------------------------------------------------- blind writes


def _passed_on(call: Call, by_seq: Mapping[int, Call]) -> set[int]:
    """The calls whose futures ``call`` passed on, and what those depended on in turn."""
    out: set[int] = set()
    todo = list(call.deps)
    while todo:
        seq = todo.pop()
        if seq not in out and seq in by_seq:
            out.add(seq)
            todo.extend(by_seq[seq].deps)
    return out


def blind_writes(
    calls: Sequence[Call], tools: Mapping[str, Tool], flow: Iterable[tuple[str, str]] = ()
) -> list[str]:
    """State-changing calls that ran with a value the model had never seen.

    A call of a tool that writes is blind to an earlier call of its user turn when that
    call's result was not delivered to the model before the write was emitted (pending, or
    of the same step), the write did not pass its future on (nor one that depended on it),
    and the write depends on it: by the task's ground truth (``flow``: pairs ``(write tool,
    source tool)`` from the reference solution) or because the write's arguments carry a
    value of that result. Write-only calls (acknowledgements) and repeats are no sources.
    One line per blind write: ``fut_4 save_invoice <- fut_2 convert``.
    """
    truth = set(flow)
    by_seq = {c.seq: c for c in calls}
    out: list[str] = []
    for w in calls:
        tool = tools.get(w.name)
        if tool is None or not tool.writes or not w.ran:
            continue
        passed = _passed_on(w, by_seq)
        text = _text_of_args(w).lower()
        sources = []
        for c in calls:
            if c.seq >= w.seq or c.user_turn != w.user_turn or c.seq in passed or c.repeat_of is not None:
                continue
            source = tools.get(c.name)
            if source is not None and source.writes and not source.reads:
                continue
            if c.delivered_at is not None and c.delivered_at <= w.emitted_at:
                continue  # the model had it before it wrote the call
            if (w.name, c.name) in truth or copies(atoms(_shown(c)), text, _text_of_args(c).lower()):
                sources.append(f"{c.id} {c.name}")
        if sources:
            out.append(f"{w.id} {w.name} <- {', '.join(sources)}")
    return out


# ---------------------------------------------------------------- the ideal


def critical_path(
    steps: Sequence[tuple[float, Sequence[tuple[float | None, float, Iterable[int]]], Iterable[int]]],
) -> float:
    """Completion time of steps ``(decode_s, calls, gates)``, calls ``(emit_offset, duration, deps)``.

    Indices in ``deps`` and ``gates`` are positions of calls in program order. Without
    gates this is :func:`asyncfc_bench.ideal.ideal_time`.
    """
    t = 0.0
    ends: list[float] = []
    for decode_s, calls, gates in steps:
        t = max([t, *(ends[g] for g in gates if g < len(ends))])
        for offset, duration, deps in calls:
            emitted = t + (decode_s if offset is None else min(offset, decode_s))
            start = max([emitted, *(ends[d] for d in deps if d < len(ends))])
            ends.append(start + duration)
        t += decode_s
    return max([t, *ends])


def call_duration(call: Call) -> float:
    if call.ran and call.started_at is not None and call.finished_at is not None:
        return max(0.0, call.finished_at - call.started_at)
    return 0.0


def turn_ideal(
    steps: Sequence[StepRecord],
    calls: Sequence[Call],
    tools: Mapping[str, Tool],
    decides_on: Iterable[str] = (),
) -> float:
    """The ideal asynchronous time of one user turn from its measured steps and calls."""
    decide = set(decides_on)
    order = sorted((c for c in calls if c.name != AWAIT_TOOL), key=lambda c: c.seq)
    pos = {c.seq: i for i, c in enumerate(order)}
    labels = [_labels(tools, c) for c in order]
    value_atoms = [atoms(_shown(c)) for c in order]
    by_step: dict[int, list[Call]] = {}
    for c in order:
        by_step.setdefault(c.step, []).append(c)
    plan: list[tuple[float, list[tuple[float | None, float, list[int]]], list[int]]] = []
    decided: list[int] = []
    awaited: list[int] = []
    for number, rec in enumerate(steps, start=1):
        gates = sorted({*decided, *awaited})
        items: list[tuple[float | None, float, list[int]]] = []
        for k, c in enumerate(by_step.get(number, [])):
            i = pos[c.seq]
            known = _text_of_args(c).lower()
            deps = {pos[s] for s in (*c.deps, *c.waited_for) if s in pos and pos[s] < i}
            for e in range(i):
                echo = _text_of_args(order[e]).lower()
                if _conflict(labels[e], labels[i]) or copies(value_atoms[e], known, echo):
                    deps.add(e)
            offset = rec.ready[k] if k < len(rec.ready) else None
            items.append((offset, call_duration(c), sorted(deps)))
            if c.name in decide:
                decided.append(i)
        if not by_step.get(number) and rec.text:
            done = [e for e in range(len(order)) if order[e].step < number]
            gates = sorted(
                {
                    *gates,
                    *(e for e in done if order[e].error is not None),
                    *(e for e in done if copies(value_atoms[e], rec.text, _text_of_args(order[e]).lower())),
                }
            )
        awaited = [pos[s] for s in rec.awaited if s in pos]
        plan.append((rec.duration_s, items, gates))
    return critical_path(plan)
