"""Limits a user can set: concurrency per session, per tool and globally; result size."""

from __future__ import annotations

import asyncio
import json

from asyncfc import Agent, tool
from asyncfc.testing import ScriptedCall, ScriptedModel


def _slow_tools(active: list[int], peak: list[int]) -> list:  # type: ignore[type-arg]
    async def body() -> str:
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await asyncio.sleep(0.02)
        active[0] -= 1
        return "ok"

    @tool(pure=True)
    async def a(i: int) -> str:
        """Tool a."""
        return await body()

    @tool(pure=True)
    async def b(i: int) -> str:
        """Tool b."""
        return await body()

    return [a, b]


def _burst(n: int) -> ScriptedModel:
    return ScriptedModel([[ScriptedCall("a" if i % 2 else "b", {"i": i}) for i in range(n)], "done"])


def test_session_limit_caps_concurrency() -> None:
    active, peak = [0], [0]
    agent = Agent(_burst(12), _slow_tools(active, peak), mode="async", max_session_concurrency=3)
    result = agent.run_sync("go")
    assert all(c.value == "ok" for c in result.calls)
    assert peak[0] == 3


def test_session_limit_with_references_cancels_and_close() -> None:
    """Under a per-session limit, calls that wait for a slot keep program order, may be
    cancelled while they wait (the slot passes on), pass values on, and resolve to
    ``cancelled`` when the session closes before they start."""
    from asyncfc import Runtime
    from asyncfc.errors import ErrorKind

    started: list[int] = []
    release = asyncio.Event()

    @tool(pure=True)
    async def slow(i: int) -> int:
        """Wait for the test to release it."""
        started.append(i)
        await release.wait()
        return i * 10

    async def main() -> None:
        async with Runtime([slow], mode="async", max_concurrency=2, grace_s=0.0) as rt:
            calls = [rt.submit("slow", {"i": i}) for i in range(4)]
            ref = rt.submit("slow", '{"i": "fut_1"}')  # waits for fut_1, then for a slot
            await asyncio.sleep(0.05)
            assert started == [0, 1]  # two slots
            rt.cancel(calls[2], "not needed")  # queued: resolves now, without taking a slot
            assert calls[2].error is not None and calls[2].error.kind is ErrorKind.CANCELLED
            release.set()
            await rt.wait_all([calls[0], calls[1], calls[3], ref])
            assert [c.value for c in (*calls[:2], calls[3], ref)] == [0, 10, 30, 0]
            assert sorted(started) == [0, 0, 1, 3]
            release.clear()
            waiting = [rt.submit("slow", {"i": i}) for i in range(5, 9)]
            await asyncio.sleep(0.05)
            assert sorted(started[4:]) == [5, 6]
        # closed with two calls running and two queued: every one resolves to cancelled
        assert all(c.error is not None and c.error.kind is ErrorKind.CANCELLED for c in waiting)
        assert len(started) == 6

    asyncio.run(main())


def test_global_and_per_tool_limits() -> None:
    active, peak = [0], [0]
    agent = Agent(
        _burst(12), _slow_tools(active, peak), mode="async", max_concurrency=4, tool_limits={"a": 1}
    )
    result = agent.run_sync("go")
    assert all(c.value == "ok" for c in result.calls)
    assert agent.executor.peak_running <= 4
    assert agent.executor.peak_per_tool["a"] == 1
    assert agent.executor.peak_per_tool["b"] >= 2


def test_global_limit_spans_sessions() -> None:
    active, peak = [0], [0]
    tools = _slow_tools(active, peak)

    async def main() -> None:
        agent = Agent(_burst(8), tools, mode="async", max_concurrency=2)
        # one agent, several sessions: the scripted model is shared, so give each its own agent
        # but share the executor to check the global limit across sessions
        agents = [Agent(_burst(8), tools, mode="async") for _ in range(3)]
        for other in agents:
            other.executor = agent.executor
        await asyncio.gather(*(a.run("go") for a in agents))

    asyncio.run(main())
    assert peak[0] == 2


def test_result_size_limit_truncates_for_the_model_only() -> None:
    @tool(pure=True)
    def big() -> str:
        """A huge result."""
        return "x" * 50_000

    agent = Agent(ScriptedModel([[ScriptedCall("big")], "done"]), [big], mode="sync", max_result_chars=100)
    result = agent.run_sync("go")
    shown = [m.content for m in result.messages if m.role == "tool"][0]
    assert len(shown) < 200 and "truncated: 50000 characters" in shown
    assert result.calls[0].value == "x" * 50_000


def test_result_size_limit_in_async_delivery() -> None:
    @tool(pure=True)
    async def big() -> str:
        """A huge result."""
        await asyncio.sleep(0.01)
        return "y" * 10_000

    # a fixed window, so the 10 ms call answers with its (cut) value in its own tool message
    agent = Agent(
        ScriptedModel([[ScriptedCall("big")], "done"]), [big], mode="async", max_result_chars=50, grace_s=0.5
    )
    result = agent.run_sync("go")
    delivered = json.loads([m.content for m in result.messages if m.role == "tool"][0])
    assert delivered["status"] == "resolved" and "truncated: 10000 characters" in delivered["value"]
