"""The ``"threads"`` executor, the default: async tools on the event loop, sync tools in
daemon worker threads.

It needs nothing beyond the standard library, so a plain install runs every tool. A sync
tool's thread cannot be killed: at its timeout the call resolves ``timeout`` at once, its
late result is discarded, and because worker threads are daemon threads a hung tool does
not keep the interpreter from exiting (use the ``processes`` executor to kill it).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import check_number
from ..tools import Tool
from ._worker import drained
from .base import Executor, ExecutorKind, ToolFailed

__all__ = ["ThreadExecutor"]


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


def _deliver(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


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


class ThreadExecutor(Executor):
    """Async tools on the event loop, sync tools in up to ``max_threads`` daemon threads.

    A thread whose call timed out or was cancelled no longer counts against
    ``max_threads`` (a few hung tools cannot starve the pool); after :meth:`close` it is
    listed in :attr:`abandoned_threads` until its tool returns.
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
        super().__init__(
            default_timeout=default_timeout, max_concurrency=max_concurrency, tool_limits=tool_limits
        )
        check_number("max_threads", max_threads, 1, integer=True)
        self._pool = _DaemonThreadPool(max_threads, "asyncfc-tool")
        self.abandoned_threads: list[threading.Thread] = []
        """After :meth:`close`: threads still running a sync tool that timed out (daemons)."""

    async def run_in_worker(
        self, tool: Tool, kwargs: Mapping[str, Any], timeout: float | None, on_start: Callable[[float], None]
    ) -> Any:
        """Run a sync tool in a worker thread; on timeout or cancel its result is discarded."""
        on_start(time.perf_counter())
        job = self._pool.submit(tool.fn, kwargs)
        value = await self.with_deadline(job.future, timeout, self._pool.abandon, job)
        if isinstance(value, _Raised):
            raise ToolFailed(value.error)
        return value

    def release_workers(self, wait: bool) -> None:
        """Stop the idle threads; with ``wait``, join the busy ones too (hung ones included)."""
        self.abandoned_threads = self._pool.close(wait)

    @property
    def worker_threads(self) -> int:
        """Live worker threads (idle, busy or abandoned)."""
        return self._pool.threads
