"""``asyncfc mcp serve``: an MCP server in front of upstream MCP servers, with futures.

Every MCP session gets its own :class:`asyncfc.runtime.Runtime`: a call answers with its
value when it finishes within the grace window, else with a placeholder; later calls may
pass futures; values of earlier calls ride along with later tool results until
delivered, each once; ``await_future`` blocks for them. A session is the process over
stdio and the ``Mcp-Session-Id`` over streamable HTTP (so the HTTP side speaks the
initialize handshake: the 2026-07-28 protocol has no sessions to hold futures in).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import mcp.types as mt
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.server import NotificationOptions
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from ...errors import SessionClosedError
from ...executors import ThreadExecutor
from ...grace import GraceOption, grace_policy
from ...model_text import AWAIT_TOOL
from ...runtime import Reply, Runtime
from ...scheduler import Call
from ...tools import Tool
from .annotations import AnnotationsFile
from .direct import DirectCalls
from .tasks import (
    TASKS_EXTENSION,
    CancelTaskParams,
    GetTaskParams,
    TaskBoard,
    TaskResult,
    UpdateTaskParams,
    answer_or_task,
    missing_capability,
    wants_tasks,
)
from .transport import BadLine, guard_http, stdio_streams
from .upstream import ORIGIN, Origin, ProxyTool, UpstreamPool, UpstreamSpec, package_version

__all__ = [
    "Proxy",
    "ProxyConfig",
    "serve",
]

MCP_NOTE = (
    "Values of calls that answered with a placeholder arrive later, once each, under "
    '"resolved_earlier" in the result of a later call (or of await_future).'
)
"""Added to the runtime's instructions: how values come back through MCP."""

STDIO_SESSION = "stdio"
"""Over stdio the process serves one client: one session."""


@dataclass(frozen=True)
class ProxyConfig:
    grace_s: float | None = None
    """A fixed window: calls that finish within this many seconds answer with their value
    (None: ``grace`` decides)."""
    timeout_s: float | None = 60.0
    """Per-call limit for tools without their own ``timeout``."""
    max_result_chars: int | None = None
    idle_timeout_s: float = 30 * 60
    """An HTTP session unused this long is closed and its pending calls cancelled."""
    direct_calls: bool = True
    """Over stdio, answer plain ``tools/call`` requests without the SDK's per-request
    dispatch (:mod:`.direct`; same responses, about half the proxy's cost per call)."""
    grace: GraceOption = "auto"
    """The grace policy (:mod:`asyncfc.grace`): ``"auto"`` (cost-aware, learning each tool's
    latency across all sessions), seconds (a fixed window) or a policy object."""


