"""What the model reads: one shape for every statement about a future, never JSON in a string."""

from __future__ import annotations

import json

from asyncfc import Agent, tool
from asyncfc.errors import CallError, ErrorKind
from asyncfc.model_text import (
    EARLIER,
    MAX_ERROR_CHARS,
    await_answer,
    delivered,
    error_json,
    failed,
    placeholder,
    resolved,
    shorten_json,
    shorten_message,
    unknown_future,
    with_earlier,
)
from asyncfc.runtime import Runtime
from asyncfc.testing import Ref, ScriptedCall, ScriptedModel
from conftest import run


def test_future_objects() -> None:
    assert placeholder("fut_1") == {"future": "fut_1", "status": "pending"}
    assert placeholder("fut_1", {"price": 1.0, "shop": {"city": "x"}}) == {
        "future": "fut_1",
        "status": "pending",
        "fields": {"price": "fut_1.price", "shop": {"city": "fut_1.shop.city"}},
    }
    assert resolved("fut_1", 5) == {"future": "fut_1", "status": "resolved", "value": 5}
    assert failed("fut_2", CallError(ErrorKind.TIMEOUT, "too slow")) == {
        "future": "fut_2",
        "status": "failed",
        "error": {"type": "timeout", "message": "too slow"},
    }
    assert delivered("fut_3")["status"] == "delivered"
    unknown = unknown_future("fut_" + "9" * 100)
    assert unknown["error"]["type"] == "unknown_future"
    assert len(unknown["future"]) <= 67


def test_long_error_messages_are_cut_for_the_model_only() -> None:
    error = CallError(ErrorKind.TOOL_ERROR, "x" * 10_000)
    shown = error_json(error)["error"]["message"]
    assert shown.startswith("x" * MAX_ERROR_CHARS)
    assert "10,000 characters in all" in shown
    assert len(error.message) == 10_000


def test_long_json_errors_are_shortened_inside_their_values() -> None:
    detail = {"error": "refused", "items": list(range(500)), "why": "y" * 5000, "n": None}
    text = "t raised UpstreamToolError: " + json.dumps(detail)
    shown = shorten_message(text)
    assert len(shown) <= MAX_ERROR_CHARS and shown.startswith("t raised UpstreamToolError: {")
    value = json.loads(shown[shown.index("{") :])
    assert value["error"] == "refused" and value["n"] is None
    assert value["why"].endswith("[truncated: 5,000 characters in all]")
    assert value["items"][:3] == [0, 1, 2] and value["items"][-1] == "... [truncated: 500 items in all]"
    wide = {f"k{i}": i for i in range(1000)}
    assert json.loads(shorten_json(wide, 200))["..."] == "... [truncated: 1,000 keys in all]"
    assert shorten_message("short {") == "short {"
    # text that only looks like it ends with JSON is cut as text
    assert shorten_message("x {" + "z" * 3000).endswith("[truncated: 3,003 characters in all]")


def test_values_ride_along_an_array_as_more_of_the_array() -> None:
    answer = await_answer([resolved("fut_1", 1), resolved("fut_2", 2)])
    text = with_earlier(answer, [resolved("fut_3", 3)])
    body = json.loads(text)
    assert body == [resolved("fut_1", 1), resolved("fut_2", 2), resolved("fut_3", 3)]


def test_values_ride_along_an_object_under_resolved_earlier() -> None:
    text = with_earlier(json.dumps(placeholder("fut_2")), [resolved("fut_1", 1)])
    assert json.loads(text) == {**placeholder("fut_2"), EARLIER: [resolved("fut_1", 1)]}


def test_an_await_for_several_ids_with_a_delivery_is_one_json_array() -> None:
    """Through the runtime: an await answer for two ids, delivered with a third value."""

    @tool(pure=True)
    async def slow(n: int) -> int:
        return n

    async def scenario() -> str:
        async with Runtime([slow], mode="async", grace_s=0) as rt:
            calls = [rt.submit("slow", {"n": n}) for n in (1, 2, 3)]
            for c in calls:
                await rt.answer(c)  # placeholders
            await rt.wait_all()
            reply = await rt.call("await_future", {"ids": ["fut_1", "fut_2"]})
            return reply.text

    body = json.loads(run(scenario()))
    assert isinstance(body, list)
    assert [item["future"] for item in body] == ["fut_1", "fut_2", "fut_3"]
    assert [item["value"] for item in body] == [1, 2, 3]


def test_the_agent_reads_the_same_shapes() -> None:
    """A scripted async run: the transcript's tool messages are future objects or arrays of them."""

    @tool(pure=True)
    def double(n: int) -> int:
        return 2 * n

    model = ScriptedModel(
        [[ScriptedCall("double", {"n": 2})], [ScriptedCall("double", {"n": Ref(1)})], "done"]
    )
    result = Agent(model, [double], mode="async").run_sync("double twice")
    for message in result.messages:
        if message.role == "tool":
            body = json.loads(message.content)
            items = body if isinstance(body, list) else [body]
            assert all("future" in item and "status" in item for item in items)


def test_the_async_instructions_show_the_real_placeholder_and_stay_short() -> None:
    """The instructions quote a placeholder exactly as the runtime writes one, name the field
    form and the await tool; every word of them is in every async prompt (and re-processed
    whenever a prompt cache is lost), so they stay short: 96 Qwen2.5 tokens. (A 77-token
    version made the embedded 1.5B answer the README's example without sending its email.)"""
    from asyncfc.futures import dumps
    from asyncfc.model_text import ANSWER_NOW, ASYNC_INSTRUCTIONS, AWAIT_TOOL, repeat_note

    assert dumps(placeholder("fut_1")) in ASYNC_INSTRUCTIONS
    assert '"fut_1.field"' in ASYNC_INSTRUCTIONS and AWAIT_TOOL in ASYNC_INSTRUCTIONS
    assert len(ASYNC_INSTRUCTIONS) < 400
    assert "fut_7" in repeat_note("fut_7") and "not run again" in repeat_note(None)
    assert "plain text" in ANSWER_NOW
