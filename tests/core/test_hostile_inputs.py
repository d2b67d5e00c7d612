"""Whole classes of input that must not break the core promises ("async equals sync",
"nothing is lost", "bad input is an error value, never a crash"), through the public API."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncfc import (
    Agent,
    AsyncFCError,
    ConfigurationError,
    ErrorKind,
    SessionBusyError,
    ToolDefinitionError,
    tool,
    tool_from_schema,
)
from asyncfc.agent import Delivery
from asyncfc.executors import MAX_RESULT_ITEMS
from asyncfc.mode import ModeName as Mode
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.models.base import ToolCall
from asyncfc.testing.scripted import ScriptedCall, ScriptedModel
from asyncfc.tools import Tool
from conftest import RawModel, assert_protocol_valid, content_of, deliveries_in_transcript, run

# ----------------------------------------------------------------- 1. templated labels


def kv_tools(store: dict[int, int]) -> list[Tool]:
    """A store keyed by int; the write sleeps between reading and writing, so a missed
    hazard between ``put(k="01")`` and ``get(k=1)`` shows as a different result."""

    @tool(writes=["kv/{k}"])
    async def put(k: int, v: int) -> int:
        old = store.get(k, 0)
        await asyncio.sleep(0.002)
        store[k] = old * 10 + v
        return store[k]

    @tool(reads=["kv/{k}"])
    async def get(k: int) -> int:
        await asyncio.sleep(0.001)
        return store.get(k, -1)

    @tool(pure=True)
    async def key(n: int) -> int:
        await asyncio.sleep(0.001)
        return n

    return [put, get, key]


def encodings(n: int) -> st.SearchStrategy[Any]:
    """Ways a model may write the integer ``n`` that pydantic turns into ``n``."""
    options: list[Any] = [n, float(n), str(n), f" {n}", f"{n} ", f"0{n}", f"00{n}", f"{n}.0"]
    if n in (0, 1):
        options.append(bool(n))
    return st.sampled_from(options)


@st.composite
def kv_programs(draw: st.DrawFn) -> list[list[tuple[str, str]]]:
    """Steps of raw calls: puts and gets with keys in any encoding, some passed as a future."""
    steps: list[list[tuple[str, str]]] = []
    seq = 0
    keys: list[tuple[int, int]] = []  # (future seq, the key it resolves to)
    for _ in range(draw(st.integers(1, 3))):
        step: list[tuple[str, str]] = []
        for _ in range(draw(st.integers(1, 4))):
            k = draw(st.integers(0, 2))
            kind = draw(st.sampled_from(["put", "get", "key", "ref"] if keys else ["put", "get", "key"]))
            encoded: Any = draw(encodings(k))
            if kind == "ref":
                fseq, k = draw(st.sampled_from(keys))
                encoded = f"fut_{fseq}"
                kind = draw(st.sampled_from(["put", "get"]))
            seq += 1
            if kind == "put":
                step.append(("put", json.dumps({"k": encoded, "v": draw(st.integers(1, 9))})))
            elif kind == "get":
                step.append(("get", json.dumps({"k": encoded})))
            else:
                step.append(("key", json.dumps({"n": encoded})))
                keys.append((seq, k))
        steps.append(step)
    return steps


def play_raw(mode: Mode, steps: list[list[tuple[str, str]]]) -> tuple[list[Any], dict[int, int]]:
    store: dict[int, int] = {}
    turns: list[Any] = [
        [ToolCall(f"c{i}_{j}", name, args) for j, (name, args) in enumerate(step)]
        for i, step in enumerate(steps)
    ]
    # random programs write without looking: the labels are under test, not the hold of blind writes
    agent = Agent(RawModel(turns), kv_tools(store), mode=mode, grace_s=0, hold_blind_writes=False)
    result = run(agent.run("go"))
    assert all(c.done for c in result.calls)
    outcome = [c.value if c.error is None else c.error.kind.value for c in result.calls]
    return outcome, store


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kv_programs())
def test_labels_follow_the_values_the_tool_receives(steps: list[list[tuple[str, str]]]) -> None:
    """References only appear in async mode's programs: sync gets the same keys as values."""
    sync_steps = [[(n, _deref(a, steps)) for n, a in step] for step in steps]
    expected = play_raw("sync", sync_steps)
    assert play_raw("async", steps) == expected


def _deref(args: str, steps: list[list[tuple[str, str]]]) -> str:
    """The same call with ``fut_N`` replaced by the key that future resolves to."""
    flat = [a for step in steps for _, a in step]
    out = json.loads(args)
    for name, value in out.items():
        if isinstance(value, str) and value.startswith("fut_"):
            out[name] = json.loads(flat[int(value[4:]) - 1])["n"]
    return json.dumps(out)


