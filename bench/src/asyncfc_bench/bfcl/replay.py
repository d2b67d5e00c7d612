"""A model that plays a BFCL entry's ground truth the way a model would, in every mode.

The benchmark must compare runtimes, not models, so the "model" is the ground truth itself.
To be fair to the synchronous baseline it must not know more than a model could: a value
that an earlier call of the same user turn returned can only be used once the model has
seen it, or by reference to its future. So a plan is made up front:

* every ground-truth call's result is precomputed by a *shadow replay* on separate fresh
  backend instances (the runtime under test never sees these);
* an argument equal to a value an earlier call returned (the whole result or a field of a
  JSON result, matched by value) is a *use* of that call. Values the model knows anyway
  are not: those of an earlier user turn (delivered before the turn ended), those in the
  user's text, and trivial ones (shorter than 2 characters, booleans, 0 and 1);
* a use is a ``ref`` when the whole argument is that value at an addressable path: in
  async mode, while the producer is pending, the model writes ``fut_N`` or
  ``fut_N.field``. Anything else (the value embedded in a longer string, an item of a
  list, a rounded number) is an ``await`` use: the model must read the value, so it calls
  ``await_future`` first and emits the call in a later response.

Calls are emitted one per response (``sequential``) or in *steps* (``parallel`` function
calling): a step is a maximal run of consecutive calls of the user turn that neither use
each other's results nor conflict in their read/write labels. After the turn's calls the
model answers with a short text, and answers it again if the runtime asks once more.

The model is stateless: it works out where it is from the transcript it receives (user
turns so far, its own calls in this turn, which results are still placeholders), so one
instance serves the sync, parallel and async runs alike.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from asyncfc.futures import FUTURE_PREFIX
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.models.base import (
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
from asyncfc.testing.scripted import tokens_of
from asyncfc.tools import ArgumentsError, Tool, labels_conflict
from asyncfc_bench.bfcl.annotations import ANNOTATIONS, Access
from asyncfc_bench.bfcl.backends import instances_for, make_tools, signature_param_order
from asyncfc_bench.bfcl.calls import parse_call
from asyncfc_bench.bfcl.data import Entry

FINAL_TEXT = "Done: the requested actions are complete."
"""The short answer after a user turn's calls (about 10 tokens)."""

FC = Literal["sequential", "parallel"]
UseKind = Literal["ref", "await"]

_PATH = re.compile(r"(?:\.[A-Za-z_][\w-]*)(?:\.[A-Za-z_][\w-]*|\[\d+\])*")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w]|\.\d)")
_MAX_ROUND_DIGITS = 4


@dataclass(frozen=True)
class Use:
    """Argument ``arg`` takes (part of) the result of earlier call ``producer`` at ``path``."""

    arg: str
    producer: int
    path: str
    kind: UseKind


@dataclass(frozen=True)
class PlannedCall:
    """One ground-truth call: literal arguments, its shadow-replay result, what it uses."""

    index: int
    """Program order in the entry (0-based, across user turns)."""
    turn: int
    name: str
    arguments: dict[str, Any]
    result: str
    uses: tuple[Use, ...] = ()
    valid: bool = True
    """The arguments pass the tool's schema (the runtime refuses the call at once otherwise)."""

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments)

    @property
    def tokens(self) -> int:
        """Output tokens of the call as a model writes it with literal arguments."""
        return tokens_of(self.name + self.arguments_json)


@dataclass(frozen=True)
class Plan:
    """What the replay model will emit for one entry: calls and their grouping into steps."""

    entry_id: str
    fc: FC
    calls: tuple[PlannedCall, ...]
    steps: tuple[tuple[tuple[int, ...], ...], ...]
    """Per user turn, the steps (model responses) as tuples of call indices."""
    final_text: str = FINAL_TEXT

    def turn_calls(self, turn: int) -> list[int]:
        return [i for step in self.steps[turn] for i in step]


# --------------------------------------------------------------------------- values


