"""The loop-free runtime: what any host (asyncfc's own agent, an MCP proxy, a framework's
tool call) drives.

A host submits a call and gets back the text of its tool message: the value when the call
finishes within its *grace* (how long the runtime's grace policy, :mod:`asyncfc.grace`,
lets it wait), otherwise a placeholder naming its future. Values of
calls answered with a placeholder are handed over later, exactly once: piggybacked on a
later tool message (:meth:`Runtime.call`), at a turn boundary (:meth:`Runtime.take_ready`),
through the ``await_future`` tool, or when the host settles the user turn.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from .errors import (
    SessionClosedError,
    ToolDefinitionError,
    check_number,
)
from .executors import Executor, ThreadExecutor
from .futures import as_text, dumps, future_id, future_seq
from .grace import DEFAULT_GRACE_S, Grace, GraceOption, grace_policy
from .mode import Mode
from .model_text import (
    ASYNC_INSTRUCTIONS,
    AWAIT_TOOL,
    await_answer,
    bad_await,
    delivered,
    error_json,
    failed,
    model_specs,
    placeholder,
    repeat_note,
    resolved,
    unknown_future,
    with_earlier,
)
from .scheduler import Call, Scheduler
from .tools import Tool, checked_tools
from .trace import Trace

__all__ = ["DEFAULT_GRACE_S", "Reply", "Runtime"]


@dataclass
class Reply:
    """What a host puts into the tool message of one call."""

    text: str
    call: Call | None
    """The call record (None for ``await_future``)."""
    delivered: list[Call]
    """Earlier calls whose values this text delivers."""


class Runtime:
    """Futures, scheduling and delivery for one conversation, without a model loop."""

    def __init__(
        self,
        tools: Sequence[Tool] | Mapping[str, Tool],
        *,
        mode: Mode | str = Mode.ASYNC,
        executor: Executor | None = None,
        grace: GraceOption = "auto",
        grace_s: float | None = None,
        max_result_chars: int | None = None,
        max_concurrency: int | None = None,
        default_timeout: float | None = 60.0,
        instructions: str = ASYNC_INSTRUCTIONS,
        trace: Trace | None = None,
    ) -> None:
        self.mode = Mode.of(mode)
        """The one mode of this conversation: the scheduler orders calls by it, whoever submits them."""
        check_options(grace_s, max_result_chars, max_concurrency)
        self.grace: Grace = grace_policy(grace, grace_s)
        """Until when :meth:`answer` waits for a value in async mode (see :mod:`asyncfc.grace`)."""
        if isinstance(tools, Mapping):
            self.tools = tools  # shared with the host, which may change it between turns
        else:
            self.tools = tool_table(tools)
        self.grace_s = grace_s
        """The fixed window given as ``grace_s`` (None: the window is ``grace``'s to choose)."""
        self.max_result_chars = max_result_chars
        self.instructions = instructions if self.mode.shows_futures else ""
        self._owns_executor = executor is None
        self.executor = executor or ThreadExecutor(default_timeout=default_timeout)
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
            on_resolved=_on_resolved(self._resolved, self.grace),
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

        Sync and parallel modes wait for the value. Async mode waits at most until the time
        the grace policy names (:mod:`asyncfc.grace`), then answers with a placeholder.
        """
        if not call.done:
            if not self.mode.shows_futures:
                await call.future.wait()
            else:
                left = self.grace.until(call, self) - self.trace.now()
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
            self.grace.placeheld(call)
            body = placeholder(call.id, self._output_example(call))
        if note:
            body["note"] = note
        return dumps(body)

    def _repeat_note(self, call: Call) -> str:
        if call.repeat_of is None:
            return ""
        return repeat_note(future_id(call.repeat_of) if self.mode.shows_futures else None)

    async def call(
        self,
        name: str,
        arguments: str | Mapping[str, Any],
        tool_call_id: str | None = None,
        *,
        repeat_of: Call | None = None,
    ) -> Reply:
        """Submit one call and return its tool-message text, with earlier values piggybacked.

        ``repeat_of``: an identical earlier call this one repeats; it is not run again (:meth:`repeat`)."""
        if name == AWAIT_TOOL and self.mode.shows_futures:
            text, own = await self._await(arguments)
            call = None
        else:
            if repeat_of is not None:
                call = self.repeat(repeat_of, tool_call_id=tool_call_id or "")
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
            return failed(call.id, call.error)
        return resolved(call.id, self._for_model(call.value))

    def sync_text(self, call: Call) -> str:
        """A resolved call's tool message in sync and parallel modes (no futures shown)."""
        self._mark(call)
        if call.error is not None:
            return dumps(error_json(call.error))
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
            return bad_await(), []
        t0 = self.trace.now()
        named = [(fid, self._lookup_call(fid)) for fid in ids]
        self.grace.awaited([c for _, c in named if c is not None])
        for _, call in named:  # wait for all first: a cancelled await has delivered nothing
            if call is not None:
                await call.future.wait()
        out: list[dict[str, Any]] = []
        delivered_now: list[Call] = []
        for fid, call in named:
            if call is None:
                out.append(unknown_future(fid))
            elif call.delivered_at is not None:
                out.append(delivered(call.id))
            else:
                self._placeheld.pop(call, None)
                out.append(self.deliver(call))
                delivered_now.append(call)
        self.trace.span(AWAIT_TOOL, "await", "model", t0, self.trace.now(), ids=ids)
        return await_answer(out), delivered_now

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


def _on_resolved(resolved: list[Call], grace: Grace) -> Callable[[Call], None]:
    """The scheduler's hook: note the call for the next turn boundary and let the grace
    policy learn from it (a closure over the two, not the runtime: no reference cycle)."""

    def on_resolved(call: Call) -> None:
        resolved.append(call)
        grace.finished(call)

    return on_resolved


def check_options(
    grace_s: float | None,
    max_result_chars: int | None,
    max_concurrency: int | None,
    concurrency: str = "max_concurrency",
) -> None:
    """Raise :class:`ConfigurationError` for a runtime option out of range (``concurrency``:
    what the host calls the per-session limit)."""
    check_number("grace_s", grace_s, 0, none=True)
    check_number("max_result_chars", max_result_chars, 1, integer=True, none=True)
    check_number(concurrency, max_concurrency, 1, integer=True, none=True)


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
    """Tools by name; anything but a list of tools, duplicate names and the reserved await
    tool are definition errors."""
    tools = checked_tools(tools)
    names = [t.name for t in tools]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ToolDefinitionError(f"duplicate tool names: {sorted(dupes)}")
    if AWAIT_TOOL in names:
        raise ToolDefinitionError(f"{AWAIT_TOOL!r} is reserved for the runtime")
    return {t.name: t for t in tools}
