"""Paired statistics against hand-computed values."""

from __future__ import annotations

import math
import statistics

import pytest

from asyncfc_bench.stats import bootstrap_ci, mcnemar, paired_ratio_ci, speedup


def pairs(b: int, c: int, both: int = 0, neither: int = 0) -> tuple[list[bool], list[bool]]:
    """Correctness lists with ``b`` A-only wins, ``c`` B-only wins and concordant extras."""
    a = [True] * b + [False] * c + [True] * both + [False] * neither
    bb = [False] * b + [True] * c + [True] * both + [False] * neither
    return a, bb


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (0, 10, 2 * 0.5**10),  # 0.001953125
        (10, 0, 2 * 0.5**10),
        (1, 9, 2 * (1 + 10) / 1024),  # 0.021484375
        (2, 8, 2 * (1 + 10 + 45) / 1024),  # 0.109375
        (3, 7, 2 * (1 + 10 + 45 + 120) / 1024),  # 0.34375
        (5, 5, 1.0),  # the doubled tail exceeds 1: capped
        (0, 1, 1.0),  # 2 * 0.5
        (0, 5, 0.0625),
        (1, 20, 2 * (1 + 21) / 2**21),
    ],
)
def test_mcnemar_exact_binomial(b: int, c: int, expected: float) -> None:
    a, bb = pairs(b, c, both=7, neither=3)
    assert mcnemar(a, bb) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_without_discordant_pairs_is_one() -> None:
    assert mcnemar([True, False, True], [True, False, True]) == 1.0
    assert mcnemar([], []) == 1.0


def test_mcnemar_is_symmetric_and_handles_large_samples() -> None:
    a, b = pairs(400, 600)
    assert mcnemar(a, b) == mcnemar(b, a)
    assert 0 < mcnemar(a, b) < 1e-9
    a, b = pairs(1500, 1500)
    assert mcnemar(a, b) == 1.0


def test_mcnemar_rejects_unpaired_input() -> None:
    with pytest.raises(ValueError):
        mcnemar([True], [True, False])


def test_bootstrap_constant_data_gives_a_point() -> None:
    assert bootstrap_ci([2.5] * 30, n=200) == (2.5, 2.5)


def test_bootstrap_ci_brackets_the_mean_and_is_reproducible() -> None:
    values = [float(x % 17) for x in range(200)]
    lo, hi = bootstrap_ci(values, n=2000, seed=1)
    assert lo < statistics.fmean(values) < hi
    assert (lo, hi) == bootstrap_ci(values, n=2000, seed=1)
    assert (lo, hi) != bootstrap_ci(values, n=2000, seed=2)
    # about mean +- 1.96 * sd / sqrt(n)
    half = 1.96 * statistics.pstdev(values) / math.sqrt(len(values))
    assert hi - lo == pytest.approx(2 * half, rel=0.15)
    narrow = bootstrap_ci(values, n=2000, alpha=0.5, seed=1)
    assert lo < narrow[0] < narrow[1] < hi


def test_bootstrap_with_another_statistic() -> None:
    lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 100.0], stat=statistics.median, n=500)
    assert 1.0 <= lo <= hi <= 100.0


def test_bootstrap_two_values_percentiles_by_hand() -> None:
    """Resampling [0, 1] twice gives means 0, .5, .5, 1: the 95% interval is about [0, 1]."""
    lo, hi = bootstrap_ci([0.0, 1.0], n=4000)
    assert lo == 0.0 and hi == 1.0
    lo, hi = bootstrap_ci([0.0, 1.0], n=4000, alpha=0.6)  # 20th..80th percentile: .5
    assert lo == hi == 0.5


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], alpha=0)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], n=0)


def test_speedup_is_the_ratio_of_means() -> None:
    assert speedup([10.0, 30.0], [5.0, 15.0]) == 2.0
    # not the mean of ratios (which would be (4 + 1) / 2 = 2.5)
    assert speedup([4.0, 10.0], [1.0, 10.0]) == pytest.approx(14 / 11)
    with pytest.raises(ValueError):
        speedup([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        speedup([1.0], [0.0])


def test_paired_ratio_ci_exact_and_bracketing() -> None:
    sync = [float(10 + i % 7) for i in range(100)]
    assert paired_ratio_ci(sync, [t / 2 for t in sync], n=500) == pytest.approx((2.0, 2.0))
    other = [t / (1.2 + 0.3 * (i % 3)) for i, t in enumerate(sync)]
    lo, hi = paired_ratio_ci(sync, other, n=2000)
    assert lo < speedup(sync, other) < hi
    assert (lo, hi) == paired_ratio_ci(sync, other, n=2000)


def test_paired_ratio_ci_resamples_pairs_together() -> None:
    """Each task is 2x faster, though task sizes vary wildly: pairing makes the CI a point."""
    sync = [1.0, 100.0, 5.0, 1000.0, 20.0]
    lo, hi = paired_ratio_ci(sync, [t / 2 for t in sync], n=1000)
    assert lo == pytest.approx(2.0) and hi == pytest.approx(2.0)


def test_paired_ratio_ci_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        paired_ratio_ci([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        paired_ratio_ci([1.0], [0.0])
    with pytest.raises(ValueError):
        paired_ratio_ci([], [])


def test_nearest_rank_reports_an_observed_value() -> None:
    from asyncfc_bench.stats import nearest_rank

    values = [float(v) for v in range(1, 101)]
    assert nearest_rank(values, 0.99) == 100.0
    assert nearest_rank(values, 0.5) == 51.0
    assert nearest_rank([3.0, 1.0, 2.0], 0.0) == 1.0
