"""Several statements in one database round trip: the reads and writes of a batch of submissions.

On the submission path, under the risk lock, each round trip and each statement Django compiles through the
ORM costs more than the rows it moves. On PostgreSQL, `pipelined` sends statements together (psycopg's
pipeline mode, server-side binding) and `bulk_insert` writes several models' rows as one INSERT each (a
column's values in one array), values prepared by the model fields exactly as Django prepares them. Errors
come out as Django's (IntegrityError, OperationalError, ...), as from any Django cursor. Elsewhere (SQLite)
`run` executes the same statements one by one through Django's cursor and `bulk_insert` is bulk_create per
model, so the demo's database goes through the same code.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections, models
from psycopg.adapt import Dumper, Loader, Transformer


@dataclass(frozen=True)
class BulkInsert:
    """Rows of one model; an auto primary key (e.g. the event sequence) is set on the objects afterwards."""

    model: type[models.Model]
    objs: Sequence[models.Model]


class Statement(NamedTuple):
    """One SQL statement and its parameters (%s placeholders)."""

    sql: str
    params: Sequence[Any]


def run(statements: Sequence[Statement | tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]] | None]:
    """Run the statements in order in the caller's transaction, answering each one's rows (None for a
    statement without a result): on PostgreSQL in one round trip (`pipelined`), elsewhere one by one."""
    if connection.vendor == "postgresql":
        return pipelined(statements)
    results: list[list[tuple[Any, ...]] | None] = []
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            results.append([tuple(row) for row in cursor.fetchall()] if cursor.description is not None else None)
    return results


def bulk_insert(*inserts: BulkInsert, before: Sequence[Statement] = ()) -> None:
    """Insert every BulkInsert's rows, in the given order, inside the caller's transaction; `before`: statements
    run first, in the same round trip on PostgreSQL (the change the inserted rows record, say)."""
    inserts = tuple(insert for insert in inserts if insert.objs)
    if connection.vendor != "postgresql":
        if before:
            run(before)
        for insert in inserts:
            insert.model._default_manager.bulk_create(insert.objs)
        return
    if not inserts and not before:
        return
    results = pipelined([*before, *(_values_insert(insert.model, insert.objs) for insert in inserts)])
    for insert, rows in zip(inserts, results[len(before) :], strict=True):
        pk = insert.model._meta.pk
        if _is_auto(pk):
            for obj, (value,) in zip(insert.objs, rows or [], strict=True):
                setattr(obj, pk.attname, value)


PREPARE_THRESHOLD = 5
T = TypeVar("T")


def one_of(expression: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`expression` is one of `values`, as SQL and its parameters. PostgreSQL: `= ANY(%s)` with the values as
    one array, so the statement's text is the same whatever their number and, run often, is prepared once
    per connection; elsewhere an IN list."""
    if connection.vendor == "postgresql":
        return f"{expression} = ANY(%s)", [list(values)]
    return f"{expression} IN ({', '.join(['%s'] * len(values))})", list(values)


def pipelined(statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]] | None]:
    """PostgreSQL: run the statements in order in one round trip, answering each one's rows (None for a
    statement without a result), in the caller's transaction.

    Server-side binding (a plain psycopg cursor on Django's connection): the values travel as parameters
    dumped by psycopg's C adapters instead of being quoted into the SQL text by Django's client-side cursor,
    and a statement run often is prepared by psycopg once per connection. Pipeline mode sends every statement
    before waiting for the first answer; each still runs with its own snapshot, after the one before it
    (a read after a SELECT ... FOR UPDATE sees what the lock's previous holder committed).

    The statements are the connection's health check (CONN_HEALTH_CHECKS): Django asks a persistent connection
    `SELECT 1` before its first statement of each request or task, a round trip of its own (the submission
    batch's, at every batch). Here, once they succeed the check is done for this request; and a read-only
    call outside a transaction that finds the connection broken (the server restarted since the connection's
    last use, say) is run again once on a new connection, as the check would have replaced it. A write is
    never run twice: it fails as it would have."""
    db: Any = connections[DEFAULT_DB_ALIAS]  # the thread's connection itself (`connection` is a proxy)
    unchecked = db.connection is not None and db.health_check_enabled and not db.health_check_done
    first_trip = db.__dict__.pop(_FIRST_TRIP, False)  # the first round trip of a checked_by_first_trip transaction
    try:
        results = _pipelined(db, statements)
    except OperationalError as exc:
        if first_trip and _broken(db):
            raise ConnectionEnded(*exc.args) from exc
        if not (unchecked and not db.in_atomic_block and _broken(db) and _reads_only(statements)):
            raise
        db.close()
        results = _pipelined(db, statements)
    db.health_check_done = True  # a statement has just been answered on this connection
    return results


