"""MCP Tasks (``io.modelcontextprotocol/tasks``, spec 2026-07-28) through ``asyncfc mcp serve``,
both ways, over stdio with the official ``mcp`` SDK.

The proxy as a task server: a client built on the SDK's types (its own claim model for
``resultType: "task"``, its own ``tasks/get``/``tasks/cancel`` requests: nothing from asyncfc)
against the proxy in front of the FastMCP shop. The proxy as a task client: the proxy in
front of ``mcp_upstreams/jobs.py``, a task-capable upstream written by hand on the SDK's
low-level server (``fastmcp-tasks`` pins ``fastmcp-slim==4.1.4``, older than the 4.2 this
project installs, so it is not a test dependency; ``test_fastmcp_tasks_upstream`` runs it
when ``ASYNCFC_FASTMCP_TASKS_PYTHON`` names an interpreter that has it).

Waits are on observable state (a task's status, an upstream's event log) with generous
deadlines; nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

pytest.importorskip("mcp")

import mcp.types as mt  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402
from pydantic import ConfigDict  # noqa: E402

HERE = Path(__file__).resolve().parent / "mcp_upstreams"
SHOP = HERE / "shop.py"
JOBS = HERE / "jobs.py"
DELAY = 0.8
"""Seconds a slow upstream call takes: well above the grace window, so it becomes a task."""
GRACE = 0.3
EXTENSION = "io.modelcontextprotocol/tasks"
DEADLINE_S = 60.0
"""How long a test waits for a state it expects (a bound against hanging, not a timing check)."""

ANNOTATIONS = """
[tools.write_file]
writes = ["files/{path}"]
reads = []

[tools.read_file]
reads = ["files/{path}"]
writes = []
"""


def sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on its own event loop (the suite has no async plugin)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


# -- a task-aware client on the SDK's types ----------------------------------------------


class TaskCreated(mt.Result):
    """``CreateTaskResult``: the claimed shape of ``tools/call``."""

    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    poll_interval_ms: int | None = None


class Detailed(mt.Result):
    """``tasks/get``'s answer (``DetailedTask``)."""

    model_config = ConfigDict(extra="allow")
    task_id: str
    status: str
    status_message: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class TaskParams(mt.RequestParams):
    task_id: str


