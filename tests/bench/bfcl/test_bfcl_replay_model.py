"""The replay model: honest data flow, step grouping and simulated decode, on hand-made cases."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from asyncfc.models.base import Message, ModelRequest, ResponseDone, ToolCall, ToolCallReady
from asyncfc_bench.bfcl.replay import (
    AWAIT_TOOL,
    FINAL_TEXT,
    KnownText,
    Plan,
    PlannedCall,
    ReplayModel,
    ResultIndex,
    Use,
    find_uses,
    group_steps,
    position,
    referable,
)

# --------------------------------------------------------------------------- data flow


def index_of(*results: tuple[int, int, Any]) -> ResultIndex:
    """(producer, turn, result) triples, in program order."""
    index = ResultIndex()
    for producer, turn, result in results:
        index.add(producer, turn, result)
    return index


def test_a_result_field_used_whole_is_a_reference() -> None:
    index = index_of((0, 1, {"zipcode": "94016"}), (1, 1, {"zipcode": "83214"}))
    uses = find_uses({"cityA": "94016", "cityB": "83214"}, 1, index, KnownText("How far is it?"))
    assert uses == [Use("cityA", 0, ".zipcode", "ref"), Use("cityB", 1, ".zipcode", "ref")]


def test_a_whole_plain_text_result_is_a_reference_to_the_future_itself() -> None:
    index = index_of((3, 0, "ticket-queue-7"))
    assert find_uses({"queue": "ticket-queue-7"}, 0, index, KnownText("")) == [Use("queue", 3, "", "ref")]


def test_an_embedded_value_needs_an_await() -> None:
    index = index_of((0, 0, {"distance": 750.0, "unit": "km"}))
    text = "The distance from Rivermist to Stonebrook is 750.0 km."
    uses = find_uses({"message": text}, 0, index, KnownText("Send the distance to my friend."))
    assert uses == [Use("message", 0, "", "await")]


def test_a_value_also_in_the_users_text_is_written_literally() -> None:
    index = index_of((0, 0, {"file": "report.txt", "size": 2048}))
    known = KnownText("Sort report.txt, it has 2048 bytes")
    assert find_uses({"file_name": "report.txt", "limit": 2048}, 0, index, known) == []
    # case-insensitive for text, by value for numbers
    assert find_uses({"file_name": "REPORT.TXT"}, 0, index, KnownText("sort report.txt")) == []


def test_values_from_an_earlier_user_turn_are_known() -> None:
    index = index_of((0, 0, {"user_id": "USR005"}), (1, 1, {"user_id": "USR005"}))
    assert find_uses({"receiver_id": "USR005"}, 1, index, KnownText("")) == []


def test_trivial_values_are_never_uses() -> None:
    index = index_of((0, 0, {"ok": True, "count": 1, "n": 7, "tag": "a", "zero": 0}))
    assert find_uses({"flag": True, "count": 1, "n": 7, "tag": "a", "zero": 0}, 0, index, KnownText("")) == []


def test_derived_values_need_an_await() -> None:
    index = index_of((0, 0, {"gallon": 10.566880000000001}), (1, 0, {"stock_list": ["AAPL", "GOOG"]}))
    # a rounded number
    assert find_uses({"fuelAmount": 10.57}, 0, index, KnownText("round to 2 decimals")) == [
        Use("fuelAmount", 0, "", "await")
    ]
    # an item inside a list argument
    assert find_uses({"stocks": ["GOOG", "MSFT"]}, 0, index, KnownText("")) == [Use("stocks", 1, "", "await")]


def test_a_field_no_reference_can_address_needs_an_await() -> None:
    index = index_of((0, 0, {"MA(5)": 149.5, "list": [{"id": 42}]}))
    assert find_uses({"price": 149.5}, 0, index, KnownText("")) == [Use("price", 0, ".MA(5)", "await")]
    assert find_uses({"id": 42}, 0, index, KnownText("")) == [Use("id", 0, ".list[0].id", "ref")]
    assert referable(".a.b[2].c") and referable("") and not referable("[0]") and not referable(".MA(5)")


# --------------------------------------------------------------------------- steps


def planned(index: int, name: str, uses: tuple[Use, ...] = (), turn: int = 0) -> PlannedCall:
    return PlannedCall(index, turn, name, {"x": index}, "{}", uses)


def test_parallel_steps_are_maximal_runs_of_independent_calls() -> None:
    calls = [
        planned(0, "get_a"),
        planned(1, "get_b"),
        planned(2, "use_a", (Use("x", 0, ".v", "ref"),)),  # uses a call of the current run
        planned(3, "write_s"),  # writes s: conflicts with the read of s before it
        planned(4, "read_t"),
        planned(5, "read_t2"),  # read/read on the same label: no conflict
    ]
    labels: list[tuple[set[str], set[str]]] = [
        (set(), set()),
        (set(), set()),
        ({"s"}, set()),
        (set(), {"s/x"}),
        ({"t"}, set()),
        ({"t"}, set()),
    ]
    assert group_steps(calls, labels, "parallel") == [(0, 1), (2,), (3, 4, 5)]
    assert group_steps(calls, labels, "sequential") == [(i,) for i in range(6)]


def test_a_use_of_an_earlier_step_does_not_split_a_run() -> None:
    calls = [planned(7, "a"), planned(8, "b", (Use("x", 3, "", "ref"),)), planned(9, "c")]
    no_labels: list[tuple[set[str], set[str]]] = [(set(), set())] * 3
    assert group_steps(calls, no_labels, "parallel") == [(7, 8, 9)]
    # the root label (an unannotated tool) conflicts with every label, but a pure call touches none
    root: list[tuple[set[str], set[str]]] = [(set(), set()), ({""}, {""}), ({"fs/cwd"}, set())]
    assert group_steps(calls, root, "parallel") == [(7, 8), (9,)]


# --------------------------------------------------------------------------- transcripts


PLAN = Plan(
    entry_id="hand_made_0",
    fc="parallel",
    calls=(
        PlannedCall(0, 0, "get_zipcode", {"city": "Rivermist"}, '{"zipcode": "83214"}'),
        PlannedCall(
            1, 0, "estimate", {"cityA": "83214"}, '{"distance": 750.0}', (Use("cityA", 0, ".zipcode", "ref"),)
        ),
        PlannedCall(
            2, 0, "send", {"message": "It is 750.0 km."}, '{"sent": true}', (Use("message", 1, "", "await"),)
        ),
        PlannedCall(3, 1, "logout", {}, '{"ok": true}'),
    ),
    steps=(((0,), (1,), (2,)), ((3,),)),
)


def user(text: str) -> Message:
    return Message("user", text)


def called(*calls: tuple[str, str, dict[str, Any]]) -> Message:
    return Message("assistant", "", [ToolCall(i, n, json.dumps(a)) for i, n, a in calls])


def answer(call_id: str, content: Any) -> Message:
    return Message("tool", content if isinstance(content, str) else json.dumps(content), tool_call_id=call_id)


def pending(fid: str) -> dict[str, str]:
    return {"future": fid, "status": "pending"}


def resolved(fid: str, value: Any) -> dict[str, Any]:
    return {"future": fid, "status": "resolved", "value": value}


def test_pending_field_is_passed_by_reference_in_async_mode() -> None:
    model = ReplayModel(PLAN)
    transcript = [
        Message("system", "be brief"),
        user("How far is Rivermist?"),
        called(("call_0", "get_zipcode", {"city": "Rivermist"})),
        answer("call_0", pending("fut_1")),
    ]
    text, calls = model.respond(transcript)
    assert text == "" and [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("estimate", {"cityA": "fut_1.zipcode"})
    ]


def test_a_value_already_seen_is_written_literally() -> None:
    model = ReplayModel(PLAN)
    for shown in (resolved("fut_1", '{"zipcode": "83214"}'), '{"zipcode": "83214"}'):  # async rewrite, sync
        transcript = [
            user("How far?"),
            called(("call_0", "get_zipcode", {"city": "Rivermist"})),
            answer("call_0", shown),
        ]
        _, calls = model.respond(transcript)
        assert json.loads(calls[0].arguments) == {"cityA": "83214"}


def test_an_embedded_pending_value_is_awaited_first_then_called() -> None:
    model = ReplayModel(PLAN)
    transcript = [
        user("How far?"),
        called(("call_0", "get_zipcode", {"city": "Rivermist"})),
        answer("call_0", resolved("fut_1", '{"zipcode": "83214"}')),
        called(("call_1", "estimate", {"cityA": "83214"})),
        answer("call_1", pending("fut_2")),
    ]
    _, calls = model.respond(transcript)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [(AWAIT_TOOL, {"ids": ["fut_2"]})]
    # the await returned the value (and, with rewrite delivery, the placeholder was rewritten)
    transcript += [
        called((calls[0].id, AWAIT_TOOL, {"ids": ["fut_2"]})),
        answer(calls[0].id, resolved("fut_2", "x")),
    ]
    _, calls = model.respond(transcript)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("send", {"message": "It is 750.0 km."})]
    assert position(transcript).awaits == 1 and position(transcript).pending == {}


def test_answers_after_the_turns_calls_and_again_on_revision_then_next_turn() -> None:
    model = ReplayModel(PLAN)
    transcript = [
        user("How far?"),
        called(("call_0", "get_zipcode", {})),
        answer("call_0", "{}"),
        called(("call_1", "estimate", {})),
        answer("call_1", "{}"),
        called(("call_2", "send", {})),
        answer("call_2", "{}"),
    ]
    assert model.respond(transcript) == (FINAL_TEXT, [])
    transcript.append(Message("assistant", FINAL_TEXT))
    assert model.respond(transcript) == (FINAL_TEXT, [])  # a revision step answers again
    transcript.append(user("Log me out."))
    _, calls = model.respond(transcript)
    assert [c.name for c in calls] == ["logout"]
    assert position(transcript).turn == 1 and position(transcript).done == 0


def test_a_turn_without_ground_truth_calls_just_answers() -> None:
    plan = Plan("hand_made_1", "parallel", (), ((),))
    assert ReplayModel(plan).respond([user("Do something impossible.")]) == (FINAL_TEXT, [])


def test_stream_simulates_decode_time_and_announces_calls() -> None:
    model = ReplayModel(PLAN, ttft_s=0.5, tokens_per_s=60.0, time_scale=0.02)
    request = ModelRequest(messages=[user("How far?")], tools=[])

    async def go() -> tuple[list[Any], float]:
        t0 = time.perf_counter()
        events = [e async for e in model.stream(request)]
        return events, time.perf_counter() - t0

    events, took = asyncio.run(go())
    assert isinstance(events[0], ToolCallReady) and events[0].call.name == "get_zipcode"
    done = events[-1]
    assert isinstance(done, ResponseDone) and done.response.tool_calls[0].name == "get_zipcode"
    expected = model.decode_s("", done.response.tool_calls) * 0.02
    assert expected == pytest.approx(0.02 * (0.5 + done.response.usage.output_tokens / 60.0))
    assert expected <= took < expected + 0.05
    assert model.log == [("calls", 0, model.decode_s("", done.response.tool_calls))]
