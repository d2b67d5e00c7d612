"""The BFCL runner: bounds, official judging in every mode, report statistics, the CLI contract."""

from __future__ import annotations

import asyncio
import decimal
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("bfcl_eval")

import mpmath  # noqa: E402
from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils  # noqa: E402

from asyncfc_bench.bfcl import get_entry, instances_for, make_tools  # noqa: E402
from asyncfc_bench.bfcl.cli import main, select_entries  # noqa: E402
from asyncfc_bench.bfcl.replay import build_plan  # noqa: E402
from asyncfc_bench.bfcl.report import summarize, typical_entry  # noqa: E402
from asyncfc_bench.bfcl.runner import (  # noqa: E402
    CHECK_PREFIX,
    MODES,
    BoundCall,
    BoundStep,
    Config,
    coarse_annotations,
    critical_path,
    entry_bounds,
    rows,
    run_experiment,
)
from asyncfc_bench.ideal import IdealCall, IdealStep, ideal_time  # noqa: E402

SCALE = 0.002
"""5 s delays become 10 ms, 0.5 s time to first token 1 ms."""

ENTRIES = [
    "multi_turn_base_0",  # file system (cd -> file ops: hazards)
    "multi_turn_base_56",  # vehicle: zipcodes passed by reference
    "multi_turn_base_70",  # vehicle: a rounded result must be awaited
    "multi_turn_base_105",  # trading: list items from a result (references)
    "multi_turn_base_147",  # trading + twitter: a price inside a tweet (await)
    "multi_turn_base_151",  # travel: exchange rate of a looked-up cost
    "multi_turn_miss_func_0",  # held-out function, empty ground-truth turn
    "multi_turn_miss_param_50",  # a turn that lacks a parameter
    "multi_turn_long_context_150",  # long-context backends
]


@pytest.fixture(autouse=True)
def _process_state() -> Iterator[None]:
    """Backends set mpmath's and decimal's precision process-wide; leave them as found."""
    dps, prec = mpmath.mp.dps, decimal.getcontext().prec
    yield
    mpmath.mp.dps, decimal.getcontext().prec = dps, prec
    assert not [k for k in vars(multi_turn_utils) if k.startswith(CHECK_PREFIX)], "checker instances leaked"


# --------------------------------------------------------------------------- bounds


def test_critical_path_is_ideal_time_without_gates() -> None:
    rng = random.Random(3)
    for _ in range(200):
        steps, ideal, n = [], [], 0
        for _ in range(rng.randint(1, 5)):
            decode = rng.uniform(0.1, 1.0)
            calls, icalls = [], []
            offset = 0.0
            for _ in range(rng.randint(0, 3)):
                offset = rng.uniform(offset, decode)
                deps = tuple(sorted(rng.sample(range(n), rng.randint(0, n)))) if n else ()
                dur = rng.uniform(0, 5)
                calls.append(BoundCall(dur, offset, deps))
                icalls.append(IdealCall(dur, deps, offset))
                n += 1
            steps.append(BoundStep(decode, tuple(calls)))
            ideal.append(IdealStep(decode, icalls))
        final = rng.uniform(0, 1)
        assert critical_path(steps, final) == pytest.approx(ideal_time(ideal, final))


def test_a_gated_step_starts_decoding_when_its_value_is_produced() -> None:
    steps = [BoundStep(1.0, (BoundCall(5.0, 1.0),)), BoundStep(1.0, (BoundCall(5.0, 1.0),), gates=(0,))]
    assert critical_path(steps, 0.5) == pytest.approx(6.0 + 1.0 + 5.0)  # value at 6, decode 1, call 5
    ungated = [steps[0], BoundStep(1.0, (BoundCall(5.0, 1.0),))]
    assert critical_path(ungated, 0.5) == pytest.approx(7.0)  # both calls overlap


