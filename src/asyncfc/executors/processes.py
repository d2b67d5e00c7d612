"""The ``"processes"`` executor: sync tools in a pool of worker processes that can be killed.

A call past its timeout, or cancelled, has its worker killed (SIGKILL) at once, so the
tool's remaining side effects never happen; the pool starts a fresh worker on demand.
A worker that dies on its own mid-call (a crash, the OOM killer, ``os._exit``) resolves
that call to ``worker_lost``; the call is never re-run. Tools and arguments travel with
cloudpickle (the ``processes`` extra); async tools stay on the session's event loop.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ToolDefinitionError, describe
from ..tools import Tool
from . import _worker
from .base import Executor, ExecutorKind, ToolFailed, ToolTimeout, WorkerLost, import_extra

__all__ = ["NotPicklableError", "ProcessExecutor", "decode_outcome"]

_WORKER_SCRIPT = str(Path(_worker.__file__).resolve())


def _cloudpickle() -> Any:
    """cloudpickle, or :class:`~asyncfc.executors.ExecutorUnavailable` naming the extra."""
    return import_extra("cloudpickle", "processes")


class NotPicklableError(Exception):
    """A tool's function or arguments cannot be sent to a worker (the tool did not run)."""


def decode_outcome(data: bytes) -> Any:
    """A worker's answer (:func:`~asyncfc.executors._worker.encode_outcome`'s bytes): the
    tool's value, or :class:`ToolFailed` with what it raised."""
    outcome = _cloudpickle().loads(data)
    if outcome[0] == "ok":
        return outcome[1]
    if outcome[0] == "err":
        raise ToolFailed(outcome[1])
    # the exception could not be pickled: same name and text, new class
    raise ToolFailed(type(outcome[1], (Exception,), {})(outcome[2]))


class _Worker:
    """One worker process and the parent's end of its socket."""

    def __init__(self, preload: Mapping[str, bytes]) -> None:
        parent, child = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, _WORKER_SCRIPT, str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            child.close()
        parent.setblocking(False)
        self.sock = parent
        self.known: set[str] = set()
        self._send_now(pickle.dumps(("init", list(sys.path), os.getcwd())))
        if preload:
            self._send_now(pickle.dumps(("preload", dict(preload))))
            self.known.update(preload)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _send_now(self, payload: bytes) -> None:
        self.sock.setblocking(True)
        try:
            self.sock.sendall(_worker._LEN.pack(len(payload)) + payload)
        finally:
            self.sock.setblocking(False)

    async def send_call(self, key: str, fn: bytes, kwargs: bytes, timeout: float | None) -> bytes:
        """Send a call; return the first frame: ``STARTED``, or the outcome if it never started."""
        loop = asyncio.get_running_loop()
        msg = pickle.dumps((key, None if key in self.known else fn, kwargs, timeout))
        await loop.sock_sendall(self.sock, _worker._LEN.pack(len(msg)) + msg)
        self.known.add(key)
        return await self.frame()

    async def frame(self) -> bytes:
        loop = asyncio.get_running_loop()
        header = await self._recv(loop, _worker._LEN.size)
        return await self._recv(loop, _worker._LEN.unpack(header)[0])

    async def _recv(self, loop: asyncio.AbstractEventLoop, n: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = await loop.sock_recv_into(self.sock, view[got:])
            if k == 0:
                raise EOFError
            got += k
        return bytes(buf)

    def exit_status(self) -> str:
        try:
            code = self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with status {code}"

    def kill(self) -> None:
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=2.0)  # SIGKILL: reaped within a millisecond or so
            except subprocess.TimeoutExpired:
                pass

    def stop(self) -> None:
        """Ask an idle worker to exit (EOF), kill it if it does not."""
        self.sock.close()
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.kill()


