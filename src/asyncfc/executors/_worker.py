"""The worker side of the process executor (run as a script: ``python _worker.py FD``),
and the outcome encoding shared with Ray tasks.

Kept free of asyncfc imports so that a worker process starts in tens of milliseconds;
only the tool's own module (if it is pickled by reference) is imported on first use.

Frames on the socket: 8-byte big-endian length, then a pickle. Parent to worker:
``("init", sys_path, cwd)`` once, ``("preload", {key: fn})`` (functions the pool already
knows, unpickled while idle, so that a replacement worker is warm), then
``(key, fn_or_None, kwargs, timeout)`` per call, where ``fn`` and ``kwargs`` are cloudpickle bytes
and ``fn`` is sent only the first time a worker sees ``key``. Worker to parent, per call:
``STARTED`` when the tool starts (the timeout counts from there, not from the worker's
start-up and imports), then :func:`encode_outcome`'s bytes, or ``("timeout",)`` when the
worker's own watchdog ends the tool at its deadline (the process exits at once, so the
tool's side effects stop on time even if the parent's event loop lags).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import pickle
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

_LEN = struct.Struct(">Q")
STARTED = b"s"


def _cloudpickle() -> Any:
    """cloudpickle (the processes and ray extras), imported on first use: the threads
    executor shares :func:`drained` with this module and must run without it."""
    import cloudpickle

    return cloudpickle


MAX_RESULT_ITEMS = 100_000
"""How many items of a result that is an iterator are read (see :func:`drained`)."""


def drained(value: Any) -> Any:
    """A result that is an iterator (a generator, an open file, ``itertools.count()``) as a
    list of at most :data:`MAX_RESULT_ITEMS` items, read where the tool ran and under its timeout.
    Read later, for JSON, it would run the generator's body on the event loop, without end
    for an endless one."""
    if not isinstance(value, Iterator):
        return value
    items = list(itertools.islice(value, MAX_RESULT_ITEMS + 1))
    if len(items) > MAX_RESULT_ITEMS:
        items[MAX_RESULT_ITEMS:] = [f"... [stopped after {MAX_RESULT_ITEMS:,} items]"]
    return items


def run_tool(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Call ``fn``; ``("ok", value)`` or ``("err", exception)``, whatever it raises."""
    try:
        value = fn(**kwargs)
        if inspect.isawaitable(value):
            value = asyncio.run(_await(value))
        return ("ok", drained(value))
    except BaseException as exc:  # noqa: BLE001 - every outcome of a tool is a value
        return ("err", exc)


async def _await(aw: Any) -> Any:
    return await aw


def _fallback(value: Any) -> Any:
    """A value pickle cannot carry, as the scheduler would show it anyway (JSON or repr)."""
    try:
        from pydantic_core import to_jsonable_python

        return to_jsonable_python(value, fallback=repr)
    except Exception:  # noqa: BLE001
        return repr(value)


def dumps(obj: Any) -> bytes:
    data: bytes = _cloudpickle().dumps(obj)
    return data


def encode_outcome(outcome: tuple[Any, ...]) -> bytes:
    """Pickle an outcome; a value or exception that cannot be pickled is replaced by text."""
    try:
        return dumps(outcome)
    except Exception:  # noqa: BLE001
        pass
    if outcome[0] == "ok":
        return dumps(("ok", _fallback(outcome[1])))
    exc = outcome[1]
    return dumps(("err_text", type(exc).__name__, str(exc)))


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            return None
        got += k
    return bytes(buf)


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_LEN.pack(len(payload)) + payload)


def _watch_parent(parent: int) -> None:
    """Exit when the parent dies, even while a tool hangs (the socket alone cannot tell)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def _deadline(sock: socket.socket, timeout: float, done: threading.Event) -> None:
    """Kill this worker if the tool is still running at its deadline."""
    if not done.wait(timeout):
        try:
            _send(sock, dumps(("timeout",)))
        finally:
            os._exit(0)


class _Broken:
    """A function that could not be unpickled here: its calls raise ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _load(fn_bytes: bytes) -> Any:
    try:
        return _cloudpickle().loads(fn_bytes)
    except BaseException as exc:  # noqa: BLE001
        return _Broken(exc)


def serve(fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    sock = socket.socket(fileno=fd)
    try:
        _serve(sock)
    except OSError:  # the parent closed our socket (it is killing us, or exiting)
        return


def _serve(sock: socket.socket) -> None:
    functions: dict[str, Any] = {}
    while True:
        header = _recv_exact(sock, _LEN.size)
        if header is None:
            return
        body = _recv_exact(sock, _LEN.unpack(header)[0])
        if body is None:
            return
        msg = pickle.loads(body)
        if msg[0] == "init":
            sys.path[:] = msg[1]
            os.chdir(msg[2])
            continue
        if msg[0] == "preload":
            for key, fn_bytes in msg[1].items():
                functions[key] = _load(fn_bytes)
            continue
        key, fn_bytes, kwargs_bytes, timeout = msg
        if fn_bytes is not None:
            functions[key] = _load(fn_bytes)
        fn = functions[key]
        try:
            if isinstance(fn, _Broken):
                raise fn.error
            kwargs = _cloudpickle().loads(kwargs_bytes)
        except BaseException as exc:  # noqa: BLE001 - e.g. the tool's module is not importable here
            outcome: tuple[Any, ...] = ("err", exc)
        else:
            _send(sock, STARTED)
            done = threading.Event()
            if timeout is not None:
                threading.Thread(target=_deadline, args=(sock, timeout, done), daemon=True).start()
            outcome = run_tool(fn, kwargs)
            done.set()
        _send(sock, encode_outcome(outcome))
        del outcome


if __name__ == "__main__":
    serve(int(sys.argv[1]))
