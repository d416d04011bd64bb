"""The benchmark's one percentile function (bench/percentiles.py): nearest rank, exact, used everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.percentiles import expand, percentile

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize(("pct", "expected"), [(0, 15), (5, 15), (30, 20), (40, 20), (50, 35), (100, 50)])
def test_percentile_when_textbook_sample_then_nearest_rank(pct: float, expected: float) -> None:
    assert percentile([50, 15, 40, 20, 35], pct) == expected  # any order in


def test_percentile_when_hundred_values_then_rank_is_ceil_of_share() -> None:
    values = list(range(1, 101))
    assert [percentile(values, p) for p in (1, 50, 90, 99, 99.5, 100)] == [1, 50, 90, 99, 100, 100]


def test_percentile_when_fractional_pct_then_rank_exact_not_float_rounded() -> None:
    # 99.9 / 100 * 1000 is 999.0000000000001 in floats: a float ceil would answer the maximum
    assert percentile(list(range(1, 1001)), 99.9) == 999


def test_percentile_when_no_values_or_pct_outside_range_then_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_expand_when_histogram_then_percentile_reads_it_like_raw_samples() -> None:
    counts = [(100, 3), (250, 1), (900, 1)]
    assert expand(counts) == [100, 100, 100, 250, 900]
    assert [percentile(expand(counts), p) for p in (50, 60, 80, 99)] == [100, 100, 250, 900]


def test_bench_when_searched_then_percentile_defined_once() -> None:
    definitions = [
        path.name for path in BENCH.glob("*.py") if re.search(r"^def percentile\(", path.read_text(), re.MULTILINE)
    ]
    assert definitions == ["percentiles.py"]