_FIRST_TRIP = "itirp_first_trip"


class ConnectionEnded(OperationalError):
    """The first round trip of a `checked_by_first_trip` transaction found the connection ended: nothing of the
    transaction reached the server."""


def checked_by_first_trip(run: Callable[[], T]) -> T:
    """Run `run`, which opens a transaction whose first statements go through `pipelined` (nothing written before
    them), with that round trip as the connection's health check: Django's `SELECT 1` at BEGIN, once per request,
    is not asked (a submission batch's own round trip, saved); should the first round trip find the connection
    ended, the transaction is run again, once, on a new connection, as the check would have replaced it."""
    db: Any = connections[DEFAULT_DB_ALIAS]
    if db.in_atomic_block or db.connection is None or not db.health_check_enabled or db.health_check_done:
        return run()
    db.health_check_done = True  # what Django's check would conclude, or the retry below replaces the connection
    db.__dict__[_FIRST_TRIP] = True
    try:
        return run()
    except ConnectionEnded:
        db.close()  # the transaction's rollback already dropped it; a no-op then
        return run()
    finally:
        db.__dict__.pop(_FIRST_TRIP, None)


def _broken(db: Any) -> bool:
    return db.connection is None or db.connection.closed or db.connection.broken


def _reads_only(statements: Sequence[tuple[str, Sequence[Any]]]) -> bool:
    return all(sql.lstrip()[:6].upper() == "SELECT" and "FOR UPDATE" not in sql.upper() for sql, _ in statements)


def _pipelined(db: Any, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]] | None]:
    db.ensure_connection()
    raw = db.connection
    if raw.prepare_threshold is None:
        # Django turns psycopg's prepared statements off (for poolers in transaction mode, which this
        # deployment does not use); its own client-side cursors never prepare. Here, a statement text run
        # five times on a connection is prepared: planned once, not at every decision under the risk lock.
        raw.prepare_threshold = PREPARE_THRESHOLD
        raw.adapters.register_dumper(Array, _ArrayDumper)  # this connection's lists: see Array
    results = []
    tuples = psycopg.pq.ExecStatus.TUPLES_OK
    # psycopg's own exceptions become Django's, and a broken connection is marked as such, as with any
    # Django cursor: a unique violation is an IntegrityError, a database that went away an OperationalError.
    with db.wrap_database_errors:
        with raw.pipeline():
            cursors = []
            for sql, params in statements:
                cursor = psycopg.Cursor(raw)
                cursor.execute(sql, [Array(p) if type(p) is list else p for p in params])
                cursors.append(cursor)
        for cursor in cursors:
            # Whether the statement answered rows, from the result's status: `description` would build a
            # Column object per column of every result (35 for an order row), on every call.
            answered = cursor.pgresult is not None and cursor.pgresult.status == tuples
            results.append(cursor.fetchall() if answered else None)
            cursor.close()
    if db.queries_logged:  # DEBUG, or a CaptureQueriesContext: the log shows these statements too
        literal = psycopg.ClientCursor(raw)
        for sql, params in statements:
            db.queries_log.append({"sql": literal.mogrify(sql, params), "time": "0.000"})
    return results