class Sessions:
    """One runtime per MCP session, created on first use, closed with the session."""

    def __init__(self, tools: Sequence[Tool], config: ProxyConfig) -> None:
        self.tools = {t.name: t for t in tools}
        self.config = config
        self.grace = grace_policy(config.grace, config.grace_s)
        """One policy for every session: what it learns of a tool serves them all."""
        self.executor = ThreadExecutor(default_timeout=config.timeout_s)
        self._runtimes: dict[str, Runtime] = {}
        self._used: dict[str, float] = {}
        self._ids = itertools.count(1)
        template = self._new()
        self.specs = template.tool_specs()
        self.instructions = f"{template.instructions}\n{MCP_NOTE}"

    def _new(self) -> Runtime:
        return Runtime(
            self.tools,
            executor=self.executor,
            grace=self.grace,
            max_result_chars=self.config.max_result_chars,
        )

    def get(self, key: str) -> Runtime:
        rt = self._runtimes.get(key)
        if rt is None:
            rt = self._runtimes[key] = self._new()
        self._used[key] = time.monotonic()
        return rt

    def __contains__(self, key: str) -> bool:
        return key in self._runtimes

    def __len__(self) -> int:
        return len(self._runtimes)

    def new_tool_call_id(self) -> str:
        return f"mcp-{next(self._ids)}"

    async def close(self, key: str) -> None:
        rt = self._runtimes.pop(key, None)
        self._used.pop(key, None)
        if rt is not None:
            await rt.aclose()

    async def close_idle(self, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        stale = [k for k, t in self._used.items() if now - t > self.config.idle_timeout_s]
        for key in stale:
            await self.close(key)
        return stale

    async def aclose(self) -> None:
        for key in list(self._runtimes):
            await self.close(key)
        self.executor.shutdown()


def _session_key(ctx: Any, http: bool) -> str:
    if not http:
        return STDIO_SESSION
    request = getattr(ctx, "request", None)
    headers: Mapping[str, str] | None = getattr(request, "headers", None)
    key = headers.get("mcp-session-id") if headers is not None else None
    if not key:
        raise MCPError(
            code=mt.INVALID_REQUEST,
            message="asyncfc keeps futures per MCP session: connect with the initialize handshake "
            "(stateful streamable HTTP, Mcp-Session-Id)",
        )
    return key


def _find(rt: Runtime, tool_call_id: str) -> Call | None:
    for call in reversed(rt.calls):
        if call.tool_call_id == tool_call_id:
            return call
    return None


def _cancel_call(rt: Runtime, call: Call) -> None:
    """Cancel one pending call: it resolves to ``cancelled`` and its upstream request is cancelled."""
    rt.cancel(call, "the client cancelled the request")


class Proxy:
    """The MCP server: upstream tools behind per-session runtimes."""

    def __init__(
        self, tools: Sequence[ProxyTool], config: ProxyConfig | None = None, *, name: str = "asyncfc"
    ) -> None:
        self.config = config or ProxyConfig()
        self.proxy_tools = {t.exposed: t for t in tools}
        self.sessions = Sessions([t.tool for t in tools], self.config)
        self.name = name
        self.tasks = TaskBoard()
        """Calls answered with an MCP task (task-aware clients; see tasks.py)."""

    # -- MCP handlers -------------------------------------------------------------

    def list_tools(self) -> list[mt.Tool]:
        out: list[mt.Tool] = []
        for spec in self.sessions.specs:
            pt = self.proxy_tools.get(spec["name"])
            title: str | None
            if spec["name"] == AWAIT_TOOL and pt is None:
                hints: mt.ToolAnnotations | None = mt.ToolAnnotations(read_only_hint=True)
                title = "Await futures"
            else:
                hints = pt.mcp_tool.annotations if pt is not None else None
                title = pt.mcp_tool.title if pt is not None else None
            out.append(
                mt.Tool(
                    name=spec["name"],
                    title=title,
                    description=spec["description"],
                    input_schema=spec["parameters"],
                    annotations=hints,
                )
            )
        return out

    async def call_tool(
        self, key: str, name: str, arguments: Mapping[str, Any], report: Any
    ) -> mt.CallToolResult:
        """One ``tools/call`` of session ``key``; ``report`` forwards upstream progress to the client."""
        try:
            rt = self.sessions.get(key)
            origin = Origin(report=report)
            if name == AWAIT_TOOL:
                reply = await self._await(rt, arguments)
            else:
                reply = await self._call(rt, name, arguments, report, origin)
        except SessionClosedError:
            return _text_result(
                '{"error": {"type": "cancelled", "message": "this MCP session is closed"}}', True
            )
        call = reply.call
        failed = call is not None and call.done and call.error is not None
        result = _text_result(reply.text, failed)
        if failed and origin.error_structured is not None:
            result.structured_content = origin.error_structured  # the upstream's, kept whole
        return result

    async def call_tool_task(
        self, key: str, name: str, arguments: Mapping[str, Any], report: Any
    ) -> mt.CallToolResult | dict[str, Any]:
        """A ``tools/call`` whose request declared the tasks extension: a task, not a placeholder."""
        origin = Origin(report=report)
        token = ORIGIN.set(origin)
        try:
            rt = self.sessions.get(key)
            tool_call_id = self.sessions.new_tool_call_id()
            out = await answer_or_task(rt, self.tasks, key, name, arguments, tool_call_id)
            return out.wire() if isinstance(out, TaskResult) else out
        except SessionClosedError:
            return _text_result(
                '{"error": {"type": "cancelled", "message": "this MCP session is closed"}}', True
            )
        finally:
            origin.open = False  # a task reports no progress (the extension has none)
            ORIGIN.reset(token)

    async def _call(
        self, rt: Runtime, name: str, arguments: Mapping[str, Any], report: Any, origin: Origin | None = None
    ) -> Reply:
        origin = origin or Origin(report=report)
        tool_call_id = self.sessions.new_tool_call_id()
        token = ORIGIN.set(origin)
        try:
            return await rt.call(name, dict(arguments), tool_call_id=tool_call_id)
        except asyncio.CancelledError:
            # notifications/cancelled (or the session went away): cancel the call itself, and
            # report its cancellation with a later result, since this one is never read
            call = _find(rt, tool_call_id)
            if call is not None:
                _cancel_call(rt, call)
                rt.hold(call)
            raise
        finally:
            origin.open = False
            ORIGIN.reset(token)

    async def _await(self, rt: Runtime, arguments: Mapping[str, Any]) -> Reply:
        # a cancelled await_future delivers nothing: its values come with later results
        return await rt.call(AWAIT_TOOL, dict(arguments))

    def build_server(self, *, http: bool) -> Server[Any]:
        async def on_list_tools(ctx: Any, params: mt.PaginatedRequestParams | None) -> mt.ListToolsResult:
            return mt.ListToolsResult(tools=self.list_tools())

        async def on_call_tool(ctx: Any, params: mt.CallToolRequestParams) -> Any:
            key = _session_key(ctx, http)
            if params.name != AWAIT_TOOL and wants_tasks(ctx.protocol_version, ctx.meta):
                return await self.call_tool_task(
                    key, params.name, params.arguments or {}, ctx.session.report_progress
                )
            return await self.call_tool(key, params.name, params.arguments or {}, ctx.session.report_progress)

        server: Server[Any] = Server(
            self.name,
            version=package_version(),
            instructions=self.sessions.instructions,
            on_list_tools=on_list_tools,
            on_call_tool=on_call_tool,
        )
        if http:

            async def on_discover(ctx: Any, params: mt.RequestParams) -> mt.DiscoverResult:
                # advertise only the handshake versions: clients fall back to initialize,
                # which gives them an HTTP session (the runtime that holds their futures)
                return mt.DiscoverResult(
                    supported_versions=list(HANDSHAKE_PROTOCOL_VERSIONS),
                    capabilities=server.get_capabilities(NotificationOptions()),
                    instructions=server.instructions,
                )

            server.add_request_handler("server/discover", mt.RequestParams, on_discover)
        else:
            self._serve_tasks(server)
        return server

    def _serve_tasks(self, server: Server[Any]) -> None:
        """The tasks extension's methods (stdio: 2026-07-28 connections carry task results)."""

        def checked(ctx: Any) -> str:
            if not wants_tasks(ctx.protocol_version, ctx.meta):
                raise missing_capability()
            return _session_key(ctx, False)

        async def on_get(ctx: Any, params: GetTaskParams) -> dict[str, Any]:
            return self.tasks.get(checked(ctx), params.task_id).wire()

        async def on_cancel(ctx: Any, params: CancelTaskParams) -> mt.EmptyResult:
            self.tasks.cancel(checked(ctx), params.task_id)
            return mt.EmptyResult()

        async def on_update(ctx: Any, params: UpdateTaskParams) -> mt.EmptyResult:
            self.tasks.update(checked(ctx), params.task_id)
            return mt.EmptyResult()

        server.extensions[TASKS_EXTENSION] = {}
        server.add_request_handler("tasks/get", GetTaskParams, on_get)
        server.add_request_handler("tasks/cancel", CancelTaskParams, on_cancel)
        server.add_request_handler("tasks/update", UpdateTaskParams, on_update)

    # -- transports ---------------------------------------------------------------

    async def serve_stdio(self) -> None:
        server = self.build_server(http=False)
        try:
            async with stdio_streams(on_bad=_report_bad) as (read, write):
                direct = DirectCalls(self, STDIO_SESSION, write.send_line, server.server_info_stamp)
                if self.config.direct_calls:
                    read.intercept(direct.take)
                try:
                    await server.run(read, write, server.create_initialization_options())
                finally:
                    await direct.aclose()
        finally:
            await self.sessions.aclose()

    async def serve_http(self, host: str = "127.0.0.1", port: int = 8000, path: str = "/mcp") -> None:
        import uvicorn

        server = self.build_server(http=True)
        app = guard_http(
            server.streamable_http_app(
                streamable_http_path=path, host=host, session_idle_timeout=self.config.idle_timeout_s
            )
        )
        sessions = self.sessions

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            await app(scope, receive, send)
            if scope.get("type") == "http" and scope.get("method") == "DELETE":
                # the client ended its session: cancel what it left pending
                for k, v in scope.get("headers", []):
                    if k == b"mcp-session-id":
                        await sessions.close(v.decode("latin-1"))

        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound = sock.getsockname()[1]
        config = uvicorn.Config(asgi, log_level="warning", lifespan="on")
        web = uvicorn.Server(config)

        async def announce() -> None:
            while not web.started:  # noqa: ASYNC110 - uvicorn only exposes a flag
                await asyncio.sleep(0.02)
            shown = f"[{host}]" if ":" in host else host
            print(f"asyncfc MCP proxy on http://{shown}:{bound}{path}", file=sys.stderr, flush=True)

        async def sweep() -> None:
            while True:
                await asyncio.sleep(min(60.0, self.config.idle_timeout_s))
                await sessions.close_idle()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(announce)
                tg.start_soon(sweep)
                await web.serve(sockets=[sock])
                tg.cancel_scope.cancel()
        finally:
            sock.close()
            await self.sessions.aclose()


def _report_bad(bad: BadLine) -> None:
    """A line the transport answered itself (or dropped: a bad notification) goes to stderr."""
    answer = "answered with an error" if bad.reply is not None else "dropped (a notification or response)"
    print(f"asyncfc mcp: a message that does not parse was {answer}: {bad.reason[:300]}", file=sys.stderr)


def _text_result(text: str, is_error: bool) -> mt.CallToolResult:
    return mt.CallToolResult(content=[mt.TextContent(type="text", text=text)], is_error=is_error)


async def serve(
    specs: Sequence[UpstreamSpec],
    *,
    annotations: AnnotationsFile | None = None,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ProxyConfig | None = None,
    prefix: bool = False,
) -> None:
    """Connect to the upstreams, then serve until the client (stdio) or a signal (HTTP) ends it."""
    async with UpstreamPool(specs) as pool:
        tools, stale = pool.proxy_tools(annotations, prefix=prefix)
        for entry in stale:
            print(
                f"asyncfc mcp: annotations entry {entry} matches no upstream tool or server", file=sys.stderr
            )
        proxy = Proxy(tools, config)
        if transport == "http":
            await proxy.serve_http(host, port)
        else:
            await proxy.serve_stdio()
