"""The statements that add a call to the counters, in as few round trips as each
database allows. :func:`byok.track_api_usage` is the public way in.

A call served by a user's key adds to the key's running totals and to its row of
the day (one row per model); both add in SQL, so concurrent calls never lose a
count, and every path locks the key's row, then the day's, then the budgets' (an
:class:`Also`: the spend of the budgets that cover the call), so they never deadlock
each other. The usage and the spend go together or not at all.

- **PostgreSQL**: one statement. A data-modifying CTE updates the key, and its
  ``RETURNING`` feeds the day's ``INSERT … ON CONFLICT DO UPDATE``; the budgets'
  ``UPDATE … RETURNING`` joins the same statement.
- **MySQL / MariaDB**: one multi-table ``UPDATE`` of the key, its row of the day and
  the budgets' rows, when the day's row exists (every call but a key's first of the
  day for a model), then a read of the budgets' rows; else the key's ``UPDATE``, the
  day's ``INSERT … ON DUPLICATE KEY UPDATE`` and the budgets' ``UPDATE`` in one
  transaction.
- **SQLite** and other databases: the statements in one transaction.

A call on the platform's key is one upsert of the user's row of the day everywhere
(with the budgets' ``UPDATE``: one statement on PostgreSQL, one transaction
elsewhere).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from django.db import IntegrityError, connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F

from byok.models import KeyUsage, PlatformUsage, UserAPIKey

#: The counters a call adds to: the day's columns, some of them also the key's.
Counters = Mapping[str, Any]
#: What identifies a row of the day besides its key (or user): ``date`` and ``model``.
Day = Mapping[str, Any]

#: The day's counters the key keeps a running total of, and the key's column for each.
_KEY_TOTALS = {"calls": "usage_count", "cost": "estimated_cost"}
#: Databases whose upsert statement byok writes; any other takes the portable path.
UPSERT_VENDORS = frozenset({"postgresql", "sqlite", "mysql"})


class Also(NamedTuple):
    """An ``UPDATE`` of another table that goes with the usage (the budgets' spend), in
    the usage's own statement where the database allows: the table, its assignments
    and their parameters, its condition and theirs, and the columns it returns.

    ``ordered``: its assignments must run in the order written (a budget's period
    rolling over), which MySQL's multi-table ``UPDATE`` does not promise.
    """

    table: str
    assignments: str
    params: list[Any]
    where: str
    where_params: list[Any]
    returning: str
    ordered: bool = False


def add_key_usage(
    key_id: uuid.UUID, day: Day, now: datetime, counters: Counters, *, also: Also | None = None
) -> list[tuple[Any, ...]]:
    """Add ``counters`` to the key's totals and to its row of ``day`` (date and model).

    ``also`` runs with the usage, after it, atomically: in the same statement on
    PostgreSQL (and on MySQL once the day's row exists), else in one transaction. The
    rows it returns are returned.
    """
    connection = connections[router.db_for_write(UserAPIKey)]
    if connection.vendor == "postgresql" and connection.vendor in UPSERT_VENDORS:
        ctes, insert, params = _key_usage_cte(connection, key_id, day, now, counters)
        return _run(connection, ctes, insert, params, also)
    if (
        connection.vendor == "mysql"
        and (also is None or not also.ordered)
        and _add_to_existing_day(connection, key_id, day, now, counters, also)
    ):
        return _read(connection, also)
    # Inside the caller's transaction no savepoint is needed: a failure here fails the
    # whole of it.
    with transaction.atomic(using=connection.alias, savepoint=False):
        _add_to_key(connection, key_id, now, counters)
        upsert(KeyUsage, {"key": key_id, **day}, counters)
        return run_also(connection, also)


def add_platform_usage(
    user_pk: Any,
    service: str,
    environment: str,
    day: Day,
    counters: Counters,
    *,
    also: Also | None = None,
) -> list[tuple[Any, ...]]:
    """Add ``counters`` to the user's row of ``day`` on the platform's key (``also``:
    as for :func:`add_key_usage`, one statement on PostgreSQL)."""
    keys = {"user": user_pk, "service": service, "environment": environment, **day}
    connection = connections[router.db_for_write(PlatformUsage)]
    if also is None:
        upsert(PlatformUsage, keys, counters)
        return []
    if connection.vendor == "postgresql":
        insert, params = _upsert_statement(connection, PlatformUsage, keys, counters)
        return _run(connection, [], insert, params, also)
    with transaction.atomic(using=connection.alias, savepoint=False):
        upsert(PlatformUsage, keys, counters)
        return run_also(connection, also)


def run_also(connection: BaseDatabaseWrapper, also: Also | None) -> list[tuple[Any, ...]]:
    """Run ``also`` on its own; its rows right after it: returned by the ``UPDATE``
    where the database can, else read under the row locks it took."""
    if also is None:
        return []
    sql = f"UPDATE {also.table} SET {also.assignments} WHERE {also.where}"  # noqa: S608
    params = [*also.params, *also.where_params]
    if not _returns_from_update(connection):
        _execute(connection, sql, params)
        return _read(connection, also)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {also.returning}", params)
        return list(cursor.fetchall())


def _read(connection: BaseDatabaseWrapper, also: Also | None) -> list[tuple[Any, ...]]:
    if also is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {also.returning} FROM {also.table} WHERE {also.where}",  # noqa: S608
            also.where_params,
        )
        return list(cursor.fetchall())


def _returns_from_update(connection: BaseDatabaseWrapper) -> bool:
    """Whether ``UPDATE … RETURNING`` works (PostgreSQL, SQLite 3.35+; not MariaDB's)."""
    if connection.vendor == "postgresql":
        return True
    return connection.vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 35)


def _run(
    connection: BaseDatabaseWrapper,
    ctes: list[str],
    insert: str,
    params: list[Any],
    also: Also | None,
) -> list[tuple[Any, ...]]:
    """PostgreSQL: the usage's ``INSERT`` after its ``ctes``; then ``also``, once the
    usage's rows are locked (the one-time condition on ``day`` runs the usage first),
    so that every path locks the key, the day and then the rest in that order."""
    if also is None:
        _execute(connection, f"WITH {', '.join(ctes)} {insert}" if ctes else insert, params)
        return []
    # Only texts made of the models' quoted names go in; values are bound.
    sql = (
        f"WITH {', '.join([*ctes, f'day AS ({insert} RETURNING 1)'])}, "  # noqa: S608
        f"also AS (UPDATE {also.table} SET {also.assignments} "
        f"WHERE ({also.where}) AND (SELECT count(*) FROM day) >= 0 "
        f"RETURNING {also.returning}) SELECT {also.returning} FROM also"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *also.params, *also.where_params])
        return list(cursor.fetchall())


def upsert(model: type[models.Model], keys: Mapping[str, Any], counters: Counters) -> None:
    """Add ``counters`` to the row identified by ``keys``, creating it if needed.

    One ``INSERT … ON CONFLICT`` (``ON DUPLICATE KEY`` on MySQL/MariaDB) statement,
    so the addition is atomic under concurrency without a lock.
    """
    connection = connections[router.db_for_write(model)]
    if connection.vendor not in UPSERT_VENDORS:
        _upsert_portably(model, keys, counters)
        return
    _execute(connection, *_upsert_statement(connection, model, keys, counters))


def _upsert_statement(
    connection: BaseDatabaseWrapper,
    model: type[models.Model],
    keys: Mapping[str, Any],
    counters: Counters,
) -> tuple[str, list[Any]]:
    table = connection.ops.quote_name(model._meta.db_table)
    column = quoted_columns(connection, model)
    added = [column[name] for name in counters]
    if connection.vendor == "mysql":
        update = ", ".join(f"{c} = {c} + VALUES({c})" for c in added)
        conflict = f"ON DUPLICATE KEY UPDATE {update}"
    else:
        target = ", ".join(column[name] for name in keys)
        update = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in added)
        conflict = f"ON CONFLICT ({target}) DO UPDATE SET {update}"
    names = [*keys, *counters]
    # Only quoted names from the model's metadata go into the text; values are bound.
    sql = (
        f"INSERT INTO {table} ({', '.join(column[name] for name in names)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(names))}) {conflict}"
    )
    values = {**keys, **counters}
    return sql, [prep(model, name, values[name], connection) for name in names]