@dataclass(frozen=True)
class Rows:
    """How a SELECT of a model's columns (every concrete one, in the model's order) names them, and how its rows
    become instances as the ORM makes them: each backend's and field's converters (SQLite's text dates, JSON),
    then Model.from_db. For look-ups run on every message or group: a queryset compiles its SQL on every call
    (select_for_update, select_related), and Django's raw queryset works out its columns each time."""

    model: type[models.Model]
    columns: str
    converters: tuple[tuple[int, Any, tuple[Any, ...]], ...]

    def instances(self, rows: Sequence[Sequence[Any]]) -> list[Any]:
        made = []
        for row in rows:
            values = list(row[: len(self.model._meta.concrete_fields)])
            for index, expression, functions in self.converters:
                for convert in functions:
                    values[index] = convert(values[index], expression, connection)
            made.append(self.model.from_db(connection.alias, (), values))
        return made


_rows: dict[tuple[type[models.Model], str, str], Rows] = {}


def rows_of(model: type[models.Model], alias: str) -> Rows:
    """`model`'s Rows with its columns qualified by the table's `alias` in the SQL, once per database vendor."""
    key = (model, alias, connection.vendor)
    found = _rows.get(key)
    if found is None:
        qn = connection.ops.quote_name
        fields = model._meta.concrete_fields
        converters = []
        for index, field in enumerate(fields):
            expression = field.get_col(model._meta.db_table)
            functions = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
            if functions:
                converters.append((index, expression, tuple(functions)))
        found = _rows[key] = Rows(
            model, ", ".join(f"{alias}.{qn(column(field))}" for field in fields), tuple(converters)
        )
    return found


def _is_auto(field: models.Field) -> bool:
    return isinstance(field, models.AutoField | models.BigAutoField | models.SmallAutoField)


def column(field: models.Field) -> str:
    """A concrete field's column name (Field.column is None only for fields without one, such as many-to-many)."""
    if field.column is None:
        raise TypeError(f"{field!r} has no column")
    return field.column


def _values_insert(model: type[models.Model], objs: Sequence[models.Model]) -> tuple[str, list[Any]]:
    """One INSERT of all the rows: a column's values as one array parameter, unnested in the rows' order. The
    statement's text is the same whatever the number of rows, so psycopg converts it once and PostgreSQL
    plans it once per connection (prepared), where a multi-row VALUES list was a new text of its own for every
    batch size (parsed, planned and converted again each time, with a parameter per value). The auto primary
    key, if any, is taken in the rows' order (ORDER BY the ordinality) and returned in that order."""
    opts = model._meta
    auto = opts.pk if _is_auto(opts.pk) else None
    fields = [f for f in opts.concrete_fields if f is not auto and not f.generated]
    sql = _unnest_sql(model, tuple(fields), auto)
    db = connections[connection.alias]  # the thread's connection itself, not the proxy at every value
    values = [[_prepared(f, f.pre_save(obj, add=True), db) for obj in objs] for f in fields]
    return sql, values


# Field classes whose get_db_prep_save answers a value of this exact type unchanged on PostgreSQL (to_python
# passes it through, and the backend's adapt_*_value returns it): such values skip Django's preparation, which
# was 5 % of a submission (70 values per order through three method layers and the connection proxy). Exact
# classes only: a subclass may prepare differently. A Decimal must be finite and a datetime aware, as Django
# requires; any other value (None, a choices member, a string for a UUID) is prepared by Django. (Django wraps
# an int in psycopg's Int4/Int8 for a lone parameter; in these arrays the statement's cast types it either way.)
_UNCHANGED: dict[type[models.Field], type] = {
    models.CharField: str,
    models.TextField: str,
    models.UUIDField: uuid.UUID,
    models.DecimalField: decimal.Decimal,
    models.DateTimeField: datetime.datetime,
    models.BigIntegerField: int,
    models.IntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveBigIntegerField: int,
    models.BooleanField: bool,
}


