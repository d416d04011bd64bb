"""make bench's pgbench baseline runs one submission's SQL thousands of times: whatever must be unique per
order (ids, the execution key, the client order id) is made anew per transaction, in array parameters too."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ORDER_ID = "c8f8afe6acde4fefaaec7939a4957424"
EVENT_ID = "0f54e4b6-b836-4451-8d29-fc9aa8cfa37d"
KEY = "ab" * 32


@pytest.fixture
def bench_db(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "bench"))
    import bench_db

    yield bench_db
    for name in ("bench_db", "percentiles", "servers"):
        sys.modules.pop(name, None)


def test_pgbench_script_when_ids_in_unnest_arrays_then_each_made_per_transaction(bench_db: Any) -> None:
    statements = [
        'INSERT INTO "orders_order" ("id", "execution_key", "client_order_id", "price") SELECT * FROM UNNEST('
        f"'{{{ORDER_ID}}}'::uuid[]::uuid[], '{{{KEY}}}'::varchar(64)[], '{{capture-1a2b}}'::varchar(64)[], "
        "'{100.25}'::numeric(20, 8)[]::numeric(20, 8)[])",
        f'INSERT INTO "audit_event" ("event_id", "order_id") VALUES (\'{EVENT_ID}\'::uuid, \'{ORDER_ID}\'::uuid)',
        "SAVEPOINT s1",
    ]
    script = bench_db.pgbench_script(statements, "capture-1a2b")

    assert ORDER_ID not in script and EVENT_ID not in script and KEY not in script and "capture-1a2b" not in script
    lines = script.splitlines()
    assert lines[0].startswith("\\set seed") and len(lines) == 3  # the savepoint is left out
    # The same id is the same expression wherever it appears, so the event still names its order.
    order_expr = "md5(:client_id::text || '-' || :seed::text || '-u0')::uuid"
    assert f"ARRAY[{order_expr}]::uuid[]" in lines[1] and order_expr in lines[2]
    assert "('pg-' || :client_id::text" in lines[1] and "'{100.25}'::numeric(20, 8)[]" in lines[1]
