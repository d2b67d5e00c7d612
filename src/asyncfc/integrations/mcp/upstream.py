"""Upstream MCP servers: connect to each (a stdio command or a streamable-HTTP URL), list
its tools, and turn them into ordinary asyncfc tools that forward to it.

One connection per upstream serves every downstream session: futures are per session
(one :class:`asyncfc.runtime.Runtime` each), the upstream servers are not. An upstream
that answers ``isError`` or refuses a call makes the call raise :class:`UpstreamToolError`;
one that crashed or closed its connection raises :class:`UpstreamUnavailable`; the
runtime turns both into the ``tool_error`` value the model reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import shlex
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import mcp.types as mt
from mcp import Client, StdioServerParameters
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ...errors import AsyncFCError, ConfigurationError, describe
from ...model_text import AWAIT_TOOL
from ...tools import Tool, tool_from_schema
from .annotations import AnnotationsFile, tool_options, unused_entries
from .tasks import TASKS_EXTENSION, UpstreamTasks
from .transport import UpstreamStdio

__all__ = [
    "Upstream",
    "UpstreamPool",
    "UpstreamSpec",
    "UpstreamToolError",
    "UpstreamUnavailable",
    "parse_upstream",
    "result_value",
]

ProgressFn = ProgressFnT
"""``async (progress, total, message) -> None``, as the SDK calls it."""

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class UpstreamToolError(AsyncFCError):
    """The upstream server answered the call with ``isError`` or a JSON-RPC error.

    ``structured`` is the error result's ``structuredContent`` (None: it had none).
    """

    def __init__(self, message: str, structured: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.structured = structured


class UpstreamUnavailable(AsyncFCError):
    """The upstream server cannot be reached (it crashed, exited or refuses connections)."""


@dataclass(frozen=True)
class UpstreamSpec:
    """One ``--upstream``: ``[NAME=]COMMAND_OR_URL``."""

    target: str
    name: str | None = None

    @property
    def is_url(self) -> bool:
        return self.target.startswith(("http://", "https://"))

    def derived_name(self) -> str:
        """A name from the target when neither the user nor the server gave one."""
        if self.is_url:
            parts = urlsplit(self.target)
            base = (parts.hostname or "http") + (f"_{parts.port}" if parts.port else "")
        else:
            argv = shlex.split(self.target)
            scripts = [a for a in argv[1:] if not a.startswith("-")]
            base = Path(scripts[0] if scripts else argv[0]).stem if argv else "server"
        return sanitize_name(base)


def parse_upstream(text: str) -> UpstreamSpec:
    """``shop=python shop.py`` names the upstream ``shop``; a bare command or URL does not."""
    text = text.strip()
    if not text:
        raise ConfigurationError("empty --upstream (give a command or an http(s) URL)")
    head, sep, rest = text.partition("=")
    if sep and _NAME.match(head) and rest.strip():
        return UpstreamSpec(rest.strip(), head)
    return UpstreamSpec(text)


def sanitize_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_-")[:64]
    if not name or not name[0].isalpha():
        name = f"s_{name}" if name else "server"
    return name


@dataclass(eq=False)
class Origin:
    """The downstream request a call was made in: where its progress goes.

    The proxy sets it (a context variable) around the runtime call; the call's task copies
    the context when it is created, so the tool function finds the request it belongs to.
    """

    report: ProgressFn | None = None
    open: bool = True
    """False once the request has been answered: later progress has nowhere to go."""
    error_structured: dict[str, Any] | None = None
    """The ``structuredContent`` of the upstream's error result, when the call failed with one."""

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        if self.open and self.report is not None:
            with contextlib.suppress(Exception):  # a closed stream must not fail the call
                await self.report(progress, total, message)


ORIGIN: ContextVar[Origin | None] = ContextVar("asyncfc_mcp_origin", default=None)


def _strip_prefix(text: str, tool: str) -> str:
    for prefix in (f"Error executing tool {tool}: ", f"Error executing tool {tool}"):
        if text.startswith(prefix):
            return text[len(prefix) :] or text
    return text


