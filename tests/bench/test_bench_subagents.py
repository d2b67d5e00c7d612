"""``asyncfc bench subagents`` on the simulated server: its JSON shape and verdicts, quickly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asyncfc.cli import main
from asyncfc_bench.subagents import ATLAS, QUESTIONS, make_requests


def test_requests_are_drawn_reproducibly_with_distinct_countries() -> None:
    a = make_requests(6, [2, 3, 4], seed=1)
    assert a == make_requests(6, [2, 3, 4], seed=1)
    assert [len(r.questions) for r in a] == [2, 3, 4, 2, 3, 4]
    for r in a:
        countries = [q.chain[0][0] for q in r.questions]
        assert len(set(countries)) == len(countries)
    for q in QUESTIONS:  # every chain really leads to its expected answer
        value: Any = None
        for entity, attribute in q.chain:
            value = ATLAS[entity if entity is not None else value][attribute]
        assert value == q.expected
        assert 1 <= len(q.chain) <= 3


def test_json_shape_on_the_simulated_server(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench",
            "subagents",
            "--requests",
            "2",
            "--subquestions",
            "2,3",
            "--latency",
            "0.05",
            "--ttft",
            "0.02",
            "--tokens-per-s",
            "2000",
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0, data.get("problems")
    assert data["consistent"] is True and data["problems"] == []
    assert data["tasks"] == 2 and data["runs_per_task"] == 1
    assert list(data["modes"]) == ["sync", "parallel", "async"]
    for row in data["modes"].values():
        assert row["pass_rate"] == 1.0  # the simulated model answers right in every mode
        assert {"passed", "mean_wall_s", "mean_model_s", "mean_ideal_s", "mean_steps", "mean_calls"} <= set(
            row
        )
        assert set(row["by_questions"]) == {"2", "3"}
    assert set(data["speedup"]) == {"parallel", "async"}
    for s in data["speedup"].values():
        assert s["mean"] > 0 and len(s["ci95"]) == 2
    assert data["mcnemar_p"] == {"parallel": 1.0, "async": 1.0}
    assert data["identical_judgement"] is True
    assert data["ideal_speedup"] > 0
    assert data["modes"]["async"]["references"] == 2  # each report was written from futures
    assert data["modes"]["sync"]["references"] == 0
    assert len(data["per_task"]) == 6
    assert data["config"]["model"] == "sim"
    # sub-agents' steps count in the parent's usage: 2-3 research runs of 2-4 steps each
    assert data["modes"]["sync"]["mean_steps"] > 3


def test_bad_subquestion_counts_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "subagents", "--subquestions", "5"])
    assert exc.value.code == 2
    assert "2-4" in capsys.readouterr().err
