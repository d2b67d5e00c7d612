"""A task-capable upstream MCP server for the proxy tests, on the ``mcp`` SDK's low-level server.

It implements the tasks extension (``io.modelcontextprotocol/tasks``, spec 2026-07-28,
modelcontextprotocol/ext-tasks ``specification/2026-07-28/tasks.md``) by hand, without
importing asyncfc, so the proxy's task client is tested against an independent writer of
the shapes: to a ``tools/call`` whose request declares the extension, the task tools answer
with a ``CreateTaskResult`` (``resultType: "task"``); ``tasks/get`` reports ``working``,
then ``completed`` with the ``CallToolResult`` (``isError`` for a tool error) or
``cancelled``; ``tasks/cancel`` cancels the work. A request without the extension gets the
plain result after the work is done.

``python jobs.py [--delay S] [--log FILE] [--http PORT]``: stdio, or streamable HTTP on
``127.0.0.1:PORT/mcp``. ``--log`` appends one JSON line per
event (``started``, ``finished``, ``cancelled``, ``polled``) so tests observe the upstream's
side without timing it.

Tools: ``square(x)`` (a task that takes ``--delay`` s), ``hold(tag)`` (a task that never
ends on its own: only ``tasks/cancel`` ends it), ``broken()`` (a task that completes with
``isError``) and ``quick(x)`` (never a task).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp.types as mt
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

EXTENSION = "io.modelcontextprotocol/tasks"
CAPS_META = "io.modelcontextprotocol/clientCapabilities"
POLL_MS = 50


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _declares_tasks(meta: Mapping[str, Any] | None) -> bool:
    caps: Any = (meta or {}).get(CAPS_META)
    if isinstance(caps, mt.ClientCapabilities):
        caps = caps.model_dump(by_alias=True, exclude_none=True)
    return isinstance(caps, Mapping) and EXTENSION in (caps.get("extensions") or {})


def _text(value: Any, is_error: bool = False) -> dict[str, Any]:
    text = value if isinstance(value, str) else json.dumps(value)
    return {"content": [{"type": "text", "text": text}], "isError": is_error}


@dataclass
class Job:
    task_id: str
    tool: str
    created: str
    updated: str
    status: str = "working"
    result: dict[str, Any] | None = None
    message: str | None = None
    runner: asyncio.Task[None] | None = field(default=None, repr=False)

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "taskId": self.task_id,
            "status": self.status,
            "createdAt": self.created,
            "lastUpdatedAt": self.updated,
            "ttlMs": None,
            "pollIntervalMs": POLL_MS,
        }
        if self.message:
            out["statusMessage"] = self.message
        if self.status == "completed":
            out["result"] = self.result
        return out


class Params(mt.RequestParams):
    task_id: str


def build(delay: float, log: str | None) -> Server[Any]:
    jobs: dict[str, Job] = {}

    def event(kind: str, **fields: Any) -> None:
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"event": kind, "t": time.time(), **fields}) + "\n")

    async def square(args: Mapping[str, Any]) -> dict[str, Any]:
        await anyio.sleep(delay)
        x = args["x"]
        return _text({"x": x, "square": x * x})

    async def hold(args: Mapping[str, Any]) -> dict[str, Any]:
        await asyncio.Event().wait()  # nobody sets it: only cancellation ends the work
        return _text({"tag": args["tag"]})

    async def broken(args: Mapping[str, Any]) -> dict[str, Any]:
        await anyio.sleep(delay / 4)
        return _text("the render farm is on fire", is_error=True)

    async def quick(args: Mapping[str, Any]) -> dict[str, Any]:
        return _text({"x": args["x"], "double": args["x"] * 2})

    work: dict[str, Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]] = {
        "square": square,
        "hold": hold,
        "broken": broken,
        "quick": quick,
    }
    schemas = {
        "square": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
        "hold": {"type": "object", "properties": {"tag": {"type": "string"}}, "required": ["tag"]},
        "broken": {"type": "object", "properties": {}},
        "quick": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
    }

    async def run(job: Job, args: Mapping[str, Any]) -> None:
        event("started", task=job.task_id, tool=job.tool)
        try:
            job.result = await work[job.tool](args)
        except asyncio.CancelledError:
            job.status, job.updated, job.message = "cancelled", _now(), "cancelled by the client"
            event("cancelled", task=job.task_id, tool=job.tool)
            raise
        job.status, job.updated = "completed", _now()
        event("finished", task=job.task_id, tool=job.tool)

    async def on_list_tools(ctx: Any, params: Any) -> mt.ListToolsResult:
        return mt.ListToolsResult(
            tools=[
                mt.Tool(name=name, description=f"{name} (jobs)", input_schema=schemas[name]) for name in work
            ]
        )

    async def on_call_tool(ctx: Any, params: mt.CallToolRequestParams) -> Any:
        args = params.arguments or {}
        if params.name not in work:
            raise MCPError(code=mt.INVALID_PARAMS, message=f"unknown tool {params.name!r}")
        if params.name == "quick" or not _declares_tasks(ctx.meta):
            event("direct", tool=params.name)
            return mt.CallToolResult.model_validate(await work[params.name](args))
        now = _now()
        job = Job(uuid.uuid4().hex, params.name, now, now)
        jobs[job.task_id] = job
        job.runner = asyncio.get_running_loop().create_task(run(job, args))
        return {"resultType": "task", **job.wire()}

    def find(ctx: Any, params: Params) -> Job:
        if not _declares_tasks(ctx.meta):
            raise MCPError(
                code=-32021,
                message="Missing required client capability",
                data={"requiredCapabilities": {"extensions": {EXTENSION: {}}}},
            )
        job = jobs.get(params.task_id)
        if job is None:
            raise MCPError(code=mt.INVALID_PARAMS, message="Failed to retrieve task: Task not found")
        return job

    async def on_get(ctx: Any, params: Params) -> dict[str, Any]:
        job = find(ctx, params)
        event("polled", task=job.task_id, status=job.status)
        return job.wire()

    async def on_cancel(ctx: Any, params: Params) -> dict[str, Any]:
        job = find(ctx, params)
        event("cancel_requested", task=job.task_id, tool=job.tool)
        if job.runner is not None and not job.runner.done():
            job.runner.cancel()
        return {}

    server: Server[Any] = Server("jobs", on_list_tools=on_list_tools, on_call_tool=on_call_tool)
    server.extensions[EXTENSION] = {}
    server.add_request_handler("tasks/get", Params, on_get)
    server.add_request_handler("tasks/cancel", Params, on_cancel)
    return server


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.8)
    parser.add_argument("--log", default=None)
    parser.add_argument("--http", type=int, default=None, help="serve streamable HTTP on this port")
    args = parser.parse_args()
    server = build(args.delay, args.log)
    if args.http is not None:
        import uvicorn

        app = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
        config = uvicorn.Config(app, host="127.0.0.1", port=args.http, log_level="warning", lifespan="on")
        await uvicorn.Server(config).serve()
        return
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    asyncio.run(main())
