"""Errors are values the model reads; the Python API raises only for developer misuse."""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import json
import pkgutil
import socket
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import pytest

import asyncfc
from asyncfc import (
    AsyncFCError,
    ConfigurationError,
    ErrorKind,
    LocalModelError,
    ModelError,
    Runtime,
    SessionBusyError,
    SessionClosedError,
    ToolDefinitionError,
    UsageError,
    tool,
)
from asyncfc.agent import Agent, RunResult
from asyncfc.mode import ModeName as Mode
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.models import ModelRequest, OpenAIChatModel, complete
from asyncfc.models.base import Message, ToolCall
from asyncfc.testing.scripted import Ref, ScriptedCall, ScriptedModel, Turn
from asyncfc.tools import Tool
from conftest import RawModel, assert_protocol_valid, content_of, error_of, run

MODES: tuple[Mode, ...] = ("sync", "parallel", "async")


def make_tools(called: dict[str, int]) -> list[Tool]:
    def note(name: str) -> None:
        called[name] = called.get(name, 0) + 1

    @tool(pure=True)
    async def name_of(i: int) -> str:
        """A name (a string result)."""
        note("name_of")
        await asyncio.sleep(0.001)
        return "abc"

    @tool(pure=True)
    def double(x: int) -> int:
        """Twice x."""
        note("double")
        return 2 * x

    @tool(pure=True)
    async def boom(reason: str) -> int:
        """Always fails."""
        note("boom")
        await asyncio.sleep(0.001)
        raise ValueError(f"bad input: {reason}")

    @tool(pure=True)
    async def ok(x: int) -> int:
        """Succeeds after a short while."""
        note("ok")
        await asyncio.sleep(0.02)
        return x

    return [name_of, double, boom, ok]


def play(mode: Mode, turns: Sequence[Turn], **options: Any) -> tuple[RunResult, dict[str, int]]:
    called: dict[str, int] = {}
    options.setdefault("grace_s", 0)  # these tools are fast: keep them behind placeholders
    agent = Agent(ScriptedModel(turns), make_tools(called), mode=mode, **options)
    result = run(agent.run("go"))  # never raises for model mistakes
    assert_protocol_valid(result.messages)
    assert all(c.done for c in result.calls)
    return result, called


@pytest.mark.parametrize("mode", MODES)
def test_unknown_tool(mode: Mode) -> None:
    result, _ = play(mode, [[ScriptedCall("launch_rockets", {"n": 1})], "sorry"])
    (call,) = result.calls
    err = error_of(result.messages, call)
    assert err["type"] == "unknown_tool"
    assert "unknown tool 'launch_rockets'" in err["message"]
    assert "double" in err["message"] and "name_of" in err["message"]  # lists the real tools
    assert call.error is not None and call.error.kind is ErrorKind.UNKNOWN_TOOL and not call.ran


@pytest.mark.parametrize("mode", MODES)
def test_malformed_json_arguments(mode: Mode) -> None:
    called: dict[str, int] = {}
    turns: list[Any] = [
        [
            ToolCall("c1", "double", '{"x": 1'),
            ToolCall("c2", "double", "[1, 2]"),
            ToolCall("c3", "double", ""),
        ],
        "done",
    ]
    result = run(Agent(RawModel(turns), make_tools(called), mode=mode).run("go"))
    bad_json, not_object, empty = result.calls
    err = error_of(result.messages, bad_json)
    assert err["type"] == "invalid_arguments" and "not valid JSON" in err["message"]
    err = error_of(result.messages, not_object)
    assert err["type"] == "invalid_arguments" and "must be a JSON object" in err["message"]
    # empty arguments mean {}: then the schema says what is missing
    err = error_of(result.messages, empty)
    assert err["type"] == "invalid_arguments" and "x" in err["message"] and "required" in err["message"]
    assert called == {}


@pytest.mark.parametrize("mode", MODES)
def test_arguments_failing_validation_after_substitution(mode: Mode) -> None:
    # double(x: int) gets the *string* result of name_of: as a reference in async mode
    result, called = play(
        mode, [[ScriptedCall("name_of", {"i": 1})], [ScriptedCall("double", {"x": Ref(1)})], "done"]
    )
    named, doubled = result.calls
    if mode == "async":
        assert doubled.arguments == {"x": "fut_1"}  # the reference itself passes the widened schema
    err = error_of(result.messages, doubled)
    assert err["type"] == "invalid_arguments"
    assert "invalid arguments for double" in err["message"] and "x" in err["message"]
    assert "integer" in err["message"]
    assert "double" not in called and not doubled.ran
    assert named.value == "abc"


