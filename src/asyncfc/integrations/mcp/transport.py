"""The proxy's own transport layer: every request gets an answer, whatever its shape.

The ``mcp`` SDK's stdio transport drops a line it cannot parse (one nested deeper than its
JSON parser's recursion limit, about 200 levels, or invalid JSON) after logging it at debug
level: the client never hears back and waits until its own timeout. :func:`stdio_streams`
replaces it: it reads lines itself (through the event loop, no thread per line), forwards
good messages to the SDK's session, and answers a line it cannot parse (any depth, any
size: a line over :data:`MAX_LINE_BYTES` is read past, not kept) with a JSON-RPC error,
carrying the request's id when a bounded scan of the raw text finds it (:func:`scan_id`),
``null`` otherwise (JSON-RPC 2.0, section 5.1). Over streamable HTTP the SDK answers such
a body with ``"id": null``; :func:`guard_http` answers a body that nests too deeply itself,
with the id.

While serving, fd 0 reads the null device and fd 1 writes to stderr (as the SDK's own
transport arranges), so stray output of handlers and children never reaches the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import mcp.types as mt
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

__all__ = [
    "MAX_LINE_BYTES",
    "BadLine",
    "SCAN_CHARS",
    "LineReadStream",
    "LineWriteStream",
    "Scan",
    "error_line",
    "guard_http",
    "parse_line",
    "scan_id",
    "stdio_streams",
    "UpstreamReadStream",
    "UpstreamStdio",
]

MAX_LINE_BYTES = 64 * 1024 * 1024
"""A longer line is answered with an error and read past, never held in memory whole."""

SCAN_CHARS = 1024 * 1024
"""How much of a bad message's text the id scan reads (the SDK clients write the id first)."""

HTTP_DEPTH_CHECK = 128
"""An HTTP body with more brackets than this is checked for depth before the SDK parses it."""

_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]:,]')
_SCALAR = re.compile(r'\s*(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"[^"\\]*(?:\\.[^"\\]*)*"|null|true|false)')


@dataclass(frozen=True)
class Scan:
    """What a bounded scan of a message's text found at its top level."""

    id: str | int | None = None
    has_id: bool = False
    has_method: bool = False
    is_response: bool = False
    """``result`` or ``error`` at the top level: a response from the client, never answered."""
    complete: bool = False
    """The scan read the whole message (so a missing key is really missing)."""
    depth: int = 0
    """The deepest nesting seen."""

    @property
    def is_notification(self) -> bool:
        return self.complete and self.has_method and not self.has_id


def scan_id(text: str, limit: int = SCAN_CHARS) -> Scan:
    """Find the top-level ``id`` (and ``method``) of a JSON-RPC message without parsing it.

    Iterative over tokens (strings and punctuation), so any depth is safe; reads at most
    ``limit`` characters. An id that is not an integer or a string counts as not found.
    """
    end = min(len(text), limit)
    depth = max_depth = 0
    prev = ""
    key: str | None = None
    found: dict[str, Any] = {}
    for m in _TOKEN.finditer(text, 0, end):
        tok = m.group()
        c = tok[0]
        if c in "{[":
            depth += 1
            max_depth = max(max_depth, depth)
        elif c in "}]":
            depth -= 1
        elif c == '"':
            if depth == 1 and prev in ("{", ","):
                key = tok
        elif c == ":" and depth == 1 and key is not None:
            name = key[1:-1]
            if name == "id":
                value = _SCALAR.match(text, m.end())
                parsed: Any = None
                if value is not None:
                    with contextlib.suppress(ValueError):
                        parsed = json.loads(value.group(1))
                ok = isinstance(parsed, str) or (isinstance(parsed, int) and not isinstance(parsed, bool))
                found["id"] = parsed if ok else None
            elif name in ("method", "result", "error"):
                found[name] = True
            key = None
            if "id" in found and "method" in found:
                break  # a request: nothing more to learn
        prev = c if c != '"' else '"'
    else:
        complete = end == len(text)
        return Scan(
            found.get("id"),
            "id" in found,
            "method" in found,
            "result" in found or "error" in found,
            complete,
            max_depth,
        )
    return Scan(found["id"], True, True, False, False, max_depth)


