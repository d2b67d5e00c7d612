"""The real-model task suite, without a real model: judges, measurements, report, CLI.

Every task's judge must accept its reference solution (played by a script) in sync and
async mode and reject wrong ones; tools run 1000x faster than their real latency.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from asyncfc.cli import build_parser, main
from asyncfc.mode import ModeName as Mode
from asyncfc.testing.scripted import Ref, ScriptedCall, Turn
from asyncfc_bench.tasks import BY_NAME, SHAPES, TASKS, Config, Latency, Run, World, select
from asyncfc_bench.tasks.catalog import Task
from asyncfc_bench.tasks.judge import admits_failure, has_number
from asyncfc_bench.tasks.measure import atoms, copies, critical_path
from asyncfc_bench.tasks.report import summarize
from asyncfc_bench.tasks.runner import run_suite, run_task
from asyncfc_bench.tasks.script import SolutionModel, Text, step
from asyncfc_bench.tasks.world import LOOKUPS, evaluate

SCALE = 0.001
FAST = Config(time_scale=SCALE, agent_options={"grace_s": 0.0})
"""Tools 1000x faster; no grace window, so async runs really go through futures."""


def _run(task: Task, mode: Mode, turns: Sequence[Sequence[Turn]], config: Config = FAST) -> Run:
    return asyncio.run(run_task(task, mode, SolutionModel(turns), config))


def test_catalog_covers_every_shape() -> None:
    assert len(TASKS) >= 30
    shapes = {t.shape for t in TASKS}
    assert shapes == set(SHAPES)
    assert all(len(t.turns) >= 2 for t in TASKS if t.shape == "multi-turn")
    assert select("0,weather_three_cities,two_flights") == [TASKS[0], BY_NAME["two_flights"]]
    with pytest.raises(ValueError):
        select("no_such_task")


def test_tools_are_annotated_and_latency_is_configurable() -> None:
    tools = {t.name: t for t in World().tools()}
    assert set(tools) >= LOOKUPS
    assert all(not tools[n].writes for n in LOOKUPS)  # lookups never write
    assert tools["get_weather"].pure and tools["calculate"].pure
    assert tools["write_file"].writes == ("files/{path}",)
    lat = Latency(lookup_s=5.0, time_scale=0.01)
    assert lat.of("get_weather") == pytest.approx(0.05)
    assert lat.of("find_customer") == pytest.approx(0.05)
    assert lat.of("write_file") == pytest.approx(0.0005)  # writes keep their profile
    assert Latency().of("track_package") == 3.0
    assert evaluate("40 * 121.4") == pytest.approx(4856)
    with pytest.raises(ValueError):
        evaluate("__import__('os')")


def test_tools_declare_their_latency_and_async_shows_futures_only_where_they_pay() -> None:
    from asyncfc import Agent

    instant = World(latency=Latency(lookup_s=0.0)).tools()
    assert {t.name: t.latency_s for t in instant}["write_file"] == pytest.approx(0.05)
    slow = World(latency=Latency(lookup_s=5.0)).tools()
    task = BY_NAME["weather_three_cities"]
    assert Agent(SolutionModel(task.solution()), instant, mode="async").shown_mode() == "parallel"
    assert Agent(SolutionModel(task.solution()), slow, mode="async").shown_mode() == "async"
    run = _run(task, "async", task.solution(), Config(lookup_latency_s=0.0))
    assert run.passed and not run.futures_shown and run.await_steps == 0


def test_the_warm_up_shows_the_prefix_the_runs_show() -> None:
    from asyncfc.testing import ScriptedModel
    from asyncfc_bench.tasks.runner import warm_up

    def tools_sent(latency: float) -> list[str]:
        model = ScriptedModel(["hi"])
        asyncio.run(warm_up(model, "async", Config(lookup_latency_s=latency)))
        return [t["name"] for t in model.requests[0].tools]

    assert "await_future" in tools_sent(5.0) and "await_future" not in tools_sent(0.0)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_reference_solution_passes(mode: Mode) -> None:
    """All tasks at once per mode (one event loop keeps the test fast)."""

    config = Config(modes=(mode,), time_scale=SCALE, agent_options={"grace_s": 0.0})
    runs = asyncio.run(run_suite(TASKS, config, lambda t, m, r: SolutionModel(t.solution())))
    runs = [r for r in runs if r.mode == mode]
    assert len(runs) == len(TASKS)
    failed = [(r.task, r.reason, r.trace_calls) for r in runs if not r.passed]
    assert not failed
    assert all(not r.problems for r in runs)
    if mode == "async":
        assert sum(r.references for r in runs) > 0  # futures really were passed on
        decisions = [r for r in runs if BY_NAME[r.task].shape == "decision"]
        assert all(r.await_steps >= 1 for r in decisions)  # the value was seen before acting


def test_answering_without_doing_anything_fails_every_task() -> None:
    runs = asyncio.run(run_suite(TASKS, FAST, lambda t, m, r: SolutionModel([["Done."]] * len(t.turns))))
    assert len(runs) == 2 * len(TASKS)
    assert [r.task for r in runs if r.passed] == []
    assert all(r.reason for r in runs)


W = "get_weather"


@pytest.mark.parametrize(
    ("name", "turns", "why"),
    [
        (  # decided blind: set the thermostat without seeing the weather
            "oslo_thermostat",
            [
                [
                    [
                        ScriptedCall(W, {"city": "Oslo"}),
                        ScriptedCall("set_thermostat", {"room": "living room", "celsius": 20}),
                    ],
                    "Done.",
                ]
            ],
            "thermostats",
        ),
        (  # claims a status after the tracking service failed
            "track_broken_package",
            [
                [
                    [ScriptedCall("track_package", {"tracking_number": "TRK-7781"})],
                    [
                        ScriptedCall(
                            "send_email",
                            {"to": "bob.chen@example.com", "subject": "x", "body": "It was delivered."},
                        )
                    ],
                    "I emailed Bob that the package was delivered.",
                ]
            ],
            "admit",
        ),
        (  # the same email twice (its values passed on: a body written blind would be held in async mode)
            "weather_digest_email",
            [
                [
                    [ScriptedCall(W, {"city": c}) for c in ("Paris", "Madrid", "Berlin")],
                    step(
                        *[
                            ScriptedCall(
                                "send_email",
                                {
                                    "to": "alice.martin@example.com",
                                    "subject": "w",
                                    "body": Text("{0} {1} {2}", Ref(1), Ref(2), Ref(3)),
                                },
                            )
                        ]
                        * 2
                    ),
                    "Sent.",
                ]
            ],
            "2 emails",
        ),
        (  # made-up value: no lookup, number invented
            "convert_to_file",
            [[[ScriptedCall("write_file", {"path": "usd.txt", "content": "270 USD"})], "Saved."]],
            "never ran",
        ),
        (  # a tool for a question that needs none
            "thank_you_in_spanish",
            [[[ScriptedCall(W, {"city": "Madrid"})], "Gracias."]],
            "needs no tool",
        ),
        (  # follow-up ignored the earlier result
            "tokyo_weather_followup",
            [
                [[ScriptedCall(W, {"city": "Tokyo"})], "24 C, sunny."],
                [[ScriptedCall("write_file", {"path": "tokyo.txt", "content": "nice"})], "ok"],
            ],
            "tokyo.txt",
        ),
    ],
)
def test_wrong_solutions_fail(name: str, turns: list[list[Turn]], why: str) -> None:
    for mode in ("sync", "async"):
        run = _run(BY_NAME[name], mode, turns)
        assert not run.passed, (mode, run)
        assert why in run.reason, run.reason


def test_judge_helpers() -> None:
    assert has_number("It costs $4,856.00 in total", 4856)
    assert not has_number("fut_3", 3.5)
    assert admits_failure("Sorry, I couldn't reach the tracking service.")
    assert admits_failure("I tried to update the order status to 'shipped', but it was already delivered.")
    assert not admits_failure("I tried to call you. The order is shipped.")
    assert not admits_failure("Your package was delivered on Monday.")


def test_ideal_overlaps_independent_calls_but_not_dependent_ones() -> None:
    # three independent 1 s lookups, then an answer: the ideal is one lookup, not three
    assert critical_path(
        [(0.1, [(None, 1.0, []), (None, 1.0, []), (None, 1.0, [])], []), (0.1, [], [0, 1, 2])]
    ) == pytest.approx(1.2)
    # a chain a -> b with the model decoding the next step meanwhile
    assert critical_path(
        [(0.1, [(None, 1.0, [])], []), (0.1, [(None, 1.0, [0])], []), (0.1, [], [])]
    ) == pytest.approx(2.1)
    # value copied into a later call is a dependency; an echo of the call's own input is not
    assert copies(atoms("London: 15 C, cloudy"), '{"body": "It is 15 C and cloudy"}', '{"city": "London"}')
    assert not copies(atoms("London: 15 C, cloudy"), '{"city": "London"}', '{"city": "london"}')


def test_ideal_from_measured_sync_run_is_below_its_wall_time() -> None:
    config = Config(time_scale=0.05)  # 0.1 s per weather lookup
    run = _run(BY_NAME["weather_three_cities"], "sync", BY_NAME["weather_three_cities"].solution(), config)
    assert run.passed
    assert run.tool_s == pytest.approx(0.3, abs=0.05)
    assert run.ideal_s < run.wall_s - 0.15  # the three lookups overlap in the ideal
    assert run.ideal_s >= 0.1


def test_json_contract() -> None:
    tasks = [BY_NAME[n] for n in ("weather_three_cities", "oslo_thermostat", "track_broken_package")]
    config = Config(modes=("sync", "async"), time_scale=SCALE, runs=2)
    runs = asyncio.run(run_suite(tasks, config, lambda t, m, r: SolutionModel(t.solution())))
    data = summarize(runs, config.modes, resamples=200)
    assert data["tasks"] == 3 and data["runs_per_task"] == 2
    for mode in ("sync", "async"):
        m = data["modes"][mode]
        for key in ("passed", "pass_rate", "mean_wall_s", "prompt_tokens", "cached_prompt_tokens"):
            assert key in m
        assert m["passed"] == 6 and m["pass_rate"] == 1.0
    assert set(data["speedup"]["async"]) == {"mean", "ci95"} and len(data["speedup"]["async"]["ci95"]) == 2
    assert "ideal_speedup" in data and "efficiency" in data
    assert data["mcnemar_p"]["async"] == 1.0
    assert len(data["per_task"]) == 12
    row = data["per_task"][0]
    for key in ("task", "shape", "mode", "passed", "reason", "wall_s", "steps", "tool_s", "ideal_s"):
        assert key in row
    json.dumps(data)


def test_cli_help_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["bench", "tasks", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--model",
        "--base-url",
        "--size",
        "--modes",
        "--delivery",
        "--runs",
        "--tasks",
        "--lookup-latency",
        "--json",
    ):
        assert option in text
    args = parser.parse_args(["bench", "tasks", "--list"])
    assert args.func(args) == 0
    assert "weather_three_cities" in capsys.readouterr().out
    args = parser.parse_args(["bench", "tasks", "--tasks", "nope"])
    assert args.func(args) == 2


def test_cli_end_to_end_over_http(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The command against the simulated-decode server: OpenAI SDK, warm-up per mode, JSON out."""
    from asyncfc.testing import SimServer

    calls = [ScriptedCall(W, {"city": c}) for c in ("Paris", "Tokyo", "London")]
    answer = "Paris 18 C, Tokyo 24 C, London 15 C."
    turns: list[Turn] = ["Hello!", calls, answer, "Hello!", calls, answer]
    with SimServer(turns) as srv:
        code = main(
            [
                "bench",
                "tasks",
                "--base-url",
                srv.base_url,
                "--model",
                "sim-model",
                "--tasks",
                "weather_three_cities",
                "--time-scale",
                "0.001",
                "--json",
                "--out",
                str(tmp_path / "out.json"),
            ]
        )
        requests = len(srv.model_requests)
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tasks"] == 1 and data["consistent"] is True
    assert data["modes"]["sync"]["passed"] == 1 and data["modes"]["async"]["passed"] == 1
    assert data["modes"]["async"]["prompt_tokens"] > 0
    assert data["modes"]["async"]["cached_prompt_tokens"] > 0  # the warm-up left the prefix cached
    assert requests == 6  # one warm-up per mode, two steps per task
    assert len((tmp_path / "out.runs.jsonl").read_text().splitlines()) == 2
