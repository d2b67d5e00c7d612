"""MCP Tasks (the ``io.modelcontextprotocol/tasks`` extension, spec 2026-07-28), both ways.

**The proxy as a task server.** A ``tools/call`` whose request declares the extension in its
per-request client capabilities (``_meta["io.modelcontextprotocol/clientCapabilities"]
.extensions``) and that does not finish within the grace window is answered with a task
(``resultType: "task"``) instead of a placeholder: the task id *is* the future id
(``fut_3``), so the model can still pass ``fut_3`` (or ``fut_3.price``) to later calls.
``tasks/get`` reports ``working`` until the call resolves, then ``completed`` with the tool
result (``isError`` when the call failed) or ``cancelled``; ``tasks/cancel`` cancels the
call through :meth:`asyncfc.runtime.Runtime.cancel`. A task's value is delivered through
its task only, never also under ``resolved_earlier``: the first ``tasks/get`` that sees it
resolved marks it delivered, and every later poll returns that same result (polling is
idempotent). If ``await_future`` delivered it first, the task's result says so instead of
repeating the value. Requests without the extension get placeholders as before.

**The proxy as a task client.** The proxy's upstream clients carry :class:`UpstreamTasks`, a
:class:`mcp.client.extension.ClientExtension` that declares the extension and claims the
``task`` result shape of ``tools/call``: the call then polls ``tasks/get`` (at the
upstream's ``pollIntervalMs``) until the task is terminal, and its result becomes the
future's value. Cancelling the future (the runtime's ``cancel``, the client's
``tasks/cancel`` or ``notifications/cancelled``) sends ``tasks/cancel`` upstream.

Shapes follow the extension's specification (modelcontextprotocol/ext-tasks,
``specification/2026-07-28/tasks.md``). The ``mcp`` SDK delivers extension result shapes on
2026-07-28 connections only (the handshake-era wire sieves them), so both directions need a
2026-07-28 connection: stdio does; the proxy's streamable HTTP side keeps the handshake (its
sessions hold the futures) and so always answers with placeholders.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import anyio
import mcp.types as mt
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ConfigDict

from ...errors import ErrorKind
from ...futures import dumps
from ...model_text import delivered, task_status, with_earlier
from ...runtime import Runtime
from ...scheduler import Call

__all__ = [
    "CLIENT_CAPABILITIES_META",
    "MISSING_REQUIRED_CLIENT_CAPABILITY",
    "TASKS_EXTENSION",
    "CancelTaskParams",
    "GetTaskParams",
    "TaskBoard",
    "TaskResult",
    "UpdateTaskParams",
    "UpstreamTasks",
    "answer_or_task",
    "missing_capability",
    "wants_tasks",
]

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
"""The extension's identifier, under ``capabilities.extensions``."""

CLIENT_CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
"""Where a 2026-07-28 request carries its client capabilities (in ``params._meta``)."""

MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
"""The JSON-RPC error for ``tasks/*`` from a request that did not declare the extension."""

POLL_INTERVAL_MS = 500
"""What the proxy suggests to task clients (``pollIntervalMs``)."""

TERMINAL = frozenset({"completed", "failed", "cancelled"})


# -- wire shapes ------------------------------------------------------------------------


class TaskResult(mt.Result):
    """A task as the wire carries it: ``CreateTaskResult`` (``resultType: "task"``), or the
    ``DetailedTask`` of ``tasks/get`` and ``notifications/tasks`` (``resultType:
    "complete"``, with ``result`` or ``error`` once terminal)."""

    model_config = ConfigDict(extra="allow")

    result_type: str = "complete"
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def wire(self) -> dict[str, Any]:
        """The JSON object to answer with (``ttlMs`` is required, ``null`` for unlimited)."""
        out = self.model_dump(by_alias=True, mode="json", exclude_none=True)
        out["ttlMs"] = self.ttl_ms
        return out


class CreateTaskResult(TaskResult):
    """The claimed ``tools/call`` shape (``resultType: "task"``)."""

    result_type: Literal["task"] = "task"


class GetTaskParams(mt.RequestParams):
    task_id: str


class CancelTaskParams(mt.RequestParams):
    task_id: str


