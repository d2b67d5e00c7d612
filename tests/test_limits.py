"""Limits a user can set: concurrency per session, per tool and globally; result size."""

from __future__ import annotations

import asyncio
import json

from asyncfc import Agent, tool
from asyncfc.models import ScriptedCall, ScriptedModel


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

    agent = Agent(ScriptedModel([[ScriptedCall("big")], "done"]), [big], mode="async", max_result_chars=50)
    result = agent.run_sync("go")
    delivered = json.loads([m.content for m in result.messages if m.role == "tool"][0])
    assert delivered["status"] == "resolved" and "truncated: 10000 characters" in delivered["value"]
