"""The executor interface, and the default executor: async tools on the event loop, sync
tools in daemon worker threads.

An executor decides *where* a call runs; the scheduler decides *when*. Every executor
keeps one contract (``await executor.run(tool, kwargs, on_start)``): the tool's value,
or :class:`ToolTimeout`, :class:`ToolFailed` (whatever the tool raised, ``BaseException``
included) or :class:`WorkerLost`; ``asyncio.CancelledError`` only when the awaiting task
itself was cancelled (or the awaited future was). Subclasses override
:meth:`Executor._run_sync` (and may run async tools remotely too).

Timeouts are enforced here and never wait for the tool: an async tool runs in its own
task, which fills in a plain outcome future that a loop timer fails at the deadline, so
one that swallows its cancellation still resolves ``timeout`` on time (the stubborn task
is tracked and awaited by :meth:`Executor.close`). An async tool whose limits have room
starts before ``run`` returns, and that outcome future is what ``run`` returns: one task
per call. A sync tool's thread cannot be killed: its late result is discarded, and
because worker threads are daemon threads it does not keep the interpreter from exiting.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import queue
import sys
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypeVar

from ..errors import AsyncFCError, check_number, describe
from ..tools import Tool
from ._worker import drained

ExecutorKind = Literal["threads", "processes", "ray"]
_T = TypeVar("_T")


class ToolTimeout(Exception):
    """A tool ran past its timeout."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"timed out after {seconds:g} s")
        self.seconds = seconds


class ToolFailed(Exception):
    """The tool raised; ``error`` is what it raised, ``BaseException`` included.

    Wrapping keeps a tool's ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit`` or
    ``CancelledError`` from being taken for the event loop's own: the call resolves to a
    ``tool_error`` and the run goes on.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(describe(error))
        self.error = error


class WorkerLost(Exception):
    """The worker (thread, process or cluster node) running the call went away."""


class ExecutorUnavailable(AsyncFCError):
    """An executor cannot start or reach its workers (e.g. the Ray cluster is unreachable)."""


class _Raised:
    """What a sync tool's wrapper returns instead of letting a ``BaseException`` leave the thread."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _guarded(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    try:
        return drained(fn(**kwargs))
    except BaseException as exc:  # noqa: BLE001 - every outcome of a tool is a value
        return _Raised(exc)


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


@dataclass(eq=False)
class _Job:
    """One sync call handed to a worker thread."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    fn: Callable[..., Any]
    kwargs: Mapping[str, Any]
    finished: bool = False
    abandoned: bool = False


class _Generation:
    """The queue and idle count of the threads started between two ``close`` calls."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.idle = threading.Semaphore(0)
        self.threads: set[threading.Thread] = set()
        self.busy: set[threading.Thread] = set()


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


