"""The loop-free runtime: what any host (asyncfc's own agent, an MCP proxy, a framework's
tool call) drives.

A host submits a call and gets back the text of its tool message: the value when the call
finishes within the *grace window*, otherwise a placeholder naming its future. Values of
calls answered with a placeholder are handed over later, exactly once: piggybacked on a
later tool message (:meth:`Runtime.call`), at a turn boundary (:meth:`Runtime.take_ready`),
through the ``await_future`` tool, or when the host settles the user turn.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from .errors import (
    CallError,
    ErrorKind,
    SessionClosedError,
    ToolDefinitionError,
    check_number,
)
from .executors import Executor
from .futures import (
    AWAIT_TOOL,
    FUTURE_PREFIX,
    REFERENCE,
    as_text,
    dumps,
    future_id,
    future_seq,
    placeholder,
    resolved,
    widen_schema,
)
from .mode import Mode
from .scheduler import Call, Scheduler
from .tools import Tool
from .trace import Trace

DEFAULT_GRACE_S = 0.5
"""How long a call may take and still be answered with its value instead of a placeholder.

Chosen by measurement on the embedded model: a placeholder for a quick call (a database
read, a file write, an email: 0.05-0.3 s) costs the model an extra step to await it (2-4 s
on a CPU, about a second on hosted models), far more than waiting half a second. Tools that
pay at most the window once per model step that emits them."""

ASYNC_INSTRUCTIONS = (
    'A tool result may be a placeholder like {"future": "fut_1", "status": "pending"}: the call is still '
    'running. Pass "fut_1" (or "fut_1.field"), alone or inside a text, as an argument and the runtime fills '
    f"in its value. Never invent a value or repeat a pending call. Call {AWAIT_TOOL} only when you must see "
    "a value to decide what to do, never just to pass it on."
)
"""Shown to the model in async mode only: a few lines that explain placeholders."""

AWAIT_SPEC: dict[str, Any] = {
    "name": AWAIT_TOOL,
    "description": "Wait for futures and return their values.",
    "parameters": {"type": "object", "properties": {"ids": {"type": "array", "items": {"type": "string"}}}},
}

EARLIER = "resolved_earlier"
"""Key under which a tool message carries values of earlier calls, delivered with it."""


@dataclass
class Reply:
    """What a host puts into the tool message of one call."""

    text: str
    call: Call | None
    """The call record (None for ``await_future``)."""
    delivered: list[Call]
    """Earlier calls whose values this text delivers."""


def failure(fid: str | None, error: CallError) -> dict[str, Any]:
    """The one shape of a failure the model reads: it always names its future when there is one."""
    return {"future": fid, "status": "failed", **error.to_json()}


class Runtime:
    """Futures, scheduling and delivery for one conversation, without a model loop."""

    def __init__(
        self,
        tools: Sequence[Tool] | Mapping[str, Tool],
        *,
        mode: Mode | str = Mode.ASYNC,
        executor: Executor | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        max_result_chars: int | None = None,
        max_concurrency: int | None = None,
        default_timeout: float | None = 60.0,
        instructions: str = ASYNC_INSTRUCTIONS,
        trace: Trace | None = None,
    ) -> None:
        self.mode = Mode.of(mode)
        """The one mode of this conversation: the scheduler orders calls by it, whoever submits them."""
        check_options(grace_s, max_result_chars, max_concurrency)
        if isinstance(tools, Mapping):
            self.tools = tools  # shared with the host, which may change it between turns
        else:
            self.tools = tool_table(tools)
        self.grace_s = grace_s
        self.max_result_chars = max_result_chars
        self.instructions = instructions if self.mode.shows_futures else ""
        self._owns_executor = executor is None
        self.executor = executor or Executor(default_timeout=default_timeout)
        self.trace = trace or Trace()
        self._resolved: list[Call] = []
        """Calls resolved since the last :meth:`take_ready`, so a turn boundary looks at what is
        new instead of scanning every pending call (list.append: no cycle through the runtime)."""
        self.scheduler = Scheduler(
            self.tools,
            self.executor,
            self.trace,
            self.mode,
            max_concurrency=max_concurrency,
            on_resolved=self._resolved.append,
        )
        self._placeheld: dict[Call, int] = {}
        """Calls answered with a placeholder and not delivered yet, with the order they came in."""
        self._held = 0
        self.closed = False

    @property
    def calls(self) -> list[Call]:
        return self.scheduler.calls

    def tool_specs(self) -> list[dict[str, Any]]:
        """The tools as the model sees them in this mode."""
        return model_specs(self.tools.values(), self.mode)

    # -- calls --------------------------------------------------------------------

    def submit(
        self,
        name: str,
        arguments: str | Mapping[str, Any],
        *,
        tool_call_id: str = "",
        user_turn: int = 0,
        step: int = 0,
    ) -> Call:
        """Take a call in program order and start it as soon as the scheduler allows."""
        if self.closed:
            raise SessionClosedError("this runtime is closed")
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments, default=str)
        return self.scheduler.submit(tool_call_id, name, raw, user_turn=user_turn, step=step)

    async def answer(self, call: Call) -> str:
        """The tool-message text of a submitted call.

        Sync and parallel modes wait for the value. Async mode waits at most until the grace
        window since the call was emitted has passed, then answers with a placeholder.
        """
        if not call.done:
            if not self.mode.shows_futures:
                await call.future.wait()
            else:
                left = call.emitted_at + self.grace_s - self.trace.now()
                if left > 0:
                    await call.future.wait(left)
        note = self._repeat_note(call)
        if call.done and not self.mode.shows_futures:
            text = self.sync_text(call)
            return f"{text}\n({note})" if note else text
        if call.done:
            body = self.deliver(call)
        else:
            self._hold(call)
            body = placeholder(call.id, self._output_example(call))
        if note:
            body["note"] = note
        return dumps(body)

    def _repeat_note(self, call: Call) -> str:
        if call.repeat_of is None:
            return ""
        same = f" {future_id(call.repeat_of)}" if self.mode.shows_futures else ""
        return (
            f"this repeats an earlier identical call{same}, so it was not run again; do not repeat it: "
            "go on with the next step, or answer if the task is done"
        )

    async def call(
        self, name: str, arguments: str | Mapping[str, Any], tool_call_id: str | None = None
    ) -> Reply:
        """Submit one call and return its tool-message text, with earlier values piggybacked."""
        if name == AWAIT_TOOL and self.mode.shows_futures:
            text, own = await self._await(arguments)
            call = None
        else:
            call = self.submit(name, arguments, tool_call_id=tool_call_id or "")
            text = await self.answer(call)
            own = []
        ready = self.take_ready()
        return Reply(with_earlier(text, [self.deliver_json(c) for c in ready]), call, [*own, *ready])

    # -- delivery -----------------------------------------------------------------

    def repeat(self, original: Call, *, tool_call_id: str = "", user_turn: int = 0, step: int = 0) -> Call:
        """Take a call identical to ``original`` without running it again: it gets the same outcome."""
        if self.closed:
            raise SessionClosedError("this runtime is closed")
        return self.scheduler.repeat(original, tool_call_id, user_turn=user_turn, step=step)

    def take_ready(self) -> list[Call]:
        """Calls answered with a placeholder that have resolved since; marked delivered.

        The host must put each one's :meth:`deliver_json` (already counted) into the transcript.
        """
        if not self._resolved:
            return []
        held = self._placeheld
        ready = list(dict.fromkeys(c for c in self._resolved if c in held))
        self._resolved.clear()
        ready.sort(key=held.__getitem__)  # in the order they were held
        for c in ready:
            del held[c]
            self._mark(c)
        return ready

    def hold(self, call: Call) -> None:
        """Deliver this call's value with the next ones (a host lost its tool message)."""
        if call.delivered_at is None and call not in self._placeheld:
            self._hold(call)
            if call.done:  # resolved before it was held: the next take_ready must see it
                self._resolved.append(call)

    def _hold(self, call: Call) -> None:
        self._held += 1
        self._placeheld[call] = self._held

    def deliver(self, call: Call) -> dict[str, Any]:
        """Mark a resolved call delivered (exactly once) and return what the model reads."""
        self._mark(call)
        return self.deliver_json(call)

    def _mark(self, call: Call) -> None:
        if call.delivered_at is not None:
            raise RuntimeError(f"{call.id} delivered twice")
        call.deliveries += 1
        call.delivered_at = self.trace.now()

    def deliver_json(self, call: Call) -> dict[str, Any]:
        """A resolved call as the model reads it in async mode (does not mark it delivered)."""
        if call.error is not None:
            return failure(call.id, call.error)
        return resolved(call.id, self._for_model(call.value))

    def sync_text(self, call: Call) -> str:
        """A resolved call's tool message in sync and parallel modes (no futures shown)."""
        self._mark(call)
        if call.error is not None:
            return json.dumps(call.error.to_json())
        return as_text(self._for_model(call.value))

    def _for_model(self, value: Any) -> Any:
        if self.max_result_chars is None:
            return value
        text = as_text(value)
        if len(text) <= self.max_result_chars:
            return value
        return text[: self.max_result_chars] + f"... [truncated: {len(text)} characters in all]"

    def _output_example(self, call: Call) -> Any:
        tool = self.tools.get(call.name)
        return tool.output_example if tool is not None else None

    async def _await(self, arguments: str | Mapping[str, Any]) -> tuple[str, list[Call]]:
        """The ``await_future`` tool: block until the named futures resolve, return their values.

        A future whose value was already delivered is answered with a note, not the value again.
        """
        ids = _await_ids(arguments)
        if ids is None:
            err = CallError(
                ErrorKind.INVALID_ARGUMENTS, f'{AWAIT_TOOL} needs {{"ids": ["{FUTURE_PREFIX}1", ...]}}'
            )
            return json.dumps(failure(None, err)), []
        t0 = self.trace.now()
        named = [(fid, self._lookup_call(fid)) for fid in ids]
        for _, call in named:  # wait for all first: a cancelled await has delivered nothing
            if call is not None:
                await call.future.wait()
        out: list[dict[str, Any]] = []
        delivered: list[Call] = []
        for fid, call in named:
            if call is None:
                err = CallError(
                    ErrorKind.UNKNOWN_FUTURE, f"unknown future {fid!r} (not issued in this session)"
                )
                shown = fid if len(fid) <= 64 else f"{fid[:64]}..."  # model text: echo a bounded part
                out.append(failure(shown, err))
            elif call.delivered_at is not None:
                out.append({"future": call.id, "status": "delivered", "note": "its value was given earlier"})
            else:
                self._placeheld.pop(call, None)
                out.append(self.deliver(call))
                delivered.append(call)
        self.trace.span(AWAIT_TOOL, "await", "model", t0, self.trace.now(), ids=ids)
        return dumps(out[0] if len(out) == 1 else out), delivered

    async def await_futures(self, arguments: str | Mapping[str, Any]) -> str:
        """The ``await_future`` tool's answer (``{"ids": [...]}``)."""
        return (await self._await(arguments))[0]

    def _lookup_call(self, fid: str) -> Call | None:
        seq = future_seq(fid)
        return self.calls[seq - 1] if seq is not None and 0 < seq <= len(self.calls) else None

    def cancel(self, call: Call, reason: str = "cancelled by the host") -> None:
        """Cancel one call (e.g. the client cancelled its request); it resolves to ``cancelled``."""
        self.scheduler.cancel_call(call, reason)

    # -- end of a user turn -----------------------------------------------------------

    async def wait_all(self, calls: Sequence[Call] | None = None) -> None:
        await self.scheduler.wait_all(list(calls) if calls is not None else None)

    async def settle(self) -> str | None:
        """Wait for every pending call; the text delivering whatever was not delivered yet."""
        await self.wait_all()
        ready = self.take_ready()
        if not ready:
            return None
        return dumps([self.deliver_json(c) for c in ready])

    async def aclose(self) -> None:
        """Cancel whatever is still pending (each such call resolves to ``cancelled``)."""
        if self.closed:
            return
        self.closed = True
        await self.scheduler.cancel()
        if self._owns_executor:
            await self.executor.close()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def check_options(
    grace_s: float,
    max_result_chars: int | None,
    max_concurrency: int | None,
    concurrency: str = "max_concurrency",
) -> None:
    """Raise :class:`ConfigurationError` for a runtime option out of range (``concurrency``:
    what the host calls the per-session limit)."""
    check_number("grace_s", grace_s, 0)
    check_number("max_result_chars", max_result_chars, 1, integer=True, none=True)
    check_number(concurrency, max_concurrency, 1, integer=True, none=True)