def _content_value(block: mt.ContentBlock) -> Any:
    if isinstance(block, mt.TextContent):
        text = block.text
        if text[:1] in '{["-0123456789tfn' and text:
            try:
                return json.loads(text)
            except ValueError:
                pass
        return text
    if isinstance(block, mt.ImageContent | mt.AudioContent):
        return {"type": block.type, "mimeType": block.mime_type, "bytes": len(block.data) * 3 // 4}
    if isinstance(block, mt.ResourceLink):
        return {"type": "resource_link", "uri": str(block.uri), "name": block.name}
    if isinstance(block, mt.EmbeddedResource):
        res = block.resource
        if isinstance(res, mt.TextResourceContents):
            return {"type": "resource", "uri": str(res.uri), "text": res.text}
        return {"type": "resource", "uri": str(res.uri), "mimeType": res.mime_type}
    return block.model_dump(mode="json", by_alias=True, exclude_none=True)


def result_value(result: mt.CallToolResult, output_schema: dict[str, Any] | None = None) -> Any:
    """An upstream result as the JSON value a future holds (so ``fut_1.price`` works).

    Structured content wins (unwrapped when the output schema only wraps a ``result``, as
    FastMCP does for non-object returns); otherwise one text block is parsed as JSON when it
    is JSON, several blocks become a list.
    """
    sc = result.structured_content
    if sc is not None:
        props = (output_schema or {}).get("properties")
        if set(sc) == {"result"} and isinstance(props, dict) and set(props) == {"result"}:
            return sc["result"]
        return sc
    parts = [_content_value(c) for c in result.content]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else parts


def _error_text(result: mt.CallToolResult, tool: str) -> str:
    texts = [c.text for c in result.content if isinstance(c, mt.TextContent)]
    return _strip_prefix(" ".join(texts).strip(), tool) or "the upstream tool reported an error"


class Upstream:
    """One upstream server and its connection.

    The connection is opened and closed by a task of its own: the SDK's client runs a task
    group, and a transport failure cancels whatever task entered it. Owned here, a dead
    upstream ends only that task; its calls fail, everything else goes on.
    """

    def __init__(self, spec: UpstreamSpec, name: str = "", tools: list[mt.Tool] | None = None) -> None:
        self.spec = spec
        self.name = name or spec.name or spec.derived_name()
        self.tools = tools or []
        self.client: Client | None = None
        self.stdio: UpstreamStdio | None = None
        """The client's transport, when it is asyncfc's own (plain calls bypass the SDK's client)."""
        self.gone: str | None = None
        """Why the upstream is unusable, once its connection failed or closed."""
        self._lost = asyncio.Event()
        self._calls: set[asyncio.Task[Any]] = set()
        """Tasks waiting on this upstream's answer."""
        self._cut: set[asyncio.Task[Any]] = set()
        """Those cancelled because the upstream went away."""
        self._stop = asyncio.Event()
        self._owner: asyncio.Task[None] | None = None

    async def connect(self) -> Client:
        """Open the connection (in its own task); raise :class:`UpstreamUnavailable` if it fails."""
        client, self.stdio = _client_for(self.spec)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._owner = asyncio.create_task(
            self._own(client, ready), name=f"asyncfc-mcp-upstream:{self.spec.target}"
        )
        try:
            await asyncio.shield(ready)
        except asyncio.CancelledError:
            await self.aclose()
            raise
        self.client = client
        return client

    async def _own(self, client: Client, ready: asyncio.Future[None]) -> None:
        try:
            async with client:
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:  # noqa: BLE001 - a dead upstream is reported, never raised here
            if not ready.done():
                ready.set_exception(
                    UpstreamUnavailable(
                        f"cannot connect to upstream {self.spec.name or self.spec.target!r}: {_describe(exc)}"
                    )
                )
            elif not self._stop.is_set():
                self._mark_gone(
                    f"the connection to upstream MCP server {self.name!r} failed: {_describe(exc)}"
                )
        finally:
            if not ready.done():
                ready.set_exception(UpstreamUnavailable(f"upstream {self.spec.target!r} closed at once"))
            if not self._stop.is_set():
                self._mark_gone(
                    f"upstream MCP server {self.name!r} closed its connection (it exited or crashed)"
                )

    def _mark_gone(self, reason: str) -> None:
        if self.gone is None:
            self.gone = reason
        self._lost.set()
        for task in list(self._calls):  # calls waiting on it fail now, not at their timeout
            if task not in self._cut:
                self._cut.add(task)
                task.cancel()

    async def aclose(self) -> None:
        self._stop.set()
        if self._owner is not None:
            with contextlib.suppress(BaseException):
                await self._owner
            self._owner = None

    async def call(
        self,
        tool: mt.Tool,
        arguments: dict[str, Any],
        progress: ProgressFn | None = None,
    ) -> Any:
        if self.gone is not None or self.client is None:
            raise UpstreamUnavailable(self.gone or f"upstream {self.name!r} is not connected")
        # awaited in the call's own task (no task per request: each costs turns of the event
        # loop on every call); _mark_gone cancels it if the upstream dies under it
        task = asyncio.current_task()
        assert task is not None
        self._calls.add(task)
        try:
            try:
                if progress is None and self.stdio is not None and not self._follows_tasks():
                    result = await self._plain_call(self.stdio, tool.name, arguments)
                else:
                    result = await self.client.call_tool(tool.name, arguments, progress_callback=progress)
            finally:
                self._calls.discard(task)
        except asyncio.CancelledError:
            if task not in self._cut:
                raise  # the call itself was cancelled (timeout, the client)
            self._cut.discard(task)
            uncancel = getattr(task, "uncancel", None)  # Python 3.11+: the cancel was ours
            if uncancel is not None:
                uncancel()
            raise UpstreamUnavailable(self.gone or f"upstream {self.name!r} went away") from None
        except MCPError as exc:
            if exc.code == mt.CONNECTION_CLOSED:
                self._mark_gone(
                    f"upstream MCP server {self.name!r} closed its connection (it exited or crashed)"
                )
                raise UpstreamUnavailable(self.gone) from None
            raise UpstreamToolError(f"upstream {self.name!r} refused the call: {exc.error.message}") from None
        except Exception as exc:
            if self.gone is not None:
                raise UpstreamUnavailable(self.gone) from None
            if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in (
                "httpx2",
                "httpcore2",
                "httpx",
                "httpcore",
                "anyio",
            ):
                raise UpstreamUnavailable(f"cannot reach upstream {self.name!r}: {_describe(exc)}") from None
            raise
        if result.is_error:
            raise UpstreamToolError(_error_text(result, tool.name), result.structured_content)
        return result_value(result, tool.output_schema)

    def _follows_tasks(self) -> bool:
        """Whether the upstream may answer with a task (then the SDK's client follows it)."""
        assert self.client is not None
        return TASKS_EXTENSION in (self.client.server_capabilities.extensions or {})

    async def _plain_call(
        self, stdio: UpstreamStdio, name: str, arguments: dict[str, Any]
    ) -> mt.CallToolResult:
        """``tools/call`` as one request over the pipe, beside the SDK's session.

        For a call that needs nothing the SDK's client adds (no progress, no task to follow):
        at about a quarter of its cost (``asyncfc bench proxy``). The request is the one the
        SDK would send, less the capabilities that would let the server answer otherwise.
        """
        assert self.client is not None
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        version = self.client.protocol_version
        if version in MODERN_PROTOCOL_VERSIONS:
            params["_meta"] = {
                mt.PROTOCOL_VERSION_META_KEY: version,
                mt.CLIENT_INFO_META_KEY: {"name": "asyncfc", "version": package_version()},
                mt.CLIENT_CAPABILITIES_META_KEY: {},
            }
        result = await stdio.request("tools/call", params)
        return mt.CallToolResult.model_validate(result, by_name=False)


@functools.cache
def package_version() -> str:
    """asyncfc's version, as the proxy names itself to clients and upstreams (read once)."""
    try:
        return version("asyncfc")
    except PackageNotFoundError:  # run from a source tree without installing
        return ""


def _describe(exc: BaseException) -> str:
    """The innermost message of an exception (anyio wraps transport errors in groups)."""
    inner = getattr(exc, "exceptions", None)
    while isinstance(inner, tuple) and len(inner) == 1 and isinstance(inner[0], BaseException):
        exc = inner[0]
        inner = getattr(exc, "exceptions", None)
    return describe(exc)


def _client_for(spec: UpstreamSpec) -> tuple[Client, UpstreamStdio | None]:
    # an upstream may answer a call with an MCP task: the proxy follows it (tasks.py)
    if spec.is_url:
        return Client(spec.target, extensions=[UpstreamTasks()]), None
    argv = shlex.split(spec.target)
    if not argv:
        raise ConfigurationError(f"empty upstream command {spec.target!r}")
    # the proxy was started by the client with the environment its servers need: pass it on
    if sys.platform == "win32":  # the SDK's transport knows Windows' job objects
        params = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
        return Client(params, extensions=[UpstreamTasks()]), None
    stdio = UpstreamStdio(argv, os.environ)
    return Client(stdio, extensions=[UpstreamTasks()]), stdio


async def _list_all(client: Client) -> list[mt.Tool]:
    tools: list[mt.Tool] = []
    cursor: str | None = None
    for _ in range(1000):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


@dataclass
class ProxyTool:
    """An upstream tool as the proxy lists it."""

    exposed: str
    upstream: Upstream
    mcp_tool: mt.Tool
    tool: Tool


@dataclass
class UpstreamPool:
    """Every upstream, connected for the proxy's lifetime (an async context manager)."""

    specs: Sequence[UpstreamSpec]
    upstreams: list[Upstream] = field(default_factory=list)

    async def __aenter__(self) -> UpstreamPool:
        if not self.specs:
            raise ConfigurationError("no upstream MCP server given (--upstream COMMAND_OR_URL)")
        try:
            taken: set[str] = set()
            for spec in self.specs:
                upstream = Upstream(spec)
                self.upstreams.append(upstream)
                client = await upstream.connect()
                info = client.server_info
                name = spec.name or (sanitize_name(info.name) if info and info.name else spec.derived_name())
                base, n = name, 2
                while name in taken:
                    name, n = f"{base}_{n}", n + 1
                taken.add(name)
                upstream.name = name
                try:
                    upstream.tools = await _list_all(client)
                except Exception as exc:
                    raise UpstreamUnavailable(
                        f"cannot list the tools of upstream {name!r}: {_describe(exc)}"
                    ) from exc
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        """Disconnect in reverse order; an upstream that died must not fail the others' shutdown."""
        while self.upstreams:
            await self.upstreams.pop().aclose()

    def proxy_tools(
        self, annotations: AnnotationsFile | None = None, *, prefix: bool = False
    ) -> tuple[list[ProxyTool], list[str]]:
        """The asyncfc tools for every upstream tool, and the annotation entries nothing matched.

        Names stay as the upstream gives them unless two upstreams share one (or ``prefix``):
        then they become ``server_tool``.
        """
        annotations = annotations or AnnotationsFile()
        counts: dict[str, int] = {}
        for up in self.upstreams:
            for t in up.tools:
                counts[t.name] = counts.get(t.name, 0) + 1
        out: list[ProxyTool] = []
        used: set[str] = set()
        for up in self.upstreams:
            for t in up.tools:
                clash = counts[t.name] > 1 or t.name == AWAIT_TOOL
                exposed = f"{up.name}_{t.name}" if prefix or clash else t.name
                key = annotations.key_for(up.name, t.name, exposed)
                if key is not None:
                    used.add(key)
                opts = tool_options(up.name, t, exposed, annotations)
                schema: dict[str, Any] = {
                    "name": exposed,
                    "description": t.description or t.title or t.name,
                    "parameters": t.input_schema,
                }
                tool = tool_from_schema(schema, _forwarder(up, t), **opts)
                out.append(ProxyTool(exposed, up, t, tool))
        stale = unused_entries(annotations, used, {u.name for u in self.upstreams})
        return out, stale


def _forwarder(upstream: Upstream, tool: mt.Tool) -> Callable[..., Awaitable[Any]]:
    """The tool function: forward the validated arguments to the upstream server."""

    async def forward(**arguments: Any) -> Any:
        origin = ORIGIN.get()
        try:
            progress = origin.progress if origin is not None and origin.report is not None else None
            return await upstream.call(tool, arguments, progress)
        except UpstreamToolError as exc:
            if origin is not None and exc.structured is not None:
                origin.error_structured = exc.structured  # the proxy's error result keeps it
            raise

    forward.__name__ = tool.name
    return forward
