"""Sub-agents as tools (Agent.as_tool): one ordering across levels, cancellation and failure
across levels, the sub-agent's trace nested under the parent's call, its costs rolled up."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncfc import ErrorKind, Runtime, ToolDefinitionError, tool
from asyncfc.agent import Agent
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.models.base import Message
from asyncfc.subagent import agent_labels, covers
from asyncfc.testing.scripted import Ref, ScriptedCall, ScriptedModel, Turn, TurnSpec
from asyncfc.tools import Tool
from conftest import run

# -- a store split into areas: sub-agents own an area each, the parent may touch any key --

AREAS = ["a", "b", "out"]
SUB_KEYS = ["1", "2"]
ALL_KEYS = [f"{area}/{k}" for area in AREAS for k in SUB_KEYS]


def area_tools(store: dict[str, int], area: str) -> list[Tool]:
    """read/write/rmw over ``store`` keys under ``area`` (the empty area: any key), each sleeping
    between reading and writing, so a missed hazard shows as a different result."""
    prefix = f"{area}/" if area else ""
    label = f"store/{area}/{{key}}" if area else "store/{key}"

    @tool(reads=[label])
    async def read(key: str, delay: float) -> int:
        await asyncio.sleep(delay)
        return store[prefix + key]

    @tool(writes=[label])
    async def write(key: str, value: int, delay: float) -> int:
        await asyncio.sleep(delay)
        store[prefix + key] = value
        return value

    @tool(reads=[label], writes=[label])
    async def rmw(key: str, delta: int, delay: float) -> int:
        old = store[prefix + key]
        await asyncio.sleep(delay)
        store[prefix + key] = (old * 3 + delta) % 1_000_003
        return store[prefix + key]

    return [read, write, rmw]


Program = list[list[tuple[str, dict[str, Any]]]]

NO_HOLD: dict[str, Any] = (
    {"hold_blind_writes": False} if "hold_blind_writes" in inspect.signature(Agent).parameters else {}
)
"""The property compares against program order: a write held back for being written blind
(and emitted again later) is a different program, so the hold is off here."""


def program_of(transcript: Sequence[Message], programs: Sequence[Program]) -> Program:
    task = next(m.content for m in transcript if m.role == "user")
    return programs[int(task.split()[-1])]


def _held(content: str) -> bool:
    try:
        body = json.loads(content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "not_run"


def next_step(transcript: Sequence[Message], program: Program) -> TurnSpec:
    """The program's next step as a model would play it: a step whose state-changing calls
    the agent held back (written while results were pending) is emitted again, held calls only."""
    answers = {m.tool_call_id: m.content for m in transcript if m.role == "tool"}
    done = 0
    last_held: list[ScriptedCall] = []
    for m in transcript:
        calls = [c for c in m.tool_calls if c.name != AWAIT_TOOL] if m.role == "assistant" else []
        if not calls:
            continue
        if not last_held:
            done += 1
        last_held = [
            ScriptedCall(c.name, json.loads(c.arguments)) for c in calls if _held(answers.get(c.id, ""))
        ]
    if last_held:
        return last_held
    if done >= len(program):
        return "done"
    return [ScriptedCall(name, args) for name, args in program[done]]


def sub_policy(programs: Sequence[Program]) -> Turn:
    """The sub-agent's model: plays the program its task names (``"run program 3"``), one step
    per response, as a pure function of the transcript, so concurrent runs share one model."""

    def turn(transcript: Sequence[Message]) -> TurnSpec:
        return next_step(transcript, program_of(transcript, programs))

    return turn


def make_sub(store: dict[str, int], area: str, programs: Sequence[Program], mode: str) -> Agent:
    policy = sub_policy(programs)
    return Agent(
        ScriptedModel([policy] * 200),
        area_tools(store, area),
        mode=mode,
        grace_s=0.0,
        max_steps=20,
        **NO_HOLD,
    )


@st.composite
def sub_programs(draw: st.DrawFn) -> Program:
    steps: Program = []
    for _ in range(draw(st.integers(1, 3))):
        step = []
        for _ in range(draw(st.integers(1, 3))):
            kind = draw(st.sampled_from(["read", "write", "rmw"]))
            args: dict[str, Any] = {
                "key": draw(st.sampled_from(SUB_KEYS)),
                "delay": draw(st.sampled_from([0.0, 0.001, 0.002, 0.003])),
            }
            if kind == "write":
                args["value"] = draw(st.integers(0, 50))
            elif kind == "rmw":
                args["delta"] = draw(st.integers(0, 50))
            step.append((kind, args))
        steps.append(step)
    return steps


@st.composite
def nested_programs(draw: st.DrawFn) -> tuple[Program, list[Program]]:
    """A parent program mixing its own store calls and sub-agent calls, and the sub-agents'
    programs (each sub-agent call names one)."""
    subs = draw(st.lists(sub_programs(), min_size=1, max_size=4))
    parent: Program = []
    for _ in range(draw(st.integers(1, 3))):
        step = []
        for _ in range(draw(st.integers(1, 4))):
            kind = draw(st.sampled_from(["read", "write", "rmw", "sub_a", "sub_b", "sub_out"]))
            if kind.startswith("sub_"):
                step.append((kind, {"task": f"run program {draw(st.integers(0, len(subs) - 1))}"}))
                continue
            args: dict[str, Any] = {
                "key": draw(st.sampled_from(ALL_KEYS)),
                "delay": draw(st.sampled_from([0.0, 0.001, 0.003])),
            }
            if kind == "write":
                args["value"] = draw(st.integers(0, 50))
            elif kind == "rmw":
                args["delta"] = draw(st.integers(0, 50))
            step.append((kind, args))
        parent.append(step)
    return parent, subs


async def execute_nested(mode: str, parent: Program, subs: list[Program]) -> tuple[list[Any], dict[str, int]]:
    store = {k: i + 1 for i, k in enumerate(ALL_KEYS)}
    sub_tools = [
        make_sub(store, area, subs, mode).as_tool(name=f"sub_{area}", include_calls=True) for area in AREAS
    ]

    def parent_turn(transcript: Sequence[Message]) -> TurnSpec:
        return next_step(transcript, parent)

    agent = Agent(
        ScriptedModel([parent_turn] * 200),
        [*area_tools(store, ""), *sub_tools],
        mode=mode,
        grace_s=0.0,
        max_steps=50,
        **NO_HOLD,
    )
    async with agent:
        result = await agent.run("run the program")
    assert result.stop_reason == "answer"
    calls = [(c.name, c.resolved_arguments, c.value, c.error) for c in result.calls]
    return calls, store


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(nested_programs())
def test_nested_async_equals_sync(program: tuple[Program, list[Program]]) -> None:
    """Parent and sub-agents touch shared labels (the parent may write any sub-agent's area):
    async mode at both levels gives the synchronous run's calls, values and final store."""
    parent, subs = program
    sync_calls, sync_store = run(execute_nested("sync", parent, subs))
    async_calls, async_store = run(execute_nested("async", parent, subs))
    assert all(err is None for *_, err in sync_calls), sync_calls
    assert async_calls == sync_calls
    assert async_store == sync_store


# -- labels ---------------------------------------------------------------------------


def test_labels_are_the_union_of_the_agents_tools_widened_to_prefixes() -> None:
    @tool(reads=["kb/{topic}"])
    def lookup(topic: str) -> str:
        return topic

    @tool(writes=["outbox/{to}", "outbox"], reads=["contacts"])
    def send(to: str, body: str) -> str:
        return body

    @tool(pure=True)
    def add(x: int, y: int) -> int:
        return x + y

    assert agent_labels([lookup, send, add]) == (("contacts", "kb"), ("outbox",))
    sub = Agent(ScriptedModel(["ok"]), [lookup, send, add])
    t = sub.as_tool(name="helper")
    assert (t.reads, t.writes) == (("contacts", "kb"), ("outbox",))
    assert list(t.parameters["properties"]) == ["task"]

    @tool
    def anything() -> None:
        return None

    assert agent_labels([lookup, anything]) == (("",), ("",))
    assert covers(["outbox"], ["outbox/bob", "kb"]) == ["kb"]


def test_declared_labels_must_cover_the_agents_own() -> None:
    @tool(writes=["outbox/{to}"])
    def send(to: str) -> str:
        return to

    sub = Agent(ScriptedModel(["ok"]), [send])
    with pytest.raises(ToolDefinitionError, match="does not cover"):
        sub.as_tool(name="mailer", writes=["drafts"])
    assert sub.as_tool(name="mailer", writes=["outbox"]).writes == ("outbox",)
    with pytest.raises(ToolDefinitionError, match="identifier"):
        sub.as_tool(name="not a name")


# -- ordering, futures passed on ---------------------------------------------------------


def outbox_agents(mode: str, log: list[str]) -> Agent:
    @tool(writes=["outbox"])
    async def post(text: str) -> str:
        await asyncio.sleep(0.02)
        log.append(text)
        return "posted"

    @tool(pure=True)
    async def look(q: str) -> str:
        await asyncio.sleep(0.02)
        return q.upper()

    sub = Agent(
        ScriptedModel([[ScriptedCall("look", {"q": "x"})], [ScriptedCall("post", {"text": Ref(1)})], "X"]),
        [look, post],
        mode=mode,
        grace_s=0.0,
    )

    @tool(writes=["outbox"])
    async def announce(text: str) -> str:
        log.append(text)
        return "ok"

    parent_turns: list[Turn] = [
        [ScriptedCall("helper", {"task": "post X"}), ScriptedCall("announce", {"text": "parent"})],
        [ScriptedCall("announce", {"text": Ref(1, ".answer")})],
        "finished",
    ]
    return Agent(ScriptedModel(parent_turns), [sub.as_tool(name="helper"), announce], mode=mode, grace_s=0.0)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_sub_agent_write_ordered_before_a_later_parent_write(mode: str) -> None:
    log: list[str] = []
    agent = outbox_agents(mode, log)
    result = run(agent.run("go"))
    assert log == ["X", "parent", "X"]
    first, second, third = result.calls
    assert first.value == {"answer": "X"}
    assert third.resolved_arguments == {"text": "X"}
    if mode == "async":
        assert second.waited_for == (1,)  # the parent's outbox write waited for the sub-agent
        assert third.arguments == {"text": "fut_1.answer"}  # the unfinished answer was passed on


# -- cancellation and failure across levels ----------------------------------------------


def test_cancelling_the_parent_call_cancels_the_sub_agent_and_its_calls() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    @tool(writes=["slow"])
    async def wait_forever() -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("sub-call")
            raise
        return "never"

    sub = Agent(ScriptedModel([[ScriptedCall("wait_forever")], "unreachable"]), [wait_forever], grace_s=0.0)

    async def scenario() -> tuple[Any, Any]:
        async with Runtime([sub.as_tool(name="helper")], mode="async") as rt:
            call = rt.submit("helper", {"task": "wait"})
            await started.wait()
            nested = next(iter(rt.trace._nested.values()))[0]
            rt.cancel(call, "the user gave up")
            await call.future.wait()
            return call, nested

    call, nested = run(scenario())
    assert call.error is not None and call.error.kind is ErrorKind.CANCELLED
    assert cancelled == ["sub-call"]
    sub_spans = [s for s in nested.spans if s.cat == "call" and s.end is not None]
    assert [s.args["ok"] for s in sub_spans] == [False]


def test_a_failing_sub_agent_is_an_error_value_and_its_siblings_go_on() -> None:
    class Broken:
        name = "broken"

        async def stream(self, request: Any) -> Any:
            raise ConnectionError("connection reset")
            yield  # pragma: no cover

    @tool(pure=True)
    async def echo(text: str) -> str:
        await asyncio.sleep(0.01)
        return text

    good = Agent(ScriptedModel([[ScriptedCall("echo", {"text": "fine"})], "fine"]), [echo])
    bad = Agent(Broken(), [echo])
    looping = Agent(ScriptedModel([[ScriptedCall("echo", {"text": "again"})]] * 5), [echo], max_steps=2)
    parent = Agent(
        ScriptedModel(
            [
                [
                    ScriptedCall("bad", {"task": "a"}),
                    ScriptedCall("good", {"task": "b"}),
                    ScriptedCall("looping", {"task": "c"}),
                ],
                "summary",
            ]
        ),
        [bad.as_tool(name="bad"), good.as_tool(name="good"), looping.as_tool(name="looping")],
        revise="never",
    )
    result = run(parent.run("go"))
    failed, fine, stuck = result.calls
    assert failed.error is not None and failed.error.kind is ErrorKind.TOOL_ERROR
    assert "connection reset" in failed.error.message
    assert fine.value == {"answer": "fine"}
    assert stuck.error is not None and "step limit (2)" in stuck.error.message
    assert result.text == "summary"


# -- the trace and the costs ---------------------------------------------------------------


def test_sub_agent_spans_nest_inside_the_parent_call_and_costs_roll_up() -> None:
    @tool(pure=True)
    async def lookup(q: str) -> str:
        await asyncio.sleep(0.01)
        return f"answer to {q}"

    sub_model = ScriptedModel([[ScriptedCall("lookup", {"q": "x"})], "the answer"])
    sub = Agent(sub_model, [lookup])
    parent_model = ScriptedModel([[ScriptedCall("research", {"task": "find x"})], "done"])
    parent = Agent(parent_model, [sub.as_tool(name="research")])
    result = run(parent.run("go"))
    spans = result.trace.spans
    (call,) = result.calls
    assert call.started_at is not None and call.finished_at is not None
    nested = [s for s in spans if s.lane.startswith("fut_1 research › ")]
    lanes = {s.lane for s in nested}
    assert {"fut_1 research › model", "fut_1 research › fut_1 lookup"} <= lanes
    for s in nested:
        assert call.started_at - 1e-6 <= s.start
        assert s.end is None or s.end <= call.finished_at + 1e-6
    # the nested lanes follow the parent's call lane, in the Chrome trace too
    order = list(dict.fromkeys(s.lane for s in spans))
    assert order.index("fut_1 research") < order.index("fut_1 research › model")
    names = [e["args"]["name"] for e in result.trace.to_chrome()["traceEvents"] if e["ph"] == "M"]
    assert "fut_1 research › fut_1 lookup" in names
    json.dumps(result.trace.to_chrome())
    # costs: the parent's usage counts the sub-agent's two steps and their tokens
    own = sum(s.args["output_tokens"] for s in spans if s.cat == "model" and s.lane == "model")
    subs = sum(s.args["output_tokens"] for s in nested if s.cat == "model")
    assert subs > 0
    assert result.usage.steps == 4
    assert result.usage.output_tokens == own + subs


def test_the_parent_calls_timeout_cancels_the_sub_agent_run() -> None:
    cancelled = asyncio.Event()

    @tool(pure=True)
    async def hang() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    sub = Agent(ScriptedModel([[ScriptedCall("hang")], "unreachable"]), [hang], grace_s=0.0)
    parent = Agent(
        ScriptedModel([[ScriptedCall("helper", {"task": "hang"})], "gave up"]),
        [sub.as_tool(name="helper", timeout=0.2)],
        revise="never",
    )

    async def scenario() -> Any:
        result = await parent.run("go")
        await asyncio.wait_for(cancelled.wait(), 5)  # the sub-call saw the cancellation
        return result

    result = run(scenario())
    (call,) = result.calls
    assert call.error is not None and call.error.kind is ErrorKind.TIMEOUT
    assert cancelled.is_set()