def test_bounds_are_ordered_and_coarse_labels_only_lose_parallelism() -> None:
    config = Config(delay_s=5.0, time_scale=1.0)
    coarse = Config(delay_s=5.0, time_scale=1.0, coarse=True)
    for entry_id in ENTRIES:
        entry = get_entry(entry_id)
        plan = build_plan(entry)
        tools = {t.name: t for t in make_tools(instances_for(entry), config.annotations())}
        b = entry_bounds(plan, tools, config)
        assert b.ideal_s <= b.overlap_only_s + 1e-9 <= b.sync_s + 2e-9, entry_id
        assert b.parallel_s <= b.sync_s + 1e-9
        coarse_tools = {t.name: t for t in make_tools(instances_for(entry), coarse.annotations())}
        c = entry_bounds(plan, coarse_tools, coarse)
        assert b.ideal_s <= c.ideal_s + 1e-9 and c.overlap_only_s == pytest.approx(b.overlap_only_s)
    table = coarse_annotations()
    assert table["cd"].writes == ("fs",) and table["ls"].reads == ("fs",) and table["add"].pure


# --------------------------------------------------------------------------- running and judging


def test_entries_from_every_class_block_pass_in_every_mode() -> None:
    entries = [get_entry(e) for e in ENTRIES] + select_entries(["multi_turn_base"], None, 4, seed=1)
    config = Config(delay_s=5.0, time_scale=SCALE)
    exp = asyncio.run(run_experiment(entries, config))
    assert len(exp.runs) == len(entries) * len(MODES)
    failed = [(r.entry, r.mode, r.error_type, r.notes) for r in exp.runs if not r.valid]
    assert not failed
    for run in exp.runs:
        assert not run.notes, (run.entry, run.mode, run.notes)
        if run.mode == "sync":
            assert run.plan_match, run.entry  # the ideal's premise: sync steps are the plan's steps
        if run.mode != "async":
            assert run.await_steps == 0
    by = {(r.entry, r.mode): r for r in exp.runs}
    # data flow in async mode: references for whole fields, awaits for derived values
    assert by["multi_turn_base_70", "async"].await_steps >= 1
    assert by["multi_turn_base_147", "async"].await_steps >= 1
    assert by["multi_turn_base_105", "async"].references >= 1
    assert by["multi_turn_base_56", "async"].references >= 1
    assert all(r.references == 0 for r in exp.runs if r.mode != "async")
    assert by["multi_turn_base_0", "async"].revisions == 0
    rs = rows(exp)
    summary = summarize(rs, MODES, resamples=200)
    assert summary["accuracy_equal"] and {m["accuracy"] for m in summary["modes"].values()} == {1.0}
    assert summary["speedup"]["async"]["mean"] > 1.0
    assert summary["modes"]["async"]["mean_references"] > 0 == summary["modes"]["sync"]["mean_references"]
    for row in rs:
        assert row["ideal_s"] <= row["sync_ideal_s"]
        assert len(row["trajectory"]) == get_entry(row["entry"]).turns


def test_async_passes_references_that_the_runtime_resolves() -> None:
    entry = get_entry("multi_turn_base_56")
    exp = asyncio.run(run_experiment([entry], Config(time_scale=SCALE, modes=("async",))))
    (run,) = exp.runs
    assert run.valid
    trace = run.trace
    assert trace is not None
    # the zipcodes were resolved into the literal strings the checker saw
    flat = [c for turn in run.trajectory for step in turn for c in step]
    assert any(c.startswith("estimate_distance(cityA='") and "fut_" not in c for c in flat)


# --------------------------------------------------------------------------- report


def synthetic_rows() -> list[dict[str, Any]]:
    """Three entries: sync 10/20/30 s, parallel 9/18/27, async 8/16/24; ideal 7/14/21."""
    out: list[dict[str, Any]] = []
    for i, base in enumerate((10.0, 20.0, 30.0)):
        for mode, factor in (("sync", 1.0), ("parallel", 0.9), ("async", 0.8)):
            out.append(
                {
                    "entry": f"e{i}",
                    "category": "multi_turn_base",
                    "mode": mode,
                    "valid": not (mode == "async" and i == 2),
                    "wall_s": base * factor,
                    "model_s": 1.0,
                    "tool_s": base * 0.8,
                    "call_union_s": base * (0.7 if mode == "async" else 0.8),
                    "steps": 3,
                    "calls": 2,
                    "await_steps": 1 if mode == "async" else 0,
                    "revisions": 0,
                    "ideal_s": base * 0.7,
                    "overlap_only_s": base * 0.75,
                    "sync_ideal_s": base * 0.95,
                    "parallel_ideal_s": base * 0.85,
                }
            )
    return out


