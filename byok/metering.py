"""The statements that add a call to the counters, in as few round trips as each
database allows. :func:`byok.track_api_usage` is the public way in.

A call served by a user's key adds to the key's running totals and to its row of
the day (one row per model); both add in SQL, so concurrent calls never lose a
count, and the key's row is always locked before the day's, so they never deadlock
each other.

- **PostgreSQL**: one statement. A data-modifying CTE updates the key, and its
  ``RETURNING`` feeds the day's ``INSERT … ON CONFLICT DO UPDATE``.
- **MySQL / MariaDB**: one multi-table ``UPDATE`` of the key and its row of the day,
  when that row exists (every call but a key's first of the day for a model); else
  the key's ``UPDATE`` and the day's ``INSERT … ON DUPLICATE KEY UPDATE`` in one
  transaction.
- **SQLite** and other databases: the two statements in one transaction.

A call on the platform's key is one upsert of the user's row of the day everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

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


def add_key_usage(key_id: uuid.UUID, day: Day, now: datetime, counters: Counters) -> None:
    """Add ``counters`` to the key's totals and to its row of ``day`` (date and model)."""
    connection = connections[router.db_for_write(UserAPIKey)]
    if connection.vendor == "postgresql" and connection.vendor in UPSERT_VENDORS:
        sql, params = _key_usage_cte(connection, key_id, day, now, counters)
        _execute(connection, sql, params)
        return
    if connection.vendor == "mysql" and _add_to_existing_day(
        connection, key_id, day, now, counters
    ):
        return
    # Inside the caller's transaction (budgets charged with the usage) no savepoint is
    # needed: a failure here fails the whole of it.
    with transaction.atomic(using=connection.alias, savepoint=False):
        _add_to_key(connection, key_id, now, counters)
        upsert(KeyUsage, {"key": key_id, **day}, counters)


def add_platform_usage(
    user_pk: Any, service: str, environment: str, day: Day, counters: Counters
) -> None:
    """Add ``counters`` to the user's row of ``day`` on the platform's key."""
    keys = {"user": user_pk, "service": service, "environment": environment, **day}
    upsert(PlatformUsage, keys, counters)


def upsert(model: type[models.Model], keys: Mapping[str, Any], counters: Counters) -> None:
    """Add ``counters`` to the row identified by ``keys``, creating it if needed.

    One ``INSERT … ON CONFLICT`` (``ON DUPLICATE KEY`` on MySQL/MariaDB) statement,
    so the addition is atomic under concurrency without a lock.
    """
    connection = connections[router.db_for_write(model)]
    if connection.vendor not in UPSERT_VENDORS:
        _upsert_portably(model, keys, counters)
        return
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
    _execute(connection, sql, [_prep(model, name, values[name], connection) for name in names])


def _key_usage_cte(
    connection: BaseDatabaseWrapper,
    key_id: uuid.UUID,
    day: Day,
    now: datetime,
    counters: Counters,
) -> tuple[str, list[Any]]:
    """PostgreSQL's one statement: the key's update feeding the day's upsert."""
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
    sql = (
        f"WITH served AS (UPDATE {key_table} SET {assignments} "  # noqa: S608
        f"WHERE {key['id']} = %s RETURNING {key['id']}) "
        f"INSERT INTO {day_table} ({usage['key']}, {', '.join(usage[n] for n in names)}) "
        f"SELECT {key['id']}, {', '.join(['%s'] * len(names))} FROM served "
        f"ON CONFLICT ({target}) DO UPDATE SET {added}"
    )
    values = {**day, **counters}
    params = [
        *(_prep(UserAPIKey, total, amount, connection) for total, amount in totals),
        _prep(UserAPIKey, "last_used_at", now, connection),
        _prep(UserAPIKey, "id", key_id, connection),
        *(_prep(KeyUsage, name, values[name], connection) for name in names),
    ]
    return sql, params


def _add_to_existing_day(
    connection: BaseDatabaseWrapper,
    key_id: uuid.UUID,
    day: Day,
    now: datetime,
    counters: Counters,
) -> bool:
    """MySQL's multi-table ``UPDATE``: ``False`` when the key has no such row of the day."""
    key, usage = quoted_columns(connection, UserAPIKey), quoted_columns(connection, KeyUsage)
    quote = connection.ops.quote_name
    totals = [(total, counters[name]) for name, total in _KEY_TOTALS.items() if name in counters]
    assignments = [
        *(f"k.{key[total]} = k.{key[total]} + %s" for total, _ in totals),
        f"k.{key['last_used_at']} = %s",
        *(f"d.{usage[name]} = d.{usage[name]} + %s" for name in counters),
    ]
    matches = " AND ".join(f"d.{usage[name]} = %s" for name in day)
    # Only quoted names from the models' metadata go into the text; values are bound.
    sql = (
        f"UPDATE {quote(UserAPIKey._meta.db_table)} k "  # noqa: S608
        f"JOIN {quote(KeyUsage._meta.db_table)} d ON d.{usage['key']} = k.{key['id']} "
        f"AND {matches} SET {', '.join(assignments)} WHERE k.{key['id']} = %s"
    )
    params = [
        *(_prep(KeyUsage, name, value, connection) for name, value in day.items()),
        *(_prep(UserAPIKey, total, amount, connection) for total, amount in totals),
        _prep(UserAPIKey, "last_used_at", now, connection),
        *(_prep(KeyUsage, name, value, connection) for name, value in counters.items()),
        _prep(UserAPIKey, "id", key_id, connection),
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
        *(_prep(UserAPIKey, total, amount, connection) for total, amount in totals),
        _prep(UserAPIKey, "last_used_at", now, connection),
        _prep(UserAPIKey, "id", key_id, connection),
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


def _prep(
    model: type[models.Model], name: str, value: Any, connection: BaseDatabaseWrapper
) -> Any:
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
