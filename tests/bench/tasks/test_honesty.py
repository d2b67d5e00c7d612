"""The task suite's honesty checks: writes of values the model had never seen are counted,
answers that copy the embedded profile's worked example fail, and a latency sweep runs
in one command (issue 20, items 3, 5 and 6), all without a real model."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from asyncfc.cli import main
from asyncfc.local.profile import example_messages
from asyncfc.scheduler import Call
from asyncfc.testing.scripted import Ref, ScriptedCall, Turn
from asyncfc_bench.demo import Errands, leaks
from asyncfc_bench.tasks import BY_NAME, Config, World
from asyncfc_bench.tasks.judge import example_markers, leaked_example
from asyncfc_bench.tasks.measure import blind_writes
from asyncfc_bench.tasks.report import summarize, sweep
from asyncfc_bench.tasks.runner import run_suite, run_sweep, run_task, solution_flow
from asyncfc_bench.tasks.script import SolutionModel, Text, step

FAST = Config(time_scale=0.001, agent_options={"grace_s": 0.0})
TOOLS = {t.name: t for t in World().tools()}
EXAMPLE_CLOSING = example_messages(False)[-1].content


def call(seq: int, name: str, args: dict[str, object], value: object, *, step: int, emitted: float,
         delivered: float | None, deps: tuple[int, ...] = ()) -> Call:  # fmt: skip
    c = Call(seq, f"c{seq}", name, json.dumps(args), user_turn=1, step=step)
    c.arguments = c.resolved_arguments = args
    c.deps = deps
    c.emitted_at, c.delivered_at, c.ran = emitted, delivered, True
    c.future.set_value(value)
    return c


# ---------------------------------------------------------------- blind writes


def test_a_write_emitted_before_its_source_was_delivered_is_blind() -> None:
    rate = call(
        1, "get_exchange_rate", {"base": "EUR", "quote": "USD"}, 1.08, step=1, emitted=0.0, delivered=None
    )
    made_up = call(
        2, "write_file", {"path": "usd.txt", "content": "262 USD"}, "ok", step=2, emitted=1.0, delivered=1.1
    )
    truth = {("write_file", "get_exchange_rate")}
    assert blind_writes([rate, made_up], TOOLS, truth) == ["fut_2 write_file <- fut_1 get_exchange_rate"]
    assert blind_writes([rate, made_up], TOOLS) == []  # no ground truth, no copied value: not counted
    rate.delivered_at = 0.5  # the model had the rate before it wrote: a wrong value, but not a blind one
    assert blind_writes([rate, made_up], TOOLS, truth) == []


def test_a_copied_value_the_model_had_not_been_given_counts_and_a_passed_future_does_not() -> None:
    weather = call(1, "get_weather", {"city": "Oslo"}, "Oslo: -3 C, snow", step=1, emitted=0.0, delivered=2.0)
    copied = call(
        2,
        "send_email",
        {"to": "a@b.c", "body": "Oslo: -3 C, snow"},
        "sent",
        step=2,
        emitted=1.0,
        delivered=1.2,
    )
    assert blind_writes([weather, copied], TOOLS) == ["fut_2 send_email <- fut_1 get_weather"]
    passed = call(
        2,
        "send_email",
        {"to": "a@b.c", "body": "fut_1"},
        "sent",
        step=2,
        emitted=1.0,
        delivered=1.2,
        deps=(1,),
    )
    assert blind_writes([weather, passed], TOOLS, {("send_email", "get_weather")}) == []
    # a write-only call is no source: its acknowledgement is not a value to copy
    mail = call(1, "send_email", {"to": "a@b.c", "body": "hi"}, "sent", step=1, emitted=0.0, delivered=None)
    note = call(
        2, "write_file", {"path": "x.txt", "content": "sent"}, "ok", step=2, emitted=1.0, delivered=1.1
    )
    assert blind_writes([mail, note], TOOLS, {("write_file", "send_email")}) == []


def test_ground_truth_comes_from_the_reference_solution() -> None:
    flow = asyncio.run(solution_flow(BY_NAME["convert_to_file"]))
    assert ("write_file", "get_exchange_rate") in flow and ("write_file", "calculate") in flow
    decided = asyncio.run(solution_flow(BY_NAME["oslo_thermostat"]))
    assert ("set_thermostat", "get_weather") in decided  # a decision: the write uses what was seen


def test_the_suite_counts_blind_writes_per_mode() -> None:
    """A write in the same step as the lookup it needs: blind in every mode (the model could
    not have seen the rate), counted in the runs and the report; the reference solution has none."""
    blind: list[list[Turn]] = [
        [
            [ScriptedCall("get_exchange_rate", {"base": "EUR", "quote": "USD"}),
             ScriptedCall("write_file", {"path": "usd.txt", "content": "250 EUR = 262 USD"})],
            "Saved.",
        ]
    ]  # fmt: skip
    task = BY_NAME["convert_to_file"]
    runs = asyncio.run(run_suite([task], FAST, lambda t, m, r: SolutionModel(blind)))
    assert [len(r.blind_writes) for r in runs] == [1, 1]
    assert all(r.blind_writes[0].endswith("get_exchange_rate") for r in runs)
    data = summarize(runs, ("sync", "async"), resamples=50)
    for mode in ("sync", "async"):
        assert data["modes"][mode]["blind_write_runs"] == 1 and data["modes"][mode]["blind_writes"] == 1
        assert data["modes"][mode]["held_calls"] == 0  # same step: nothing the hold could have waited for
    assert data["per_task"][0]["blind_writes"] and "held" in data["per_task"][0]
    good = asyncio.run(run_suite([task], FAST, lambda t, m, r: SolutionModel(t.solution())))
    assert [r.blind_writes for r in good] == [[], []] and all(r.passed for r in good)


# ---------------------------------------------------------------- the worked example


def test_the_markers_come_from_the_profile() -> None:
    entities, phrases = example_markers()
    assert {"coffee", "tea", "lookup_price", "save_note"} <= set(entities)
    assert "I saved the coffee and tea prices in a note" in phrases and "buy tea" in phrases


def test_the_example_s_answer_has_no_sentence_another_task_could_use() -> None:
    """Every clause of the worked example's closing answer (both forms) names one of the
    example's own entities: copied into another task's answer, it is caught, never plausible
    (the 1.5B once closed a payment-reminder task with the old closing's first clause)."""
    entities, _ = example_markers()
    for is_async in (False, True):
        closing = example_messages(is_async)[-1]
        assert closing.role == "assistant" and not closing.tool_calls
        clauses = [c for c in re.split(r"(?<=[.!?])\s+|,\s+", closing.content) if c.strip()]
        assert clauses and all(any(e in c.lower() for e in entities) for c in clauses), clauses


def test_leaked_example_finds_copied_sentences_and_entities_but_not_the_task_s_own_words() -> None:
    assert "I saved the coffee and tea prices in a note" in leaked_example([EXAMPLE_CLOSING])
    assert leaked_example(["Paris is 18 C; I emailed the team and Steam support."]) == []
    assert leaked_example(["Tea: 1.2 dollars."], allowed="What does tea cost? tea: 1.2") == []
    assert leaked_example(["coffee: 4.5 dollars"]) == ["coffee: 4.5 dollars", "coffee"]


def test_an_answer_that_copies_the_example_fails_the_task() -> None:
    task = BY_NAME["weather_three_cities"]
    turns = task.solution()
    copied = [[*turns[0][:-1], f"Paris is 18 C, Tokyo 24 C, London 15 C. {EXAMPLE_CLOSING}"]]
    for mode in ("sync", "async"):
        run = asyncio.run(run_task(task, mode, SolutionModel(copied), FAST))
        assert not run.passed and "worked example" in run.reason, run.reason


def test_a_written_value_that_copies_the_example_fails_the_task() -> None:
    task = BY_NAME["convert_to_file"]
    written: list[list[Turn]] = [
        [
            step(ScriptedCall("get_exchange_rate", {"base": "EUR", "quote": "USD"})),
            step(ScriptedCall("calculate", {"expression": Text("250 * {0}", Ref(1))})),
            step(ScriptedCall("write_file", {"path": "usd.txt", "content": Text("{0} USD, coffee: 4.5 dollars", Ref(2))})),
            "250 EUR is 270 USD; I saved it in usd.txt.",
        ]
    ]  # fmt: skip
    run = asyncio.run(run_task(task, "sync", SolutionModel(written), FAST))
    assert not run.passed and "worked example" in run.reason, run.reason


def test_the_demo_judge_catches_the_example_too() -> None:
    world = Errands(lookup_s=0.0)
    world.outbox.append({"to": "carol@example.com", "body": "paris: 18 C, light rain"})
    assert leaks("The email is sent: Paris 18 C, light rain.", world) == []
    assert leaks(f"Sent. {EXAMPLE_CLOSING}", world) != []
    world.outbox.append({"to": "carol@example.com", "body": "buy tea"})
    assert leaks("Sent.", world) != []


# ---------------------------------------------------------------- the latency sweep


def test_sweep_reports_each_latency() -> None:
    tasks = [BY_NAME["weather_three_cities"], BY_NAME["convert_to_file"]]
    runs = asyncio.run(run_sweep(tasks, FAST, [0.0, 2.0], lambda t, m, r: SolutionModel(t.solution())))
    assert len(runs) == 8
    assert [(r.lookup_latency_s, r.mode) for r in runs[::2]] == [
        (0.0, "sync"), (0.0, "async"), (2.0, "async"), (2.0, "sync")  # modes alternate by latency
    ]  # fmt: skip
    out = sweep(runs, ("sync", "async"), [0.0, 2.0], resamples=50)
    assert list(out) == ["0", "2"]
    for row in out.values():
        assert row["tasks"] == 2 and set(row["modes"]) == {"sync", "async"}
        assert row["modes"]["async"]["pass_rate"] == 1.0 and row["modes"]["async"]["blind_write_runs"] == 0
        assert set(row["speedup"]["async"]) == {"mean", "ci95"}


def test_cli_sweep_over_http(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``--lookup-latency 0,1``: both latencies, both modes, against the simulated server; the
    single-latency keys stay and 'sweep' is added."""
    from asyncfc.testing import SimServer

    calls = [ScriptedCall("get_weather", {"city": c}) for c in ("Paris", "Tokyo", "London")]
    answer = "Paris 18 C, Tokyo 24 C, London 15 C."
    turns: list[Turn] = ["Hello!", calls, answer] * 4
    with SimServer(turns) as srv:
        code = main(
            ["bench", "tasks", "--base-url", srv.base_url, "--model", "sim-model", "--tasks", "weather_three_cities",
             "--time-scale", "0.001", "--lookup-latency", "0,1", "--json", "--out", str(tmp_path / "out.json")]
        )  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("tasks", "modes", "speedup", "consistent", "config", "per_task"):
        assert key in data
    assert data["config"]["lookup_latency_s"] == [0.0, 1.0]
    assert set(data["sweep"]) == {"0", "1"}
    for row in data["sweep"].values():
        assert row["modes"]["sync"]["passed"] == 1 and row["modes"]["async"]["passed"] == 1
        for key in ("pass_rate", "blind_write_runs", "blind_writes", "held_calls"):
            assert key in row["modes"]["async"]
        assert "mean" in row["speedup"]["async"] and len(row["speedup"]["async"]["ci95"]) == 2
    assert data["modes"]["async"]["blind_write_runs"] == 0
    assert len((tmp_path / "out.runs.jsonl").read_text().splitlines()) == 4


def test_cli_refuses_a_bad_latency_list(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0,,1", "1,1", "-1", "a"):
        with pytest.raises(SystemExit) as exc:
            main(["bench", "tasks", "--lookup-latency", bad])
        assert exc.value.code == 2
        assert "--lookup-latency" in capsys.readouterr().err


def test_no_hold_runs_the_baseline() -> None:
    from asyncfc.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["bench", "tasks"]).hold is True
    assert parser.parse_args(["bench", "tasks", "--no-hold"]).hold is False
