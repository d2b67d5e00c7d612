"""The grace policy: a call is answered with its value when waiting for it is cheaper than
a placeholder (``grace="auto"``), or within a fixed window (``grace_s``).

The decision is tested on its own with injected model steps and call times (no clock), then
end to end against the simulated-decode server, whose step cost is known exactly: its
llama-style timings report ``ttft_s`` as the prefill of every step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import pytest

from asyncfc import Agent, tool
from asyncfc.cli.options import grace_option
from asyncfc.errors import ConfigurationError, ToolDefinitionError
from asyncfc.grace import (
    AWAIT_CALL_TOKENS,
    DEFAULT_CAP_S,
    CostAware,
    Decision,
    FixedWindow,
    ModelCost,
    grace_policy,
)
from asyncfc.integrations.hosted import HostedRuntime
from asyncfc.models import OpenAIChatModel
from asyncfc.models.base import Message, Usage
from asyncfc.runtime import Runtime
from asyncfc.scheduler import Call
from asyncfc.testing import SimServer
from asyncfc.testing.scripted import ScriptedCall
from conftest import tool_message


def call(seq: int, name: str, *, emitted: float = 0.0, started: float | None = None) -> Call:
    c = Call(seq, f"call_{seq}", name, "{}", emitted_at=emitted, started_at=started)
    return c


def ran(c: Call, started: float, finished: float) -> Call:
    c.started_at, c.finished_at, c.ran = started, finished, True
    c.future.set_value(None)
    return c


def step(prefill_s: float, decode_s: float, output_tokens: int = 20, prompt: int = 400) -> Usage:
    return Usage(prompt, output_tokens, prefill_s=prefill_s, decode_s=decode_s, timing="server")


@tool(pure=True, latency_s=0.1)
def quick() -> int:
    """Declared fast."""
    return 1


@tool(pure=True, latency_s=5.0)
def crawl() -> int:
    """Declared slow."""
    return 2


@tool(pure=True)
def plain() -> int:
    """No hint."""
    return 3


TOOLS = {t.name: t for t in (quick, crawl, plain)}
CPU_STEPS = [step(2.0, 1.0), step(2.0, 1.0)]
"""A model like the embedded one on a CPU: 2 s prefill, 20 output tokens in 1 s."""


# -- the decision, with injected observations -------------------------------------------


def test_model_cost_comes_from_the_recorded_steps() -> None:
    cost = CostAware().model_cost(CPU_STEPS)
    assert cost == ModelCost(2.0 + AWAIT_CALL_TOKENS * 0.05, 4.0 / 800, 2)
    assert CostAware(step_s=0.7).model_cost([]) == ModelCost(0.7, 0.0, 0)  # the prior
    untimed = [Usage(400, 20)]  # a model that reports no timings: the prior as well
    assert CostAware(step_s=0.7).model_cost(untimed).measured_steps == 0


def test_waits_for_a_tool_that_is_fast_against_the_models_step() -> None:
    policy = CostAware()
    d = policy.decide(call(1, "quick", started=10.0), now=10.0, usages=CPU_STEPS, tools=TOOLS)
    assert d.reason == "fast" and d.remaining_s == pytest.approx(0.1)
    assert d.placeholder_s > 1.0  # half an await step of more than 2 s, plus its tokens
    assert d.until == pytest.approx(10.0 + d.budget_s)


def test_a_slow_tool_gets_a_placeholder_at_once() -> None:
    d = CostAware().decide(call(1, "crawl", started=10.0), now=10.0, usages=CPU_STEPS, tools=TOOLS)
    assert d.reason == "slow" and d.until == 10.0


def test_a_tool_fast_on_a_cpu_is_slow_against_a_fast_model() -> None:
    fast_model = [step(0.0, 0.2, output_tokens=40)]  # the synthetic benchmark's scripted model
    d = CostAware().decide(call(1, "quick", started=10.0), now=10.0, usages=fast_model, tools=TOOLS)
    assert d.reason == "slow" and d.until == 10.0


def test_unknown_latency_waits_at_most_the_placeholders_cost_after_emission() -> None:
    d = CostAware().decide(call(1, "plain", emitted=9.5), now=10.0, usages=CPU_STEPS, tools=TOOLS)
    assert d.reason == "unknown" and d.remaining_s is None
    assert d.until == pytest.approx(9.5 + d.budget_s)


def test_a_tool_whose_run_outlasted_the_wait_is_not_waited_for_again() -> None:
    """Rent or buy once: after one run of an unknown tool got a placeholder while running,
    its next calls get one at once, until a finished run gives the tool a latency."""
    policy = CostAware()
    first = call(1, "plain", emitted=0.0, started=0.0)
    assert policy.decide(first, now=0.0, usages=CPU_STEPS, tools=TOOLS).reason == "unknown"
    policy.placeheld(call(9, "plain"))  # not started (waiting for another call): no evidence
    assert (
        policy.decide(call(2, "plain", emitted=5.0), now=5.0, usages=CPU_STEPS, tools=TOOLS).reason
        == "unknown"
    )
    policy.placeheld(first)  # still running when its wait ended
    second = policy.decide(call(3, "plain", emitted=5.0, started=5.0), now=5.0, usages=CPU_STEPS, tools=TOOLS)
    assert second.reason == "slow" and second.until == 5.0
    policy.finished(ran(first, 0.0, 0.01))  # it turned out quick after all: its latency decides
    assert (
        policy.decide(call(4, "plain", started=9.0), now=9.0, usages=CPU_STEPS, tools=TOOLS).reason == "fast"
    )


def test_learns_a_tools_latency_from_its_runs() -> None:
    policy = CostAware()
    first = call(1, "plain", emitted=0.0)
    assert policy.decide(first, now=0.0, usages=CPU_STEPS, tools=TOOLS).reason == "unknown"
    policy.finished(ran(first, 0.0, 30.0))  # it took 30 s
    assert policy.latencies == {"plain": 30.0}
    again = call(2, "plain", emitted=40.0, started=40.0)
    assert policy.decide(again, now=40.0, usages=CPU_STEPS, tools=TOOLS).reason == "slow"
    # a declared hint is only a prior: a quick tool that turned out slow is not waited for
    policy.finished(ran(call(3, "quick"), 0.0, 30.0))
    assert (
        policy.decide(call(4, "quick", started=50.0), now=50.0, usages=CPU_STEPS, tools=TOOLS).reason
        == "slow"
    )
    # a moving average: fast runs bring it back
    for seq in range(5, 12):
        policy.finished(ran(call(seq, "plain"), 0.0, 0.05))
    assert (policy.latency("plain") or 1.0) < 0.5
    assert (
        policy.decide(call(12, "plain", started=60.0), now=60.0, usages=CPU_STEPS, tools=TOOLS).reason
        == "fast"
    )


def test_cancelled_runs_and_repeats_teach_nothing() -> None:
    policy = CostAware()
    c = call(1, "plain", started=0.0)
    c.finished_at, c.ran = 9.0, True
    from asyncfc.errors import CallError, ErrorKind

    c.future.set_error(CallError(ErrorKind.CANCELLED, "cancelled: closed"))
    policy.finished(c)
    repeat = call(2, "plain")
    repeat.future.set_value(1)  # answered from an earlier identical call: never ran
    policy.finished(repeat)
    assert policy.latencies == {}


def test_a_call_waiting_for_another_adds_its_remaining_time() -> None:
    policy = CostAware()
    first = call(1, "quick", started=10.0)
    second = call(2, "quick", emitted=10.0)
    second.deps = (1,)
    d = policy.decide(second, now=10.05, usages=CPU_STEPS, tools=TOOLS, calls=[first, second])
    assert d.remaining_s == pytest.approx(0.05 + 0.1)
    slow_dep = call(3, "crawl", started=10.0)
    third = call(4, "quick", emitted=10.0)
    third.deps = (3,)
    d = policy.decide(third, now=10.0, usages=CPU_STEPS, tools=TOOLS, calls=[first, second, slow_dep, third])
    assert d.reason == "slow"


def test_never_waits_longer_than_the_cap() -> None:
    glacial = [step(60.0, 30.0)]  # a model step of a minute and a half
    d = CostAware().decide(call(1, "quick", started=0.0), now=0.0, usages=glacial, tools=TOOLS)
    assert d.placeholder_s > 30 and d.budget_s == DEFAULT_CAP_S and d.until == DEFAULT_CAP_S
    d = CostAware(cap_s=0.5).decide(call(1, "plain", emitted=0.0), now=0.0, usages=glacial, tools=TOOLS)
    assert d.until == 0.5
    # a tool slower than the cap is not waited for, even where a placeholder costs more
    d = CostAware(cap_s=0.05).decide(call(1, "quick", started=0.0), now=0.0, usages=glacial, tools=TOOLS)
    assert d.reason == "slow"


def test_the_share_of_awaited_placeholders_is_learned() -> None:
    policy = CostAware(await_share=0.5)
    assert policy.share_awaited == 0.5
    for seq in range(1, 9):
        policy.placeheld(call(seq, "plain"))
    assert policy.share_awaited == pytest.approx(1 / 10)  # 8 placeholders, none awaited
    for _ in range(8):
        policy.awaited([call(1, "plain")])
    assert policy.share_awaited == pytest.approx(9 / 10)
    policy.awaited([])  # an await naming no known future is no evidence
    assert policy.awaits == 8


def test_a_model_that_awaits_every_placeholder_is_spared_the_await_step() -> None:
    # an awaited placeholder gets the model on only when its step and the call are both done:
    # for a call slower than that step, waiting costs no more, and saves the step and its tokens
    steps = [step(0.4, 0.05, prompt=100)]  # a 0.4 s step; 0.004 s per prompt token
    slow_call = call(1, "second", started=0.0)
    hints = {"second": tool(pure=True, latency_s=1.0, name="second")(plain.fn)}
    policy = CostAware()
    d = policy.decide(slow_call, now=0.0, usages=steps, tools=hints)
    assert d.reason == "slow"  # half the placeholders awaited: a placeholder is cheaper
    for seq in range(1, 51):
        policy.placeheld(call(seq, "second"))
        policy.awaited([call(seq, "second")])
    d = policy.decide(slow_call, now=0.0, usages=steps, tools=hints)
    assert d.reason == "fast" and d.placeholder_s > 1.0


def test_futures_are_shown_only_when_some_tool_is_slow_enough_to_hide() -> None:
    cpu = CostAware(step_s=1.5, prefill_token_s=0.018)  # the embedded 1.5B's priors
    assert not cpu.futures_pay({"quick": quick})  # 0.1 s: always waited for
    assert cpu.futures_pay({"quick": quick, "crawl": crawl})  # 5 s: worth a placeholder
    assert cpu.futures_pay({"quick": quick, "plain": plain})  # unknown: may be slow
    one_second = {"second": tool(pure=True, latency_s=1.0, name="second")(plain.fn)}
    assert not cpu.futures_pay(one_second)  # cheaper to wait than to read a placeholder later
    assert CostAware(step_s=0.05).futures_pay(one_second)  # a fast model gets on meanwhile
    # the last measured cost replaces the priors
    cpu.model_cost([step(0.01, 0.01, output_tokens=40)])
    assert cpu.measured is not None and cpu.futures_pay(one_second)
    # learned latencies replace the hints
    learned = CostAware(step_s=1.5)
    learned.observe("crawl", 0.01)
    assert not learned.futures_pay({"crawl": crawl})
    assert FixedWindow(0.5).futures_pay({"quick": quick})  # a fixed window always may


def test_an_agent_shows_no_futures_where_none_would_pay() -> None:
    @tool(pure=True, latency_s=0.01)
    async def lookup(x: int) -> int:
        """Returns at once."""
        return x + 1

    turn = [ScriptedCall("lookup", {"x": 1}), ScriptedCall("lookup", {"x": 2})]

    async def main() -> tuple[Any, Any, list[Any]]:
        with SimServer([turn, "done"], ttft_s=0.05) as srv:
            async with (
                OpenAIChatModel(srv.model_name, base_url=srv.base_url) as model,
                Agent(model, [lookup], mode="async", grace=CostAware(step_s=2.0)) as agent,
                agent.session() as session,
            ):
                session.messages.append(Message("user", "go"))
                request = session.next_request()
                session.messages.clear()
                result = await session.run("go")
                return (
                    session.runtime.mode,
                    request,
                    [tool_message(session.messages, c.tool_call_id) for c in result.calls],
                )

    shown, request, answers = asyncio.run(main())
    assert shown == "parallel"
    assert [t["name"] for t in request.tools] == ["lookup"]  # no await_future, no references
    assert all("future" not in m.content for m in request.messages)  # no instructions
    assert [m.content for m in answers] == ["2", "3"]  # values, not placeholders

    slow = tool(pure=True, latency_s=30.0, name="slow")(lookup.fn)
    agent = Agent(OpenAIChatModel("m", base_url="http://127.0.0.1:9/v1"), [lookup, slow], mode="async")
    assert agent.shown_mode() == "async" and agent.session().runtime.instructions


def test_the_fixed_window_counts_from_emission() -> None:
    window = FixedWindow(0.5)
    assert window.until(call(1, "crawl", emitted=3.0), host=None) == 3.5  # type: ignore[arg-type]


# -- options ----------------------------------------------------------------------------


def test_option_spelling() -> None:
    assert isinstance(grace_policy(), CostAware)
    assert isinstance(grace_policy("auto"), CostAware)
    assert grace_policy(0.2).seconds == 0.2  # type: ignore[attr-defined]
    assert grace_policy(grace_s=0.5).seconds == 0.5  # type: ignore[attr-defined]
    mine = CostAware(cap_s=1.0)
    assert grace_policy(mine) is mine
    for bad in ("soon", -1, float("nan"), True, None):
        with pytest.raises(ConfigurationError, match="grace"):
            grace_policy(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not both"):
        grace_policy(0.2, grace_s=0.5)
    with pytest.raises(ConfigurationError, match="grace_s"):
        grace_policy(grace_s=-0.1)
    for bad_option in ({"cap_s": -1}, {"await_share": 1.5}, {"smoothing": 0}, {"steps": 0}):
        with pytest.raises(ConfigurationError):
            CostAware(**bad_option)
    with pytest.raises(ToolDefinitionError, match="latency_s"):
        tool(pure=True, latency_s=-1)(plain.fn)


def test_every_host_takes_the_option() -> None:
    async def main() -> None:
        async with Runtime([quick]) as rt:
            assert isinstance(rt.grace, CostAware) and rt.grace_s is None
        async with Runtime([quick], grace_s=0.25) as rt:
            assert isinstance(rt.grace, FixedWindow) and rt.grace.seconds == 0.25
        async with HostedRuntime([quick], grace=0.1) as host:
            assert isinstance(host.runtime.grace, FixedWindow) and host.runtime.grace.seconds == 0.1
        model = OpenAIChatModel("m", base_url="http://127.0.0.1:9/v1")
        async with Agent(model, [quick], grace=0.3) as agent, agent.session() as session:
            assert isinstance(session.runtime.grace, FixedWindow)

    asyncio.run(main())
    with pytest.raises(ConfigurationError):  # refused when the agent is made, not at its first session
        Agent(OpenAIChatModel("m", base_url="http://127.0.0.1:9/v1"), [quick], grace="later")  # type: ignore[arg-type]


def test_the_mcp_proxy_learns_once_for_every_session() -> None:
    from asyncfc.integrations.mcp import ProxyConfig
    from asyncfc.integrations.mcp.server import Sessions

    async def main() -> None:
        sessions = Sessions([quick], ProxyConfig())
        try:
            assert isinstance(sessions.grace, CostAware)
            assert sessions.get("a").grace is sessions.get("b").grace is sessions.grace
        finally:
            await sessions.aclose()
        fixed = Sessions([quick], ProxyConfig(grace=0.2))
        try:
            assert isinstance(fixed.get("a").grace, FixedWindow)
        finally:
            await fixed.aclose()

    asyncio.run(main())
    with pytest.raises(ConfigurationError):
        Sessions([quick], ProxyConfig(grace="soon"))  # type: ignore[arg-type]


def test_the_cli_value() -> None:
    assert grace_option("auto") == "auto" and grace_option("AUTO") == "auto"
    assert grace_option("0.5") == 0.5
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            grace_option(bad)


# -- end to end, against the simulated-decode server ----------------------------------------

PREFILL_S = 0.4
"""The server's time to first token, reported as every step's prefill."""
SLOW_S = 1.5
"""The slow tool sleeps this long: far longer than a placeholder costs at that step price."""


class Recording(CostAware):
    """The default policy, keeping each decision."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, Decision]] = []

    def decide(self, call: Call, **inputs: Any) -> Decision:
        d = super().decide(call, **inputs)
        self.seen.append((call.name, d))
        return d