def test_unknown_future_and_self_reference() -> None:
    result, called = play(
        "async",
        [
            [
                ScriptedCall("double", {"x": "fut_1"}),
                ScriptedCall("double", {"x": "fut_9"}),
                ScriptedCall("double", {"x": "fut_1.a"}),
            ],
            "done",
        ],
    )
    self_ref, unknown, field = result.calls
    for call, fid in [(self_ref, "fut_1"), (unknown, "fut_9")]:
        err = error_of(result.messages, call)
        assert err["type"] == "unknown_future" and fid in err["message"], err
    # fut_1 exists by then, but its value (an error) has no field 'a'
    err = error_of(result.messages, field)
    assert err["type"] in ("dependency_failed", "unknown_future")
    assert "double" not in called


def test_missing_field_of_a_result() -> None:
    result, called = play(
        "async", [[ScriptedCall("ok", {"x": 3})], [ScriptedCall("double", {"x": Ref(1, ".price")})], "done"]
    )
    err = error_of(result.messages, result.calls[1])
    assert err["type"] == "unknown_future" and "no field 'price'" in err["message"]
    assert "double" not in called


def test_future_of_another_session_is_unknown() -> None:
    called: dict[str, int] = {}
    tools = make_tools(called)

    async def main() -> tuple[RunResult, RunResult, Any]:
        model_a = ScriptedModel(
            [
                [ScriptedCall("ok", {"x": 1}), ScriptedCall("ok", {"x": 2}), ScriptedCall("ok", {"x": 3})],
                "a done",
            ]
        )
        model_b = ScriptedModel(
            [[ScriptedCall("double", {"x": "fut_3"}), ScriptedCall(AWAIT_TOOL, {"ids": ["fut_2"]})], "b done"]
        )
        async with Agent(model_a, tools).session() as a, Agent(model_b, tools).session() as b:
            ra = await a.run("session a")
            rb = await b.run("session b")
            return ra, rb, b.scheduler.lookup(3)

    ra, rb, lookup = run(main())
    assert [c.value for c in ra.calls] == [1, 2, 3]
    (call,) = rb.calls
    err = error_of(rb.messages, call)
    assert err["type"] == "unknown_future" and "fut_3" in err["message"]
    awaited = [m for m in rb.messages if m.role == "tool" and m.tool_call_id != call.tool_call_id]
    assert json.loads(awaited[0].content)["error"]["type"] == "unknown_future"
    assert lookup is None and called.get("double") is None


@pytest.mark.parametrize("delivery", ["rewrite", "synthetic_await"])
def test_dependency_failed_dependant_not_run(delivery: str) -> None:
    result, called = play(
        "async",
        [
            [ScriptedCall("boom", {"reason": "disk full"})],
            [ScriptedCall("double", {"x": Ref(1)}), ScriptedCall("double", {"x": "total: fut_1"})],
            "done",
        ],
        delivery=delivery,
    )
    failed, dependant, interpolated = result.calls
    assert failed.error is not None and failed.error.kind is ErrorKind.TOOL_ERROR
    for call in (dependant, interpolated):
        assert call.error is not None and call.error.kind is ErrorKind.DEPENDENCY_FAILED
        message = call.error.message
        assert "fut_1" in message and "boom" in message and "disk full" in message
        assert not call.ran
        shown = content_of(result.messages, call)
        if isinstance(shown, dict) and "error" in shown:
            assert shown["error"]["type"] == "dependency_failed"
    assert called.get("double") is None and called["boom"] == 1


@pytest.mark.parametrize("mode", MODES)
def test_tool_raising(mode: Mode) -> None:
    result, _ = play(mode, [[ScriptedCall("boom", {"reason": "no such user 42"})], "done"])
    (call,) = result.calls
    err = error_of(result.messages, call)
    assert err["type"] == "tool_error"
    assert "boom raised ValueError: bad input: no such user 42" in err["message"]
    assert call.ran


def test_tool_raising_its_own_timeout_error_is_a_tool_error() -> None:
    @tool(pure=True)
    async def fetch() -> str:
        raise TimeoutError("upstream did not answer")

    result = run(Agent(ScriptedModel([[ScriptedCall("fetch")], "done"]), [fetch]).run("go"))
    err = error_of(result.messages, result.calls[0])
    assert err["type"] == "tool_error" and "upstream did not answer" in err["message"]