def error_line(id_: str | int | None, code: int, message: str) -> bytes:
    """One JSON-RPC error response, newline-terminated."""
    error = mt.JSONRPCError(jsonrpc="2.0", id=id_, error=mt.ErrorData(code=code, message=message))
    return error.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"


@dataclass(frozen=True)
class BadLine:
    """A line the proxy answers itself: the error to send (None: a notification or response)."""

    reply: bytes | None
    reason: str


def parse_line(line: bytes, *, total: int | None = None) -> SessionMessage | BadLine:
    """One line from the client: a message for the SDK's session, or the error that answers it.

    ``total`` is the line's full length when only its head was kept (it was too long).
    """
    if total is None:
        try:
            return SessionMessage(mt.jsonrpc_message_adapter.validate_json(line, by_name=False))
        except ValidationError as exc:
            first: Any = exc.errors()[0] if exc.error_count() else {}
            invalid_json = first.get("type") == "json_invalid"
            if invalid_json:
                # invalid UTF-8 is replaced, as the SDK's own transport does
                fixed = line.decode("utf-8", errors="replace").encode()
                if fixed != line:
                    return parse_line(fixed)
            detail = str(first.get("msg", exc))
    else:
        invalid_json = True
        detail = f"the message is {total:,} bytes, over the {MAX_LINE_BYTES:,}-byte limit"
    scan = scan_id(line.decode("utf-8", errors="replace"))
    if scan.is_notification or scan.is_response:  # JSON-RPC answers neither
        return BadLine(None, detail)
    if invalid_json:
        code, what = mt.PARSE_ERROR, "Parse error"
        if "recursion limit" in detail:
            detail = f"the message nests deeper than the JSON parser's limit (about 200 levels): {detail}"
    else:
        code, what = mt.INVALID_REQUEST, "Invalid request"
    return BadLine(error_line(scan.id, code, f"{what}: {detail}"), detail)


class _Lines:
    """Lines from a byte stream, each at most :data:`MAX_LINE_BYTES` (longer ones: head and size)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    async def next(self) -> tuple[bytes, int | None] | None:
        """The next line and, when it was too long, its full size; None at EOF."""
        head: bytes | None = None
        total = 0
        while True:
            try:
                chunk = await self.reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                chunk = exc.partial  # EOF: the last line without its newline
                if not chunk and head is None:
                    return None
                if not chunk:
                    return head or b"", total
            except asyncio.LimitOverrunError as exc:
                part = await self.reader.readexactly(max(exc.consumed, 1))
                if head is None:
                    head = part[:SCAN_CHARS]
                total += len(part)
                continue
            if head is None:
                return chunk.rstrip(b"\r\n"), None
            return head, total + len(chunk)


async def _pipe_reader(fd: int) -> tuple[asyncio.StreamReader, Callable[[], None]]:
    """A stream reader on ``fd``: through the event loop for a pipe, else fed by a thread."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES, loop=loop)
    pipe = os.fdopen(fd, "rb", buffering=0, closefd=False)
    try:
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    except (ValueError, OSError, NotImplementedError):  # a regular file, or no pipe support

        def pump() -> None:
            while True:
                try:
                    data = os.read(fd, 1 << 16)
                except OSError:
                    data = b""
                if not data:
                    loop.call_soon_threadsafe(reader.feed_eof)
                    return
                loop.call_soon_threadsafe(reader.feed_data, data)

        threading.Thread(target=pump, name="asyncfc-mcp-stdin", daemon=True).start()
        return reader, lambda: None
    return reader, transport.close


