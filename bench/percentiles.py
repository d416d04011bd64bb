"""The one percentile of the benchmark: nearest rank, used for every figure in a report.

Definition: the p-th percentile of n values is the smallest value that at least p % of them do not exceed,
i.e. the ceil(p / 100 * n)-th smallest (p = 0: the smallest). Chosen over numpy's default linear
interpolation because every figure is then a value that was observed (a latency some request had), it is
what wrk and HdrHistogram report, and it reads a histogram the same way as raw samples: over bucket counts
it gives the bound of the bucket holding that rank. The rank is computed in exact arithmetic, so p99.9 of
1,000 values is the 999th, not the 1,000th by a float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank `pct`-th percentile (0-100) of `values` (any order; not empty)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile {pct} outside 0-100")
    ordered = sorted(values)
    rank = math.ceil(Fraction(str(pct)) * len(ordered) / 100)
    return ordered[max(rank, 1) - 1]


def expand(counts: Iterable[tuple[float, int]]) -> list[float]:
    """(value, how many times) pairs - a histogram such as wrk's - as the list of values they stand for."""
    return [value for value, count in counts for _ in range(count)]
