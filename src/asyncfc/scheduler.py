"""The scheduler: decides when each call may start, and starts it.

Program order, data dependencies (references to earlier futures) and read/write hazards
(write→read, read→write, write→write on conflicting labels) order the calls; everything
else runs concurrently. The hazard check is indexed by label (a trie over label paths),
so it costs O(label depth + real conflicts), not O(calls in flight).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import CallError, ErrorKind, describe
from .executors import Executor, ToolFailed, ToolTimeout, WorkerLost
from .futures import (
    MAX_NESTING,
    Future,
    ReferenceError_,
    future_id,
    holds_reference,
    jsonable,
    nesting_exceeds,
    references_in,
    substitute,
)
from .mode import Mode
from .tools import ROOT, ArgumentsError, Tool
from .trace import Trace

__all__ = ["Call", "HazardIndex", "MAX_LABEL_DEPTH", "Scheduler", "running_call"]

running_call: contextvars.ContextVar[tuple[Call, Trace] | None] = contextvars.ContextVar(
    "asyncfc_running_call", default=None
)
"""Inside a tool started by a scheduler: its call record and the trace it is recorded in
(an agent run as a tool nests its own trace under that call; see asyncfc.subagent)."""


@dataclass(eq=False, slots=True)
class Call:
    """One call of a session, from emission to delivery. Times are trace seconds.

    ``id`` is its future's (``fut_<seq>``, what the model passes on); ``tool_call_id`` is
    the id the model gave the call, which its tool message answers.
    """

    seq: int
    tool_call_id: str
    name: str
    raw_arguments: str
    user_turn: int = 0
    step: int = 0
    arguments: dict[str, Any] | None = None
    """Parsed arguments, before references were substituted."""
    resolved_arguments: dict[str, Any] | None = None
    """The arguments the tool was actually called with."""
    deps: tuple[int, ...] = ()
    """Futures this call referenced (data dependencies)."""
    waited_for: tuple[int, ...] = ()
    """Earlier calls it had to wait for because of read/write hazards."""
    emitted_at: float = 0.0
    dispatched_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    delivered_at: float | None = None
    ran: bool = False
    repeat_of: int | None = None
    """The earlier identical call this one was answered from instead of running (see ModelProfile)."""
    deliveries: int = 0
    """How often the runtime put this call's resolution into the transcript (must end at 1)."""
    future: Future = field(init=False)

    def __post_init__(self) -> None:
        self.future = Future(self.seq)

    @property
    def id(self) -> str:
        return self.future.id

    @property
    def value(self) -> Any:
        return self.future.value

    @property
    def error(self) -> CallError | None:
        return self.future.error

    @property
    def done(self) -> bool:
        return self.future.done


class _Node:
    """One label path segment; its sets are made on first use (most nodes hold one call)."""

    __slots__ = ("below_readers", "below_writers", "children", "key", "parent", "readers", "writer")

    def __init__(self, key: str = "", parent: _Node | None = None) -> None:
        self.key = key
        self.parent = parent
        """The segment above (None at the root): a call keeps only its labels' last nodes."""
        self.children: dict[str, _Node] | None = None
        self.writer: Call | None = None
        self.readers: set[Call] | None = None
        self.below_writers: set[Call] | None = None
        self.below_readers: set[Call] | None = None

    def busy(self) -> bool:
        return bool(
            self.children
            or self.writer is not None
            or self.readers
            or self.below_writers
            or self.below_readers
        )


MAX_LABEL_DEPTH = 64
"""How many ``/`` segments of a label the hazard index tells apart."""


