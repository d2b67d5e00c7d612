"""What each delivery policy costs the model, and the grace window: against the
simulated-decode server, which keeps a prefix cache like llama-server's one slot."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from asyncfc import Agent, tool
from asyncfc.agent import Delivery
from asyncfc.models import OpenAIChatModel
from asyncfc.testing import SimServer
from asyncfc.testing.scripted import Ref, ScriptedCall, ScriptedModel
from conftest import tool_message

GATE_S = 0.15


def tools() -> list[Any]:
    @tool(pure=True)
    async def slow(x: int) -> int:
        await asyncio.sleep(GATE_S * x)
        return x * 10

    @tool(pure=True)
    async def fast(x: int) -> int:
        return x + 1

    return [slow, fast]


def conversation() -> list[Any]:
    """A slow call (0.9 s) answered with a placeholder, then steps of 0.3 s each: its value
    arrives a few steps later, when its placeholder is far back in the history."""
    return [
        [ScriptedCall("slow", {"x": 6})],
        [ScriptedCall("fast", {"x": 1})],
        [ScriptedCall("fast", {"x": 2})],
        [ScriptedCall("fast", {"x": 3})],
        [ScriptedCall("fast", {"x": Ref(1)})],
        "done",
    ]


def run_policy(delivery: Delivery) -> list[tuple[int, int]]:
    """(prompt tokens, cached tokens) of each model request."""

    async def main() -> list[tuple[int, int]]:
        with SimServer(conversation(), ttft_s=0.3) as srv:
            async with OpenAIChatModel(srv.model_name, base_url=srv.base_url) as model:
                agent = Agent(model, tools(), mode="async", delivery=delivery, grace_s=0)
                result = await agent.run("go")
        assert result.text == "done" and all(c.error is None for c in result.calls)
        assert [c.deliveries for c in result.calls] == [1] * len(result.calls)
        return [(u.input_tokens, u.cached_input_tokens) for u in result.trace.usages()]

    return asyncio.run(main())


@pytest.mark.parametrize("delivery", ["append", "synthetic_await"])
def test_append_only_policies_keep_the_whole_previous_prompt_cached(delivery: Delivery) -> None:
    steps = run_policy(delivery)
    for (prev_prompt, _), (_, cached) in zip(steps, steps[1:], strict=False):
        assert cached >= prev_prompt - 1, steps  # llama re-evaluates the last prompt token


def test_rewrite_throws_away_the_cache_from_the_edited_message_on() -> None:
    steps = run_policy("rewrite")
    lost = [prev - cached for (prev, _), (_, cached) in zip(steps, steps[1:], strict=False)]
    assert max(lost) > 20, steps  # the placeholder edited in place: the prompt after it is processed again
    append = run_policy("append")
    assert sum(p - c for p, c in steps) > sum(p - c for p, c in append) + 20, (steps, append)


@pytest.mark.parametrize(
    ("grace_s", "expect"),
    [
        (0.0, ["pending", "pending"]),
        (GATE_S / 3, ["resolved", "pending"]),
        (GATE_S * 4, ["resolved", "resolved"]),
    ],
)
def test_the_grace_window_answers_fast_calls_with_their_value(grace_s: float, expect: list[str]) -> None:
    model_turns: list[Any] = [[ScriptedCall("fast", {"x": 1}), ScriptedCall("slow", {"x": 1})], "done"]
    result = asyncio.run(Agent(ScriptedModel(model_turns), tools(), mode="async", grace_s=grace_s).run("go"))
    shown = [
        json.loads(tool_message(result.messages, c.tool_call_id).content)["status"] for c in result.calls
    ]
    assert shown == expect
    assert all(c.deliveries == 1 for c in result.calls)