class GetTask(mt.Request[TaskParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskParams


class CancelTask(mt.Request[TaskParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskParams


class UpdateParams(TaskParams):
    input_responses: dict[str, Any]


class UpdateTask(mt.Request[UpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    params: UpdateParams


async def _not_followed(result: TaskCreated, ctx: ClaimContext) -> mt.CallToolResult:
    raise AssertionError("the tests read task results themselves (allow_claimed=True)")


class TaskAware(ClientExtension):
    """Declares the extension on every request and claims the ``task`` result shape."""

    identifier = EXTENSION

    def claims(self) -> tuple[ResultClaim[Any], ...]:
        return (ResultClaim(result_type="task", model=TaskCreated, resolve=_not_followed),)


def _proxy(*upstreams: str, grace: float = GRACE, annotations: Path | None = None) -> StdioServerParameters:
    args = ["-m", "asyncfc.cli", "mcp", "serve", "--grace", str(grace)]
    for u in upstreams:
        args += ["--upstream", u]
    if annotations is not None:
        args += ["--annotations", str(annotations)]
    return StdioServerParameters(command=sys.executable, args=args, env=dict(os.environ))


@contextlib.asynccontextmanager
async def connect(params: StdioServerParameters, *, tasks: bool) -> AsyncIterator[Client]:
    async with Client(params, extensions=[TaskAware()] if tasks else None) as client:
        yield client


async def call(client: Client, name: str, arguments: dict[str, Any]) -> mt.CallToolResult | TaskCreated:
    result = await client.session.call_tool(name, arguments, allow_claimed=True)
    assert isinstance(result, mt.CallToolResult | TaskCreated), result
    return result


async def get(client: Client, task_id: str) -> Detailed:
    return await client.session.send_request(GetTask(params=TaskParams(task_id=task_id)), Detailed)


async def until_terminal(client: Client, task_id: str) -> Detailed:
    end = time.monotonic() + DEADLINE_S
    while True:
        state = await get(client, task_id)
        if state.status in ("completed", "failed", "cancelled") or time.monotonic() > end:
            return state
        await asyncio.sleep(0.05)


def body(result: mt.CallToolResult | dict[str, Any]) -> Any:
    if isinstance(result, dict):
        result = mt.CallToolResult.model_validate(result)
    assert len(result.content) == 1 and isinstance(result.content[0], mt.TextContent)
    return json.loads(result.content[0].text)


async def outcome(client: Client, result: mt.CallToolResult | TaskCreated) -> Any:
    """A call's tool message: the result itself, or its task's result once completed."""
    if isinstance(result, mt.CallToolResult):
        return body(result)
    state = await until_terminal(client, result.task_id)
    assert state.status == "completed" and state.result is not None, state
    return body(state.result)


async def wait_until(check: Callable[[], Any], what: str) -> Any:
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# -- the proxy as a task server ---------------------------------------------------------------


@sync
async def test_a_task_aware_client_gets_tasks_whose_ids_are_futures_and_each_value_once() -> None:
    shop = f"{sys.executable} {SHOP} --delay {DELAY}"
    async with connect(_proxy(shop), tasks=True) as client:
        assert EXTENSION in (client.server_capabilities.extensions or {})
        first = await call(client, "lookup_price", {"item": "fig"})
        assert isinstance(first, TaskCreated), first
        assert (first.task_id, first.status) == ("fut_1", "working")
        assert first.status_message is not None and "fut_1" in first.status_message
        assert first.model_dump(by_alias=True)["resultType"] == "task"

        # the task id is the future id: a later call takes it (and a field of it) as arguments
        order = await call(client, "place_order", {"item": "fut_1.item", "price": "fut_1.price", "qty": 2})
        assert isinstance(order, TaskCreated) and order.task_id == "fut_2"
        placed = await until_terminal(client, "fut_2")
        assert placed.status == "completed" and placed.result is not None
        assert placed.result["isError"] is False
        order_value = body(placed.result)
        assert order_value["future"] == "fut_2" and order_value["status"] == "resolved"
        assert order_value["value"]["item"] == "fig" and order_value["value"]["total"] == 8.5

        price = await until_terminal(client, "fut_1")
        assert price.status == "completed" and price.result is not None
        price_value = body(price.result)
        assert price_value["value"]["price"] == 4.25
        # the order ran on the price's value, so after it resolved (the upstream's clock)
        assert order_value["value"]["start"] >= price_value["value"]["end"]
        # polling again repeats the same result: one delivery, read as often as the client likes
        assert (await get(client, "fut_1")).result == price.result

        # exactly once: neither value comes back under resolved_earlier
        later = await outcome(client, await call(client, "quick_stock", {"item": "pear"}))
        assert later["value"] == 4 and "resolved_earlier" not in later

        # await_future on a task's future gives its value; the task then says it was given
        third = await call(client, "lookup_price", {"item": "pear"})
        assert isinstance(third, TaskCreated)
        awaited = body(await client.call_tool("await_future", {"ids": [third.task_id]}))
        assert awaited["value"]["price"] == 2.0
        after = await until_terminal(client, third.task_id)
        assert after.result is not None and body(after.result)["status"] == "delivered"

        # an id the proxy never issued is invalid params
        with pytest.raises(MCPError) as err:
            await get(client, "fut_99")
        assert err.value.error.code == mt.INVALID_PARAMS


@sync
async def test_tasks_cancel_cancels_the_call_and_its_upstream_request() -> None:
    shop = f"{sys.executable} {SHOP} --delay {DELAY}"
    async with connect(_proxy(shop), tasks=True) as client:
        hung = await call(client, "hang", {"tag": "t1"})
        assert isinstance(hung, TaskCreated)
        ack = await client.session.send_request(
            CancelTask(params=TaskParams(task_id=hung.task_id)), mt.EmptyResult
        )
        assert isinstance(ack, mt.EmptyResult)
        state = await until_terminal(client, hung.task_id)
        assert state.status == "cancelled" and state.result is None

        async def upstream_saw_it() -> bool:
            events = await outcome(client, await call(client, "get_events", {}))
            return "cancelled t1" in events["value"]

        end = time.monotonic() + DEADLINE_S
        while not await upstream_saw_it():
            assert time.monotonic() < end, "the upstream call was never cancelled"
            await asyncio.sleep(0.05)
        # tasks/update is acknowledged (the proxy's tasks never ask for input); unknown ids are errors
        update = UpdateTask(params=UpdateParams(task_id=hung.task_id, input_responses={}))
        assert isinstance(await client.session.send_request(update, mt.EmptyResult), mt.EmptyResult)
        with pytest.raises(MCPError) as err:
            await client.session.send_request(
                UpdateTask(params=UpdateParams(task_id="nope", input_responses={})), mt.EmptyResult
            )
        assert err.value.error.code == mt.INVALID_PARAMS
        # cancelling a finished task is acknowledged and changes nothing
        await client.session.send_request(CancelTask(params=TaskParams(task_id=hung.task_id)), mt.EmptyResult)
        assert (await get(client, hung.task_id)).status == "cancelled"


@sync
async def test_a_failing_call_completes_its_task_with_is_error() -> None:
    shop = f"{sys.executable} {SHOP} --delay {DELAY}"
    async with connect(_proxy(shop), tasks=True) as client:
        slow = await call(client, "lookup_price", {"item": "kiwi"})  # no such item: the upstream fails it
        assert isinstance(slow, TaskCreated)
        state = await until_terminal(client, slow.task_id)
        # a tool error is a completed task with isError, never "failed" (kept for JSON-RPC errors)
        assert state.status == "completed" and state.result is not None and state.result["isError"] is True
        failed = body(state.result)
        assert failed["status"] == "failed" and "kiwi" in failed["error"]["message"]


@sync
async def test_read_write_ordering_holds_between_tasks(tmp_path: Path) -> None:
    annotations = tmp_path / "tools.toml"
    annotations.write_text(ANNOTATIONS, encoding="utf-8")
    files = f"{sys.executable} {SHOP} --role files --name files --delay {DELAY}"
    async with connect(_proxy(files, annotations=annotations), tasks=True) as client:
        write = await call(client, "write_file", {"path": "a.txt", "text": "hello"})
        assert isinstance(write, TaskCreated)
        # the read of the same path waits for the write (its read set meets the write's)
        read = await outcome(client, await call(client, "read_file", {"path": "a.txt"}))
        assert read["value"] == "hello"
        assert (await until_terminal(client, write.task_id)).status == "completed"


@sync
async def test_a_plain_client_keeps_placeholders_and_may_not_poll_tasks() -> None:
    shop = f"{sys.executable} {SHOP} --delay {DELAY}"
    async with connect(_proxy(shop), tasks=False) as client:
        assert isinstance(await client.session.call_tool("lookup_price", {"item": "fig"}), mt.CallToolResult)
        first = body(await client.call_tool("lookup_price", {"item": "pear"}))
        assert first == {"future": "fut_2", "status": "pending"}
        with pytest.raises(MCPError) as err:
            await get(client, "fut_2")
        assert err.value.error.code == -32021
        assert err.value.error.data == {"requiredCapabilities": {"extensions": {EXTENSION: {}}}}


@sync
async def test_a_call_within_the_grace_window_is_answered_with_its_value() -> None:
    shop = f"{sys.executable} {SHOP} --delay {DELAY}"
    async with connect(_proxy(shop, grace=120.0), tasks=True) as client:
        result = await call(client, "lookup_price", {"item": "fig"})
        assert isinstance(result, mt.CallToolResult)
        assert body(result)["value"]["price"] == 4.25


# -- the proxy as a task client -------------------------------------------------------------


@sync
async def test_the_proxy_follows_an_upstream_task_to_the_futures_value(tmp_path: Path) -> None:
    log = tmp_path / "jobs.jsonl"
    jobs = f"{sys.executable} {JOBS} --delay {DELAY} --log {log}"
    async with connect(_proxy(jobs), tasks=False) as client:
        pending = body(await client.call_tool("square", {"x": 3}))
        assert pending == {"future": "fut_1", "status": "pending"}
        broken = body(await client.call_tool("broken", {}))
        assert broken["future"] == "fut_2"
        got = body(await client.call_tool("await_future", {"ids": ["fut_1", "fut_2"]}))
        assert got[0] == {"future": "fut_1", "status": "resolved", "value": {"x": 3, "square": 9}}
        assert got[1]["status"] == "failed" and got[1]["error"]["type"] == "tool_error"
        assert "on fire" in got[1]["error"]["message"]
    events = _log(log)
    # the upstream made tasks (not direct calls) and the proxy polled them to the end
    started = {e["tool"]: e["task"] for e in events if e["event"] == "started"}
    assert set(started) == {"square", "broken"}
    for task in started.values():
        assert any(
            e["event"] == "polled" and e["task"] == task and e["status"] == "completed" for e in events
        )
    assert not any(e["event"] == "direct" for e in events)


@sync
async def test_cancelling_the_future_cancels_the_upstream_task(tmp_path: Path) -> None:
    log = tmp_path / "jobs.jsonl"
    jobs = f"{sys.executable} {JOBS} --delay {DELAY} --log {log}"
    async with connect(_proxy(jobs), tasks=True) as client:
        waiting = await call(client, "hold", {"tag": "h1"})
        assert isinstance(waiting, TaskCreated) and waiting.task_id == "fut_1"
        await wait_until(lambda: any(e["event"] == "started" for e in _log(log)), "the upstream task started")
        await client.session.send_request(CancelTask(params=TaskParams(task_id="fut_1")), mt.EmptyResult)
        assert (await until_terminal(client, "fut_1")).status == "cancelled"
        await wait_until(
            lambda: any(e["event"] == "cancelled" and e["tool"] == "hold" for e in _log(log)),
            "the upstream cancelled its task",
        )
    assert any(e["event"] == "cancel_requested" for e in _log(log))


@sync
async def test_a_timed_out_call_cancels_its_upstream_task(tmp_path: Path) -> None:
    log = tmp_path / "jobs.jsonl"
    annotations = tmp_path / "tools.toml"
    annotations.write_text("[tools.hold]\ntimeout = 0.5\n", encoding="utf-8")
    jobs = f"{sys.executable} {JOBS} --delay {DELAY} --log {log}"
    async with connect(_proxy(jobs, annotations=annotations), tasks=False) as client:
        assert body(await client.call_tool("hold", {"tag": "t"}))["status"] == "pending"
        got = body(await client.call_tool("await_future", {"ids": ["fut_1"]}))
        assert got["status"] == "failed" and got["error"]["type"] == "timeout", got
        await wait_until(
            lambda: any(e["event"] == "cancelled" and e["tool"] == "hold" for e in _log(log)),
            "the upstream cancelled the timed-out task",
        )
    assert any(e["event"] == "cancel_requested" for e in _log(log))


@sync
async def test_tasks_both_ways_with_a_future_passed_on(tmp_path: Path) -> None:
    log = tmp_path / "jobs.jsonl"
    jobs = f"{sys.executable} {JOBS} --delay {DELAY} --log {log}"
    async with connect(_proxy(jobs), tasks=True) as client:
        square = await call(client, "square", {"x": 3})
        assert isinstance(square, TaskCreated) and square.task_id == "fut_1"
        # quick is never a task upstream; here it waits on fut_1's value at the proxy
        double = await outcome(client, await call(client, "quick", {"x": "fut_1.square"}))
        assert double["value"] == {"x": 9, "double": 18}
        done = await until_terminal(client, "fut_1")
        assert done.result is not None and body(done.result)["value"] == {"x": 3, "square": 9}


@contextlib.contextmanager
def http_jobs(log: Path) -> Iterator[str]:
    """jobs.py over streamable HTTP (a 2026-07-28 server: no sessions, tasks by id)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    cmd = [sys.executable, str(JOBS), "--delay", str(DELAY), "--log", str(log), "--http", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + DEADLINE_S
        while True:
            assert proc.poll() is None, f"jobs.py exited with {proc.returncode}"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < end, "jobs.py never listened"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_the_proxy_follows_tasks_of_an_http_upstream(tmp_path: Path) -> None:
    log = tmp_path / "jobs.jsonl"
    with http_jobs(log) as url:

        async def main() -> Any:
            async with connect(_proxy(url), tasks=False) as client:
                assert body(await client.call_tool("square", {"x": 5}))["status"] == "pending"
                return body(await client.call_tool("await_future", {"ids": ["fut_1"]}))

        got = asyncio.run(main())
    assert got == {"future": "fut_1", "status": "resolved", "value": {"x": 5, "square": 25}}
    events = _log(log)
    assert [e["event"] for e in events if e["event"] in ("started", "finished")] == ["started", "finished"]
    assert any(e["event"] == "polled" and e["status"] == "completed" for e in events)


FASTMCP_TASKS_PYTHON = os.environ.get("ASYNCFC_FASTMCP_TASKS_PYTHON")


@pytest.mark.skipif(
    not FASTMCP_TASKS_PYTHON,
    reason="set ASYNCFC_FASTMCP_TASKS_PYTHON to a Python that has fastmcp-tasks (it pins fastmcp-slim==4.1.4)",
)
@sync
async def test_fastmcp_tasks_upstream() -> None:
    upstream = f"{FASTMCP_TASKS_PYTHON} {HERE / 'fastmcp_jobs.py'} --delay {DELAY}"
    async with connect(_proxy(upstream), tasks=False) as client:
        assert body(await client.call_tool("square", {"x": 4})) == {"future": "fut_1", "status": "pending"}
        got = body(await client.call_tool("await_future", {"ids": ["fut_1"]}))
        assert got["status"] == "resolved" and got["value"] in (16, {"result": 16}), got
