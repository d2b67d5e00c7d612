"""Paired statistics for sync-vs-async comparisons on the same tasks.

Every benchmark task runs once per mode, so samples are matched pairs: resample *tasks*
(keeping each task's timings together) for latency intervals, and use McNemar's exact test
on the tasks where the two modes disagree for accuracy. Pure standard library, seeded, so a
report is reproducible.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from statistics import fmean

__all__ = [
    "Stat",
    "bootstrap_ci",
    "efficiency",
    "mcnemar",
    "nearest_rank",
    "paired_ratio_ci",
    "speedup",
]

Stat = Callable[[Sequence[float]], float]


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default, type 7)."""
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The value at rank ``q`` of the sorted values (no interpolation): a latency someone saw."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _check(n: int, alpha: float) -> None:
    if n < 1:
        raise ValueError("need at least one resample")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")


def _interval(stats: list[float], alpha: float) -> tuple[float, float]:
    stats.sort()
    return _quantile(stats, alpha / 2), _quantile(stats, 1 - alpha / 2)


def bootstrap_ci(
    values: Sequence[float],
    stat: Stat = fmean,
    n: int = 10000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap ``1 - alpha`` interval of ``stat(values)``.

    For paired data pass the per-task differences (or ratios): resampling them resamples
    matched tasks.
    """
    if not values:
        raise ValueError("bootstrap_ci needs at least one value")
    _check(n, alpha)
    data = list(values)
    rng = random.Random(seed)
    k = len(data)
    return _interval([stat(rng.choices(data, k=k)) for _ in range(n)], alpha)


def speedup(sync_times: Sequence[float], other_times: Sequence[float]) -> float:
    """``mean(T_sync) / mean(T_mode)`` over matched tasks (= total sync time / total time)."""
    if len(sync_times) != len(other_times) or not sync_times:
        raise ValueError("speedup needs two non-empty sequences of the same length")
    other = fmean(other_times)
    if other <= 0:
        raise ValueError("the other mode's mean time must be positive")
    return fmean(sync_times) / other


def efficiency(sync_s: float, async_s: float, ideal_s: float) -> float | None:
    """Share of the ideal saving async mode achieved, ``(T_sync - T_async) / (T_sync - T_ideal)``;
    None when the ideal saves nothing."""
    return (sync_s - async_s) / (sync_s - ideal_s) if sync_s > ideal_s else None


def paired_ratio_ci(
    sync_times: Sequence[float],
    other_times: Sequence[float],
    n: int = 10000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`speedup`, resampling matched tasks.

    We use the ratio of means, not the mean of per-task ratios: it is the saving a user
    sees over the whole workload, long tasks weigh in proportion to their time, and a few
    near-instant tasks with noisy ratios cannot dominate it.
    """
    if len(sync_times) != len(other_times) or not sync_times:
        raise ValueError("paired_ratio_ci needs two non-empty sequences of the same length")
    _check(n, alpha)
    sync, other = list(sync_times), list(other_times)
    if min(other) < 0 or sum(other) <= 0:
        raise ValueError("times must be non-negative with a positive total")
    rng = random.Random(seed)
    idx = range(len(sync))
    ratios = []
    for _ in range(n):
        pick = rng.choices(idx, k=len(sync))
        denominator = sum(other[i] for i in pick)
        ratios.append(sum(sync[i] for i in pick) / denominator if denominator > 0 else math.inf)
    return _interval(ratios, alpha)


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> float:
    """Two-sided exact McNemar p-value for paired correctness of two systems.

    Only discordant tasks count: ``b`` = A right and B wrong, ``c`` = A wrong and B right.
    Under the null each discordant task is a fair coin, so p = P(Binomial(b + c, 1/2) as or
    more extreme than min(b, c)), doubled and capped at 1; 1.0 when there are none.
    """
    if len(a_correct) != len(b_correct):
        raise ValueError("mcnemar needs two sequences of the same length")
    b = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if x and not y)
    c = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if y and not x)
    total = b + c
    if total == 0:
        return 1.0
    tail = sum(math.comb(total, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / (1 << total))