def _key_usage_cte(
    connection: BaseDatabaseWrapper,
    key_id: uuid.UUID,
    day: Day,
    now: datetime,
    counters: Counters,
) -> tuple[list[str], str, list[Any]]:
    """PostgreSQL's one statement: the key's update (a CTE) feeding the day's upsert."""
    key, usage = quoted_columns(connection, UserAPIKey), quoted_columns(connection, KeyUsage)
    key_table = connection.ops.quote_name(UserAPIKey._meta.db_table)
    day_table = connection.ops.quote_name(KeyUsage._meta.db_table)
    totals = [(total, counters[name]) for name, total in _KEY_TOTALS.items() if name in counters]
    assignments = ", ".join(
        [
            *(f"{key[total]} = {key[total]} + %s" for total, _ in totals),
            f"{key['last_used_at']} = %s",
        ]
    )
    names = [*day, *counters]
    target = ", ".join(usage[name] for name in ("key", *day))
    added = ", ".join(
        f"{usage[n]} = {day_table}.{usage[n]} + excluded.{usage[n]}" for n in counters
    )
    # Only quoted names from the models' metadata go into the text; values are bound.
    served = (
        f"served AS (UPDATE {key_table} SET {assignments} "  # noqa: S608
        f"WHERE {key['id']} = %s RETURNING {key['id']})"
    )
    insert = (
        f"INSERT INTO {day_table} ({usage['key']}, {', '.join(usage[n] for n in names)}) "  # noqa: S608
        f"SELECT {key['id']}, {', '.join(['%s'] * len(names))} FROM served "
        f"ON CONFLICT ({target}) DO UPDATE SET {added}"
    )
    values = {**day, **counters}
    params = [
        *(prep(UserAPIKey, total, amount, connection) for total, amount in totals),
        prep(UserAPIKey, "last_used_at", now, connection),
        prep(UserAPIKey, "id", key_id, connection),
        *(prep(KeyUsage, name, values[name], connection) for name in names),
    ]
    return [served], insert, params


