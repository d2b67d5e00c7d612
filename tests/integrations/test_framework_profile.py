"""A model profile through the framework toolsets (``profile=``): what asyncfc's own Agent gives
a model, given to PydanticAI's, the Agents SDK's and LangGraph's agents alike.

Its instructions join the toolset's, its worked example (in the mode's form) comes before a
new conversation as the framework's own messages, and a call that repeats an identical one
of the same user turn is answered from it instead of running again. The real frameworks drive
the SimServer, which sees what the model would see.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from asyncfc import ConfigurationError, Tool, tool
from asyncfc.grace import CostAware
from asyncfc.integrations.hosted import HostedRuntime
from asyncfc.model_text import ANSWER_NOW, ASYNC_INSTRUCTIONS
from asyncfc.models import ModelProfile
from asyncfc.models.base import Message, ToolCall
from asyncfc.revise import HostedRun
from asyncfc.testing.scripted import Ref, ScriptedCall, Turn
from asyncfc.testing.simserver import SimServer

pytest.importorskip("pydantic_ai")
pytest.importorskip("agents")
pytest.importorskip("langgraph")

GRACE = 0.01


def example(is_async: bool) -> list[Message]:
    """A finished task with one call, its form named in the texts (so the test sees which was sent)."""
    form = "async" if is_async else "sync"
    return [
        Message("user", f"example task ({form})"),
        Message("assistant", "", [ToolCall("example_1", "lookup", '{"item": "kiwi"}')]),
        Message("tool", "4.0", tool_call_id="example_1"),
        Message("assistant", f"example answer ({form})"),
    ]


PROFILE = ModelProfile(instructions="Be brief.", example=example, answer_repeats=True)


class Shop:
    def __init__(self) -> None:
        self.runs: list[str] = []
        self.orders: list[tuple[str, float]] = []

    def tools(self) -> list[Tool]:
        @tool(pure=True)
        async def lookup(item: str) -> float:
            """Unit price of an item."""
            self.runs.append(item)
            await asyncio.sleep(0.05)
            return 2.5

        @tool(writes=["orders/{item}"])
        async def place_order(item: str, price: float) -> str:
            """Order an item at a price."""
            self.orders.append((item, price))
            return f"ordered {item} at {price}"

        return [lookup, place_order]


# a lookup; the same lookup again with an order passing the lookup on (Ref(1): the example's
# call is not counted); the lookup once more, alone (a step of repeats only); the answer
TURNS: list[Turn] = [
    [ScriptedCall("lookup", {"item": "apple"})],
    [
        ScriptedCall("lookup", {"item": "apple"}),
        ScriptedCall("place_order", {"item": "apple", "price": Ref(1)}),
    ],
    [ScriptedCall("lookup", {"item": "apple"})],
    "Ordered.",
]

Driver = Callable[[SimServer, Shop, str], Coroutine[Any, Any, HostedRun[Any]]]


async def drive_pydantic_ai(srv: SimServer, shop: Shop, mode: str) -> HostedRun[Any]:
    from openai import AsyncOpenAI
    from pydantic_ai import Agent as PAgent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    from asyncfc.integrations.pydantic_ai import AsyncFCToolset, run

    async with AsyncOpenAI(base_url=srv.base_url, api_key="x") as client:
        agent = PAgent(OpenAIChatModel("sim", provider=OpenAIProvider(openai_client=client)))
        async with AsyncFCToolset(shop.tools(), mode=mode, grace_s=GRACE, profile=PROFILE) as toolset:
            return await run(agent, "order an apple", toolset)


async def drive_openai_agents(srv: SimServer, shop: Shop, mode: str) -> HostedRun[Any]:
    from agents import Agent as OAgent
    from agents import OpenAIChatCompletionsModel, set_tracing_disabled
    from openai import AsyncOpenAI

    from asyncfc.integrations.openai_agents import AsyncFCTools, run

    set_tracing_disabled(True)
    async with (
        AsyncOpenAI(base_url=srv.base_url, api_key="x") as client,
        AsyncFCTools(shop.tools(), mode=mode, grace_s=GRACE, profile=PROFILE) as fc,
    ):
        model = OpenAIChatCompletionsModel(model="sim", openai_client=client)
        agent = OAgent(name="shop", instructions=fc.instructions, tools=list(fc.tools), model=model)
        return await run(agent, "order an apple", fc)


async def drive_langgraph(srv: SimServer, shop: Shop, mode: str) -> HostedRun[Any]:
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    from asyncfc.integrations.langgraph import AsyncFCTools, agent_graph, run

    llm = ChatOpenAI(model="sim", base_url=srv.base_url, api_key=SecretStr("x"), max_retries=0)
    async with AsyncFCTools(shop.tools(), mode=mode, grace_s=GRACE, profile=PROFILE) as fc:
        graph = agent_graph(llm, fc)  # the toolset itself: its instructions, ANSWER_NOW after repeats
        return await run(graph, "order an apple", fc)


DRIVERS: dict[str, Driver] = {
    "pydantic-ai": drive_pydantic_ai,
    "openai-agents": drive_openai_agents,
    "langgraph": drive_langgraph,
}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("framework", list(DRIVERS))
def test_profile_instructions_example_and_repeats(framework: str, mode: str) -> None:
    shop = Shop()
    with SimServer(TURNS) as srv:
        out = asyncio.run(DRIVERS[framework](srv, shop, mode))
    first = srv.model_requests[0].body["messages"]
    # the profile's instructions (and, in async mode, the runtime's) in the system message
    system = first[0]["content"]
    assert first[0]["role"] == "system" and "Be brief." in system
    assert (ASYNC_INSTRUCTIONS in system) == (mode == "async")
    # the example, in this mode's form, before the user's request, its call and result intact
    form = "async" if mode == "async" else "sync"
    texts = [m.get("content") for m in first[1:]]
    assert texts[0] == f"example task ({form})" and texts[-1] == "order an apple", texts
    assert f"example answer ({form})" in texts
    example_call = first[2]["tool_calls"][0]
    assert example_call["id"] == "example_1" and example_call["function"]["name"] == "lookup"
    assert first[3]["role"] == "tool" and first[3]["tool_call_id"] == "example_1"
    # the repeated lookup was answered from the first one: it ran once
    assert shop.runs == ["apple"]
    lookup, *rest = out.calls
    (order,) = [c for c in rest if c.name == "place_order"]
    repeats = [c for c in rest if c.name == "lookup"]
    assert len(repeats) == 2 and all(c.repeat_of == lookup.seq and not c.ran for c in repeats)
    assert all(c.value == 2.5 for c in repeats)
    tool_texts = [m["content"] for m in srv.model_requests[-1].body["messages"] if m["role"] == "tool"]
    assert any("not run again" in t for t in tool_texts)
    # the order got the looked-up price: the example's call did not shift the Ref numbering
    assert shop.orders == [("apple", 2.5)] and order.error is None
    assert out.output == "Ordered."
    # the request after the repeat-only step offered no tools and asked for the answer; only that one
    requests = [r.body for r in srv.model_requests]
    asked = [ANSWER_NOW in str(r["messages"]) for r in requests]
    offered = [bool(r.get("tools")) for r in requests]
    assert asked == [False, False, False, True] and offered == [True, True, True, False], (asked, offered)


def test_repeats_are_answered_within_one_user_turn() -> None:
    shop = Shop()

    async def go() -> list[str]:
        async with HostedRuntime(shop.tools(), mode="sync", profile=PROFILE) as host:
            await host.call("lookup", {"item": "apple"})
            again = await host.call("lookup", '{ "item":"apple" }')  # same call, other spelling
            await host.call("lookup", {"item": "pear"})
            host.start_turn()  # a new user turn: the world may have changed, so it runs again
            await host.call("lookup", {"item": "apple"})
            return [again]

    (again,) = asyncio.run(go())
    assert shop.runs == ["apple", "pear", "apple"]
    assert "not run again" in again


def test_without_a_profile_nothing_changes() -> None:
    shop = Shop()

    async def go() -> HostedRuntime:
        async with HostedRuntime(shop.tools(), mode="async") as host:
            await host.call("lookup", {"item": "apple"})
            await host.call("lookup", {"item": "apple"})
            return host

    host = asyncio.run(go())
    assert shop.runs == ["apple", "apple"]
    assert host.example() == [] and host.instructions == ASYNC_INSTRUCTIONS


def test_a_host_shows_no_futures_when_no_tool_is_slow_enough_as_the_agent_does() -> None:
    """Tools that declare a latency shorter than a placeholder would cost: the conversation
    is shown parallel mode (no instructions about futures, no await tool), and the grace
    policy prices a step with the profile's priors, like ``Agent``'s."""

    @tool(pure=True, latency_s=0.01)
    def quick(x: int) -> int:
        """Answer fast."""
        return x

    @tool(pure=True)
    def unknown(x: int) -> int:
        """Of unknown latency."""
        return x

    profile = ModelProfile(step_s=3.0, prefill_token_s=0.02)
    fast = HostedRuntime([quick], mode="async", profile=profile)
    assert fast.runtime.mode.value == "parallel" and fast.instructions == ""
    assert fast.hold_blind_writes  # as the Agent's: the mode asked for decides, not the one shown
    assert [s["name"] for s in fast.tool_specs()] == ["quick"]
    policy = fast.runtime.grace
    assert isinstance(policy, CostAware) and (policy.step_s, policy.prefill_token_s) == (3.0, 0.02)
    slow = HostedRuntime([quick, unknown], mode="async")
    assert slow.runtime.mode.value == "async" and slow.instructions == ASYNC_INSTRUCTIONS
    assert "await_future" in [s["name"] for s in slow.tool_specs()]
    fixed = HostedRuntime([quick], mode="async", grace_s=0.5)  # a fixed window may always give placeholders
    assert fixed.runtime.mode.value == "async"

    async def close() -> None:
        for host in (fast, slow, fixed):
            await host.aclose()

    asyncio.run(close())


def test_a_profile_must_be_a_model_profile() -> None:
    with pytest.raises(ConfigurationError, match="ModelProfile"):
        HostedRuntime([], profile="qwen")  # type: ignore[arg-type]


def test_a_write_written_blind_is_held_until_the_model_emits_it_again() -> None:
    shop = Shop()

    async def go() -> tuple[str, str, str, HostedRuntime]:
        async with HostedRuntime(shop.tools(), mode="async", grace_s=GRACE) as host:
            host.start_turn()
            placeholder = await host.call("lookup", {"item": "apple"})  # pending
            held = await host.call("place_order", {"item": "apple", "price": 0.5})  # an invented price
            again = await host.call("place_order", {"item": "apple", "price": 2.5})  # corrected: runs
            return placeholder, held, again, host

    placeholder, held, again, host = asyncio.run(go())
    assert json.loads(placeholder)["status"] == "pending"
    body = json.loads(held)
    assert body["status"] == "not_run" and body["waiting_for"] == ["fut_1"]
    assert body["resolved_earlier"][0]["value"] == 2.5  # the value comes with the held call's message
    assert shop.orders == [("apple", 2.5)] and "ordered apple at 2.5" in again
    assert host.held == [("place_order", '{"item": "apple", "price": 0.5}')]
    assert [c.name for c in host.calls] == ["lookup", "place_order"]


def test_no_hold_for_a_future_passed_on_in_sync_mode_or_when_off() -> None:
    async def go(mode: str, hold: bool | None, price: Any) -> list[tuple[str, float]]:
        shop = Shop()
        async with HostedRuntime(shop.tools(), mode=mode, grace_s=GRACE, hold_blind_writes=hold) as host:
            await host.call("lookup", {"item": "apple"})
            await host.call("place_order", {"item": "apple", "price": price})
            await host.runtime.wait_all()
        return shop.orders

    assert asyncio.run(go("async", None, "fut_1")) == [("apple", 2.5)]  # passes the future on
    assert asyncio.run(go("sync", None, 2.5)) == [("apple", 2.5)]  # sync: the value was seen
    assert asyncio.run(go("async", False, 0.5)) == [("apple", 0.5)]  # off: runs as written
    with pytest.raises(ConfigurationError, match="hold_blind_writes"):
        HostedRuntime([], hold_blind_writes="retract")  # type: ignore[arg-type]