class HazardIndex:
    """Unfinished calls indexed by the labels they touch.

    Each node keeps the last unfinished writer of its label and the readers after it
    (older ones are covered transitively: the writer waited for them), plus the calls
    registered strictly below it, so a prefix conflict is found without a scan.

    A reader can only conflict with a writer, so while no writer is unfinished, readers
    are only noted, and indexed when the next writer comes (most lookups finish first and
    are never indexed).
    """

    def __init__(self) -> None:
        self.root = _Node()
        self._where: dict[Call, _Node | tuple[_Node, ...]] = {}
        """Each indexed call's label nodes: one node, or a tuple when it has several labels."""
        self._writing: set[Call] = set()
        """Unfinished calls that write (indexed)."""
        self._noted: dict[Call, set[str]] = {}
        """Unfinished readers not indexed yet, with their labels (only while no writer is unfinished)."""

    def _node(self, label: str) -> _Node:
        node = self.root
        if label != ROOT:
            # a label past MAX_LABEL_DEPTH segments (a model-written "a/a/a/...") is indexed as
            # its prefix: wider, so it conflicts with more calls, never fewer
            for part in label.split("/", MAX_LABEL_DEPTH)[:MAX_LABEL_DEPTH]:
                children = node.children
                if children is None:
                    children = node.children = {}
                child = children.get(part)
                if child is None:
                    child = children[part] = _Node(part, node)
                node = child
        return node

    def register(self, call: Call, reads: set[str], writes: set[str]) -> set[Call]:
        """Record ``call`` and return the earlier unfinished calls it conflicts with."""
        if not writes:
            if not reads:  # a pure tool: nothing to index
                return set()
            if not self._writing:  # nothing unfinished it could conflict with
                self._noted[call] = reads
                return set()
        else:
            if self._noted:  # the readers noted so far are what this writer must find
                noted, self._noted = self._noted, {}
                for reader, labels in noted.items():
                    self._index(reader, labels, set())
            self._writing.add(call)
            reads = reads - writes
        return self._index(call, reads, writes)

    def _index(self, call: Call, reads: set[str], writes: set[str]) -> set[Call]:
        entries = [(self._node(w), True) for w in sorted(writes)]
        entries += [(self._node(r), False) for r in sorted(reads)]
        waits: set[Call] = set()
        for node, writing in entries:
            anc: _Node | None = node  # walked up by parent links: no path list per call
            while anc is not None:
                if anc.writer is not None:
                    waits.add(anc.writer)
                if writing and anc.readers:
                    waits.update(anc.readers)
                anc = anc.parent
            if node.below_writers:
                waits.update(node.below_writers)
            if writing and node.below_readers:
                waits.update(node.below_readers)
        waits.discard(call)
        for node, writing in entries:
            if writing:
                covered = {*(node.below_writers or ()), *(node.below_readers or ()), *(node.readers or ())}
                if node.writer is not None:
                    covered.add(node.writer)
                anc = node.parent
                while anc is not None:
                    if covered:
                        if anc.below_writers:
                            anc.below_writers.difference_update(covered)
                        if anc.below_readers:
                            anc.below_readers.difference_update(covered)
                    if anc.below_writers is None:
                        anc.below_writers = set()
                    anc.below_writers.add(call)
                    anc = anc.parent
                node.writer = call
                node.readers = node.below_writers = node.below_readers = None
            else:
                if node.readers is None:
                    node.readers = set()
                node.readers.add(call)
                anc = node.parent
                while anc is not None:
                    if anc.below_readers is None:
                        anc.below_readers = set()
                    anc.below_readers.add(call)
                    anc = anc.parent
        # one node per call in the usual case, not a list of paths
        self._where[call] = entries[0][0] if len(entries) == 1 else tuple(n for n, _ in entries)
        return waits

    def finish(self, call: Call) -> None:
        if self._noted.pop(call, None) is not None:
            return
        where = self._where.pop(call, None)
        if where is None:
            return
        self._writing.discard(call)
        for node in (where,) if isinstance(where, _Node) else where:
            if node.writer is call:
                node.writer = None
            if node.readers:
                node.readers.discard(call)
            anc = node.parent
            while anc is not None:
                if anc.below_writers:
                    anc.below_writers.discard(call)
                if anc.below_readers:
                    anc.below_readers.discard(call)
                anc = anc.parent
            # drop the nodes nothing is registered at or below any more, so the index holds
            # the labels of unfinished calls only, not every label the session ever touched
            while node.parent is not None and not node.busy():
                parent = node.parent
                if parent.children is not None and parent.children.get(node.key) is node:
                    del parent.children[node.key]
                node = parent

    def __len__(self) -> int:
        return len(self._where) + len(self._noted)