class ProcessExecutor(Executor):
    """Sync tools run in up to ``max_workers`` worker processes (default: the CPU count, at least 4).

    Workers start on demand (about 50 ms each, plus the tool module's imports on first
    use) and are reused; a worker whose call timed out or was cancelled is killed.
    """

    kind: ExecutorKind = "processes"

    def __init__(
        self,
        *,
        max_workers: int | None = None,
        default_timeout: float | None = 60.0,
        max_concurrency: int | None = None,
        tool_limits: Mapping[str, int] | None = None,
    ) -> None:
        self._pickle = _cloudpickle()  # fail here, naming the extra, not at the first call
        self._timed_out = _worker.dumps(("timeout",))
        super().__init__(
            default_timeout=default_timeout, max_concurrency=max_concurrency, tool_limits=tool_limits
        )
        self.max_workers = max_workers or max(4, os.cpu_count() or 4)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._free: asyncio.Semaphore | None = None
        self._pickled: weakref.WeakKeyDictionary[Tool, tuple[str, bytes]] = weakref.WeakKeyDictionary()
        self._keys = 0
        self.killed = 0
        """Workers killed because their call timed out or was cancelled."""
        self.lost = 0
        """Workers that died on their own mid-call."""

    def check(self, tool: Tool) -> None:
        """Refuse a sync tool whose function cannot be pickled (it could never reach a worker)."""
        if not tool.is_async:
            try:
                self._function(tool)
            except NotPicklableError as exc:
                raise ToolDefinitionError(f"tool {tool.name!r}: {exc}") from None

    def _function(self, tool: Tool) -> tuple[str, bytes]:
        entry = self._pickled.get(tool)
        if entry is None:
            try:
                data = self._pickle.dumps(tool.fn)
            except Exception as exc:
                raise NotPicklableError(
                    f"cannot send {tool.name} to a worker process: its function cannot be pickled "
                    f"({describe(exc)})"
                ) from None
            self._keys += 1
            entry = self._pickled[tool] = (f"{tool.name}#{self._keys}", data)
        return entry

    def on_new_loop(self) -> None:
        """The semaphore that bounds calls in flight to ``max_workers`` belongs to one loop."""
        self._free = asyncio.Semaphore(self.max_workers)

    @property
    def worker_pids(self) -> list[int]:
        """The pids of the live worker processes, idle or busy."""
        return sorted(w.pid for w in self._all)

    async def run_in_worker(
        self, tool: Tool, kwargs: Mapping[str, Any], timeout: float | None, on_start: Callable[[float], None]
    ) -> Any:
        """Run a sync tool in a worker process; on timeout or cancel the worker is killed."""
        try:
            key, fn = self._function(tool)
            args = self._pickle.dumps(dict(kwargs))
        except NotPicklableError as exc:
            raise ToolFailed(exc) from None
        except Exception as exc:
            raise ToolFailed(
                NotPicklableError(
                    f"cannot send the arguments of {tool.name} to a worker process ({describe(exc)})"
                )
            ) from None
        assert self._free is not None
        async with self._free:
            worker = self._idle.pop(0) if self._idle else self._start()  # oldest first: warm
            try:
                data = await worker.send_call(key, fn, args, timeout)  # waits for start-up, not timed
                if data == _worker.STARTED:
                    on_start(time.perf_counter())
                    # the worker enforces the deadline itself; ours is a backstop for a stuck worker
                    backstop = None if timeout is None else timeout + 1.0
                    data = await self.with_timeout(worker.frame(), backstop)
                    if data == self._timed_out:
                        raise ToolTimeout(timeout or 0.0)
            except BaseException as exc:
                # timeout, cancel, or the worker died: this worker is done for
                self._all.discard(worker)
                if isinstance(exc, (EOFError, ConnectionError, OSError)):
                    self.lost += 1
                    status = worker.exit_status()
                    worker.kill()
                    raise WorkerLost(
                        f"the worker process (pid {worker.pid}) {status} during the call"
                    ) from None
                self.killed += 1
                worker.kill()
                if len(self._all) < self.max_workers:
                    self._idle.append(self._start())  # a warm replacement, importing while idle
                raise
            self._idle.append(worker)
        return decode_outcome(data)

    def _start(self) -> _Worker:
        worker = _Worker(dict(self._pickled.values()))
        self._all.add(worker)
        return worker

    def release_workers(self, wait: bool) -> None:
        """Stop the idle workers; kill those still running a call (``wait`` changes nothing:
        a sync tool's side effects stop with its worker)."""
        idle, self._idle = self._idle, []
        for w in idle:
            w.stop()
        for w in list(self._all):
            if w not in idle:
                w.kill()  # still running a call: a close does not wait for sync tools
        self._all.clear()
