"""The demo's errand, judge and report, with a scripted model (the real run is in test_llm.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence

import pytest

from asyncfc.mode import ModeName as Mode
from asyncfc.models.base import Message
from asyncfc.testing.scripted import ScriptedCall, ScriptedModel, call_results
from asyncfc_bench.demo import Errands, run_mode

CITIES = ["Paris", "Tokyo", "London"]


def solution() -> ScriptedModel:
    def email(transcript: Sequence[Message]) -> list[ScriptedCall]:
        seen = call_results(transcript)  # values, or future ids where the model saw placeholders
        parts = [
            s["future"]
            if isinstance(s, dict) and s.get("status") == "pending"
            else str(s.get("value", s) if isinstance(s, dict) else s)
            for s in seen
        ]
        return [ScriptedCall("send_email", {"to": "carol@example.com", "body": "; ".join(parts)})]

    return ScriptedModel([*([ScriptedCall("get_weather", {"city": c})] for c in CITIES), email, "Sent."])


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_correct_run_is_done_and_reports_where_the_time_went(mode: Mode) -> None:
    run = asyncio.run(run_mode(solution(), ScriptedModel(["hi"]), mode, lookup_s=0.05))
    assert run.done, run.problems
    report = run.to_json()
    assert {"wall_s", "done", "prefill_s", "decode_s", "tools_s", "overlap_s", "prompt_tokens"} <= set(report)
    assert report["tools_s"] >= 0.15
    assert 0 < report["ideal_async_s"] <= report["wall_s"]
    if mode == "sync":  # the three lookups overlap in the ideal
        assert report["ideal_async_s"] < report["wall_s"] - 0.05


def test_the_judge_finds_a_missing_city() -> None:
    world = Errands()
    world.outbox.append({"to": "carol@example.com", "body": "Paris: 18 C, light rain"})
    assert any("tokyo" in p for p in world.problems())


def test_demo_without_the_model_prints_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asyncfc.cli", "demo", "--no-llm", "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)["synthetic"]) == {"sync", "parallel", "async"}
