"""Headline numbers of the task suite: pass rates, model cost, paired speedups, the ideal.

Runs are paired by (task, repetition) across modes. Speedups are ratios of mean wall
times with a bootstrap interval that resamples pairs; pass rates are compared with
McNemar's exact test on the pairs where two modes disagree. The ideal is the sync runs'
own zero-overhead asynchronous time (their measured model steps and tool times, every
call overlapped with everything it does not depend on); efficiency is the share of that
ideal saving async achieved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import fmean
from typing import Any

from asyncfc_bench.stats import efficiency, mcnemar, paired_ratio_ci, speedup
from asyncfc_bench.tasks.runner import Run

__all__ = [
    "summarize",
    "sweep",
]


def _r(x: float | None, digits: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(x, digits)


def summarize(
    runs: Sequence[Run], modes: Sequence[str], *, seed: int = 0, resamples: int = 4000
) -> dict[str, Any]:
    by: dict[str, dict[tuple[str, int, float | None], Run]] = {m: {} for m in modes}
    order: list[tuple[str, int, float | None]] = []
    for run in runs:
        if run.mode in by:
            key = (run.task, run.run, run.lookup_latency_s)
            by[run.mode][key] = run
            if key not in order:
                order.append(key)
    keys = [k for k in order if all(k in by[m] for m in modes)]
    out: dict[str, Any] = {
        "tasks": len({k[0] for k in keys}),
        "runs_per_task": len({k[1:] for k in keys}),
        "modes": {},
    }
    if not keys:
        return out
    for mode in modes:
        rs = [by[mode][k] for k in keys]
        passed = sum(r.passed for r in rs)
        out["modes"][mode] = {
            "passed": passed,
            "pass_rate": _r(passed / len(rs)),
            "mean_wall_s": _r(fmean(r.wall_s for r in rs)),
            "mean_model_s": _r(fmean(r.model_s for r in rs)),
            "mean_tool_s": _r(fmean(r.tool_s for r in rs)),
            "mean_ideal_s": _r(fmean(r.ideal_s for r in rs)),
            "mean_steps": _r(fmean(r.steps for r in rs), 2),
            "mean_calls": _r(fmean(r.calls for r in rs), 2),
            "await_steps": sum(r.await_steps for r in rs),
            "references": sum(r.references for r in rs),
            "prompt_tokens": sum(r.prompt_tokens for r in rs),
            "cached_prompt_tokens": sum(r.cached_prompt_tokens for r in rs),
            "uncached_prompt_tokens_per_task": _r(fmean(r.uncached_prompt_tokens for r in rs), 1),
            "output_tokens": sum(r.output_tokens for r in rs),
            "prefill_s": _r(sum(r.prefill_s for r in rs)),
            "decode_s": _r(sum(r.decode_s for r in rs)),
            "step_limit": sum(any(s != "answer" for s in r.stop_reasons) for r in rs),
            "blind_write_runs": sum(bool(r.blind_writes) for r in rs),
            "blind_writes": sum(len(r.blind_writes) for r in rs),
            "held_calls": sum(r.held for r in rs),
            "futures_shown_runs": sum(r.futures_shown for r in rs),
            "by_shape": _by_shape(rs),
        }
    if "sync" in modes:
        sync = [by["sync"][k] for k in keys]
        sync_walls = [r.wall_s for r in sync]
        out["speedup"] = {}
        out["speedup_both_passed"] = {}
        out["mcnemar_p"] = {}
        for mode in modes:
            if mode == "sync":
                continue
            other = [by[mode][k] for k in keys]
            walls = [r.wall_s for r in other]
            if sum(walls) > 0:
                lo, hi = paired_ratio_ci(sync_walls, walls, n=resamples, seed=seed)
                out["speedup"][mode] = {"mean": _r(speedup(sync_walls, walls)), "ci95": [_r(lo), _r(hi)]}
            both = [(s.wall_s, o.wall_s) for s, o in zip(sync, other, strict=True) if s.passed and o.passed]
            if both and sum(b for _, b in both) > 0:
                out["speedup_both_passed"][mode] = {
                    "pairs": len(both),
                    "mean": _r(speedup([a for a, _ in both], [b for _, b in both])),
                }
            out["mcnemar_p"][mode] = _r(mcnemar([r.passed for r in sync], [r.passed for r in other]))
        ideal = [r.ideal_s for r in sync]
        if sum(ideal) > 0:
            out["ideal_speedup"] = _r(sum(sync_walls) / sum(ideal))
            if "async" in modes:
                share = efficiency(sum(sync_walls), sum(by["async"][k].wall_s for k in keys), sum(ideal))
                if share is not None:
                    out["efficiency"] = _r(share)
        if "async" in modes:
            s_unc = fmean(r.uncached_prompt_tokens for r in sync)
            a_unc = fmean(by["async"][k].uncached_prompt_tokens for k in keys)
            out["uncached_prompt_ratio"] = _r(a_unc / s_unc) if s_unc > 0 else None
    out["per_task"] = [by[m][k].row() for k in keys for m in modes]
    return out


def sweep(
    runs: Sequence[Run],
    modes: Sequence[str],
    latencies: Sequence[float],
    *,
    seed: int = 0,
    resamples: int = 4000,
) -> dict[str, dict[str, Any]]:
    """Per lookup latency (keys as written: ``"0"``, ``"2.5"``): each mode's pass rate and
    blind writes, and each mode's mean speedup over sync with its 95% interval."""
    out: dict[str, dict[str, Any]] = {}
    for latency in latencies:
        data = summarize(
            [r for r in runs if r.lookup_latency_s == latency], modes, seed=seed, resamples=resamples
        )
        per_mode = {
            mode: {
                key: m[key]
                for key in (
                    "passed",
                    "pass_rate",
                    "mean_wall_s",
                    "blind_write_runs",
                    "blind_writes",
                    "held_calls",
                    "futures_shown_runs",
                    "uncached_prompt_tokens_per_task",
                )
            }
            for mode, m in data["modes"].items()
        }
        out[f"{latency:g}"] = {
            "lookup_latency_s": latency,
            "tasks": data["tasks"],
            "runs_per_task": data["runs_per_task"],
            "modes": per_mode,
            "speedup": data.get("speedup", {}),
            "mcnemar_p": data.get("mcnemar_p", {}),
        }
    return out


def _by_shape(rs: Sequence[Run]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in rs:
        row = out.setdefault(r.shape, {"passed": 0, "runs": 0})
        row["runs"] += 1
        row["passed"] += int(r.passed)
    return out
