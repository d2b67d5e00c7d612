"""Runs tool callables: async tools on the event loop, sync tools in worker threads.

Timeouts are enforced here. A timed-out *async* tool is cancelled; a timed-out *sync*
tool cannot be interrupted (Python threads cannot be killed): its future fails at once
and the thread's late result is discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .tools import Tool


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
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


class WorkerLost(Exception):
    """The worker (thread, process or cluster node) running the call went away."""


class _Raised:
    """What a sync tool's wrapper returns instead of letting a ``BaseException`` leave the thread."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _guarded(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    try:
        return fn(**kwargs)
    except BaseException as exc:  # noqa: BLE001 - every outcome of a tool is a value
        return _Raised(exc)


async def _guarded_async(fn: Callable[..., Awaitable[Any]], kwargs: Mapping[str, Any]) -> Any:
    try:
        return await fn(**kwargs)
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is None or sys.version_info < (3, 11) or task.cancelling():
            raise  # we were cancelled (timeout or session close): not the tool's doing
        raise ToolFailed(exc) from None
    except (ToolFailed, WorkerLost):
        raise
    except BaseException as exc:  # noqa: BLE001
        raise ToolFailed(exc) from None


class Executor:
    """Shared by all sessions of an agent: the thread pool and the global/per-tool limits."""

    def __init__(
        self,
        *,
        default_timeout: float | None = 60.0,
        max_concurrency: int | None = None,
        tool_limits: Mapping[str, int] | None = None,
        max_threads: int = 32,
    ) -> None:
        self.default_timeout = default_timeout
        self.max_concurrency = max_concurrency
        self.tool_limits = dict(tool_limits or {})
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="asyncfc-tool")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._global: asyncio.Semaphore | None = None
        self._per_tool: dict[str, asyncio.Semaphore] = {}
        self.running = 0
        self.peak_running = 0
        self.peak_per_tool: dict[str, int] = {}
        self._per_tool_running: dict[str, int] = {}

    def _bind(self) -> None:
        """Semaphores belong to one event loop; make fresh ones when the loop changes."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._global = asyncio.Semaphore(self.max_concurrency) if self.max_concurrency else None
            self._per_tool = {name: asyncio.Semaphore(n) for name, n in self.tool_limits.items()}

    @contextlib.asynccontextmanager
    async def _slot(self, name: str) -> AsyncIterator[None]:
        self._bind()
        sems = [s for s in (self._global, self._per_tool.get(name)) if s is not None]
        async with contextlib.AsyncExitStack() as stack:
            for s in sems:
                await stack.enter_async_context(s)
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
            n = self._per_tool_running[name] = self._per_tool_running.get(name, 0) + 1
            self.peak_per_tool[name] = max(self.peak_per_tool.get(name, 0), n)
            try:
                yield
            finally:
                self.running -= 1
                self._per_tool_running[name] -= 1

    async def run(self, tool: Tool, kwargs: Mapping[str, Any], on_start: Callable[[float], None]) -> Any:
        """Run one call to completion; raise :class:`ToolTimeout`, or :class:`ToolFailed` with what the tool raised."""
        timeout = tool.timeout if tool.timeout is not None else self.default_timeout
        async with self._slot(tool.name):
            on_start(time.perf_counter())
            if tool.is_async:
                awaitable: Any = _guarded_async(tool.fn, kwargs)
            else:
                loop = asyncio.get_running_loop()
                awaitable = loop.run_in_executor(self._pool, functools.partial(_guarded, tool.fn, kwargs))
            value = await self._bounded(awaitable, timeout)
            if isinstance(value, _Raised):
                raise ToolFailed(value.error)
            return value

    @staticmethod
    async def _bounded(awaitable: Awaitable[Any], timeout: float | None) -> Any:
        """``awaitable``'s result, or :class:`ToolTimeout` once ``timeout`` seconds have passed.

        The tool's own exceptions arrive wrapped in :class:`ToolFailed`, so a ``TimeoutError``
        here is always the deadline's.
        """
        if timeout is None:
            return await awaitable
        if sys.version_info < (3, 11):
            try:
                return await asyncio.wait_for(awaitable, timeout)
            except asyncio.TimeoutError:
                raise ToolTimeout(timeout) from None
        scope = asyncio.timeout(timeout)  # a timeout scope: no extra task per call
        try:
            async with scope:
                value = await awaitable
        except TimeoutError:
            raise ToolTimeout(timeout) from None
        if scope.expired():  # the tool swallowed the cancellation and returned late
            raise ToolTimeout(timeout)
        return value

    def shutdown(self, wait: bool = False) -> None:
        """Release the worker threads (threads still running a timed-out tool finish on their own)."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