def test_summary_statistics_on_synthetic_rows() -> None:
    s = summarize(synthetic_rows(), MODES, resamples=500)
    assert s["entries"] == 3
    assert s["modes"]["sync"]["mean_wall_s"] == pytest.approx(20.0)
    assert s["modes"]["async"]["accuracy"] == pytest.approx(2 / 3, abs=1e-4) and not s["accuracy_equal"]
    assert s["speedup"]["async"]["mean"] == pytest.approx(1.25)
    assert s["speedup"]["parallel"]["mean"] == pytest.approx(1 / 0.9, abs=1e-4)
    lo, hi = s["speedup"]["async"]["ci95"]
    assert lo == pytest.approx(1.25) and hi == pytest.approx(1.25)  # the same ratio on every entry
    assert s["ideal_speedup"] == pytest.approx(1 / 0.7, abs=1e-4)
    assert s["efficiency"] == pytest.approx((60 - 48) / (60 - 42), abs=1e-4)
    assert s["savings_ratio"] == pytest.approx((60 - 48) / (57 - 42), abs=1e-4)
    assert s["mcnemar_p"]["async"] == pytest.approx(1.0) and s["mcnemar_p"]["sync"] == 1.0
    sv = s["savings"]
    assert sv["ideal"]["total_s"] == pytest.approx(20 * 0.25)
    assert sv["ideal"]["overlap_s"] == pytest.approx(20 * 0.2) and sv["ideal"][
        "parallelism_s"
    ] == pytest.approx(1.0)
    assert sv["achieved"]["total_s"] == pytest.approx(4.0) and sv["achieved"][
        "parallelism_s"
    ] == pytest.approx(2.0)
    assert s["modes"]["async"]["mean_overhead_s"] == pytest.approx(20 * 0.1)


def test_typical_entry_has_the_median_speedup() -> None:
    rs = synthetic_rows()
    for r in rs:
        if r["mode"] == "async":
            r["wall_s"] = {"e0": 10.0, "e1": 16.0, "e2": 20.0}[r["entry"]]  # speedups 1.0, 1.25, 1.5
    assert typical_entry(rs, MODES) == "e1"


def test_summary_without_sync_has_no_speedups() -> None:
    s = summarize([r for r in synthetic_rows() if r["mode"] == "async"], ["async"], resamples=100)
    assert s["entries"] == 3 and "speedup" not in s


def test_sample_spreads_over_class_blocks() -> None:
    picked = select_entries(["multi_turn_base"], None, 8, seed=0)
    assert len(picked) == 8
    blocks = [int(e.id.rsplit("_", 1)[1]) // 50 for e in picked]
    assert sorted(blocks) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [e.id for e in select_entries(["multi_turn_base"], None, 8, seed=0)] == [e.id for e in picked]
    assert [e.id for e in select_entries(["multi_turn_base"], slice(3, 5), None)] == [
        "multi_turn_base_3",
        "multi_turn_base_4",
    ]


# --------------------------------------------------------------------------- CLI


def test_cli_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(["--entries", "0:3", "--time-scale", str(SCALE), "--json", "--out", str(out)])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["entries"] == 3
    for mode in MODES:
        assert {"accuracy", "mean_wall_s"} <= set(data["modes"][mode])
        assert data["modes"][mode]["accuracy"] == 1.0
        assert len(data["speedup"][mode]["ci95"]) == 2 and "mean" in data["speedup"][mode]
        assert 0 <= data["mcnemar_p"][mode] <= 1
    assert data["ideal_speedup"] > 1 and data["efficiency"] is not None
    assert {p.name for p in out.iterdir()} == {"results.json", "report.md", "latency.png", "timeline.png"}
    saved = json.loads((out / "results.json").read_text())
    assert len(saved["rows"]) == 9 and saved["summary"]["entries"] == 3


def test_cli_sweep_and_unreachable_endpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    code = main(
        [
            "--entries",
            "50:52",
            "--time-scale",
            "0.001",
            "--sweep",
            "1,5",
            "--json",
            "--no-plots",
            "--out",
            str(out),
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and [p["delay_s"] for p in data["sweep"]] == [1.0, 5.0]
    assert data["sweep"][0]["mean_wall_s"]["sync"] < data["sweep"][1]["mean_wall_s"]["sync"]
    code = main(
        [
            "--entries",
            "0:1",
            "--model",
            "m",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 3