async def _pipe_writer(fd: int) -> tuple[Callable[[bytes], Awaitable[None]], Callable[[], None]]:
    """An async ``write(bytes)`` on ``fd``: through the event loop for a pipe, else a thread."""
    loop = asyncio.get_running_loop()
    pipe = os.fdopen(fd, "wb", buffering=0, closefd=False)
    try:
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, pipe)
    except (ValueError, OSError, NotImplementedError):
        lock = anyio.Lock()  # one write at a time, in call order

        def blocking(data: bytes) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

        async def write_thread(data: bytes) -> None:
            async with lock:
                await anyio.to_thread.run_sync(blocking, data)

        return write_thread, lambda: None
    writer = asyncio.StreamWriter(transport, protocol, None, loop)

    async def write(data: bytes) -> None:
        # the pipe transport writes at once or buffers, in call order: no lock needed
        writer.write(data)
        if transport.get_write_buffer_size() > 1 << 16:
            await writer.drain()

    return write, transport.close


@contextlib.contextmanager
def _claim_std_fds() -> Iterator[tuple[int, int]]:
    """Serve the wire from private duplicates of fd 0 and 1; point 0 at /dev/null, 1 at stderr."""
    private_in, private_out = os.dup(0), os.dup(1)
    get_blocking = getattr(os, "get_blocking", None)  # POSIX (Windows from Python 3.12)
    blocking = {fd: get_blocking(fd) for fd in (private_in, private_out)} if get_blocking else {}
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(devnull, 0)
        os.dup2(2, 1)
    finally:
        os.close(devnull)
    try:
        yield private_in, private_out
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        for fd, std in ((private_in, 0), (private_out, 1)):
            with contextlib.suppress(OSError):
                if fd in blocking:
                    os.set_blocking(fd, blocking[fd])  # a shared terminal must not stay non-blocking
            with contextlib.suppress(OSError):
                os.dup2(fd, std)
            with contextlib.suppress(OSError):
                os.close(fd)


_Stream = TypeVar("_Stream", bound="_MessageStream")


class _MessageStream:
    """What the SDK's session needs of a read stream besides ``receive``: iteration and closing."""

    _closed = False

    async def receive(self) -> SessionMessage | Exception:
        raise NotImplementedError

    def __aiter__(self: _Stream) -> _Stream:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def close(self) -> None:
        self._closed = True

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self: _Stream) -> _Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class LineReadStream(_MessageStream):
    """The read side ``Server.run`` consumes: parsed messages straight from the pipe.

    No task of its own between the pipe and the SDK (each hand-over between tasks costs a
    turn of the event loop on every request); a line that does not parse is answered here,
    through the same writer as the session's messages, and reported to ``on_bad``. A message
    the ``take`` hook accepts (see :meth:`intercept`) never reaches the SDK.
    """

    def __init__(
        self,
        lines: _Lines,
        write: Callable[[bytes], Awaitable[None]],
        on_bad: Callable[[BadLine], None] | None,
    ) -> None:
        self._lines = lines
        self._write = write
        self._on_bad = on_bad
        self._take: Callable[[mt.JSONRPCMessage], bool] | None = None
        self._closed = False

    def intercept(self, take: Callable[[mt.JSONRPCMessage], bool]) -> None:
        """Offer every parsed message to ``take`` first; one it returns True for is its own."""
        self._take = take

    async def receive(self) -> SessionMessage | Exception:
        while not self._closed:
            item = await self._lines.next()
            if item is None:
                break
            line, total = item
            if total is None and not line.strip():
                continue
            parsed = parse_line(line, total=total)
            if isinstance(parsed, SessionMessage):
                if self._take is not None and self._take(parsed.message):
                    continue
                return parsed
            if self._on_bad is not None:
                self._on_bad(parsed)
            if parsed.reply is not None:
                await self._write(parsed.reply)
        if self._closed:
            raise anyio.ClosedResourceError
        raise anyio.EndOfStream