def test_put_01_and_get_1_conflict() -> None:
    """The reported case: one step with ``put(k="01")`` then ``get(k=1)``."""
    steps = [[("put", '{"k": "01", "v": 5}'), ("get", '{"k": 1}')]]
    assert play_raw("async", steps) == play_raw("sync", steps) == ([5, 5], {1: 5})


# ----------------------------------------------------------------- 2. BaseException


class Custom(BaseException):
    """A BaseException that is not an Exception."""


class Unprintable(Exception):
    """Its ``__str__`` raises: formatting it once left an async tool's call pending until its timeout."""

    def __str__(self) -> str:
        raise RuntimeError("no text")


RAISED: list[type[BaseException]] = [
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
    Custom,
    asyncio.CancelledError,
    Unprintable,
]


@pytest.mark.parametrize("sync_tool", [False, True], ids=["async-tool", "sync-tool"])
@pytest.mark.parametrize("exc", RAISED, ids=lambda e: e.__name__)
@pytest.mark.parametrize("mode", ["sync", "parallel", "async"])
def test_a_tool_raising_any_base_exception_is_a_tool_error(
    exc: type[BaseException], sync_tool: bool, mode: Mode
) -> None:
    if sync_tool:

        @tool(pure=True, name="bad")
        def bad_s() -> int:
            raise exc("from the tool")

        bad = bad_s
    else:

        @tool(pure=True, name="bad")
        async def bad_a() -> int:
            await asyncio.sleep(0.001)
            raise exc("from the tool")

        bad = bad_a

    @tool(pure=True)
    async def good() -> int:
        await asyncio.sleep(0.02)
        return 7

    model = ScriptedModel([[ScriptedCall("bad"), ScriptedCall("good")], "done"])
    result = run(Agent(model, [bad, good], mode=mode).run("go"))
    failed, fine = result.calls
    assert failed.error is not None and failed.error.kind is ErrorKind.TOOL_ERROR
    assert exc.__name__ in failed.error.message and "closed" not in failed.error.message
    assert fine.value == 7
    assert [c.deliveries for c in result.calls] == [1, 1]


# ----------------------------------------------------------------- 3. hostile argument shapes


def nested(depth: int) -> str:
    return '{"x": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [100, 500, 950, 5000, 100_000])
@pytest.mark.parametrize("early", [True, False], ids=["early-dispatch", "at-end"])
def test_deep_arguments_are_invalid_arguments_and_the_session_survives(depth: int, early: bool) -> None:
    ran: list[str] = []

    @tool(pure=True)
    async def take(x: Any) -> str:
        ran.append("take")
        return "took"

    @tool(pure=True)
    async def ok() -> str:
        await asyncio.sleep(0.01)
        return "fine"

    turns: list[Any] = [[ToolCall("a", "ok", "{}"), ToolCall("b", "take", nested(depth))], "done"]

    async def main() -> Any:
        agent = Agent(RawModel(turns), [take, ok], mode="async", early_dispatch=early)
        async with agent.session() as session:
            first = await session.run("go")
            assert not session.closed
            second = await session.run("again")  # the session is still usable
            return first, second

    first, second = run(main())
    good, deep = first.calls
    assert good.value == "fine"
    assert deep.error is not None and deep.error.kind is ErrorKind.INVALID_ARGUMENTS, deep.error
    assert "nest" in deep.error.message
    assert ran == [] and second.text == "done"


def test_huge_arguments_are_invalid_arguments() -> None:
    @tool(pure=True)
    async def take(x: str) -> int:
        return len(x)

    turns: list[Any] = [[ToolCall("a", "take", json.dumps({"x": "y" * 2_000_000}))], "done"]
    result = run(Agent(RawModel(turns), [take], mode="async").run("go"))
    err = result.calls[0].error
    assert err is not None and err.kind is ErrorKind.INVALID_ARGUMENTS and "too long" in err.message


@pytest.mark.parametrize("early", [True, False], ids=["early-dispatch", "at-end"])
def test_future_ids_that_int_cannot_read_are_unknown_futures_or_text(early: bool) -> None:
    """Unicode digits and numbers past Python's 4,300-digit limit, where the model writes a
    future id: ``int()`` of them raises, and once that escaped ``Agent.run``."""

    @tool(pure=True)
    async def get() -> list[int]:
        await asyncio.sleep(0.01)
        return [1, 2]

    @tool(pure=True)
    async def show(x: Any) -> str:
        return f"got {x}"

    long = "9" * 5000
    odd_ids = ["fut_\u00b2", "fut_\u0663", f"fut_{long}"]  # superscript two, Arabic-Indic three
    turns: list[Any] = [
        [
            ToolCall("a", "get", "{}"),
            ToolCall("b", "show", json.dumps({"x": f"fut_{long}"})),
            ToolCall("c", "show", json.dumps({"x": f"fut_1[{long}]"})),
        ],
        [ToolCall("d", AWAIT_TOOL, json.dumps({"ids": odd_ids}))],
        "done",
    ]
    result = run(Agent(RawModel(turns), [get, show], mode="async", grace_s=0, early_dispatch=early).run("go"))
    _, long_id, long_index = result.calls
    assert long_id.value == f"got fut_{long}", "19 digits or more is not an id: the text is passed on"
    assert long_index.error is not None and long_index.error.kind is ErrorKind.UNKNOWN_FUTURE
    awaited = json.loads(next(m.content for m in result.messages if m.tool_call_id == "d"))
    assert [a["error"]["type"] for a in awaited] == ["unknown_future"] * 3, awaited
    assert result.text == "done"