def _trivial(value: Any) -> bool:
    """Values any model could write without reading a result (too short or too common)."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return (
            value in (0, 1) or len(str(value)) < 2 or (isinstance(value, float) and not math.isfinite(value))
        )
    if isinstance(value, str):
        return len(value.strip()) < 2
    if isinstance(value, (list, dict)):
        return not value
    return True


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every sub-value of a JSON value with its path (``.key``, ``[i]``), the value itself first."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")


def referable(path: str) -> bool:
    """Can a reference address this path (``fut_N.a.b[0]``)? Keys like ``MA(5)`` cannot be written.

    The path must start with a key: results are JSON text, which the runtime parses when a
    reference asks for a field.
    """
    return not path or _PATH.fullmatch(path) is not None


def parse_result(text: str) -> Any:
    """A backend result as data: JSON when it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class KnownText:
    """What the user has written so far: values found here need no result."""

    def __init__(self, text: str) -> None:
        self.lower = text.lower()
        self.numbers = {float(m.group(0)) for m in _NUMBER.finditer(text)}

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, str):
            return value.strip().lower() in self.lower
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) in self.numbers
        return False


@dataclass
class _Source:
    producer: int
    turn: int
    path: str


@dataclass
class ResultIndex:
    """Earlier results, indexed for matching argument values against them."""

    exact: dict[str, list[_Source]] = field(default_factory=dict)
    numbers: list[tuple[float, _Source]] = field(default_factory=list)
    strings: list[tuple[str, _Source]] = field(default_factory=list)

    def add(self, producer: int, turn: int, result: Any) -> None:
        for path, value in leaves(result):
            if _trivial(value):
                continue
            src = _Source(producer, turn, path)
            self.exact.setdefault(_canon(value), []).append(src)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.numbers.append((float(value), src))
            elif isinstance(value, str) and len(value.strip()) >= 3:
                self.strings.append((value, src))

    def derived_sources(self, value: Any, known: KnownText) -> Iterator[list[_Source]]:
        """For each piece of ``value`` that came from a result: the results it may come from."""
        for _, leaf in leaves(value):
            if _trivial(leaf) or leaf in known or isinstance(leaf, (list, dict)):
                continue
            found: list[_Source] = []
            if isinstance(leaf, (int, float)):
                x = float(leaf)
                for y, src in self.numbers:
                    if x == y or (
                        y != round(y) and any(round(y, d) == x for d in range(_MAX_ROUND_DIGITS + 1))
                    ):
                        found.append(src)
                if found:
                    yield found
                continue
            assert isinstance(leaf, str)
            for s, src in self.strings:
                if s.strip().lower() not in known.lower and _embedded(s.strip(), leaf):
                    found.append(src)
            for y, src in self.numbers:
                text = _number_text(y)
                if len(text) >= 2 and float(text) not in known.numbers and _embedded(text, leaf):
                    found.append(src)
            if found:
                yield found


def _number_text(x: float) -> str:
    return str(int(x)) if x == round(x) and abs(x) < 1e15 else str(x)


def _embedded(piece: str, text: str) -> bool:
    """``piece`` occurs in ``text`` as a whole token (not inside a longer word or number)."""
    if piece not in text:
        return False
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(piece)}(?![A-Za-z0-9])", text) is not None


def find_uses(arguments: Mapping[str, Any], turn: int, index: ResultIndex, known: KnownText) -> list[Use]:
    """The data flow into one call: which arguments come from which earlier calls, and how.

    Values an earlier user turn returned are known to the model (that turn delivered them
    before it ended); among producers in this turn the latest wins.
    """
    uses: list[Use] = []
    for arg, value in arguments.items():
        if _trivial(value) or value in known:
            continue
        exact = index.exact.get(_canon(value))
        if exact:
            if any(s.turn < turn for s in exact):
                continue
            src = exact[-1]
            uses.append(Use(arg, src.producer, src.path, "ref" if referable(src.path) else "await"))
            continue
        producers: set[int] = set()
        for sources in index.derived_sources(value, known):
            if any(s.turn < turn for s in sources):
                continue
            producers.add(max(s.producer for s in sources))
        uses.extend(Use(arg, p, "", "await") for p in sorted(producers))
    return uses


# --------------------------------------------------------------------------- steps