class LineWriteStream:
    """The write side ``Server.run`` sends to: each message written to the pipe at once."""

    def __init__(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        self._write = write
        self._closed = False

    async def send(self, item: SessionMessage, /) -> None:
        data = item.message.model_dump_json(by_alias=True, exclude_unset=True)
        await self.send_line(data.encode() + b"\n")

    async def send_line(self, line: bytes) -> None:
        """Write one serialized message (newline-terminated), in order with the others."""
        if self._closed:
            raise anyio.ClosedResourceError
        await self._write(line)

    def close(self) -> None:
        self._closed = True

    async def aclose(self) -> None:
        self._closed = True

    async def __aenter__(self) -> LineWriteStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closed = True


@contextlib.asynccontextmanager
async def stdio_streams(
    in_fd: int | None = None, out_fd: int | None = None, *, on_bad: Callable[[BadLine], None] | None = None
) -> AsyncIterator[tuple[LineReadStream, LineWriteStream]]:
    """Like the SDK's ``stdio_server()``: the (read, write) streams for ``Server.run``.

    ``in_fd``/``out_fd`` default to the process's stdin and stdout (claimed while serving).
    A line that does not parse is answered here, in order with the session's own messages,
    and reported to ``on_bad``.
    """
    with contextlib.ExitStack() as stack:
        if in_fd is None or out_fd is None:
            in_fd, out_fd = stack.enter_context(_claim_std_fds())
        reader, close_reader = await _pipe_reader(in_fd)
        write, close_writer = await _pipe_writer(out_fd)
        stack.callback(close_reader)
        stack.callback(close_writer)
        yield LineReadStream(_Lines(reader), write, on_bad), LineWriteStream(write)


# -- stdio to an upstream ---------------------------------------------------------------


class UpstreamReadStream(_MessageStream):
    """Messages from an upstream server's stdout, parsed as they are read (no task of its own).

    A line that does not parse is handed to the SDK's session as the exception, as its own
    transport does. An answer to a request of :meth:`UpstreamStdio.request` resolves that
    request here and never reaches the SDK; at the end of the stream those still waiting fail.
    """

    def __init__(self, lines: _Lines) -> None:
        self._lines = lines
        self._closed = False
        self.waiting: dict[str, asyncio.Future[mt.JSONRPCResponse | mt.JSONRPCError]] = {}

    async def receive(self) -> SessionMessage | Exception:
        try:
            while not self._closed:
                item = await self._lines.next()
                if item is None:
                    break
                line, total = item
                if total is not None:
                    return ValueError(
                        f"the upstream sent a message of {total:,} bytes, over the {MAX_LINE_BYTES:,}-byte limit"
                    )
                if not line.strip():
                    continue
                try:
                    message = mt.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except ValidationError as exc:
                    return exc
                if isinstance(message, (mt.JSONRPCResponse, mt.JSONRPCError)) and isinstance(message.id, str):
                    waiter = self.waiting.pop(message.id, None)
                    if waiter is not None:
                        if not waiter.done():
                            waiter.set_result(message)
                        continue
                return SessionMessage(message)
        except BaseException:
            self._fail_waiting()
            raise
        self._fail_waiting()
        if self._closed:
            raise anyio.ClosedResourceError
        raise anyio.EndOfStream

    def _fail_waiting(self) -> None:
        for waiter in self.waiting.values():
            if not waiter.done():
                waiter.set_exception(MCPError(code=mt.CONNECTION_CLOSED, message="Connection closed"))
        self.waiting.clear()

    def close(self) -> None:
        self._closed = True
        self._fail_waiting()


STOP_WAIT_S = 2.0
"""After closing its stdin, how long an upstream may take to exit before SIGTERM (then as
long again before SIGKILL): the MCP shutdown sequence, with the SDK's timeouts."""


class UpstreamStdio:
    """An MCP server run as a child process (POSIX), spoken to over its stdin and stdout.

    A transport for the SDK's ``Client`` (``async with`` gives its read and write streams):
    what the SDK's ``stdio_client`` does, without its two pipe tasks and memory streams, so
    every message crosses the event loop once less each way. The child gets a process group
    of its own, so that stopping it (stdin closed, then SIGTERM, then SIGKILL) reaches its
    children too. :meth:`request` sends a request beside the SDK's session, for the proxy's
    plain calls (the SDK's client costs more per call than the whole rest of the proxy).
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self._proc: asyncio.subprocess.Process | None = None
        self._read: UpstreamReadStream | None = None
        self._write: LineWriteStream | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> tuple[UpstreamReadStream, LineWriteStream]:
        proc = self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self.env,
            start_new_session=True,
            limit=MAX_LINE_BYTES,
        )
        assert proc.stdin is not None and proc.stdout is not None
        stdin = proc.stdin

        async def write(data: bytes) -> None:
            if stdin.is_closing():
                raise anyio.BrokenResourceError
            stdin.write(data)
            if stdin.transport.get_write_buffer_size() > 1 << 16:
                await stdin.drain()

        self._read, self._write = UpstreamReadStream(_Lines(proc.stdout)), LineWriteStream(write)
        return self._read, self._write

    async def __aexit__(self, *exc: object) -> None:
        if self._read is not None:
            await self._read.aclose()
        if self._proc is not None:
            with anyio.CancelScope(shield=True):
                await _stop_child(self._proc)

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its result; an error answer raises ``MCPError``.

        Its id is a string (``"asyncfc-N"``), never one of the SDK session's integer ids.
        Cancelled, it tells the server with ``notifications/cancelled``, as the SDK does.
        """
        read, write = self._read, self._write
        if read is None or write is None:
            raise MCPError(code=mt.CONNECTION_CLOSED, message="Connection closed")
        id_ = f"asyncfc-{next(self._ids)}"
        waiter = read.waiting[id_] = asyncio.get_running_loop().create_future()
        message = {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}
        try:
            await write.send_line(
                json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
            )
            answer = await waiter
        except asyncio.CancelledError:
            cancelled = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id_}}
            with contextlib.suppress(Exception):
                await write.send_line(json.dumps(cancelled).encode() + b"\n")
            raise
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            raise MCPError(code=mt.CONNECTION_CLOSED, message="Connection closed") from None
        finally:
            read.waiting.pop(id_, None)
        if isinstance(answer, mt.JSONRPCError):
            raise MCPError.from_error_data(answer.error)
        result: dict[str, Any] = answer.result
        return result