def model_specs(tools: Iterable[Tool], mode: Mode | str) -> list[dict[str, Any]]:
    """Tools as the model sees them: in async mode references are allowed in every parameter
    and ``await_future`` is offered."""
    specs = [t.spec() for t in tools]
    if not Mode.of(mode).shows_futures:
        return specs
    return [*({**s, "parameters": widen_schema(s["parameters"])} for s in specs), AWAIT_SPEC]


def revision_needed(answer: str, settled: Sequence[Call]) -> bool:
    """Whether an answer given while these calls were pending must be revised: one of them
    failed, or the answer cites a future id (it relied on a value the model had not seen)."""
    return any(c.error is not None for c in settled) or REFERENCE.search(answer) is not None


def with_earlier(text: str, earlier: list[dict[str, Any]]) -> str:
    """A tool message's text with values of earlier calls added (``resolved_earlier``)."""
    if not earlier:
        return text
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"result": text}
    body.setdefault(EARLIER, []).extend(earlier)
    return dumps(body)


def _await_ids(arguments: str | Mapping[str, Any]) -> list[str] | None:
    if isinstance(arguments, str):
        try:
            args: Any = json.loads(arguments or "{}")
        except (ValueError, RecursionError):
            return None
    else:
        args = arguments
    raw = args.get("ids", args.get("id")) if isinstance(args, Mapping) else None
    ids = [raw] if isinstance(raw, str) else raw
    if not isinstance(ids, list) or not ids or len(ids) > 1000:
        return None
    return [str(i) for i in ids]


def tool_table(tools: Sequence[Tool]) -> dict[str, Tool]:
    """Tools by name; duplicate names and the reserved await tool are definition errors."""
    names = [t.name for t in tools]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ToolDefinitionError(f"duplicate tool names: {sorted(dupes)}")
    if AWAIT_TOOL in names:
        raise ToolDefinitionError(f"{AWAIT_TOOL!r} is reserved for the runtime")
    return {t.name: t for t in tools}