@pytest.mark.parametrize("mode", MODES)
def test_async_tool_timing_out(mode: Mode) -> None:
    cancelled = []

    @tool(pure=True, timeout=0.05)
    async def hang() -> None:
        try:
            await asyncio.Event().wait()  # never set: only the timeout ends this call
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    result = run(Agent(ScriptedModel([[ScriptedCall("hang")], "done"]), [hang], mode=mode).run("go"))
    err = error_of(result.messages, result.calls[0])
    assert err["type"] == "timeout" and "hang timed out after 0.05 s" in err["message"]
    assert cancelled == [True]  # an async tool is really cancelled


def test_sync_tool_timing_out_and_default_timeout() -> None:
    release = threading.Event()

    @tool(pure=True, timeout=0.05)
    def stuck() -> None:
        release.wait(10)

    @tool(pure=True)
    def stuck_default() -> None:
        release.wait(10)

    try:
        agent = Agent(
            ScriptedModel([[ScriptedCall("stuck"), ScriptedCall("stuck_default")], "done"]),
            [stuck, stuck_default],
            mode="async",
            default_timeout=0.1,
        )
        result = run(agent.run("go"))
    finally:
        release.set()
    errors = [error_of(result.messages, c) for c in result.calls]
    assert [e["type"] for e in errors] == ["timeout", "timeout"]
    assert "after 0.05 s" in errors[0]["message"] and "after 0.1 s" in errors[1]["message"]
    agent.executor.shutdown()


def test_failing_call_leaves_independent_siblings_running() -> None:
    for mode in MODES:
        result, called = play(
            mode,
            [
                [
                    ScriptedCall("boom", {"reason": "x"}),
                    ScriptedCall("ok", {"x": 7}),
                    ScriptedCall("launch", {}),
                ],
                [ScriptedCall("ok", {"x": 8})],
                "done",
            ],
        )
        boom, ok, unknown, later = result.calls
        assert boom.error is not None and unknown.error is not None
        assert ok.error is None and ok.value == 7 and later.value == 8, mode
        assert content_of(result.messages, later) in (
            8,
            {"future": "fut_4", "status": "resolved", "value": 8},
        )


def test_failure_does_not_cancel_a_later_conflicting_call() -> None:
    store: list[str] = []

    @tool  # unannotated: reads and writes the root, runs alone in program order
    async def fail() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("nope")

    @tool
    def append(x: str) -> int:
        store.append(x)
        return len(store)

    model = ScriptedModel([[ScriptedCall("fail"), ScriptedCall("append", {"x": "a"})], "done"])
    result = run(Agent(model, [fail, append], mode="async").run("go"))
    failed, appended = result.calls
    assert failed.error is not None and appended.value == 1 and store == ["a"]
    assert appended.waited_for == (1,)  # ordered after the failing call, yet still run