async def _stop_child(proc: asyncio.subprocess.Process) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)  # the group: the server and whatever it started
        with anyio.move_on_after(STOP_WAIT_S):
            # polled: wait() also waits for the pipes, which a grandchild may hold open
            while proc.returncode is None:  # noqa: ASYNC110 - asyncio gives no exit event
                await asyncio.sleep(0.01)
        if proc.returncode is not None:
            break
    transport = getattr(proc, "_transport", None)  # closed now, not at garbage collection
    if transport is not None:
        with contextlib.suppress(PermissionError):
            transport.close()


# -- streamable HTTP ------------------------------------------------------------------

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


def guard_http(app: ASGIApp, max_body: int = MAX_LINE_BYTES) -> ASGIApp:
    """Answer a POST body nested too deeply for the SDK's parser with the request's id.

    Other bodies go to ``app`` unchanged (replayed from memory). Bodies over ``max_body``
    are passed on as they come (the SDK limits and answers them itself).
    """

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await app(scope, _replay(chunks, message, receive), send)
                return
            body = message.get("body", b"")
            chunks.append(body)
            size += len(body)
            more = bool(message.get("more_body"))
            if size > max_body:
                break
        body = b"".join(chunks)
        if not more and body.count(b"[") + body.count(b"{") > HTTP_DEPTH_CHECK:
            bad = parse_line(body)
            if isinstance(bad, BadLine) and bad.reply is not None:
                await _respond(send, 400, bad.reply.rstrip(b"\n"))
                return
            if isinstance(bad, BadLine):
                await _respond(send, 202, b"")
                return
        await app(scope, _replay([body], None, receive, more=more), send)

    return guarded


def _replay(chunks: list[bytes], pending: Any, receive: Any, *, more: bool = False) -> Any:
    queue: list[Any] = [{"type": "http.request", "body": b"".join(chunks), "more_body": more}]
    if pending is not None:
        queue.append(pending)

    async def replay() -> Any:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


async def _respond(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json")] if body else []
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
