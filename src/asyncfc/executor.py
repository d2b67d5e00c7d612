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


class _ToolRaised(Exception):
    """Carries an exception the tool raised itself past ``wait_for``'s timeout handling."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


async def _own_errors(awaitable: Awaitable[Any]) -> Any:
    try:
        return await awaitable
    except asyncio.TimeoutError as exc:
        raise _ToolRaised(exc) from exc


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
        """Run one call to completion; raise :class:`ToolTimeout` or the tool's own exception."""
        timeout = tool.timeout if tool.timeout is not None else self.default_timeout
        async with self._slot(tool.name):
            on_start(time.perf_counter())
            if tool.is_async:
                awaitable: Any = tool.fn(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                awaitable = loop.run_in_executor(self._pool, functools.partial(tool.fn, **kwargs))
            if timeout is None:
                return await awaitable
            if sys.version_info >= (3, 11):  # a timeout scope: no extra task per call
                scope = asyncio.timeout(timeout)
                try:
                    async with scope:
                        return await awaitable
                except TimeoutError:
                    if scope.expired():
                        raise ToolTimeout(timeout) from None
                    raise  # the tool's own TimeoutError is a tool error, not a timeout
            try:
                return await asyncio.wait_for(_own_errors(awaitable), timeout)
            except asyncio.TimeoutError:
                raise ToolTimeout(timeout) from None
            except _ToolRaised as exc:
                raise exc.error from None

    def shutdown(self, wait: bool = False) -> None:
        """Release the worker threads (threads still running a timed-out tool finish on their own)."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