def test_the_model_reads_a_bounded_part_of_a_huge_error_message() -> None:
    @tool(pure=True)
    async def explode() -> str:
        raise ValueError("x" * 1_000_000)

    turns: list[Any] = [[ToolCall("a", "explode", "{}"), ToolCall("b", "g" * 1_000_000, "{}")], "done"]
    for mode in ("sync", "async"):
        result = run(Agent(RawModel(turns), [explode], mode=mode, grace_s=1).run("go"))
        raised, unknown = result.calls
        assert raised.error is not None and len(raised.error.message) > 1_000_000, "the developer sees it all"
        assert unknown.error is not None and unknown.error.kind is ErrorKind.UNKNOWN_TOOL
        for m in result.messages:
            if m.role == "tool":
                assert len(m.content) < 2_300 and "characters in all]" in m.content, (mode, m.content[:80])


# ----------------------------------------------------------------- 4. delivery counts


@pytest.mark.parametrize("delivery", ["append", "rewrite", "synthetic_await"])
def test_awaiting_twice_delivers_once_in_every_policy(delivery: Delivery) -> None:
    @tool(pure=True)
    async def slow(x: int) -> int:
        await asyncio.sleep(0.05)
        return x * 2

    model = ScriptedModel(
        [
            [ScriptedCall("slow", {"x": 1}), ScriptedCall("slow", {"x": 2})],
            [ScriptedCall(AWAIT_TOOL, {"ids": ["fut_1"]})],
            [ScriptedCall(AWAIT_TOOL, {"ids": ["fut_1", "fut_2"]})],
            [ScriptedCall(AWAIT_TOOL, {"ids": ["fut_1"]})],
            "done",
        ]
    )
    result = run(Agent(model, [slow], mode="async", delivery=delivery, grace_s=0).run("go"))
    assert_protocol_valid(result.messages)
    for call in result.calls:
        assert call.deliveries == 1, (call.id, call.deliveries)
        assert deliveries_in_transcript(result.messages, call.id) == 1, call.id


# ----------------------------------------------------------------- 5. results that are not JSON


def _strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"invalid JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_results_that_are_not_json_reach_the_model_as_valid_json() -> None:
    circular: list[Any] = []
    circular.append(circular)
    results: dict[str, Any] = {
        "raw": b"\xff\xfe\x00",
        "loop": circular,
        "nan": math.nan,
        "inf": [math.inf, -math.inf, 1.5],
        "huge_int": {"n": 10**5000, "small": 3},  # past sys.get_int_max_str_digits(): str() raises
    }

    def make(name: str) -> Tool:
        async def fn() -> Any:
            return results[name]

        return tool_from_schema(
            {"name": name, "parameters": {"type": "object", "properties": {}}}, fn, pure=True
        )

    # answered at once (sync, or within the grace window), or delivered later by each policy
    setups: list[tuple[Mode, float, Delivery]] = [("sync", 1, "append"), ("async", 1, "append")]
    setups += [("async", 0, policy) for policy in ("append", "rewrite", "synthetic_await")]
    for mode, grace, delivery in setups:
        model = ScriptedModel([[ScriptedCall(n) for n in results], "done"])
        agent = Agent(model, [make(n) for n in results], mode=mode, grace_s=grace, delivery=delivery)
        result = run(agent.run("go"))
        raw, loop, nan, inf, huge = result.calls
        assert all(c.error is None for c in result.calls), [c.error for c in result.calls]
        assert raw.value == repr(b"\xff\xfe\x00") and loop.value == "[[...]]"
        assert huge.value["n"] == 10**5000, "the value itself is kept"
        huge_text = "<an integer of about 5,001 digits, too long to write>"
        for m in result.messages:
            if m.role == "tool" and mode == "async":
                _strict(m.content)  # NaN and infinities are not in the text
        if mode == "async":
            assert content_of(result.messages, nan)["value"] == "NaN", (grace, delivery)
            assert content_of(result.messages, inf)["value"] == ["Infinity", "-Infinity", 1.5]
            assert content_of(result.messages, huge)["value"] == {"n": huge_text, "small": 3}
        else:
            assert json.loads(result.messages[-2].content) == {"n": huge_text, "small": 3}