def _prepared(field: models.Field, value: Any, db: Any) -> Any:
    kind = type(value)
    if _UNCHANGED.get(type(field)) is kind and (
        (kind is not decimal.Decimal or value.is_finite())
        and (kind is not datetime.datetime or value.utcoffset() is not None)
    ):
        return value
    if kind is str and type(field) is models.GenericIPAddressField and value and ":" not in value:
        # An IPv4 address (an event's): Django passes it unchanged (only IPv6 is normalised) to the backend,
        # which parses it into an ipaddress object for psycopg to print back; the array's inet cast reads it.
        return value
    return field.get_db_prep_save(value, db)


def update_rows(model: type[models.Model], objs: Sequence[models.Model], names: Sequence[str]) -> list[Statement]:
    """The UPDATE of the objects' fields `names`, by primary key, as statements for `run`. PostgreSQL: one
    statement whatever the number of rows (a column's values in one array, joined on the key through UNNEST),
    its text the same for every call with these fields, so prepared; a statement per row was as many times
    psycopg's and PostgreSQL's work per statement. Elsewhere a statement per row."""
    opts = model._meta
    pk = opts.pk
    assert pk is not None
    fields = [f for f in opts.concrete_fields if f.name in names]
    db = connections[connection.alias]
    key = (model, tuple(fields), connection.vendor)
    sql = _update_texts.get(key)
    if sql is None:
        qn = connection.ops.quote_name
        if connection.vendor == "postgresql":
            targets = [qn(column(f)) for f in (pk, *fields)]
            arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in (pk, *fields))
            assignments = ", ".join(f"{name} = v.{name}" for name in targets[1:])
            sql = (
                f"UPDATE {qn(opts.db_table)} AS t SET {assignments} FROM UNNEST({arrays}) "  # noqa: S608 - model names
                f"AS v ({', '.join(targets)}) WHERE t.{targets[0]} = v.{targets[0]}"
            )
        else:
            assignments = ", ".join(f"{qn(column(f))} = %s" for f in fields)
            sql = f"UPDATE {qn(opts.db_table)} SET {assignments} WHERE {qn(column(pk))} = %s"  # noqa: S608
        _update_texts[key] = sql
    if connection.vendor == "postgresql":
        if not objs:
            return []
        keys = [pk.get_db_prep_value(obj.pk, db) for obj in objs]
        return [Statement(sql, [keys, *([_prepared(f, getattr(obj, f.attname), db) for obj in objs] for f in fields)])]
    return [
        Statement(
            sql,
            [*(f.get_db_prep_save(getattr(obj, f.attname), db) for f in fields), pk.get_db_prep_value(obj.pk, db)],
        )
        for obj in objs
    ]


_update_texts: dict[tuple[type[models.Model], tuple[models.Field, ...], str], str] = {}


_unnest_texts: dict[tuple[type[models.Model], tuple[models.Field, ...]], str] = {}


def _unnest_sql(model: type[models.Model], fields: tuple[models.Field, ...], auto: models.Field | None) -> str:
    key = (model, fields)
    sql = _unnest_texts.get(key)
    if sql is None:
        qn = connection.ops.quote_name
        names = [qn(column(f)) for f in fields]
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
        sql = (
            f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(names)}) "  # noqa: S608 - names from the model
            f"SELECT {', '.join(names)} FROM UNNEST({arrays}) WITH ORDINALITY AS u({', '.join(names)}, n) "
            "ORDER BY n"
        )
        if auto is not None:
            sql += f" RETURNING {qn(column(auto))}"
        _unnest_texts[key] = sql
    return sql


class Array(list[Any]):
    """A list parameter of `pipelined`: one PostgreSQL array, sent as its text literal and typed by the
    statement (`%s::uuid[]`, `x = ANY(%s)`), as psycopg's own list adaptation would type it.

    psycopg's ListDumper is Python that, for every list of every statement, walks the list for an element,
    looks up and upgrades a dumper for its type, then dumps and quotes each element with a regular expression:
    17 % of a submission's CPU went there (a batch's inserts pass every column as one array, ~60 lists). Here
    the element types of our statements (str, int, Decimal, UUID, dates, bool) are written directly, looked up
    by exact type; any other element (a JSON wrapper, a float, a subclass) is dumped by psycopg's own text
    dumper for it. Every element but None is quoted, so no text can be taken for NULL or break the literal."""