def _deliver(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


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


class _DaemonThreadPool:
    """A thread pool whose threads are daemons (interpreter exit does not wait for a hung
    tool) and where a thread abandoned by a timeout stops counting against the limit (so a
    few hung tools cannot starve the pool)."""

    def __init__(self, max_threads: int, prefix: str) -> None:
        self.max_threads = max_threads
        self.prefix = prefix
        self._lock = threading.Lock()
        self._gen = _Generation()
        self._extra = 0
        self._counter = 0
        self._left: list[threading.Thread] = []
        """Threads of earlier generations still running a tool at their ``close``."""

    def submit(self, fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> _Job:
        loop = asyncio.get_running_loop()
        job = _Job(loop, loop.create_future(), fn, kwargs)
        gen = self._gen
        gen.queue.put(job)
        if gen.idle.acquire(blocking=False):
            return job  # an idle thread takes it
        with self._lock:
            if len(gen.threads) < self.max_threads + self._extra:
                self._counter += 1
                t = threading.Thread(
                    target=self._work, args=(gen,), name=f"{self.prefix}-{self._counter}", daemon=True
                )
                gen.threads.add(t)
                t.start()
        return job

    def abandon(self, job: _Job) -> None:
        """The call gave up on ``job`` (timeout or cancel): discard its result, free its slot."""
        job.future.cancel()
        with self._lock:
            if not job.finished and not job.abandoned:
                job.abandoned = True
                self._extra += 1

    def _work(self, gen: _Generation) -> None:
        me = threading.current_thread()
        while True:
            job = gen.queue.get()
            if job is None:
                break
            with self._lock:
                gen.busy.add(me)
            value = _guarded(job.fn, job.kwargs)
            with self._lock:
                gen.busy.discard(me)
                job.finished = True
                abandoned = job.abandoned
                if abandoned:
                    self._extra -= 1
            if not abandoned:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    job.loop.call_soon_threadsafe(_deliver, job.future, value)
            del job, value
            if abandoned:
                break  # a fresh thread replaced this one when the call gave up on it
            gen.idle.release()
        with self._lock:
            gen.threads.discard(me)

    @property
    def threads(self) -> int:
        return len(self._gen.threads)

    def close(self, wait: bool) -> list[threading.Thread]:
        """Stop every thread; join the idle ones (all of them with ``wait``). Returns the
        threads still running a tool (abandoned ones included): daemons, they end with it."""
        with self._lock:
            gen, self._gen = self._gen, _Generation()
            threads = list(gen.threads)
            busy = set(gen.busy)
        for _ in threads:
            gen.queue.put(None)
        left = []
        for t in [*self._left, *threads]:
            t.join(None if wait else (0.5 if t not in busy else 0.0))
            if t.is_alive():
                left.append(t)
        self._left = left
        return left


STRAGGLER_WAIT_S = 5.0
"""How long :meth:`Executor.close` waits for async tools that ignored their cancellation."""


class Executor:
    """Where calls run; shared by all sessions of an agent. This base class is the
    ``"threads"`` executor: async tools on the event loop, sync tools in daemon threads.

    Global and per-tool concurrency limits apply to every executor.
    """

    kind: ExecutorKind = "threads"

    def __init__(
        self,
        *,
        default_timeout: float | None = 60.0,
        max_concurrency: int | None = None,
        tool_limits: Mapping[str, int] | None = None,
        max_threads: int = 32,
    ) -> None:
        check_number("default_timeout", default_timeout, 0, above=True, none=True)
        check_number("max_concurrency", max_concurrency, 1, integer=True, none=True)
        for name, limit in (tool_limits or {}).items():
            check_number(f"tool_limits[{name!r}]", limit, 1, integer=True)
        check_number("max_threads", max_threads, 1, integer=True)
        self.default_timeout = default_timeout
        self.max_concurrency = max_concurrency
        self.tool_limits = dict(tool_limits or {})
        self._pool = _DaemonThreadPool(max_threads, "asyncfc-tool")
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
        self.abandoned_threads: list[threading.Thread] = []
        """After :meth:`close`: threads still running a sync tool that timed out (daemons)."""
        self.abandoned_tasks: list[asyncio.Task[Any]] = []
        """After :meth:`close`: async tools still running :data:`STRAGGLER_WAIT_S` after it
        began, though cancelled (each one also warned about)."""

    # -- the contract -----------------------------------------------------------------

    def check(self, tool: Tool) -> None:
        """Raise :class:`~asyncfc.ToolDefinitionError` if ``tool`` cannot run on this executor."""

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
        own; otherwise a task waits for the limits first (or for a worker, for sync tools).
        """
        if self._loop is not asyncio.get_running_loop():
            self._bind()
        shared = self._global
        own = self._per_tool.get(tool.name) if self._per_tool else None
        local_async = tool.is_async and not self._runs_async_remotely(tool)
        if local_async and (shared is None or shared.try_acquire()):
            if own is None or own.try_acquire():
                return self._start_async(tool, kwargs, on_start, shared, own, on_done)
            if shared is not None:
                shared.release()
        task = asyncio.get_running_loop().create_task(
            self._queued(tool, kwargs, on_start, shared, own), name=f"asyncfc:{tool.name}"
        )
        if on_done is not None:
            task.add_done_callback(on_done, context=self._context)
        return task

    async def _queued(
        self,
        tool: Tool,
        kwargs: Mapping[str, Any],
        on_start: Callable[[float], None],
        shared: Limit | None,
        own: Limit | None,
    ) -> Any:
        """A call that waits for its limits (taken and released in this order), or runs in
        :meth:`_run_sync`'s workers."""
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
        if tool.is_async and not self._runs_async_remotely(tool):
            return await self._start_async(tool, kwargs, on_start, shared, own)  # it releases them
        self._count(name, 1)
        try:
            value = await self._run_sync(tool, kwargs, self._timeout_of(tool), on_start)
        finally:
            self._count(name, -1)
            if own is not None:
                own.release()
            if shared is not None:
                shared.release()
        if isinstance(value, _Raised):
            raise ToolFailed(value.error)
        return value

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

    def _runs_async_remotely(self, tool: Tool) -> bool:
        """Whether an async tool goes to :meth:`_run_sync`'s workers instead of the loop."""
        return False

    async def _run_sync(
        self, tool: Tool, kwargs: Mapping[str, Any], timeout: float | None, on_start: Callable[[float], None]
    ) -> Any:
        """Run a sync tool in a worker thread; on timeout or cancel its result is discarded."""
        on_start(time.perf_counter())
        job = self._pool.submit(tool.fn, kwargs)
        return await self._wait(job.future, timeout, self._pool.abandon, job)

    async def close(self) -> None:
        """Release the workers. Waits up to :data:`STRAGGLER_WAIT_S` for async tools that
        ignored their cancellation, then leaves them, warns and lists them in
        :attr:`abandoned_tasks` (``asyncio.run`` itself still waits for every task at exit).
        Threads still running a timed-out sync tool are left to finish (they are daemons,
        so they do not keep the process alive) and listed in :attr:`abandoned_threads`.
        The executor may be used again afterwards: workers start on demand."""
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
        self._release(wait=False)

    def shutdown(self, wait: bool = False) -> None:
        """Synchronous :meth:`close` for code outside an event loop (stragglers are not awaited).

        With ``wait`` it joins every worker thread, hung ones included."""
        self._release(wait=wait)

    def _release(self, wait: bool) -> None:
        self.abandoned_threads = self._pool.close(wait)

    async def __aenter__(self) -> Executor:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def worker_threads(self) -> int:
        """Live worker threads (idle, busy or abandoned)."""
        return self._pool.threads

    # -- shared machinery ----------------------------------------------------------------

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
            self._on_new_loop()

    def _on_new_loop(self) -> None:
        """Subclasses reset their loop-bound state here."""

    def _give_up(self, task: asyncio.Task[Any]) -> None:
        """Cancel an async tool's task without waiting for it; keep it until it ends."""
        task.cancel()
        self._stragglers.add(task)
        task.add_done_callback(self._straggler_done)

    def _straggler_done(self, task: asyncio.Task[Any]) -> None:
        self._stragglers.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a late failure is not "never retrieved"

    async def _wait(
        self, fut: asyncio.Future[Any], timeout: float | None, give_up: Callable[[_T], None], subject: _T
    ) -> Any:
        """``fut``'s result (a worker fills it in), or :class:`ToolTimeout` at the deadline (a
        timer fails ``fut``); on a timeout or a cancel ``give_up(subject)`` is called instead
        of waiting for the worker to notice."""
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

    def _deadlines_of(self, timeout: float) -> _Deadlines:
        deadlines = self._deadlines.get(timeout)
        if deadlines is None:
            deadlines = self._deadlines[timeout] = _Deadlines(asyncio.get_running_loop(), timeout)
        return deadlines

    @staticmethod
    async def _bounded(awaitable: Awaitable[Any], timeout: float | None) -> Any:
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
