"""The agent loop in every mode, with a scripted model and real sync/async tools."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from asyncfc import ToolDefinitionError, tool
from asyncfc.agent import Agent, RunResult
from asyncfc.mode import ModeName as Mode
from asyncfc.model_text import ANSWER_NOW, AWAIT_TOOL
from asyncfc.models.base import Message, ToolCall
from asyncfc.testing.scripted import Ref, ScriptedCall, ScriptedModel, Turn
from asyncfc.tools import Tool
from conftest import (
    RawModel,
    assert_protocol_valid,
    content_of,
    deliveries_in_transcript,
    run,
    tool_message,
)

MODES: tuple[Mode, ...] = ("sync", "parallel", "async")


def store_tools(store: dict[str, int], threads: dict[str, str] | None = None) -> list[Tool]:
    @tool(reads=["store/{key}"])
    async def get(key: str) -> int:
        """Read a key."""
        await asyncio.sleep(0.002)
        return store[key]

    @tool(writes=["store/{key}"])
    def put(key: str, value: int) -> int:
        """Write a key (sync: runs in a worker thread)."""
        if threads is not None:
            threads["put"] = threading.current_thread().name
        store[key] = value
        return value

    @tool(pure=True)
    async def add(a: int, b: int) -> int:
        """Add two numbers."""
        if threads is not None:
            threads["add"] = threading.current_thread().name
        await asyncio.sleep(0.001)
        return a + b

    return [get, put, add]


def fingerprint(result: RunResult) -> list[Any]:
    return [(c.name, c.resolved_arguments, c.value, c.error) for c in result.calls]


SCRIPT: list[Turn] = [
    [ScriptedCall("get", {"key": "a"}), ScriptedCall("add", {"a": 1, "b": 2})],
    [ScriptedCall("add", {"a": Ref(2), "b": 10}), ScriptedCall("put", {"key": "b", "value": Ref(1)})],
    [ScriptedCall("add", {"a": Ref(3), "b": Ref(4)}), ScriptedCall("get", {"key": "b"})],
    "done",
]


def run_script(
    mode: Mode, turns: Sequence[Turn] = SCRIPT, **options: Any
) -> tuple[RunResult, dict[str, int]]:
    store = {"a": 5, "b": 0}
    # the script reads fast calls' values: a fixed window (with grace="auto", a scripted model
    # that takes no time makes every placeholder free, so every unfinished call gets one)
    options.setdefault("grace_s", 0.5)
    agent = Agent(ScriptedModel(turns), store_tools(store), mode=mode, **options)
    return run(agent.run("go")), store


def test_results_equal_across_modes() -> None:
    prints = {}
    for mode in MODES:
        result, store = run_script(mode)
        assert result.stop_reason == "answer" and result.text == "done"
        assert all(c.error is None for c in result.calls)
        assert [c.value for c in result.calls] == [5, 3, 13, 5, 18, 5]
        assert store == {"a": 5, "b": 5}
        prints[mode] = fingerprint(result)
        assert_protocol_valid(result.messages)
    assert prints["sync"] == prints["parallel"] == prints["async"]


@pytest.mark.parametrize("mode", MODES)
def test_references_are_future_ids_in_async_and_values_otherwise(mode: Mode) -> None:
    gate = asyncio.Event()
    if mode != "async":
        gate.set()

    @tool(pure=True)
    async def slow(x: int) -> int:
        await gate.wait()
        return x + 1

    def release(transcript: Sequence[Message]) -> str:
        gate.set()
        return "ok"

    turns: list[Turn] = [
        [ScriptedCall("slow", {"x": 1})],
        [ScriptedCall("slow", {"x": Ref(1)})],
        release,
        "ok",
    ]
    result = run(Agent(ScriptedModel(turns), [slow], mode=mode).run("go"))
    second = result.calls[1]
    assert second.value == 3
    assert second.resolved_arguments == {"x": 2}
    if mode == "async":
        assert second.arguments == {"x": "fut_1"} and second.deps == (1,)
    else:
        assert second.arguments == {"x": 2} and second.deps == ()


def test_sync_tools_run_in_worker_threads() -> None:
    threads: dict[str, str] = {}
    agent = Agent(
        ScriptedModel(
            [[ScriptedCall("put", {"key": "a", "value": 1}), ScriptedCall("add", {"a": 1, "b": 1})], "ok"]
        ),
        store_tools({}, threads),
        mode="async",
    )
    run(agent.run("go"))
    assert threads["put"].startswith("asyncfc-tool")
    assert threads["add"] == threading.main_thread().name


def test_parallel_mode_runs_one_steps_calls_concurrently() -> None:
    async def main(mode: Mode) -> RunResult:
        events = {"x": asyncio.Event(), "y": asyncio.Event()}

        @tool(pure=True)
        async def meet(me: str, other: str) -> str:
            events[me].set()
            await asyncio.wait_for(events[other].wait(), 2.0)
            return me

        model = ScriptedModel(
            [
                [
                    ScriptedCall("meet", {"me": "x", "other": "y"}),
                    ScriptedCall("meet", {"me": "y", "other": "x"}),
                ]
            ]
        )
        return await Agent(model, [meet], mode=mode).run("go")

    for mode in ("parallel", "async"):
        result = run(main(mode))
        assert [c.value for c in result.calls] == ["x", "y"], mode


def test_async_returns_placeholders_then_delivers_values() -> None:
    gate = asyncio.Event()
    seen: list[list[str]] = []

    @tool(pure=True)
    async def slow(x: int) -> int:
        await gate.wait()
        return x * 2

    def second(transcript: Sequence[Message]) -> list[ScriptedCall]:
        seen.append([m.content for m in transcript])
        return [ScriptedCall("slow", {"x": 5})]

    def third(transcript: Sequence[Message]) -> str:
        seen.append([m.content for m in transcript])
        gate.set()
        return "draft"

    def fourth(transcript: Sequence[Message]) -> str:
        seen.append([m.content for m in transcript])
        return "final"

    model = ScriptedModel([[ScriptedCall("slow", {"x": 1})], second, third, fourth])
    result = run(Agent(model, [slow], mode="async", delivery="rewrite", revise="always", grace_s=0).run("go"))
    # step 2: the first call was a pending placeholder
    ph = json.loads(seen[0][-1])
    assert ph == {"future": "fut_1", "status": "pending"}
    # the final answer came while futures were pending: they were delivered, model asked again
    assert result.text == "final" and result.steps == 4
    delivered = [json.loads(c) for c in seen[2] if c.startswith("{")]
    assert {"future": "fut_1", "status": "resolved", "value": 2} in delivered
    assert {"future": "fut_2", "status": "resolved", "value": 10} in delivered
    assert [c.value for c in result.calls] == [2, 10]
    for call in result.calls:
        assert call.delivered_at is not None and call.finished_at is not None
        assert call.delivered_at >= call.finished_at
        assert call.deliveries == 1
        assert deliveries_in_transcript(result.messages, call.id) == 1
        # rewrite delivery: the placeholder message itself now holds the value
        assert content_of(result.messages, call)["status"] == "resolved"
    assert_protocol_valid(result.messages)


def test_synthetic_await_delivery_appends_protocol_valid_await() -> None:
    gates = {1: asyncio.Event(), 2: asyncio.Event()}

    @tool(pure=True)
    async def slow(x: int) -> int:
        await gates[x].wait()
        return x + 100

    def release1(transcript: Sequence[Message]) -> list[ScriptedCall]:
        gates[1].set()
        return [ScriptedCall("slow", {"x": 2})]

    def release2(transcript: Sequence[Message]) -> str:
        gates[2].set()
        return "answer"

    model = ScriptedModel([[ScriptedCall("slow", {"x": 1})], release1, release2, "final"])
    result = run(Agent(model, [slow], mode="async", delivery="synthetic_await", revise="always").run("go"))
    assert [c.value for c in result.calls] == [101, 102]
    assert result.text == "final"
    msgs = result.messages
    assert_protocol_valid(msgs)
    # the original placeholders stay as they were
    for call in result.calls:
        assert json.loads(tool_message(msgs, call.tool_call_id).content)["status"] == "pending"
        assert deliveries_in_transcript(msgs, call.id) == 1
        assert call.deliveries == 1
    awaits = [
        m for m in msgs if m.role == "assistant" and m.tool_calls and m.tool_calls[0].name == AWAIT_TOOL
    ]
    assert awaits
    delivered: list[str] = []
    for m in awaits:
        (tc,) = m.tool_calls
        ids = json.loads(tc.arguments)["ids"]
        answer = json.loads(tool_message(msgs, tc.id).content)
        assert [a["future"] for a in answer] == ids
        assert all(a["status"] == "resolved" for a in answer)
        delivered += ids
    assert sorted(delivered) == ["fut_1", "fut_2"]


def test_await_future_one_several_and_unknown() -> None:
    @tool(pure=True)
    async def work(x: int) -> int:
        await asyncio.sleep(0.01 if x == 1 else 0.3)  # fut_2, fut_3 still pending at step 3
        return x * 3

    turns: list[Turn] = [
        [ScriptedCall("work", {"x": 1}), ScriptedCall("work", {"x": 2}), ScriptedCall("work", {"x": 3})],
        [ScriptedCall(AWAIT_TOOL, {"ids": ["fut_1"]})],
        [ScriptedCall(AWAIT_TOOL, {"ids": ["fut_2", "fut_3"]})],
        [
            ScriptedCall(AWAIT_TOOL, {"ids": ["fut_99"]}),
            ScriptedCall(AWAIT_TOOL, {"id": "fut_1"}),
            ScriptedCall(AWAIT_TOOL, {}),
        ],
        "done",
    ]
    model = ScriptedModel(turns)
    result = run(Agent(model, [work], mode="async", grace_s=0).run("go"))
    msgs = result.messages
    assert_protocol_valid(msgs)
    answers = [
        json.loads(tool_message(msgs, tc.id).content)
        for m in msgs
        if m.role == "assistant"
        for tc in m.tool_calls
        if tc.name == AWAIT_TOOL
    ]
    assert answers[0] == {"future": "fut_1", "status": "resolved", "value": 3}
    assert answers[1] == [
        {"future": "fut_2", "status": "resolved", "value": 6},
        {"future": "fut_3", "status": "resolved", "value": 9},
    ]
    assert answers[2]["error"]["type"] == "unknown_future" and "fut_99" in answers[2]["error"]["message"]
    # awaiting again does not deliver the value a second time
    assert answers[3] == {"future": "fut_1", "status": "delivered", "note": "given earlier"}
    assert answers[4]["error"]["type"] == "invalid_arguments"
    assert [c.deliveries for c in result.calls] == [1, 1, 1]
    # await calls are not calls of the session: only the three tool calls got futures
    assert [c.id for c in result.calls] == ["fut_1", "fut_2", "fut_3"]
    assert all(c.delivered_at is not None for c in result.calls)
    assert AWAIT_TOOL in [t["name"] for t in model.requests[0].tools]


def test_await_tool_only_offered_in_async_mode() -> None:
    store: dict[str, int] = {}
    for mode in MODES:
        agent = Agent(ScriptedModel(["hi"]), store_tools(store), mode=mode)
        names = [s["name"] for s in agent.tool_specs()]
        assert (AWAIT_TOOL in names) == (mode == "async")
        if mode == "async":
            put = next(s for s in agent.tool_specs() if s["name"] == "put")
            assert "anyOf" in put["parameters"]["properties"]["value"]  # widened for references


def test_multi_turn_session_keeps_history_and_futures() -> None:
    store = {"a": 5, "b": 0}
    model = ScriptedModel(
        [
            [ScriptedCall("get", {"key": "a"})],
            [ScriptedCall(AWAIT_TOOL, {"ids": ["fut_1"]})],  # delivered now: no revision step
            "first answer",
            [ScriptedCall("add", {"a": "fut_1", "b": 1})],  # a future of the previous user turn
            "second answer",
        ]
    )

    async def main() -> tuple[RunResult, RunResult, list[str]]:
        async with Agent(model, store_tools(store), mode="async").session() as session:
            r1 = await session.run("first question")
            r2 = await session.run("second question")
            return r1, r2, [m.content for m in session.messages if m.role == "user"]

    r1, r2, users = run(main())
    assert r1.text == "first answer" and r2.text == "second answer"
    assert users == ["first question", "second question"]
    assert [c.id for c in r1.calls] == ["fut_1"] and [c.id for c in r2.calls] == ["fut_2"]
    assert r2.calls[0].value == 6 and r2.calls[0].user_turn == 2
    # the second request carried the whole first user turn
    second_request = [m.content for m in model.requests[3].messages]
    assert "first question" in second_request and "first answer" in second_request
    assert len(r2.messages) > len(r1.messages)


def test_revision_is_bounded() -> None:
    gate = asyncio.Event()

    @tool(pure=True)
    async def slow(x: int) -> int:
        await gate.wait()
        return x

    def draft(transcript: Sequence[Message]) -> str:
        gate.set()
        return "draft"

    def more(transcript: Sequence[Message]) -> list[ScriptedCall]:
        gate.clear()
        return [ScriptedCall("slow", {"x": 2})]

    def draft2(transcript: Sequence[Message]) -> str:
        gate.set()
        return "draft2"

    turns: list[Turn] = [[ScriptedCall("slow", {"x": 1})], draft, more, draft2, "never asked"]
    model = ScriptedModel(turns)
    result = run(Agent(model, [slow], mode="async", max_revisions=1, revise="always").run("go"))
    assert result.text == "draft2"
    assert len(model.requests) == 4
    assert any("revision limit" in n for n in result.notes)
    assert all(c.delivered_at is not None and c.value is not None for c in result.calls)


def test_no_revision_when_everything_was_delivered() -> None:
    for mode in MODES:
        turns: list[Turn] = [[ScriptedCall("add", {"a": 1, "b": 2})], "ok"]
        if mode == "async":
            turns.insert(1, [ScriptedCall(AWAIT_TOOL, {"ids": ["fut_1"]})])
        model = ScriptedModel(turns)
        result = run(Agent(model, store_tools({}), mode=mode).run("go"))
        assert result.text == "ok"
        assert len(model.requests) == result.steps == len(turns)


def test_step_limit_loses_no_call() -> None:
    @tool(pure=True)
    async def slow(x: int) -> int:
        await asyncio.sleep(0.02)
        return x

    for mode in MODES:
        model = ScriptedModel([[ScriptedCall("slow", {"x": i})] for i in range(10)])
        result = run(Agent(model, [slow], mode=mode, max_steps=3).run("go"))
        assert result.stop_reason == "step_limit", mode
        assert result.text == "" and result.steps == 3
        assert [c.value for c in result.calls] == [0, 1, 2]
        assert all(c.ran and c.delivered_at is not None for c in result.calls)
        assert any("step limit" in n for n in result.notes)


def test_trace_has_model_and_call_spans() -> None:
    result, _ = run_script("async")
    spans = result.trace.spans
    model_spans = [s for s in spans if s.cat == "model"]
    call_spans = [s for s in spans if s.cat == "call" and s.end is not None]
    assert [s.name for s in model_spans] == [f"step {i}" for i in range(1, result.steps + 1)]
    assert result.steps >= 4
    assert sorted(s.name for s in call_spans) == sorted(c.name for c in result.calls)
    for s in [*model_spans, *call_spans]:
        assert s.end is not None and s.end >= s.start >= 0


def test_early_dispatch_starts_calls_before_the_step_ends() -> None:
    started = asyncio.Event()

    @tool(pure=True)
    async def ping() -> str:
        started.set()
        return "pong"

    async def hold(_: ToolCall) -> None:
        # the stream stays open until the call has started: only early dispatch gets here
        await asyncio.wait_for(started.wait(), 5.0)

    model = RawModel([[ToolCall("c1", "ping", "{}")], "done"], after_call=hold)
    result = run(Agent(model, [ping], mode="async").run("go"))
    assert result.calls[0].value == "pong"
    assert (
        result.calls[0].started_at is not None
        and result.calls[0].started_at <= result.trace.spans[-1].start + 1
    )


def test_duplicate_or_missing_call_ids_run_each_call_once() -> None:
    counts: dict[int, int] = {}

    @tool(pure=True)
    async def count(n: int) -> int:
        counts[n] = counts.get(n, 0) + 1
        return n

    calls = [
        ToolCall("", "count", '{"n": 1}'),
        ToolCall("dup", "count", '{"n": 2}'),
        ToolCall("dup", "count", '{"n": 3}'),
    ]
    for mode in MODES:
        counts.clear()
        result = run(Agent(RawModel([calls, "done"]), [count], mode=mode).run("go"))
        assert counts == {1: 1, 2: 1, 3: 1}, mode
        assert [c.value for c in result.calls] == [1, 2, 3]
        assert_protocol_valid(result.messages)
        assert [c.tool_call_id for c in result.calls] == [tc.id for tc in result.messages[1].tool_calls]


class Price(BaseModel):
    amount: int
    currency: str


def structured_run(mode: Mode) -> list[Any]:
    gate = asyncio.Event()
    if mode != "async":
        gate.set()
    seen: list[str] = []

    @tool(pure=True)
    async def quote(item: str) -> Price:
        await gate.wait()
        return Price(amount=len(item), currency="EUR")

    @tool(pure=True)
    def double(x: int) -> int:
        return 2 * x

    def second(transcript: Sequence[Message]) -> list[ScriptedCall]:
        seen.append(transcript[-1].content)
        return [ScriptedCall("double", {"x": Ref(1, ".amount")})]

    def release(transcript: Sequence[Message]) -> str:
        gate.set()
        return "ok"

    turns: list[Turn] = [[ScriptedCall("quote", {"item": "apple"})], second, release, "ok"]
    result = run(Agent(ScriptedModel(turns), [quote, double], mode=mode).run("go"))
    if mode == "async":
        assert json.loads(seen[0])["fields"] == {"amount": "fut_1.amount", "currency": "fut_1.currency"}
        assert result.calls[1].arguments == {"x": "fut_1.amount"}
    return [c.value for c in result.calls]


def test_structured_placeholder_fields_are_usable_references() -> None:
    for mode in MODES:
        assert structured_run(mode) == [{"amount": 5, "currency": "EUR"}, 10], mode


def test_agent_rejects_bad_configuration() -> None:
    store: dict[str, int] = {}
    tools = store_tools(store)
    with pytest.raises(ToolDefinitionError, match="duplicate"):
        Agent(ScriptedModel([]), [*tools, tools[0]])

    @tool(name=AWAIT_TOOL)
    def fake(ids: list[str]) -> None: ...

    with pytest.raises(ToolDefinitionError, match="reserved"):
        Agent(ScriptedModel([]), [fake])
    with pytest.raises(ValueError, match="mode"):
        Agent(ScriptedModel([]), tools, mode="turbo")  # type: ignore[arg-type]


def test_result_truncation() -> None:
    @tool(pure=True)
    def big() -> str:
        return "x" * 1000

    result = run(
        Agent(ScriptedModel([[ScriptedCall("big")], "ok"]), [big], mode="async", max_result_chars=50).run(
            "go"
        )
    )
    shown = content_of(result.messages, result.calls[0])
    text = shown["value"] if isinstance(shown, dict) else shown
    assert len(text) < 120 and "truncated" in text
    assert result.calls[0].value == "x" * 1000  # the Python API keeps the full value


@pytest.mark.parametrize("mode", MODES)
def test_label_with_reference_inside_a_longer_string_is_widened(mode: Mode) -> None:
    files: dict[str, int] = {}
    gate = asyncio.Event()
    if mode != "async":
        gate.set()

    @tool(reads=[], writes=["files/{path}"])
    async def write(path: str, value: int) -> int:
        await gate.wait()
        files[path] = value
        return value

    @tool(pure=True)
    async def pick() -> str:
        return "b"

    @tool(reads=["files/{path}"])
    async def read(path: str) -> int | None:
        return files.get(path)

    def release(transcript: Sequence[Message]) -> str:
        gate.set()
        return "done"

    turns: list[Turn] = [
        [ScriptedCall("write", {"path": "d/b", "value": 1}), ScriptedCall("pick")],
        [ScriptedCall("read", {"path": "d/fut_2" if mode == "async" else "d/b"})],
        release,
    ]
    result = run(Agent(ScriptedModel(turns), [write, pick, read], mode=mode).run("go"))
    third = result.calls[2]
    assert third.value == 1, mode  # the read saw the earlier write to files/d/b
    if mode == "async":
        assert third.resolved_arguments == {"path": "d/b"}
        assert third.waited_for == (1,)


def _gated_tool(gate: asyncio.Event, fail: bool = False) -> Tool:
    @tool(pure=True)
    async def slow(x: int) -> int:
        """Waits for the gate."""
        await gate.wait()
        if fail:
            raise RuntimeError("backend down")
        return x * 10

    return slow


@pytest.mark.parametrize(
    ("answer", "fail", "revised"),
    [("all done", False, False), ("the value is fut_1", False, True), ("all done", True, True)],
)
def test_revise_when_needed(answer: str, fail: bool, revised: bool) -> None:
    """The default policy asks the model again only if it could not have answered correctly."""

    async def main() -> tuple[RunResult, ScriptedModel]:
        gate = asyncio.Event()

        def final(transcript: Sequence[Message]) -> str:
            gate.set()  # the call is still pending when this answer is given
            return answer

        model = ScriptedModel([[ScriptedCall("slow", {"x": 1})], final, "revised"])
        result = await Agent(model, [_gated_tool(gate, fail)], mode="async").run("go")
        return result, model

    result, model = asyncio.run(main())
    assert result.calls[0].delivered_at is not None and result.calls[0].deliveries == 1
    assert result.text == ("revised" if revised else answer)
    assert len(model.requests) == (3 if revised else 2)


def test_set_tools_between_user_turns() -> None:
    @tool(pure=True)
    def first() -> str:
        """Available from the start."""
        return "one"

    @tool(pure=True)
    def second() -> str:
        """Revealed later."""
        return "two"

    model = ScriptedModel([[ScriptedCall("second")], "no", [ScriptedCall("second")], "yes"])
    agent = Agent(model, [first], mode="async")

    async def main() -> list[RunResult]:
        async with agent.session() as session:
            r1 = await session.run("try")
            agent.set_tools([first, second])
            r2 = await session.run("again")
        return [r1, r2]

    r1, r2 = asyncio.run(main())
    assert r1.calls[0].error is not None and r1.calls[0].error.kind.value == "unknown_tool"
    assert r2.calls[0].value == "two"
    names = [t["name"] for t in model.requests[-1].tools]
    assert "second" in names and "second" not in [t["name"] for t in model.requests[0].tools]


def test_a_number_passed_into_a_string_parameter_arrives_as_text() -> None:
    @tool(pure=True)
    async def rate() -> float:
        """A number."""
        return 270.0

    @tool(writes=["files/{path}"])
    def write(path: str, content: str) -> str:
        """Writes text."""
        return f"{path}={content}"

    model = ScriptedModel(
        [[ScriptedCall("rate")], [ScriptedCall("write", {"path": "a.txt", "content": Ref(1)})], "done"]
    )
    result = asyncio.run(Agent(model, [rate, write], mode="async", grace_s=0).run("go"))
    assert result.calls[1].value == "a.txt=270.0"


def test_a_model_profile_adds_its_example_and_answers_repeats() -> None:
    from asyncfc.models import ModelProfile

    ran: list[int] = []

    @tool(pure=True)
    async def look(x: int) -> int:
        ran.append(x)
        return x + 1

    example = [Message("user", "example task"), Message("assistant", "example answer")]

    class Profiled(ScriptedModel):
        profile = ModelProfile(
            instructions="Be brief.",
            example=lambda is_async: example,
            answer_repeats=True,
        )

    for mode in MODES:
        ran.clear()
        model = Profiled([[ScriptedCall("look", {"x": 1})], [ScriptedCall("look", {"x": 1})], "done"])
        result = run(Agent(model, [look], mode=mode, system_prompt="Sys.").run("go"))
        first, again = result.calls
        assert ran == [1] and again.repeat_of == first.seq and again.value == first.value == 2
        assert not again.ran and again.deliveries == 1
        assert "not run again" in tool_message(result.messages, again.tool_call_id).content
        sent = model.requests[0].messages
        assert sent[0].role == "system" and sent[0].content.startswith("Sys.\n\nBe brief.")
        assert [m.content for m in sent[1:3]] == ["example task", "example answer"]
        assert all(m.content != "example task" for m in result.messages)  # not part of the conversation
        # a step of repeats only: the next one may call no tool and is asked to answer, that once;
        # its tools stay as they were (dropping them would change the prompt's cached prefix)
        assert model.requests[2].tool_choice == "none" and model.requests[1].tool_choice == "auto"
        assert model.requests[2].tools == model.requests[1].tools
        assert model.requests[2].messages[-1] == Message("user", ANSWER_NOW)
        assert all(m.content != ANSWER_NOW for m in result.messages)