class UpdateTaskParams(mt.RequestParams):
    model_config = ConfigDict(extra="allow")

    task_id: str
    input_responses: dict[str, Any] | None = None


class _GetTask(mt.Request[GetTaskParams, Literal["tasks/get"]]):
    name_param: ClassVar[str | None] = "taskId"
    """Over streamable HTTP the SDK mirrors it into the ``Mcp-Name`` header, as the extension requires."""
    method: Literal["tasks/get"] = "tasks/get"
    params: GetTaskParams


class _CancelTask(mt.Request[CancelTaskParams, Literal["tasks/cancel"]]):
    name_param: ClassVar[str | None] = "taskId"
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: CancelTaskParams


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wants_tasks(protocol_version: str, meta: Mapping[str, Any] | None) -> bool:
    """Whether this request may be answered with a task: a 2026-07-28 request that declares
    the extension in its own capabilities (the spec forbids inferring them from earlier ones)."""
    if protocol_version not in MODERN_PROTOCOL_VERSIONS or not meta:
        return False
    caps = meta.get(CLIENT_CAPABILITIES_META)
    if isinstance(caps, mt.ClientCapabilities):
        extensions: Any = caps.extensions
    elif isinstance(caps, Mapping):
        extensions = caps.get("extensions")
    else:
        return False
    return isinstance(extensions, Mapping) and TASKS_EXTENSION in extensions