class _Started:
    """The executor's ``on_start`` callback for one call (a slotted object, not a closure)."""

    __slots__ = ("call", "t0")

    def __init__(self, call: Call, t0: float) -> None:
        self.call = call
        self.t0 = t0

    def __call__(self, at: float) -> None:
        self.call.started_at = at - self.t0
        self.call.ran = True


class _Finished:
    """Done callback of a dispatched call's outcome (a slotted object, not a closure)."""

    __slots__ = ("call", "scheduler", "tool")

    def __init__(self, scheduler: Scheduler, call: Call, tool: Tool) -> None:
        self.scheduler = scheduler
        self.call = call
        self.tool = tool

    def __call__(self, outcome: asyncio.Future[Any]) -> None:
        self.scheduler._finished(self.call, self.tool, outcome)


class _Gate:
    """A call waiting, without a task of its own, for earlier calls (its references, its
    hazards) and, under a per-session limit, for a free slot. Each earlier call counts down
    as it resolves; at zero the call is prepared and dispatched from a loop callback (never
    from inside another call's resolution, so a long chain of failures does not recurse),
    or queued for a slot."""

    __slots__ = ("arguments", "call", "context", "deps", "kwargs", "left", "loop", "scheduler", "tool")

    def __init__(
        self,
        scheduler: Scheduler,
        call: Call,
        tool: Tool,
        arguments: dict[str, Any],
        deps: Sequence[Call],
        waits: Collection[Call],
        kwargs: dict[str, Any] | None,
    ) -> None:
        self.scheduler = scheduler
        self.call = call
        self.tool = tool
        self.arguments = arguments
        self.deps = deps
        self.kwargs = kwargs
        self.loop = asyncio.get_running_loop()
        self.context = contextvars.copy_context()
        """The submitter's, as a task would have copied it: the tool runs in it (MCP progress)."""
        self.left = 1  # held while registering, so it cannot open early
        for other in (*deps, *waits):
            if not other.future.done:
                self.left += 1
                other.future.on_done(self)
        self()

    def __call__(self) -> None:
        """One awaited call resolved."""
        self.left -= 1
        if self.left == 0:
            self.loop.call_soon(self._open, context=self.context)

    def _open(self) -> None:
        scheduler, call, tool = self.scheduler, self.call, self.tool
        if scheduler._tasks.get(call) is not self:
            return  # cancelled meanwhile
        try:
            kwargs = scheduler._prepare(call, tool, self.arguments, self.deps, self.kwargs)
        except BaseException as exc:  # a bug of ours: still resolve the call
            scheduler._resolve(call, error=_failure(tool, exc))
            kwargs = None
        if kwargs is None:
            del scheduler._tasks[call]
            scheduler.hazards.finish(call)
        elif scheduler._claim_slot():
            del scheduler._tasks[call]
            scheduler._dispatch(call, tool, kwargs)
        else:  # queued for a slot, still cancellable
            self.kwargs = kwargs
            scheduler._queue.append(self)

    def start(self) -> None:
        """A slot was handed to this queued call: dispatch it (in the submitter's context)."""
        scheduler, call = self.scheduler, self.call
        if scheduler._tasks.get(call) is not self:  # cancelled while queued: pass the slot on
            scheduler._free_slot()
            return
        del scheduler._tasks[call]
        assert self.kwargs is not None
        scheduler._dispatch(call, self.tool, self.kwargs)

    def cancel(self) -> None:
        """Resolve the call to ``cancelled`` now (it has not started)."""
        scheduler, call = self.scheduler, self.call
        if scheduler._tasks.get(call) is not self:
            return
        del scheduler._tasks[call]
        scheduler._resolve(call, error=scheduler._cancelled(call))
        scheduler.hazards.finish(call)


