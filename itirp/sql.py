"""Bulk inserts of several models in one database round trip: the write half of a batch of submissions.

Django's bulk_create sends one INSERT per model and compiles it through the ORM each time; on the
submission path, under the risk lock, both cost more than the rows. On PostgreSQL each model's rows become
one `INSERT ... SELECT * FROM UNNEST(...)` (the statement Django 5.2 itself uses for bulk inserts), values
prepared by the model fields exactly as Django prepares them, and the statements go to the server
together, as one query string with client-side binding. Elsewhere (SQLite) it is bulk_create per model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, models


@dataclass(frozen=True)
class BulkInsert:
    """Rows of one model; an auto primary key (e.g. the event sequence) is set on the objects afterwards."""

    model: type[models.Model]
    objs: Sequence[models.Model]


def bulk_insert(*inserts: BulkInsert) -> None:
    """Insert every BulkInsert's rows, in the given order, inside the caller's transaction."""
    inserts = tuple(insert for insert in inserts if insert.objs)
    if not inserts:
        return
    if connection.vendor != "postgresql":
        for insert in inserts:
            insert.model._default_manager.bulk_create(insert.objs)
        return
    results = pipelined([_values_insert(insert.model, insert.objs) for insert in inserts])
    for insert, rows in zip(inserts, results, strict=True):
        pk = insert.model._meta.pk
        if _is_auto(pk):
            for obj, (value,) in zip(insert.objs, rows or [], strict=True):
                setattr(obj, pk.attname, value)


def pipelined(statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]] | None]:
    """PostgreSQL: run the statements in order in one round trip, answering each one's rows (None for a
    statement without a result), in the caller's transaction.

    Server-side binding (a plain psycopg cursor on Django's connection): the values travel as parameters
    dumped by psycopg's C adapters instead of being quoted into the SQL text by Django's client-side cursor,
    and a statement run often is prepared by psycopg once per connection. Pipeline mode sends every statement
    before waiting for the first answer; each still runs with its own snapshot, after the one before it
    (a read after a SELECT ... FOR UPDATE sees what the lock's previous holder committed)."""
    import psycopg

    connection.ensure_connection()
    raw = connection.connection
    with raw.pipeline():
        cursors = []
        for sql, params in statements:
            cursor = psycopg.Cursor(raw)
            cursor.execute(sql, params)
            cursors.append(cursor)
    results = []
    for cursor in cursors:
        results.append(cursor.fetchall() if cursor.description is not None else None)
        cursor.close()
    if connection.queries_logged:  # DEBUG, or a CaptureQueriesContext: the log shows these statements too
        literal = psycopg.ClientCursor(raw)
        for sql, params in statements:
            connection.queries_log.append({"sql": literal.mogrify(sql, params), "time": "0.000"})
    return results


def _is_auto(field: models.Field) -> bool:
    return isinstance(field, models.AutoField | models.BigAutoField | models.SmallAutoField)


def _values_insert(model: type[models.Model], objs: Sequence[models.Model]) -> tuple[str, list[Any]]:
    """One multi-row INSERT with a parameter per value; the auto primary key, if any, returned in order."""
    opts = model._meta
    auto = opts.pk if _is_auto(opts.pk) else None
    fields = [f for f in opts.concrete_fields if f is not auto and not f.generated]
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    values = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for obj in objs for f in fields]
    sql = f"INSERT INTO {qn(opts.db_table)} ({columns}) VALUES {', '.join([row] * len(objs))}"  # noqa: S608
    if auto is not None:
        # rows of a multi-row VALUES are inserted in order; the sequence is taken row by row
        sql += f" RETURNING {qn(auto.column)}"
    return sql, values