def test_cancelling_a_run_cancels_every_pending_call() -> None:
    release = threading.Event()

    async def main() -> None:
        started = {"a": asyncio.Event(), "s": asyncio.Event()}
        loop = asyncio.get_running_loop()

        @tool(writes=["x"])
        async def hang() -> None:
            started["a"].set()
            await asyncio.sleep(30)

        @tool(writes=["y"])
        def blocking() -> None:
            loop.call_soon_threadsafe(started["s"].set)
            release.wait(10)

        @tool(writes=["x"])  # waits for hang (write/write): never starts
        async def queued() -> None:
            raise AssertionError("must not run")

        before = asyncio.all_tasks()
        model = ScriptedModel(
            [[ScriptedCall("hang"), ScriptedCall("blocking"), ScriptedCall("queued")], "done"]
        )
        session = Agent(model, [hang, blocking, queued], mode="async").session()
        task = asyncio.create_task(session.run("go"))
        await asyncio.wait_for(started["a"].wait(), 5)
        await asyncio.wait_for(started["s"].wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.all_tasks() == before
        assert session.closed
        kinds = [c.error.kind if c.error else None for c in session.calls]
        assert kinds == [ErrorKind.CANCELLED] * 3
        assert [c.ran for c in session.calls] == [True, True, False]
        assert all("cancelled" in c.error.message for c in session.calls if c.error)
        with pytest.raises(SessionClosedError):
            await session.run("again")

    try:
        run(main())
    finally:
        release.set()


def test_closing_a_session_while_a_run_is_in_flight() -> None:
    async def main() -> None:
        started = asyncio.Event()

        @tool(pure=True)
        async def hang() -> None:
            started.set()
            await asyncio.sleep(30)

        @tool(pure=True)
        async def after() -> None:
            raise AssertionError("no call may start once the session is closed")

        before = asyncio.all_tasks()
        model = ScriptedModel([[ScriptedCall("hang")], "draft", [ScriptedCall("after")], "done"])
        session = Agent(model, [hang, after], mode="async").session()
        task = asyncio.create_task(session.run("go"))
        await asyncio.wait_for(started.wait(), 5)
        await session.close()
        with pytest.raises(SessionClosedError):
            await task
        assert asyncio.all_tasks() == before
        assert [c.name for c in session.calls] == ["hang"]
        assert session.calls[0].error is not None and session.calls[0].error.kind is ErrorKind.CANCELLED

    run(main())


def test_session_closed_error_when_reused() -> None:
    async def main() -> None:
        agent = Agent(ScriptedModel(["one", "two"]), [])
        async with agent.session() as session:
            assert (await session.run("hi")).text == "one"
        with pytest.raises(SessionClosedError) as exc:
            await session.run("again")
        assert isinstance(exc.value, AsyncFCError)
        await session.close()  # closing twice is harmless

    run(main())


def test_model_failure_raises_model_error_and_cancels_dispatched_calls() -> None:
    async def main() -> None:
        @tool(pure=True)
        async def hang() -> None:
            await asyncio.sleep(30)

        before = asyncio.all_tasks()
        model = RawModel([[ToolCall("c1", "hang", "{}")]], fail_after_calls=True)
        session = Agent(model, [hang], mode="async").session()
        with pytest.raises(ModelError, match="connection reset") as exc:
            await session.run("go")
        assert isinstance(exc.value, AsyncFCError)
        assert asyncio.all_tasks() == before
        (call,) = session.calls
        assert call.error is not None and call.error.kind is ErrorKind.CANCELLED
        assert session.closed

    run(main())


def test_errors_reach_the_model_as_json_with_type_and_message() -> None:
    seen: list[Message] = []

    def look(transcript: Sequence[Message]) -> str:
        seen[:] = transcript  # the last step's view
        return "done"

    for mode in MODES:
        result, _ = play(
            mode, [[ScriptedCall("boom", {"reason": "r"}), ScriptedCall("nope", {})], look, look]
        )
        errors = [content_of(seen, c) for c in result.calls]
        for p in errors:
            assert set(p["error"]) == {"type", "message"} and p["error"]["message"]
            if mode == "async":  # one shape, always naming the future
                assert p["status"] == "failed" and p["future"] in ("fut_1", "fut_2")


# ------------------------------------------------------------ developer mistakes name their fix


def get_weather(city: str) -> str:
    """A plain function: not decorated with @tool."""
    return f"sunny in {city}"


@pytest.mark.parametrize("make", [lambda tools: Agent(ScriptedModel(["hi"]), tools), Runtime])
def test_a_plain_function_as_a_tool_says_to_decorate_it(make: Any) -> None:
    with pytest.raises(ToolDefinitionError, match="get_weather") as exc:
        make([tool(lambda: 1), get_weather])
    message = str(exc.value)
    assert "tools[1]" in message and "plain function" in message
    assert "@tool" in message and "tool(get_weather)" in message


@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        (["get_weather"], "tools[0] is 'get_weather' (of type str), not a tool"),
        ([None], "tools[0] is None (of type NoneType), not a tool"),
        (get_weather, "tools must be a list of tools, got the plain function 'get_weather'"),
        (tool(get_weather), "got the tool 'get_weather' alone: pass a list, tools=[get_weather]"),
    ],
)
def test_anything_but_a_list_of_tools_is_a_definition_error(tools: Any, expected: str) -> None:
    with pytest.raises(ToolDefinitionError) as exc:
        Agent(ScriptedModel(["hi"]), tools)
    assert expected in str(exc.value)
    assert "tool(fn)" in str(exc.value) or "@tool" in str(exc.value) or "tools=[" in str(exc.value)


def test_set_tools_checks_the_new_list_too() -> None:
    agent = Agent(ScriptedModel(["hi"]), [tool(get_weather)])
    with pytest.raises(ToolDefinitionError, match=r"decorate it with @tool"):
        agent.set_tools([get_weather])
    assert list(agent.tools) == ["get_weather"]  # the old list stands