def missing_capability() -> MCPError:
    return MCPError(
        code=MISSING_REQUIRED_CLIENT_CAPABILITY,
        message="Missing required client capability",
        data={"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}},
    )


# -- the proxy as a task server ---------------------------------------------------------


@dataclass(eq=False)
class _Task:
    call: Call
    runtime: Runtime
    created_at: str
    updated_at: str
    output_example: Any = None
    result: dict[str, Any] | None = None
    """The ``CallToolResult`` the first terminal ``tasks/get`` built; every later poll repeats it."""
    finished: bool = False


@dataclass
class TaskBoard:
    """The tasks of one proxy: task id (the future id, per session) to its call."""

    _tasks: dict[tuple[str, str], _Task] = field(default_factory=dict)

    def add(self, key: str, runtime: Runtime, call: Call, output_example: Any = None) -> TaskResult:
        """Make a pending call a task; the ``CreateTaskResult`` to answer ``tools/call`` with."""
        now = _now()
        task = self._tasks[key, call.id] = _Task(call, runtime, now, now, output_example)
        out = self._view(task, deliver=False)
        return CreateTaskResult(**out.model_dump(exclude={"result_type"}))

    def __len__(self) -> int:
        return len(self._tasks)

    def _find(self, key: str, task_id: str) -> _Task:
        task = self._tasks.get((key, task_id))
        if task is None:
            raise MCPError(
                code=mt.INVALID_PARAMS, message=f"Failed to retrieve task: unknown task {task_id[:64]!r}"
            )
        return task

    def get(self, key: str, task_id: str) -> TaskResult:
        """``tasks/get``: the task's status, with its result once resolved."""
        return self._view(self._find(key, task_id), deliver=True)

    def update(self, key: str, task_id: str) -> None:
        """``tasks/update``: the proxy's tasks never ask for input, so there is nothing to take
        (an unknown id is still an error); it delivers nothing."""
        self._find(key, task_id)

    def cancel(self, key: str, task_id: str) -> None:
        """``tasks/cancel``: cancel the call (eventually consistent: a finished call stays finished)."""
        task = self._find(key, task_id)
        if not task.call.done:
            task.runtime.cancel(task.call, "the client cancelled the task")

    def _view(self, task: _Task, *, deliver: bool) -> TaskResult:
        call = task.call
        base: dict[str, Any] = {
            "task_id": call.id,
            "created_at": task.created_at,
            "ttl_ms": None,
            "poll_interval_ms": POLL_INTERVAL_MS,
        }
        if not call.done:
            return TaskResult(
                status="working",
                status_message=task_status(call.id, task.output_example),
                last_updated_at=task.updated_at,
                **base,
            )
        if not task.finished:
            task.finished = True
            task.updated_at = _now()
        error = call.error
        if error is not None and error.kind is ErrorKind.CANCELLED:
            return TaskResult(
                status="cancelled", status_message=error.message, last_updated_at=task.updated_at, **base
            )
        if deliver and task.result is None:
            rt = task.runtime
            # await_future may have given the value already: then say so (exactly once)
            body = rt.deliver(call) if call.delivered_at is None else delivered(call.id)
            task.result = mt.CallToolResult(
                content=[mt.TextContent(type="text", text=dumps(body))], is_error=error is not None
            ).model_dump(by_alias=True, mode="json", exclude_none=True, exclude={"result_type"})
        return TaskResult(status="completed", last_updated_at=task.updated_at, result=task.result, **base)


async def answer_or_task(
    rt: Runtime,
    board: TaskBoard,
    key: str,
    name: str,
    arguments: Mapping[str, Any],
    tool_call_id: str,
) -> mt.CallToolResult | TaskResult:
    """A ``tools/call`` from a task-aware request: its value within the grace window (with
    earlier values piggybacked, as for every client), else a task for its future."""
    call = rt.submit(name, dict(arguments), tool_call_id=tool_call_id)
    try:
        left = rt.grace.until(call, rt) - rt.trace.now()
        if not call.done and left > 0:
            await call.future.wait(left)
    except asyncio.CancelledError:
        # notifications/cancelled before the answer: as for a plain client, cancel the call
        # and report its cancellation with a later result
        rt.cancel(call, "the client cancelled the request")
        rt.hold(call)
        raise
    if call.done or not rt.mode.shows_futures:
        text = await rt.answer(call)
        ready = rt.take_ready()
        text = with_earlier(text, [rt.deliver_json(c) for c in ready])
        return mt.CallToolResult(
            content=[mt.TextContent(type="text", text=text)], is_error=call.error is not None
        )
    rt.grace.placeheld(call)  # to the grace policy a task is a placeholder (asyncfc.grace)
    tool = rt.tools.get(name)
    return board.add(key, rt, call, tool.output_example if tool is not None else None)


# -- the proxy as a task client ---------------------------------------------------------


MIN_POLL_S = 0.05
MAX_POLL_S = 5.0


async def _follow(task: CreateTaskResult, ctx: ClaimContext) -> mt.CallToolResult:
    """Poll an upstream task to its end; cancel it upstream if this call is cancelled."""
    session = ctx.session
    state: TaskResult = task
    try:
        while state.status not in TERMINAL:
            wait_ms = state.poll_interval_ms if state.poll_interval_ms is not None else 1000
            await anyio.sleep(min(MAX_POLL_S, max(MIN_POLL_S, wait_ms / 1000)))
            state = await session.send_request(
                _GetTask(params=GetTaskParams(task_id=task.task_id)),
                TaskResult,
                request_read_timeout_seconds=ctx.read_timeout_seconds,
            )
    except BaseException:
        if state.status not in TERMINAL:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                with anyio.fail_after(5):
                    await session.send_request(
                        _CancelTask(params=CancelTaskParams(task_id=task.task_id)), mt.EmptyResult
                    )
        raise
    if state.status == "completed" and state.result is not None:
        return mt.CallToolResult.model_validate(state.result)
    if state.status == "failed":
        err = state.error or {}
        raise MCPError(
            code=int(err.get("code", mt.INTERNAL_ERROR)),
            message=str(err.get("message") or state.status_message or "the upstream task failed"),
        )
    if state.status == "cancelled":  # not by us (that ends above): the upstream gave up
        raise MCPError(
            code=mt.INTERNAL_ERROR,
            message=f"the upstream cancelled its task ({state.status_message or 'no reason given'})",
        )
    raise MCPError(
        code=mt.INTERNAL_ERROR,
        message=f"upstream task {task.task_id!r} ended {state.status!r} without a result",
    )


class UpstreamTasks(ClientExtension):
    """The tasks extension on the proxy's upstream clients: follow a task to its result."""

    identifier = TASKS_EXTENSION

    def claims(self) -> Sequence[ResultClaim[Any]]:
        return (ResultClaim(result_type="task", model=CreateTaskResult, resolve=_follow),)