def labels_of(tool: Tool, arguments: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Concrete read and write labels of a call with literal arguments (as the scheduler sees them)."""
    reads, writes = tool.labels(arguments, lambda v: False)
    return reads - writes, writes


def hazard(a: tuple[set[str], set[str]], b: tuple[set[str], set[str]]) -> bool:
    """Write/read, read/write or write/write on conflicting labels between two calls."""
    (ra, wa), (rb, wb) = a, b
    return any(labels_conflict(x, y) for x in wa for y in rb | wb) or any(
        labels_conflict(x, y) for x in ra for y in wb
    )


def group_steps(
    calls: Sequence[PlannedCall], labels: Sequence[tuple[set[str], set[str]]], fc: FC
) -> list[tuple[int, ...]]:
    """Split one user turn's calls into model responses.

    ``parallel``: maximal runs of consecutive calls that neither use each other's results
    nor conflict in their labels; ``sequential``: one call per response.
    """
    steps: list[list[int]] = []
    current: list[int] = []
    for pos, call in enumerate(calls):
        if current and fc == "parallel":
            members = {calls[p].index for p in current}
            independent = not any(u.producer in members for u in call.uses) and not any(
                hazard(labels[p], labels[pos]) for p in current
            )
            if independent:
                current.append(pos)
                continue
        if current:
            steps.append(current)
        current = [pos]
    if current:
        steps.append(current)
    return [tuple(calls[p].index for p in step) for step in steps]


def fit_steps(
    steps: list[tuple[int, ...]], calls: Mapping[int, PlannedCall], budget: int
) -> list[tuple[int, ...]]:
    """Merge adjacent steps (the pair with the fewest calls first) until at most ``budget`` remain.

    A model limited to so many responses per user turn must batch more calls per
    response; calls that use each other's results are never merged. Only the longest
    turns need this (long-context entries 38 and 46 remove 34 files in one turn).
    """
    steps = list(steps)
    while len(steps) > max(budget, 1):
        best: int | None = None
        for i in range(len(steps) - 1):
            members = set(steps[i])
            if any(u.producer in members for j in steps[i + 1] for u in calls[j].uses):
                continue
            if best is None or len(steps[i]) + len(steps[i + 1]) < len(steps[best]) + len(steps[best + 1]):
                best = i
        if best is None:
            break
        steps[best : best + 2] = [steps[best] + steps[best + 1]]
    return steps


def build_plan(
    entry: Entry,
    fc: FC = "parallel",
    annotations: Mapping[str, Access] | None = ANNOTATIONS,
    final_text: str = FINAL_TEXT,
    max_steps: int | None = 20,
) -> Plan:
    """Shadow-replay the ground truth on fresh instances and plan data flow and steps.

    ``annotations`` decide which calls may share a step (use the fine table: the grouping
    is the model's behaviour, the same whatever the runtime schedules with). With
    ``max_steps`` (model responses per user turn), each turn leaves room for the final
    answer and for one ``await_future`` response per step that may need one.
    """
    instances = instances_for(entry)
    tools = {t.name: t for t in make_tools(instances, annotations)}
    order = signature_param_order(instances)
    index = ResultIndex()
    calls: list[PlannedCall] = []
    steps: list[tuple[tuple[int, ...], ...]] = []
    user_text = ""
    for turn, sources in enumerate(entry.ground_truth):
        if turn < entry.turns:
            user_text += "\n" + "\n".join(m["content"] for m in entry.user_messages(turn))
        known = KnownText(user_text)
        turn_calls: list[PlannedCall] = []
        for source in sources:
            name, kwargs = parse_call(source, order)
            uses = tuple(find_uses(kwargs, turn, index, known))
            # unvalidated, as the official eval runs it; a copy, since backends keep and later
            # mutate argument lists (``mention`` extends the ``mentions`` of ``post_tweet``)
            result = tools[name].fn(**copy.deepcopy(kwargs))
            try:
                tools[name].validate(kwargs)
                valid = True
            except ArgumentsError:
                valid = False
            call = PlannedCall(len(calls), turn, name, kwargs, result, uses, valid)
            calls.append(call)
            turn_calls.append(call)
            index.add(call.index, turn, parse_result(result))
        labels = [labels_of(tools[c.name], c.arguments) for c in turn_calls]
        grouped = group_steps(turn_calls, labels, fc)
        if max_steps is not None:
            by_index = {c.index: c for c in turn_calls}
            awaits = sum(
                1 for step in grouped if any(u.kind == "await" for i in step for u in by_index[i].uses)
            )
            grouped = fit_steps(grouped, by_index, max_steps - 1 - awaits)
        steps.append(tuple(grouped))
    return Plan(entry.id, fc, tuple(calls), tuple(steps), final_text)


# --------------------------------------------------------------------------- transcript


@dataclass(frozen=True)
class Position:
    """Where the replay stands according to a transcript."""

    turn: int
    done: int
    """Own (non-await) calls made so far in this user turn."""
    pending: dict[int, str]
    """Program index -> future id, for own calls whose value the model has not seen."""
    awaits: int


def _tool_contents(messages: Sequence[Message]) -> dict[str, str]:
    return {m.tool_call_id or "": m.content for m in messages if m.role == "tool"}


def _is_future_message(text: str) -> bool:
    """Cheap test for a placeholder or a delivered resolution (results can be megabytes)."""
    return text.startswith('{"future"') or (text.startswith("[") and '"future"' in text[:200])


def _resolved_ids(contents: Sequence[str]) -> set[str]:
    """Futures whose resolution appears anywhere in the tool messages (any delivery policy)."""
    out: set[str] = set()
    for text in contents:
        data = parse_result(text) if _is_future_message(text) else None
        items = data if isinstance(data, list) else [data]
        for item in items:
            if isinstance(item, dict) and item.get("status") in ("resolved", "failed"):
                out.add(str(item.get("future")))
    return out


def position(messages: Sequence[Message]) -> Position:
    """Read the current user turn, the calls made in it and which values are still pending."""
    turn = -1
    previous_user = False
    own: list[ToolCall] = []
    turn_start = 0
    awaits = 0
    for m in messages:
        if m.role == "user":
            if not previous_user:
                turn += 1
                turn_start = len(own)
            previous_user = True
            continue
        previous_user = False
        for c in m.tool_calls:
            if c.name == AWAIT_TOOL:
                awaits += 1
            else:
                own.append(c)
    contents = _tool_contents(messages)
    resolved = _resolved_ids(list(contents.values()))
    pending: dict[int, str] = {}
    for i, c in enumerate(own):
        text = contents.get(c.id, "")
        if not text.startswith('{"future"') or '"pending"' not in text[:120]:
            continue
        shown = parse_result(text)
        if isinstance(shown, dict) and shown.get("status") == "pending" and "future" in shown:
            fid = str(shown["future"])
            if fid not in resolved:
                pending[i] = fid
    return Position(turn, len(own) - turn_start, pending, awaits)


# --------------------------------------------------------------------------- the model


def decode_seconds(tokens: int, ttft_s: float, tokens_per_s: float) -> float:
    """Simulated decode time of one response (unscaled): time to first token + tokens / rate."""
    return ttft_s + tokens / tokens_per_s


class ReplayModel:
    """Plays a :class:`Plan`; decode is simulated as ``ttft + tokens / tps``, times ``time_scale``.

    Calls are announced as they are "decoded", so a runtime with early dispatch can start
    them before the response ends. ``log`` records each response's kind (``calls``,
    ``await``, ``text``), user turn and simulated decode seconds, for diagnostics.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        ttft_s: float = 0.5,
        tokens_per_s: float = 60.0,
        time_scale: float = 1.0,
        name: str = "replay",
    ) -> None:
        if tokens_per_s <= 0 or ttft_s < 0 or time_scale < 0:
            raise ValueError("need tokens_per_s > 0, ttft_s >= 0 and time_scale >= 0")
        self.plan = plan
        self.ttft_s = ttft_s
        self.tokens_per_s = tokens_per_s
        self.time_scale = time_scale
        self.name = name
        self.log: list[tuple[str, int, float]] = []

    def respond(self, messages: Sequence[Message], pos: Position | None = None) -> tuple[str, list[ToolCall]]:
        """The next response for this transcript: a text, the next step's calls, or an await."""
        pos = pos if pos is not None else position(messages)
        plan = self.plan
        if not 0 <= pos.turn < len(plan.steps):
            return plan.final_text, []
        order = plan.turn_calls(pos.turn)
        if pos.done >= len(order):
            return plan.final_text, []
        first = order[pos.done]
        step = next(s for s in plan.steps[pos.turn] if first in s)
        todo = [plan.calls[i] for i in step[step.index(first) :]]
        gates: set[str] = set()
        out: list[ToolCall] = []
        for call in todo:
            arguments = dict(call.arguments)
            for use in call.uses:
                fid = pos.pending.get(use.producer)
                if fid is None:
                    continue  # seen (or from an earlier turn): the literal value is known
                if use.kind == "ref":
                    arguments[use.arg] = f"{fid}{use.path}"
                else:
                    gates.add(fid)
            out.append(ToolCall(f"call_{call.index}", call.name, json.dumps(arguments)))
        if gates:
            ids = sorted(gates, key=_future_number)
            return "", [ToolCall(f"await_{pos.awaits + 1}", AWAIT_TOOL, json.dumps({"ids": ids}))]
        return "", out

    def decode_s(self, text: str, calls: Sequence[ToolCall]) -> float:
        """Unscaled simulated decode time of a response."""
        tokens = sum(tokens_of(c.name + c.arguments) for c in calls) + (tokens_of(text) if text else 0)
        return decode_seconds(tokens, self.ttft_s, self.tokens_per_s)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        # the clock starts before the replay works out its answer: that is the "model's" own
        # time, inside the simulated time to first token, as a server's compute would be
        start = time.perf_counter()
        pos = position(request.messages)
        text, calls = self.respond(request.messages, pos)
        kind = "text" if not calls else ("await" if calls[0].name == AWAIT_TOOL else "calls")
        self.log.append((kind, pos.turn, self.decode_s(text, calls)))
        scale = self.time_scale
        offset = self.ttft_s
        await _sleep_until(start + offset * scale)
        ttft = time.perf_counter() - start
        tokens = 0
        for call in calls:
            n = tokens_of(call.name + call.arguments)
            tokens += n
            offset += n / self.tokens_per_s
            await _sleep_until(start + offset * scale)
            yield ToolCallReady(call)
        if text:
            n = tokens_of(text)
            tokens += n
            offset += n / self.tokens_per_s
            await _sleep_until(start + offset * scale)
            yield TextDelta(text)
        yield ResponseDone(
            ModelResponse(
                text=text,
                tool_calls=calls,
                usage=Usage(sum(tokens_of(m.content) for m in request.messages), tokens),
                finish_reason="tool_calls" if calls else "stop",
                ttft_s=ttft,
                duration_s=time.perf_counter() - start,
            )
        )