def _failure(tool: Tool, exc: BaseException) -> CallError:
    """The error a call resolves to when running it raised ``exc`` (not a cancel)."""
    if isinstance(exc, ToolTimeout):
        return CallError(ErrorKind.TIMEOUT, f"{tool.name} {exc}")
    if isinstance(exc, ToolFailed):
        return CallError(ErrorKind.TOOL_ERROR, f"{tool.name} raised {exc}")
    if isinstance(exc, WorkerLost):
        return CallError(ErrorKind.WORKER_LOST, f"{tool.name}: {exc}")
    # a bug of ours or an executor's: still resolve the call
    return CallError(ErrorKind.TOOL_ERROR, f"{tool.name} failed: {describe(exc)}")


MAX_ARGUMENT_CHARS = 1_000_000
"""The longest arguments text a model may write for one call."""


def _parse(raw: str) -> dict[str, Any] | str:
    """The arguments object, or why it is not acceptable (for an ``invalid_arguments`` error)."""
    if len(raw) > MAX_ARGUMENT_CHARS:
        return f"arguments are too long ({len(raw):,} characters; at most {MAX_ARGUMENT_CHARS:,})"
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except RecursionError:
        return f"arguments nest too deeply (at most {MAX_NESTING} levels)"
    except ValueError as exc:
        return f"arguments are not valid JSON ({exc})"
    if not isinstance(arguments, dict):
        return "arguments must be a JSON object"
    # each level of nesting opens a bracket in the text: fewer brackets than the limit cannot exceed it
    if raw.count("{") + raw.count("[") > MAX_NESTING and nesting_exceeds(arguments):
        return f"arguments nest too deeply (at most {MAX_NESTING} levels)"
    return arguments


