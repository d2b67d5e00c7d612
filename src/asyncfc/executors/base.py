"""The executor interface: the contract the scheduler relies on, the machinery every
executor shares, and the public hooks through which an executor decides where a call runs.

It lives apart from any one executor so that the thread, process and Ray executors are
peers built on the same documented hooks, and a new executor needs no private method.

An executor decides *where* a call runs; the scheduler decides *when*. Every executor
keeps one contract (``await executor.run(tool, kwargs, on_start)``): the tool's value,
or :class:`ToolTimeout`, :class:`ToolFailed` (whatever the tool raised, ``BaseException``
included) or :class:`WorkerLost`; ``asyncio.CancelledError`` only when the awaiting task
itself was cancelled (or the awaited future was).

What :class:`Executor` does for every subclass: global and per-tool concurrency limits,
timeouts, async tools on the event loop, and closing (waiting a while for async tools
that ignore their cancellation). What a subclass provides, through the hooks:
:meth:`Executor.run_in_worker` (run one call in its workers: threads, processes, a
cluster), :meth:`Executor.release_workers` (stop them), and optionally
:meth:`Executor.uses_worker` (which calls go to the workers: by default the sync ones),
:meth:`Executor.check` (refuse a tool it cannot run) and :meth:`Executor.on_new_loop`
(reset state bound to one event loop). :meth:`Executor.with_deadline` and
:meth:`Executor.with_timeout` are the helpers a hook uses to enforce a call's timeout.

Timeouts are enforced here and never wait for the tool: an async tool runs in its own
task, which fills in a plain outcome future that a loop timer fails at the deadline, so
one that swallows its cancellation still resolves ``timeout`` on time (the stubborn task
is tracked and awaited by :meth:`Executor.close`). An async tool whose limits have room
starts before ``run`` returns, and that outcome future is what ``run`` returns: one task
per call.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextvars
import importlib
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Literal, TypeVar

from ..errors import AsyncFCError, check_number, describe
from ..tools import Tool
from ._worker import drained

__all__ = [
    "STRAGGLER_WAIT_S",
    "Executor",
    "ExecutorKind",
    "ExecutorUnavailable",
    "Limit",
    "ToolFailed",
    "ToolTimeout",
    "WorkerLost",
    "import_extra",
]

ExecutorKind = Literal["threads", "processes", "ray"]
_T = TypeVar("_T")


class ToolTimeout(AsyncFCError):
    """A tool ran past its timeout."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"timed out after {seconds:g} s")
        self.seconds = seconds


class ToolFailed(AsyncFCError):
    """The tool raised; ``error`` is what it raised, ``BaseException`` included.

    Wrapping keeps a tool's ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit`` or
    ``CancelledError`` from being taken for the event loop's own: the call resolves to a
    ``tool_error`` and the run goes on.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(describe(error))
        self.error = error


class WorkerLost(AsyncFCError):
    """The worker (thread, process or cluster node) running the call went away."""


class ExecutorUnavailable(AsyncFCError):
    """An executor cannot start or reach its workers (e.g. the Ray cluster is unreachable,
    or the extra it needs is not installed)."""


def import_extra(module: str, kind: ExecutorKind) -> Any:
    """``module``, imported; or :class:`ExecutorUnavailable` naming the extra that installs it.

    The ``processes`` and ``ray`` executors need packages that a plain install leaves out:
    a developer who asks for one should learn what to install, not read an ``ImportError``.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExecutorUnavailable(
            f"the {kind} executor needs {module}: pip install 'asyncfc[{kind}]'"
        ) from None


async def _fulfil(
    outcome: asyncio.Future[Any], fn: Callable[..., Awaitable[Any]], kwargs: Mapping[str, Any]
) -> None:
    """An async tool's task: run it and put what it returns or raises into ``outcome``
    (unless the deadline or a cancel decided ``outcome`` first)."""
    try:
        value = drained(await fn(**kwargs))
    except asyncio.CancelledError as exc:
        if not outcome.done():  # we cancel only a call already decided: this is the tool's own
            outcome.set_exception(ToolFailed(exc))
        raise
    except (ToolFailed, WorkerLost) as exc:
        if not outcome.done():
            outcome.set_exception(exc)
    except BaseException as exc:  # noqa: BLE001
        if not outcome.done():
            outcome.set_exception(ToolFailed(exc))
    else:
        if not outcome.done():
            outcome.set_result(value)