def _future_number(fid: str) -> int:
    tail = fid[len(FUTURE_PREFIX) :]
    return int(tail) if tail.isdigit() else 0


SPIN_S = 0.002
"""The last stretch of a simulated wait is spun (yielding to the loop) instead of slept:
the event loop's timers wake up to 1 ms late (epoll's millisecond timeout), which at a
time scale of 0.01 is as large as a call's decode time and would drown what we measure."""


async def sleep_until(deadline: float) -> None:
    """Wait until ``time.perf_counter()`` reaches ``deadline``, to within tens of microseconds.

    Other tasks keep running meanwhile; only the last :data:`SPIN_S` seconds cost CPU.
    """
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return
        await asyncio.sleep(remaining - SPIN_S if remaining > 2 * SPIN_S else 0)


async def _sleep_until(deadline: float) -> None:
    """Sleep to an absolute deadline, so timer lateness does not add up over a response."""
    await sleep_until(deadline)


__all__ = [
    "AWAIT_TOOL",
    "FC",
    "FINAL_TEXT",
    "KnownText",
    "Plan",
    "PlannedCall",
    "Position",
    "ReplayModel",
    "ResultIndex",
    "Use",
    "build_plan",
    "sleep_until",
    "decode_seconds",
    "find_uses",
    "fit_steps",
    "group_steps",
    "hazard",
    "labels_of",
    "leaves",
    "parse_result",
    "position",
    "referable",
]