def _quoted(text: str) -> str:
    if '"' in text or "\\" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _plain(value: Any) -> str:
    return f'"{value}"'  # str() of these holds no quote or backslash


def _decimal(value: decimal.Decimal) -> str | None:
    return f'"{value}"' if value.is_finite() else None  # NaN, sNaN, infinities: psycopg's own spelling


# An element's token in the literal by its exact type; None: psycopg's text dumper for it (_ArrayDumper._other).
_TOKEN: dict[type, Callable[[Any], str | None]] = {
    type(None): lambda value: "NULL",
    str: _quoted,
    int: _plain,
    uuid.UUID: _plain,
    decimal.Decimal: _decimal,
    datetime.datetime: _plain,  # psycopg's text dumpers for dates are str() too
    datetime.date: _plain,
    bool: lambda value: '"t"' if value else '"f"',
}


class _ArrayDumper(Dumper):
    oid = 0  # unknown: PostgreSQL types the literal from the statement, as for a cast string

    def __init__(self, cls: type, context: Any = None) -> None:
        # Not the context itself: it is the statement's Transformer, which keeps this dumper in its cache, and
        # the reference cycle made every statement's Transformer (its loaders, dumpers, adapters map: ~40
        # objects) garbage for the cyclic collector to find, its passes run the more often for it. The
        # connection (self.connection, set by Dumper) is what _other's dumpers are looked up from.
        super().__init__(cls, context)
        self._transformer: Any = None  # psycopg's Transformer, made on first need

    def dump(self, obj: list[Any]) -> bytes:
        tokens = []
        other = self._other
        for value in obj:
            writer = _TOKEN.get(type(value))
            token = writer(value) if writer is not None else None
            tokens.append(other(value) if token is None else token)
        return ("{" + ",".join(tokens) + "}").encode()

    def _other(self, value: Any) -> str:
        if isinstance(value, str):  # a str subclass (a TextChoices member): its value, as psycopg's StrDumper
            return _quoted(str.__str__(value))
        if isinstance(value, list):  # a dimension more: {{...},{...}}
            return self.dump(value).decode()
        if self._transformer is None:
            self._transformer = Transformer.from_context(self.connection)
        dumped = self._transformer.get_dumper(value, psycopg.adapt.PyFormat.TEXT).dump(value)
        return "NULL" if dumped is None else _quoted(bytes(dumped).decode())


class UtcTimestamptzLoader(Loader):
    """timestamptz as psycopg's C loader parses it, for connections whose session time zone is UTC.

    Django registers a Python subclass of psycopg's Python loader (to set its tzinfo): 3.7 us a value against
    0.5 here, on every timestamp every query reads (an order row holds two). psycopg's C loader already answers
    UTC datetimes with datetime.timezone.utc when the session's TimeZone is UTC, which Django sets when it
    expects UTC; it cannot be subclassed, so it is wrapped. `timezone` is what Django's create_cursor compares
    with its own before it registers its loader again on a cursor."""

    timezone = datetime.UTC

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self._load = _C_TIMESTAMPTZ(oid, context).load

    def load(self, data: Any) -> datetime.datetime:
        return self._load(data)


# psycopg's best loader, registered at its import: the C one with psycopg[binary] or psycopg[c].
_C_TIMESTAMPTZ: Any = psycopg.adapters.get_loader(psycopg.postgres.types["timestamptz"].oid, psycopg.pq.Format.TEXT)


def fast_timestamps(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created: a PostgreSQL connection on which Django reads UTC datetimes reads them in C."""
    in_c = psycopg.pq.__impl__ in ("c", "binary")
    if in_c and connection.vendor == "postgresql" and connection.timezone is datetime.UTC:
        connection.connection.adapters.register_loader("timestamptz", UtcTimestamptzLoader)