def _add_to_existing_day(
    connection: BaseDatabaseWrapper,
    key_id: uuid.UUID,
    day: Day,
    now: datetime,
    counters: Counters,
    also: Also | None,
) -> bool:
    """MySQL's multi-table ``UPDATE`` of the key, its row of the day and ``also``'s
    rows (joined in that order: the order every path locks them); ``False`` when the
    key has no such row of the day, or ``also`` matches no row."""
    key, usage = quoted_columns(connection, UserAPIKey), quoted_columns(connection, KeyUsage)
    quote = connection.ops.quote_name
    totals = [(total, counters[name]) for name, total in _KEY_TOTALS.items() if name in counters]
    assignments = [
        *(f"k.{key[total]} = k.{key[total]} + %s" for total, _ in totals),
        f"k.{key['last_used_at']} = %s",
        *(f"d.{usage[name]} = d.{usage[name]} + %s" for name in counters),
    ]
    matches = " AND ".join(f"d.{usage[name]} = %s" for name in day)
    joined = "" if also is None else f" STRAIGHT_JOIN {also.table} ON {also.where}"
    if also is not None:
        assignments.append(also.assignments)
    # Only quoted names from the models' metadata go into the text; values are bound.
    sql = (
        f"UPDATE {quote(UserAPIKey._meta.db_table)} k "  # noqa: S608
        f"STRAIGHT_JOIN {quote(KeyUsage._meta.db_table)} d ON d.{usage['key']} = k.{key['id']} "
        f"AND {matches}{joined} SET {', '.join(assignments)} WHERE k.{key['id']} = %s"
    )
    params = [
        *(prep(KeyUsage, name, value, connection) for name, value in day.items()),
        *([] if also is None else also.where_params),
        *(prep(UserAPIKey, total, amount, connection) for total, amount in totals),
        prep(UserAPIKey, "last_used_at", now, connection),
        *(prep(KeyUsage, name, value, connection) for name, value in counters.items()),
        *([] if also is None else also.params),
        prep(UserAPIKey, "id", key_id, connection),
    ]
    return _execute(connection, sql, params) > 0


def _add_to_key(
    connection: BaseDatabaseWrapper, key_id: uuid.UUID, now: datetime, counters: Counters
) -> None:
    """The key's ``UPDATE`` of its running totals and when it was last used."""
    key = quoted_columns(connection, UserAPIKey)
    totals = [(total, counters[name]) for name, total in _KEY_TOTALS.items() if name in counters]
    assignments = ", ".join(
        [
            *(f"{key[total]} = {key[total]} + %s" for total, _ in totals),
            f"{key['last_used_at']} = %s",
        ]
    )
    table = connection.ops.quote_name(UserAPIKey._meta.db_table)
    # Only quoted names from the model's metadata go into the text; values are bound.
    sql = f"UPDATE {table} SET {assignments} WHERE {key['id']} = %s"  # noqa: S608
    params = [
        *(prep(UserAPIKey, total, amount, connection) for total, amount in totals),
        prep(UserAPIKey, "last_used_at", now, connection),
        prep(UserAPIKey, "id", key_id, connection),
    ]
    _execute(connection, sql, params)


_column_names: dict[tuple[str, type[models.Model]], dict[str, str]] = {}


def quoted_columns(connection: BaseDatabaseWrapper, model: type[models.Model]) -> dict[str, str]:
    """Field name to quoted column, for the concrete fields of ``model`` (worked out once
    per database vendor)."""
    cache_key = (connection.vendor, model)
    columns = _column_names.get(cache_key)
    if columns is None:
        quote = connection.ops.quote_name
        columns = {field.name: quote(str(field.column)) for field in model._meta.concrete_fields}
        _column_names[cache_key] = columns
    return columns


def prep(model: type[models.Model], name: str, value: Any, connection: BaseDatabaseWrapper) -> Any:
    """``value`` of ``model``'s field ``name`` as ``connection``'s database takes it."""
    if type(value) is int:  # a count (checked whole and non-negative) or an integer id
        return value
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field.get_db_prep_save(value, connection)


def _execute(connection: BaseDatabaseWrapper, sql: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _upsert_portably(
    model: type[models.Model], keys: Mapping[str, Any], counters: Counters
) -> None:
    """The same addition for databases without an upsert statement byok knows."""
    lookup = {
        f"{name}_id" if model._meta.get_field(name).is_relation else name: value
        for name, value in keys.items()
    }
    increments = {name: F(name) + value for name, value in counters.items()}
    manager = model._default_manager
    if manager.filter(**lookup).update(**increments):
        return
    try:
        with transaction.atomic(using=router.db_for_write(model)):
            manager.create(**lookup, **counters)
    except IntegrityError:  # created concurrently since the update
        manager.filter(**lookup).update(**increments)
