"""The mode is one object the runtime owns: its ordering holds for every host, not only the Agent."""

from __future__ import annotations

import asyncio

import pytest

from asyncfc import Mode, Runtime, Tool, tool
from asyncfc.errors import ConfigurationError
from conftest import run


def test_mode_parses_text_and_refuses_unknown_names() -> None:
    assert Mode.of("sync") is Mode.SYNC
    assert Mode.of(Mode.ASYNC) is Mode.ASYNC
    assert f"{Mode.PARALLEL}" == "parallel" and str(Mode.SYNC) == "sync"
    with pytest.raises(ConfigurationError, match="valid values: sync, parallel, async"):
        Mode.of("fast")
    with pytest.raises(ConfigurationError, match="valid values"):
        Runtime([], mode="asynch")


def _recording_tool(log: list[str], gate: asyncio.Event, seen: dict[str, asyncio.Event]) -> Tool:
    """A tool writing one label that logs its start and end (``seen[line]`` is set when
    ``line`` is logged); call 1 runs until ``gate`` is set."""

    def record(line: str) -> None:
        log.append(line)
        seen.setdefault(line, asyncio.Event()).set()

    @tool(writes=["log"])
    async def step(n: int) -> int:
        record(f"start {n}")
        if n == 1:
            await gate.wait()
        record(f"end {n}")
        return n

    return step


def _event(seen: dict[str, asyncio.Event], line: str) -> asyncio.Event:
    return seen.setdefault(line, asyncio.Event())


def test_sync_mode_runs_a_hosts_concurrent_calls_one_at_a_time_in_program_order() -> None:
    """A host (an MCP proxy, a framework) that submits sync-mode calls concurrently still gets
    the synchronous baseline: each call starts after the one before it has finished."""
    log: list[str] = []

    async def scenario() -> list[int]:
        gate, seen = asyncio.Event(), {}
        async with Runtime([_recording_tool(log, gate, seen)], mode="sync") as rt:
            replies = [asyncio.ensure_future(rt.call("step", {"n": n})) for n in (1, 2, 3)]
            await _event(seen, "start 1").wait()
            for _ in range(20):  # give calls 2 and 3 every chance to start early
                await asyncio.sleep(0)
            assert log == ["start 1"]
            gate.set()
            return [int((await r).text) for r in replies]

    assert run(scenario()) == [1, 2, 3]
    assert log == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]


def test_parallel_mode_runs_a_hosts_concurrent_calls_together() -> None:
    log: list[str] = []

    async def scenario() -> None:
        gate, seen = asyncio.Event(), {}
        async with Runtime([_recording_tool(log, gate, seen)], mode="parallel") as rt:
            replies = [asyncio.ensure_future(rt.call("step", {"n": n})) for n in (1, 2, 3)]
            await _event(seen, "end 3").wait()  # calls 2 and 3 finish while call 1 is still running
            assert "end 1" not in log
            gate.set()
            await asyncio.gather(*replies)

    run(scenario())


def test_async_mode_orders_a_hosts_writes_by_their_labels() -> None:
    """Three calls writing the same label: async mode answers at once and runs them in order."""
    log: list[str] = []

    async def scenario() -> None:
        gate, seen = asyncio.Event(), {}
        async with Runtime([_recording_tool(log, gate, seen)], mode="async", grace_s=0) as rt:
            replies = [await rt.call("step", {"n": n}) for n in (1, 2, 3)]
            assert all('"pending"' in r.text for r in replies)
            gate.set()
            await rt.wait_all()

    run(scenario())
    assert log == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]
