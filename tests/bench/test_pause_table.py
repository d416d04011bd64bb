"""make bench's table of the pauses that hold up every request (bench/cost.py, from core.pauses' counters)."""

from __future__ import annotations

from typing import Any

HOLDS = "itirp_risk_lock_long_holds_total"
PASSES = "itirp_gc_long_pauses_total"


def test_pause_table_when_counters_rose_then_shown_by_holder_and_generation(cost: Any) -> None:
    before = {(PASSES, (("generation", "2"),)): 1.0}
    after = {
        (PASSES, (("generation", "2"),)): 3.0,
        (PASSES, (("generation", "0"),)): 0.0,
        (HOLDS, (("holder", "orders.execution.executions_complete"),)): 2.0,
    }
    holds, passes = cost.counted(before, after, HOLDS, "holder"), cost.counted(before, after, PASSES, "generation")
    assert holds == {"orders.execution.executions_complete": 2} and passes == {"2": 2}
    assert cost.counted({}, {("itirp_orders_total", ()): 1.0}, HOLDS, "holder") is None  # an older server
    table = cost.pause_lines(
        [
            ("this commit", {"connections": 8, "max_us": 1_460_000, "long_holds": holds, "long_gc": passes}),
            ("before", {"connections": 8, "max_us": 90_000, "long_holds": None, "long_gc": None}),
            ("quiet", {"connections": 8, "max_us": 80_000, "long_holds": {}, "long_gc": {}}),
        ]
    )
    assert "| this commit | 8 | 1460 | orders.execution.executions_complete: 2 | generation 2: 2 |" in table
    assert "| before | 8 | 90 | not recorded by this server | not recorded by this server |" in table
    assert "| quiet | 8 | 80 | none | none |" in table