class Limit:
    """A FIFO semaphore whose acquire and release are O(1).

    ``asyncio.Semaphore`` (3.11) scans its waiters on every acquire and removes a woken
    waiter from the middle of its deque: with thousands of calls queued on one limit, that
    made each call cost O(calls queued). A release hands the slot straight to the oldest
    live waiter, so the count only grows when nobody waits.
    """

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: int) -> None:
        self._value = value
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def try_acquire(self) -> bool:
        """Take a slot if one is free now (never while a live waiter is queued)."""
        if self._value > 0:
            self._value -= 1
            return True
        return False

    async def acquire(self) -> None:
        if self._value > 0:  # never positive while a live waiter is queued
            self._value -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed the slot, then cancelled before it resumed: pass it on
            raise  # a cancelled waiter stays queued; release skips it

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self._value += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class _Deadlines:
    """The deadlines of calls with one timeout length, in start order, behind one timer.

    A timer per call would put thousands of handles on the loop's heap (each push and pop
    compares in Python) only to cancel nearly all of them. Deadlines of one length arrive in
    increasing order, so a deque and a single armed timer do: finished calls at the front
    are dropped as new ones come, and the timer fails each call's outcome future still
    undecided at its deadline with :class:`ToolTimeout`.
    """

    __slots__ = ("_loop", "_outcomes", "_timeout", "_timer", "_whens")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        # two deques in step rather than one of (deadline, outcome) pairs: no tuple per call
        self._whens: collections.deque[float] = collections.deque()
        self._outcomes: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, outcome: asyncio.Future[Any]) -> None:
        self.forget_done()
        self._whens.append(self._loop.time() + self._timeout)
        self._outcomes.append(outcome)
        if self._timer is None:
            self._arm()

    def forget_done(self) -> None:
        """Drop finished calls from the front (calls mostly finish in start order)."""
        outcomes = self._outcomes
        while outcomes and outcomes[0].done():
            outcomes.popleft()
            self._whens.popleft()

    def _arm(self) -> None:
        when = self._whens[0]
        self._timer = self._loop.call_at(when, self._expire, when)

    def _expire(self, when: float) -> None:
        self._timer = None
        whens, outcomes = self._whens, self._outcomes
        now = max(when, self._loop.time())
        while outcomes and (whens[0] <= now or outcomes[0].done()):
            whens.popleft()
            outcome = outcomes.popleft()
            if not outcome.done():
                outcome.set_exception(ToolTimeout(self._timeout))
        if outcomes:
            self._arm()


class _Decided:
    """Done callback of an async call's outcome future (a slotted object, not a closure):
    release its limits and, when the deadline or a cancel decided it, give up its task."""

    __slots__ = ("deadlines", "executor", "name", "on_done", "own", "shared", "task")

    def __init__(
        self,
        executor: Executor,
        task: asyncio.Task[None],
        name: str,
        shared: Limit | None,
        own: Limit | None,
        deadlines: _Deadlines | None,
        on_done: Callable[[asyncio.Future[Any]], None] | None,
    ) -> None:
        self.executor = executor
        self.task = task
        self.name = name
        self.shared = shared
        self.own = own
        self.deadlines = deadlines
        self.on_done = on_done

    def __call__(self, outcome: asyncio.Future[Any]) -> None:
        executor = self.executor
        executor._count(self.name, -1)
        if self.own is not None:
            self.own.release()
        if self.shared is not None:
            self.shared.release()
        if self.deadlines is not None:
            self.deadlines.forget_done()
        if not self.task.done():
            self.task.set_name(f"async tool {self.name!r}")  # for the warning if it outlives close()
            executor._give_up(self.task)
        if self.on_done is not None:
            self.on_done(outcome)


STRAGGLER_WAIT_S = 5.0
"""How long :meth:`Executor.close` waits for async tools that ignored their cancellation."""


