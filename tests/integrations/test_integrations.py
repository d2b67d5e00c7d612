"""The framework toolsets end to end: the real framework drives the simulated-decode server.

Every test runs one user turn through PydanticAI, the OpenAI Agents SDK or LangGraph with
asyncfc's tools underneath, and checks what the issue asks of them: the model passes
futures into later calls, every value reaches the model (or the caller) exactly once, and
tool calls and final state equal those of asyncfc's synchronous run of the same script.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from asyncfc import Agent, Tool, tool
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.revise import HostedRun, Revise
from asyncfc.testing.scripted import Ref, ScriptedCall, ScriptedModel, Turn
from asyncfc.testing.simserver import SimServer

pytest.importorskip("pydantic_ai")
pytest.importorskip("agents")
pytest.importorskip("langgraph")

GRACE = 0.01


class Shop:
    """Slow pure lookups, orders that write one label each, and a tool that fails."""

    def __init__(self) -> None:
        self.orders: dict[str, float] = {}
        self.runs: list[str] = []

    def tools(self) -> list[Tool]:
        @tool(pure=True)
        async def lookup(item: str) -> float:
            """Unit price of an item."""
            self.runs.append(f"lookup {item}")
            await asyncio.sleep(0.12)
            return float(len(item))

        @tool(writes=["orders/{item}"])
        async def place_order(item: str, price: float) -> str:
            """Order an item at a price."""
            self.runs.append(f"order {item}")
            await asyncio.sleep(0.05)
            self.orders[item] = price
            return f"ordered {item} at {price}"

        @tool(pure=True)
        async def broken(reason: str) -> str:
            """Always fails."""
            await asyncio.sleep(0.05)
            raise ValueError(reason)

        return [lookup, place_order, broken]


# two lookups at once; two orders passing their prices on; an await; the answer
TURNS: list[Turn] = [
    [ScriptedCall("lookup", {"item": "apple"}), ScriptedCall("lookup", {"item": "fig"})],
    [
        ScriptedCall("place_order", {"item": "apple", "price": Ref(1)}),
        ScriptedCall("place_order", {"item": "fig", "price": Ref(2)}),
    ],
    [ScriptedCall(AWAIT_TOOL, {"ids": [Ref(3)]})],
    "Both orders are placed.",
]


async def sync_reference() -> Shop:
    shop = Shop()
    await Agent(ScriptedModel(TURNS), shop.tools(), mode="sync").run("order")
    return shop


Driver = Callable[[SimServer, Shop, Revise], Coroutine[Any, Any, HostedRun[Any]]]


async def drive_pydantic_ai(srv: SimServer, shop: Shop, revise: Revise) -> HostedRun[Any]:
    from openai import AsyncOpenAI
    from pydantic_ai import Agent as PAgent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    from asyncfc.integrations.pydantic_ai import AsyncFCToolset, run

    async with AsyncOpenAI(base_url=srv.base_url, api_key="x") as client:
        agent = PAgent(OpenAIChatModel("sim", provider=OpenAIProvider(openai_client=client)))
        async with AsyncFCToolset(shop.tools(), grace_s=GRACE, revise=revise) as toolset:
            return await run(agent, "order", toolset)


async def drive_openai_agents(srv: SimServer, shop: Shop, revise: Revise) -> HostedRun[Any]:
    from agents import Agent as OAgent
    from agents import OpenAIChatCompletionsModel, set_tracing_disabled
    from openai import AsyncOpenAI

    from asyncfc.integrations.openai_agents import AsyncFCTools, run

    set_tracing_disabled(True)
    async with (
        AsyncOpenAI(base_url=srv.base_url, api_key="x") as client,
        AsyncFCTools(shop.tools(), grace_s=GRACE, revise=revise) as fc,
    ):
        agent = OAgent(
            name="shop",
            instructions=fc.instructions,
            tools=list(fc.tools),
            model=OpenAIChatCompletionsModel(model="sim", openai_client=client),
        )
        return await run(agent, "order", fc)


async def drive_langgraph(srv: SimServer, shop: Shop, revise: Revise) -> HostedRun[Any]:
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    from asyncfc.integrations.langgraph import AsyncFCTools, agent_graph, run

    llm = ChatOpenAI(model="sim", base_url=srv.base_url, api_key=SecretStr("x"), max_retries=0)
    async with AsyncFCTools(shop.tools(), grace_s=GRACE, revise=revise) as fc:
        graph = agent_graph(llm, fc.tools, system_prompt=fc.instructions)
        return await run(graph, "order", fc)


DRIVERS: dict[str, Driver] = {
    "pydantic-ai": drive_pydantic_ai,
    "openai-agents": drive_openai_agents,
    "langgraph": drive_langgraph,
}


def tool_messages(srv: SimServer) -> list[dict[str, Any]]:
    last = srv.model_requests[-1].body["messages"]
    return [m for m in last if m.get("role") == "tool"]


def sent_calls(srv: SimServer) -> list[dict[str, Any]]:
    last = srv.model_requests[-1].body["messages"]
    return [tc for m in last if m.get("role") == "assistant" for tc in m.get("tool_calls") or []]


@pytest.mark.parametrize("framework", list(DRIVERS))
def test_futures_passed_delivered_once_same_state_as_sync(framework: str) -> None:
    sync_shop = asyncio.run(sync_reference())
    shop = Shop()
    with SimServer(TURNS) as srv:
        out = asyncio.run(DRIVERS[framework](srv, shop, "when_needed"))
    # the model saw placeholders and passed them on; asyncfc filled in the values
    orders = [c for c in out.calls if c.name == "place_order"]
    assert [json.loads(c.raw_arguments)["price"] for c in orders] == ["fut_1", "fut_2"]
    assert [c.resolved_arguments for c in orders] == [
        {"item": "apple", "price": 5.0},
        {"item": "fig", "price": 3.0},
    ]
    # the await_future tool answered with the order's value
    awaited = json.loads(tool_messages(srv)[-1]["content"])
    assert awaited["future"] == "fut_3" and awaited["value"] == "ordered apple at 5.0"
    # every call ran once, resolved, and was delivered once (fut_4 when the run was settled)
    assert sorted(shop.runs) == sorted(sync_shop.runs)
    assert all(c.done and c.error is None and c.deliveries == 1 for c in out.calls)
    # ... each value once: in a tool result (its own, piggybacked, await_future) or when settled
    seen = [json.dumps(json.loads(m["content"])) for m in tool_messages(srv)] + out.settled
    for fid in ("fut_1", "fut_2", "fut_3", "fut_4"):
        assert sum(t.count(f'"future": "{fid}", "status": "resolved"') for t in seen) == 1, fid
    # the answer cites no future and nothing failed: it stands without another model turn
    assert out.revisions == 0 and out.output == "Both orders are placed."
    assert shop.orders == sync_shop.orders == {"apple": 5.0, "fig": 3.0}
    assert {"lookup", "place_order", "broken", AWAIT_TOOL} <= {
        tc["function"]["name"] for tc in srv.model_requests[0].body["tools"]
    }


FAILING: list[Turn] = [
    [ScriptedCall("lookup", {"item": "pear"}), ScriptedCall("broken", {"reason": "no stock"})],
    [ScriptedCall("place_order", {"item": "pear", "price": Ref(1)})],
    "Done: see fut_3.",
    "Revised: the broken call failed, the order went through.",
]


@pytest.mark.parametrize("framework", list(DRIVERS))
def test_failed_or_cited_future_gets_one_revision_turn(framework: str) -> None:
    shop = Shop()
    with SimServer(FAILING) as srv:
        out = asyncio.run(DRIVERS[framework](srv, shop, "when_needed"))
    assert out.revisions == 1
    assert out.output == "Revised: the broken call failed, the order went through."
    # the revision turn's user message carried the settled values (each once, never again)
    last = srv.model_requests[-1].body["messages"]
    prompt = next(m["content"] for m in reversed(last) if m.get("role") == "user")
    prompt_text = prompt if isinstance(prompt, str) else json.dumps(prompt)
    assert "fut_3" in prompt_text
    broken = next(c for c in out.calls if c.name == "broken")
    assert broken.error is not None and "no stock" in broken.error.message
    assert all(c.deliveries == 1 for c in out.calls)
    assert shop.orders == {"pear": 4.0}
    # the failure reached the model as a value (in a later tool result or the revision prompt)
    seen = json.dumps(last)
    assert "no stock" in seen


def test_revise_never_returns_values_to_the_caller_only() -> None:
    shop = Shop()
    with SimServer(FAILING) as srv:
        out = asyncio.run(drive_pydantic_ai(srv, shop, "never"))
    assert out.revisions == 0 and out.output == "Done: see fut_3."
    assert len(srv.model_requests) == 3
    assert "fut_3" in "".join(out.settled)
    assert all(c.deliveries == 1 for c in out.calls)


def test_specs_are_widened_and_not_strict() -> None:
    from asyncfc.integrations.openai_agents import AsyncFCTools as OATools
    from asyncfc.integrations.pydantic_ai import AsyncFCToolset

    async def check() -> None:
        async with OATools(Shop().tools(), grace_s=GRACE) as fc:
            names = [t.name for t in fc.tools]
            assert names == ["lookup", "place_order", "broken", AWAIT_TOOL]
            order = next(t for t in fc.tools if t.name == "place_order")
            assert not order.strict_json_schema
            assert {"type": "string"} in [
                {k: v for k, v in s.items() if k == "type"}
                for s in order.params_json_schema["properties"]["price"]["anyOf"]
            ]
            assert "fut_1" in fc.instructions
        toolset = AsyncFCToolset(Shop().tools())
        assert toolset.id == "asyncfc"
        await toolset.aclose()

    asyncio.run(check())


def test_host_needs_tools_or_runtime() -> None:
    from asyncfc.integrations.hosted import HostedRuntime

    with pytest.raises(ValueError):
        HostedRuntime()
    with pytest.raises(ValueError):
        HostedRuntime(Shop().tools(), revise="sometimes")  # type: ignore[arg-type]