class Scheduler:
    """Per session: numbers calls in program order, owns their futures and tasks."""

    def __init__(
        self,
        tools: Mapping[str, Tool],
        executor: Executor,
        trace: Trace,
        mode: Mode | str,
        *,
        max_concurrency: int | None = None,
        on_resolved: Callable[[Call], None] | None = None,
    ) -> None:
        self.tools = tools
        self.executor = executor
        self.trace = trace
        self.mode = Mode.of(mode)
        self.calls: list[Call] = []
        trace.follow(self.calls)
        self.hazards = HazardIndex()
        self._tasks: dict[Call, asyncio.Future[Any] | _Gate] = {}
        self._cancel_reasons: dict[Call, str] = {}
        self._slots = max_concurrency or None
        """Free slots under a per-session limit (None: no limit); ``_queue`` waits for them."""
        self._queue: deque[_Gate] = deque()
        self._on_resolved = on_resolved

    def lookup(self, seq: int) -> Future | None:
        return self.calls[seq - 1].future if 0 < seq <= len(self.calls) else None

    def submit(
        self, tool_call_id: str, name: str, raw_arguments: str, *, user_turn: int = 0, step: int = 0
    ) -> Call:
        """Take a call in program order; it resolves later (or at once, for bad input).

        Never raises for anything the model wrote: bad input resolves the call to an error.
        """
        call = Call(len(self.calls) + 1, tool_call_id, name, raw_arguments, user_turn, step)
        call.emitted_at = self.trace.now()
        self.calls.append(call)
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            return self._fail(
                call, ErrorKind.UNKNOWN_TOOL, f"unknown tool {name!r}; available tools: {known}"
            )
        problem = _parse(raw_arguments)
        if isinstance(problem, str):
            return self._fail(call, ErrorKind.INVALID_ARGUMENTS, problem)
        arguments = problem
        call.arguments = arguments
        deps: Sequence[Call] = ()  # empty tuples, not fresh containers: thousands of calls wait at once
        waits: Collection[Call] = ()
        kwargs: dict[str, Any] | None = None
        refs = references_in(raw_arguments, arguments) if self.mode.shows_futures else []
        if refs:
            unknown = [r for r in refs if not 0 < r < call.seq]
            if unknown:
                ids = ", ".join(future_id(r) for r in unknown)
                return self._fail(
                    call, ErrorKind.UNKNOWN_FUTURE, f"unknown future {ids} (not issued in this session)"
                )
            deps = [self.calls[r - 1] for r in refs]
            call.deps = tuple(refs)
        else:  # the arguments are final: validate now, so labels come from what the tool will get
            try:
                kwargs = tool.validate(arguments)
            except ArgumentsError as exc:
                return self._fail(
                    call, ErrorKind.INVALID_ARGUMENTS, f"invalid arguments for {tool.name}: {exc}"
                )
            call.resolved_arguments = arguments
        if self.mode.one_at_a_time:  # program order, whoever submits: each call waits for the one before
            previous = self.calls[-2] if len(self.calls) > 1 else None
            if previous is not None and not previous.done:
                waits = (previous,)
        elif self.mode.shows_futures:
            # a field that holds a reference is unknown until it resolves: its label is widened
            reads, writes = (
                tool.labels(kwargs, holds_reference, validated=True)
                if kwargs is not None
                else tool.labels(arguments, holds_reference)
            )
            conflicts = self.hazards.register(call, reads, writes)
            if conflicts:
                waits = conflicts
                call.waited_for = tuple(sorted(c.seq for c in conflicts))
        # no task of our own: a call that must wait does so in a _Gate
        if kwargs is not None and not waits and self._claim_slot():
            self._dispatch(call, tool, kwargs)
        else:
            self._tasks[call] = _Gate(self, call, tool, arguments, deps, waits, kwargs)
        return call

    def _claim_slot(self) -> bool:
        """Take a slot of the per-session limit if one is free (without a limit: always)."""
        if self._slots is None:
            return True
        if self._slots > 0:
            self._slots -= 1
            return True
        return False

    def _free_slot(self) -> None:
        """A call ended: under a per-session limit, the oldest queued call takes its slot."""
        if self._slots is None:
            return
        while self._queue:
            gate = self._queue.popleft()
            if self._tasks.get(gate.call) is gate:
                gate.loop.call_soon(gate.start, context=gate.context)
                return
        self._slots += 1

    def _dispatch(self, call: Call, tool: Tool, kwargs: dict[str, Any]) -> None:
        """Hand a call that may start now to the executor. An async tool comes back as the
        executor's outcome future, so the call costs one task (the tool's), not two."""
        call.dispatched_at = self.trace.now()
        token = running_call.set((call, self.trace))  # the tool's task copies the context now
        try:
            self._tasks[call] = self.executor.run(
                tool, kwargs, _Started(call, self.trace.t0), _Finished(self, call, tool)
            )
        except BaseException as exc:  # a bug of ours or an executor's: still resolve the call
            self._resolve(call, error=_failure(tool, exc))
            self.hazards.finish(call)
            self._free_slot()
        finally:
            running_call.reset(token)

    def _finished(self, call: Call, tool: Tool, outcome: asyncio.Future[Any]) -> None:
        if outcome.cancelled():
            self._resolve(call, error=self._cancelled(call))
        else:
            exc = outcome.exception()
            if exc is None:
                self._resolve(call, value=jsonable(outcome.result()))
            else:
                self._resolve(call, error=_failure(tool, exc))
        self.hazards.finish(call)
        self._tasks.pop(call, None)
        self._free_slot()

    def repeat(self, original: Call, tool_call_id: str, *, user_turn: int = 0, step: int = 0) -> Call:
        """Take a call that repeats ``original``: it resolves to the same outcome without running."""
        call = Call(len(self.calls) + 1, tool_call_id, original.name, original.raw_arguments, user_turn, step)
        call.emitted_at = self.trace.now()
        call.arguments = original.arguments
        call.repeat_of = original.seq
        self.calls.append(call)
        self._tasks[call] = asyncio.create_task(
            self._mirror(call, original), name=f"asyncfc:{call.id}:repeat"
        )
        return call

    async def _mirror(self, call: Call, original: Call) -> None:
        try:
            await original.future.wait()
        except asyncio.CancelledError:
            self._resolve(call, error=self._cancelled(call))
            raise
        finally:
            self._tasks.pop(call, None)
        call.resolved_arguments = original.resolved_arguments
        self._resolve(call, value=original.value, error=original.error)

    def _prepare(
        self,
        call: Call,
        tool: Tool,
        arguments: dict[str, Any],
        deps: Sequence[Call],
        kwargs: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """Once the calls it waited for resolved: the keyword arguments to run ``call`` with,
        or None when it resolved to an error instead (a failed dependency, a bad reference)."""
        failed = [d for d in deps if d.error is not None]
        if failed:
            first = failed[0]
            assert first.error is not None
            self._resolve(
                call,
                error=CallError(
                    ErrorKind.DEPENDENCY_FAILED,
                    f"not run: {first.id} ({first.name}) failed with {first.error.kind.value}: {first.error.message}",
                ),
            )
            return None
        if kwargs is not None:
            return kwargs
        try:
            resolved = substitute(arguments, self.lookup, tool.text_params)
            call.resolved_arguments = resolved
            return tool.validate(resolved)
        except ReferenceError_ as exc:
            self._resolve(call, error=exc.error)
        except ArgumentsError as exc:
            self._resolve(
                call,
                error=CallError(ErrorKind.INVALID_ARGUMENTS, f"invalid arguments for {tool.name}: {exc}"),
            )
        return None

    def _fail(self, call: Call, kind: ErrorKind, message: str) -> Call:
        call.finished_at = self.trace.now()
        call.future.set_error(CallError(kind, message))
        self._record(call)
        return call

    def _cancelled(self, call: Call) -> CallError:
        """The error of a call cancelled before it finished (with the reason given, if any)."""
        reason = self._cancel_reasons.pop(call, "the session was closed before the call finished")
        return CallError(ErrorKind.CANCELLED, f"cancelled: {reason}")

    def _resolve(self, call: Call, *, value: Any = None, error: CallError | None = None) -> None:
        if call.future.done:
            return
        call.finished_at = self.trace.now()
        if error is not None:
            call.future.set_error(error)
        else:
            call.future.set_value(value)
        self._record(call)

    def _record(self, call: Call) -> None:
        if self._on_resolved is not None:
            self._on_resolved(call)

    @property
    def pending(self) -> list[Call]:
        return [c for c in self.calls if not c.done]

    async def wait_all(self, calls: list[Call] | None = None) -> None:
        for c in calls if calls is not None else list(self.calls):
            await c.future.wait()

    def cancel_call(self, call: Call, reason: str) -> None:
        """Cancel one pending call; it resolves to ``cancelled: <reason>`` (its dependants fail)."""
        task = self._tasks.get(call)
        if task is not None and not call.done:
            self._cancel_reasons[call] = reason
            task.cancel()  # a waiting call (a _Gate) resolves at once

    async def cancel(self) -> None:
        """Cancel every pending call; each resolves to a ``cancelled`` error."""
        pending = list(self._tasks.values())
        for t in pending:
            t.cancel()
        tasks = [t for t in pending if isinstance(t, asyncio.Future)]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for c in [c for c, t in self._tasks.items() if isinstance(t, asyncio.Future) and t.done()]:
            del self._tasks[c]  # cancelled before they started, so they could not remove themselves
        for c in self.calls:
            if not c.done:  # never started: resolve it anyway so nothing is left hanging
                self._resolve(c, error=CallError(ErrorKind.CANCELLED, "cancelled: the session was closed"))