def test_run_sync_inside_a_running_loop_says_to_await_run() -> None:
    agent = Agent(ScriptedModel(["hi"]), [])

    async def main() -> None:
        with pytest.raises(UsageError, match=r"await agent\.run\(\.\.\.\)") as exc:
            agent.run_sync("hi")
        assert "running event loop" in str(exc.value)
        assert isinstance(exc.value, AsyncFCError)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(main())
        gc.collect()  # a coroutine made and dropped would warn "was never awaited" here
    assert [str(w.message) for w in caught] == []
    assert agent.run_sync("hi").text == "hi"  # outside a loop it still runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_an_unreachable_local_endpoint_names_the_url_and_asyncfc_model_serve() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    model = OpenAIChatModel("qwen", base_url=url, max_retries=0)
    with pytest.raises(ModelError) as exc:
        Agent(model, []).run_sync("hi")
    message = str(exc.value)
    assert url in message and "cannot reach" in message
    assert "`asyncfc model serve`" in message and "asyncfc.local.model()" in message


def test_an_unreachable_anthropic_endpoint_names_the_url_too() -> None:
    from asyncfc.models import AnthropicMessagesModel

    url = f"http://127.0.0.1:{free_port()}"
    model = AnthropicMessagesModel("claude", base_url=url, api_key="k", max_retries=0)
    with pytest.raises(ModelError) as exc:
        Agent(model, []).run_sync("hi")
    assert url in str(exc.value) and "`asyncfc model serve`" in str(exc.value)


def test_a_stream_without_a_response_is_a_model_error() -> None:
    class Silent:
        name = "silent"

        async def stream(self, request: ModelRequest) -> Any:
            return
            yield

    with pytest.raises(ModelError, match="'silent' ended its stream without a response"):
        run(complete(Silent(), ModelRequest([Message("user", "hi")], [])))


def test_a_script_referring_to_a_call_not_yet_made_is_a_model_error() -> None:
    agent = Agent(ScriptedModel([[ScriptedCall("double", {"x": Ref(3)})], "done"]), make_tools({}))
    with pytest.raises(ModelError, match=r"refers to call 3 \(Ref\(3\)\), but only 0 were made"):
        agent.run_sync("go")


# ------------------------------------------------------------------------ the exception tree

NOT_RAISED_AT_THE_DEVELOPER = {
    "ArgumentsError": "Tool.validate's, the scheduler turns it into an invalid_arguments CallError",
    "ReferenceError_": "a future reference the model wrote is bad: an unknown_future CallError",
    "NotPicklableError": "the processes executor turns it into ToolDefinitionError or ToolFailed",
    "SubagentIncomplete": "raised inside an agent tool; the executor turns it into a tool_error CallError",
}
"""asyncfc's own exceptions that are not AsyncFCErrors: each is caught inside asyncfc."""


def asyncfc_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined in an importable asyncfc module, by name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(asyncfc.__path__, "asyncfc."):
        if info.name.endswith("__main__"):
            continue  # running one is the CLI
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional framework (ray, langgraph, ...) is not installed
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__.startswith("asyncfc"):
                found[cls.__name__] = cls
    return found


def test_every_exception_raised_at_the_developer_is_an_asyncfc_error() -> None:
    found = asyncfc_exceptions()
    expected = {"UpstreamUnavailable", "ServerError", "ExecutorUnavailable", "ToolFailed", "WorkerLost"}
    assert expected <= set(found)
    strays = {
        name
        for name, cls in found.items()
        if not issubclass(cls, AsyncFCError) and name not in NOT_RAISED_AT_THE_DEVELOPER
    }
    assert strays == set()


def test_the_errors_docstring_draws_every_asyncfc_error() -> None:
    doc = asyncfc.errors.__doc__ or ""
    drawn = {name for name, cls in asyncfc_exceptions().items() if issubclass(cls, AsyncFCError)}
    assert {n for n in drawn if f" {n} " not in doc} == set()


def test_backwards_compatible_bases() -> None:
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(LocalModelError, RuntimeError)
    assert issubclass(SessionBusyError, UsageError) and issubclass(SessionClosedError, UsageError)
    from asyncfc.local import GGUFError, ServerError, TemplatePatchError, WeightsError

    for cls in (GGUFError, ServerError, TemplatePatchError, WeightsError):
        assert issubclass(cls, LocalModelError) and issubclass(cls, AsyncFCError)