def test_against_the_server_waits_for_the_fast_tool_and_learns_the_slow_one() -> None:
    @tool(pure=True)
    async def lookup(x: int) -> int:
        """Returns at once."""
        return x + 1

    @tool(pure=True)
    async def crawl(x: int) -> int:
        """Takes long."""
        await asyncio.sleep(SLOW_S)
        return x * 10

    turn = [ScriptedCall("lookup", {"x": 1}), ScriptedCall("crawl", {"x": 2})]
    policy = Recording()

    async def main() -> tuple[Any, Any]:
        with SimServer([turn, "done", turn, "done"], ttft_s=PREFILL_S) as srv:
            async with (
                OpenAIChatModel(srv.model_name, base_url=srv.base_url) as model,
                Agent(model, [lookup, crawl], mode="async", grace=policy) as agent,
                agent.session() as session,
            ):
                return await session.run("go"), await session.run("again")

    first, second = asyncio.run(main())

    def shown(result: Any) -> list[str]:
        return [
            json.loads(tool_message(result.messages, c.tool_call_id).content)["status"] for c in result.calls
        ]

    assert shown(first) == ["resolved", "pending"]
    assert shown(second) == ["resolved", "pending"]
    cost = policy.model_cost(first.trace.usages())
    assert cost.step_s == pytest.approx(PREFILL_S)  # the server's timings: no decode time configured
    # asked only about calls not done when answered: crawl always, lookup when it had not returned yet
    crawls = [d for name, d in policy.seen if name == "crawl"]
    assert [d.reason for d in crawls] == ["unknown", "slow"]  # unmeasured, then learned: no wait
    assert crawls[1].remaining_s is not None and crawls[1].remaining_s > crawls[1].budget_s
    assert all(d.reason in ("unknown", "fast") for name, d in policy.seen if name == "lookup")
    assert (policy.latency("crawl") or 0.0) >= SLOW_S