def test_results_that_are_iterators_are_read_where_the_tool_ran_and_bounded() -> None:
    """``itertools.count()`` once hung the event loop: JSON encoding read it without end."""

    @tool(pure=True)
    def endless() -> Any:
        return itertools.count()

    @tool(pure=True, timeout=0.3)
    def slow_items() -> Any:
        def items() -> Any:
            for i in range(100):
                time.sleep(0.05)  # the generator's body: under the tool's timeout, off the loop
                yield i

        return items()

    @tool(pure=True)
    def few() -> Any:
        return (i * i for i in range(3))

    model = ScriptedModel(
        [[ScriptedCall("endless"), ScriptedCall("slow_items"), ScriptedCall("few")], "done"]
    )
    result = run(Agent(model, [endless, slow_items, few], mode="async").run("go"))
    many, slow, small = result.calls
    assert (
        len(many.value) == MAX_RESULT_ITEMS + 1
        and many.value[-1] == f"... [stopped after {MAX_RESULT_ITEMS:,} items]"
    )
    assert slow.error is not None and slow.error.kind is ErrorKind.TIMEOUT
    assert small.value == [0, 1, 4]


# ----------------------------------------------------------------- 6. concurrent use of a session


def test_a_second_concurrent_run_on_one_session_is_rejected() -> None:
    @tool(pure=True)
    async def slow() -> str:
        await asyncio.sleep(0.05)
        return "one"

    async def main() -> tuple[Any, BaseException | None]:
        agent = Agent(
            ScriptedModel([[ScriptedCall("slow")], "first done", "second done"]), [slow], mode="async"
        )
        async with agent.session() as session:
            first = asyncio.create_task(session.run("first"))
            await asyncio.sleep(0.01)
            try:
                await session.run("second")
                rejected: BaseException | None = None
            except SessionBusyError as exc:
                rejected = exc
            return await first, rejected

    first, rejected = run(main())
    assert isinstance(rejected, SessionBusyError) and isinstance(rejected, AsyncFCError)
    assert first.text == "first done" and first.calls[0].value == "one"


# ----------------------------------------------------------------- 7. resource hygiene


def _tool_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("asyncfc"))


def test_closing_agents_releases_their_worker_threads() -> None:
    @tool(pure=True)
    def blocking() -> str:
        return "ok"

    before = _tool_threads()

    async def main() -> None:
        for _ in range(10):
            async with Agent(
                ScriptedModel([[ScriptedCall("blocking"), ScriptedCall("blocking")], "done"]), [blocking]
            ) as agent:
                await agent.run("go")

    run(main())
    for _ in range(100):
        if _tool_threads() <= before:
            break
        threading.Event().wait(0.01)
    assert _tool_threads() <= before


# ----------------------------------------------------------------- 8. contract gaps


def test_schema_tool_rejects_unknown_keys_as_invalid_arguments() -> None:
    calls: list[dict[str, Any]] = []

    def fn(a: int) -> int:
        calls.append({"a": a})
        return a

    t = tool_from_schema(
        {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}},
        fn,
        pure=True,
    )
    result = run(Agent(ScriptedModel([[ScriptedCall("f", {"a": 1, "zzz": 2})], "done"]), [t]).run("go"))
    err = result.calls[0].error
    assert err is not None and err.kind is ErrorKind.INVALID_ARGUMENTS and "zzz" in err.message
    assert calls == []


def test_an_untyped_parameter_is_a_definition_error() -> None:
    def f(x):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(ToolDefinitionError, match="no type annotation"):
        tool(f)


def test_an_unknown_mode_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match="sync, parallel, async") as info:
        Agent(ScriptedModel(["x"]), [], mode="Async")  # type: ignore[arg-type]
    assert isinstance(info.value, AsyncFCError) and isinstance(info.value, ValueError)
    with pytest.raises(ConfigurationError, match="append, rewrite, synthetic_await"):
        Agent(ScriptedModel(["x"]), [], delivery="nope")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("grace_s", -1),
        ("grace_s", math.nan),
        ("max_steps", 0),
        ("max_revisions", -1),
        ("max_result_chars", 0),
        ("max_session_concurrency", 0),
        ("max_concurrency", -2),  # hung every call before
        ("default_timeout", 0),
        ("tool_limits", {"f": 0}),  # hung every call of f before
    ],
)
def test_a_number_out_of_range_is_a_configuration_error(option: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=option.split("[")[0]):
        Agent(ScriptedModel(["x"]), [], **{option: value})


@pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf])
def test_a_tool_timeout_out_of_range_is_a_definition_error(timeout: float) -> None:
    with pytest.raises(ToolDefinitionError, match="timeout must be a number greater than 0"):

        @tool(pure=True, timeout=timeout)
        async def f() -> int:
            return 1
