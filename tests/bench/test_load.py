"""Fast versions of the load and fault-injection benchmark: nothing lost, nothing leaked."""

from __future__ import annotations

import asyncio
import threading

import pytest

from asyncfc_bench.load import compare, run_load


@pytest.mark.parametrize("mode", ["sync", "parallel", "async"])
def test_counts_balance_without_faults(mode: str) -> None:
    r = asyncio.run(run_load(60, mode))  # type: ignore[arg-type]
    assert r["emitted"] == r["run"] + r["rejected"] == r["resolved"] == r["delivered"]
    assert r["rejected"] == 0 and r["lost"] == 0 and r["duplicated"] == 0
    assert r["run"] == r["tool_invocations"]
    assert r["wrong_results_in_clean_sessions"] == 0
    assert r["leaked_tasks"] == 0 and r["leaked_threads"] <= 0


@pytest.mark.parametrize("mode", ["sync", "parallel", "async"])
def test_faults_are_resolved_and_isolated(mode: str) -> None:
    r = asyncio.run(run_load(120, mode, faults=True, fault_share=0.5, seed=3))  # type: ignore[arg-type]
    assert r["faulted_sessions"] > 20 and r["cancelled_sessions"] > 0
    assert r["emitted"] == r["run"] + r["rejected"] == r["resolved"]
    assert r["lost"] == 0 and r["duplicated"] == 0
    # every completed session had all its calls delivered; only cancelled ones may not
    assert r["delivered"] + r["undelivered_in_cancelled_sessions"] == r["resolved"]
    # sessions without a fault computed exactly what a fault-free run computes
    assert r["wrong_results_in_clean_sessions"] == 0
    for kind in ("timeout", "tool_error", "unknown_tool", "invalid_arguments"):
        assert r["errors_by_type"].get(kind, 0) > 0, kind
    if mode == "async":
        assert r["errors_by_type"].get("unknown_future", 0) > 0
        assert r["errors_by_type"].get("dependency_failed", 0) > 0
    assert r["leaked_tasks"] == 0


def test_compare_in_one_process_reports_every_mode() -> None:
    before = threading.active_count()
    data = compare(20, ["sync", "async"], faults=True, isolate=False)
    assert set(data["modes"]) == {"sync", "async"}
    assert all(m["lost"] == 0 and m["duplicated"] == 0 for m in data["modes"].values())
    assert threading.active_count() <= before