class Executor(abc.ABC):
    """Where calls run; shared by all sessions of an agent. The interface the scheduler
    relies on (:meth:`run`, :meth:`close`, :meth:`shutdown`), with the limits, timeouts
    and closing that every executor shares.

    A subclass implements :meth:`run_in_worker` and :meth:`release_workers`; it may
    override :meth:`uses_worker`, :meth:`check` and :meth:`on_new_loop`. Nothing else is
    meant to be overridden.
    """

    kind: ExecutorKind
    """The name :func:`~asyncfc.executors.make_executor` knows this executor by."""

    def __init__(
        self,
        *,
        default_timeout: float | None = 60.0,
        max_concurrency: int | None = None,
        tool_limits: Mapping[str, int] | None = None,
    ) -> None:
        check_number("default_timeout", default_timeout, 0, above=True, none=True)
        check_number("max_concurrency", max_concurrency, 1, integer=True, none=True)
        for name, limit in (tool_limits or {}).items():
            check_number(f"tool_limits[{name!r}]", limit, 1, integer=True)
        self.default_timeout = default_timeout
        self.max_concurrency = max_concurrency
        self.tool_limits = dict(tool_limits or {})
        self._loop: asyncio.AbstractEventLoop | None = None
        self._global: Limit | None = None
        self._per_tool: dict[str, Limit] = {}
        self._stragglers: set[asyncio.Task[Any]] = set()
        self._deadlines: dict[float, _Deadlines] = {}
        self._context = contextvars.Context()
        """What the executor's own done callbacks run in (one per event loop)."""
        self.running = 0
        self.peak_running = 0
        self.peak_per_tool: dict[str, int] = {}
        self._per_tool_running: dict[str, int] = {}
        self.abandoned_tasks: list[asyncio.Task[Any]] = []
        """After :meth:`close`: async tools still running :data:`STRAGGLER_WAIT_S` after it
        began, though cancelled (each one also warned about)."""

    # -- hooks: what a subclass provides ---------------------------------------------------

    @abc.abstractmethod
    async def run_in_worker(
        self, tool: Tool, kwargs: Mapping[str, Any], timeout: float | None, on_start: Callable[[float], None]
    ) -> Any:
        """Run one call of ``tool`` in this executor's workers; the tool's value.

        Why a hook: this is the one thing executors differ in (a thread, a process that can
        be killed, a cluster task). The limits are already taken, and released when this
        returns. Call ``on_start(time.perf_counter())`` when the tool starts (not while it
        waits for a worker). Raise :class:`ToolFailed` with what the tool raised,
        :class:`ToolTimeout` once ``timeout`` seconds have passed (use :meth:`with_deadline`
        or :meth:`with_timeout`; never wait for the tool), :class:`WorkerLost` if the worker
        went away. On cancellation, stop or abandon the call and let ``CancelledError`` out.
        """

    @abc.abstractmethod
    def release_workers(self, wait: bool) -> None:
        """Stop this executor's workers (they start again on demand).

        Why a hook: only the executor knows what its workers are. Called by :meth:`close`
        (``wait=False``) and :meth:`shutdown`; with ``wait`` a call still running may be
        waited for, without it it must not be. Must not raise if there is nothing to stop.
        """

    def uses_worker(self, tool: Tool) -> bool:
        """Whether ``tool``'s calls go to :meth:`run_in_worker` rather than the event loop.

        Why a hook: an executor that can run coroutines remotely (Ray's ``remote_async``)
        sends async tools too. By default only sync tools do; sync tools always do,
        whatever this returns.
        """
        return not tool.is_async

    def check(self, tool: Tool) -> None:  # noqa: B027 - an optional hook: nothing to do by default
        """Raise :class:`~asyncfc.ToolDefinitionError` if ``tool`` cannot run on this executor.

        Why a hook: an executor that sends functions elsewhere refuses one it cannot send
        (e.g. one that cannot be pickled), before any call is made. Accepts every tool by
        default.
        """

    def on_new_loop(self) -> None:  # noqa: B027 - an optional hook: nothing to do by default
        """Reset state that belongs to one event loop (semaphores, futures).

        Why a hook: an executor outlives event loops (each ``run_sync`` has its own); this
        runs on the first call in a new loop, after the shared limits were made afresh.
        """

    # -- the contract ------------------------------------------------------------------

    def run(
        self,
        tool: Tool,
        kwargs: Mapping[str, Any],
        on_start: Callable[[float], None],
        on_done: Callable[[asyncio.Future[Any]], None] | None = None,
    ) -> asyncio.Future[Any]:
        """Start one call; its outcome future. Awaiting it gives the tool's value or raises
        :class:`ToolTimeout`, :class:`ToolFailed` or :class:`WorkerLost`; cancelling it
        cancels the call. ``on_done(outcome)`` runs once it is decided, after the
        executor's own bookkeeping (one done callback per call, not two).

        An async tool whose limits have room starts now, on the loop, with no task but its
        own; otherwise a task waits for the limits first (or for a worker, for
        :meth:`run_in_worker`'s calls).
        """
        if self._loop is not asyncio.get_running_loop():
            self._bind()
        shared = self._global
        own = self._per_tool.get(tool.name) if self._per_tool else None
        on_loop = tool.is_async and not self.uses_worker(tool)
        if on_loop and (shared is None or shared.try_acquire()):
            if own is None or own.try_acquire():
                return self._start_async(tool, kwargs, on_start, shared, own, on_done)
            if shared is not None:
                shared.release()
        task = asyncio.get_running_loop().create_task(
            self._queued(tool, kwargs, on_start, shared, own, on_loop), name=f"asyncfc:{tool.name}"
        )
        if on_done is not None:
            task.add_done_callback(on_done, context=self._context)
        return task

    async def close(self) -> None:
        """Release the workers. Waits up to :data:`STRAGGLER_WAIT_S` for async tools that
        ignored their cancellation, then leaves them, warns and lists them in
        :attr:`abandoned_tasks` (``asyncio.run`` itself still waits for every task at exit).
        A worker still running a timed-out call is stopped or left as
        :meth:`release_workers` decides, never waited for. The executor may be used again
        afterwards: workers start on demand."""
        if self._stragglers:
            await asyncio.wait(list(self._stragglers), timeout=STRAGGLER_WAIT_S)
        self.abandoned_tasks = [t for t in self._stragglers if not t.done()]
        for task in self.abandoned_tasks:
            warnings.warn(
                f"{task.get_name()} ignored its cancellation and still runs {STRAGGLER_WAIT_S:g} s later; "
                "left running (asyncio.run will wait for it at exit)",
                RuntimeWarning,
                stacklevel=2,
            )
        self.release_workers(wait=False)

    def shutdown(self, wait: bool = False) -> None:
        """Synchronous :meth:`close` for code outside an event loop (stragglers are not awaited).

        With ``wait`` it waits for every worker, hung ones included (see
        :meth:`release_workers`)."""
        self.release_workers(wait=wait)

    async def __aenter__(self) -> Executor:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- helpers for hooks ---------------------------------------------------------------

    async def with_deadline(
        self, fut: asyncio.Future[Any], timeout: float | None, give_up: Callable[[_T], None], subject: _T
    ) -> Any:
        """``fut``'s result (a worker fills it in), or :class:`ToolTimeout` at the deadline.

        For workers that cannot be interrupted (threads): the shared deadline timer fails
        ``fut`` on time whatever the worker does, and on a timeout or a cancel
        ``give_up(subject)`` is called instead of waiting for the worker to notice.
        """
        deadlines = self._deadlines_of(timeout) if timeout is not None and not fut.done() else None
        if deadlines is not None:
            deadlines.add(fut)
        try:
            return await fut
        except (asyncio.CancelledError, ToolTimeout):
            give_up(subject)
            raise
        finally:
            if deadlines is not None:
                deadlines.forget_done()

    @staticmethod
    async def with_timeout(awaitable: Awaitable[Any], timeout: float | None) -> Any:
        """``awaitable``'s result, or :class:`ToolTimeout` once ``timeout`` seconds have passed.

        For awaitables that honour cancellation (remote calls, which kill their worker
        when cancelled). The tool's own exceptions arrive wrapped in :class:`ToolFailed`,
        so a ``TimeoutError`` here is always the deadline's.
        """
        if timeout is None:
            return await awaitable
        if sys.version_info < (3, 11):
            try:
                return await asyncio.wait_for(awaitable, timeout)
            except asyncio.TimeoutError:
                raise ToolTimeout(timeout) from None
        try:
            async with asyncio.timeout(timeout):
                return await awaitable
        except TimeoutError:
            raise ToolTimeout(timeout) from None

    # -- shared machinery ----------------------------------------------------------------

    async def _queued(
        self,
        tool: Tool,
        kwargs: Mapping[str, Any],
        on_start: Callable[[float], None],
        shared: Limit | None,
        own: Limit | None,
        on_loop: bool,
    ) -> Any:
        """A call that waits for its limits (taken and released in this order), or runs in
        :meth:`run_in_worker`'s workers."""
        name = tool.name
        if shared is not None:
            await shared.acquire()
        try:
            if own is not None:
                await own.acquire()
        except BaseException:
            if shared is not None:
                shared.release()
            raise
        if on_loop:
            return await self._start_async(tool, kwargs, on_start, shared, own)  # it releases them
        self._count(name, 1)
        try:
            return await self.run_in_worker(tool, kwargs, self._timeout_of(tool), on_start)
        finally:
            self._count(name, -1)
            if own is not None:
                own.release()
            if shared is not None:
                shared.release()

    def _start_async(
        self,
        tool: Tool,
        kwargs: Mapping[str, Any],
        on_start: Callable[[float], None],
        shared: Limit | None,
        own: Limit | None,
        on_done: Callable[[asyncio.Future[Any]], None] | None = None,
    ) -> asyncio.Future[Any]:
        """Start an async tool on the loop (its limits already taken); its outcome future."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[Any] = loop.create_future()
        self._count(tool.name, 1)
        on_start(time.perf_counter())
        task = loop.create_task(_fulfil(outcome, tool.fn, kwargs))
        timeout = self._timeout_of(tool)
        deadlines = self._deadlines_of(timeout) if timeout is not None else None
        if deadlines is not None:
            deadlines.add(outcome)
        # our own bookkeeping reads no context variables: one shared context, not a copy per call
        outcome.add_done_callback(
            _Decided(self, task, tool.name, shared, own, deadlines, on_done), context=self._context
        )
        return outcome

    def _timeout_of(self, tool: Tool) -> float | None:
        return tool.timeout if tool.timeout is not None else self.default_timeout

    def _count(self, name: str, step: int) -> None:
        """Calls running, overall and per tool, and their peaks."""
        self.running += step
        n = self._per_tool_running[name] = self._per_tool_running.get(name, 0) + step
        if step > 0:
            if self.running > self.peak_running:
                self.peak_running = self.running
            if n > self.peak_per_tool.get(name, 0):
                self.peak_per_tool[name] = n

    def _bind(self) -> None:
        """Semaphores belong to one event loop; make fresh ones when the loop changes."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._global = Limit(self.max_concurrency) if self.max_concurrency else None
            self._per_tool = {name: Limit(n) for name, n in self.tool_limits.items()}
            self._stragglers = {t for t in self._stragglers if not t.done()}
            self._deadlines = {}
            self._context = contextvars.Context()
            self.on_new_loop()

    def _give_up(self, task: asyncio.Task[Any]) -> None:
        """Cancel an async tool's task without waiting for it; keep it until it ends."""
        task.cancel()
        self._stragglers.add(task)
        task.add_done_callback(self._straggler_done)

    def _straggler_done(self, task: asyncio.Task[Any]) -> None:
        self._stragglers.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a late failure is not "never retrieved"

    def _deadlines_of(self, timeout: float) -> _Deadlines:
        deadlines = self._deadlines.get(timeout)
        if deadlines is None:
            deadlines = self._deadlines[timeout] = _Deadlines(asyncio.get_running_loop(), timeout)
        return deadlines
