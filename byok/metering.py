"""The statements that add a call to the counters, in as few round trips as each
database allows. :func:`byok.track_api_usage` is the public way in.

A call served by a user's key adds to the key's running totals and to its row of
the day; both add in SQL, so concurrent calls never lose a count, and the key's row
is always locked before the day's, so they never deadlock each other.

- **PostgreSQL**: one statement. A data-modifying CTE updates the key, and its
  ``RETURNING`` feeds the day's ``INSERT … ON CONFLICT DO UPDATE``.
- **MySQL / MariaDB**: one multi-table ``UPDATE`` of the key and its row of the day,
  when that row exists (every call but a key's first of the day); else the key's
  ``UPDATE`` and the day's ``INSERT … ON DUPLICATE KEY UPDATE`` in one transaction.
- **SQLite** and other databases: the two statements in one transaction.

A call on the platform's key is one upsert of the user's row of the day everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F

from byok.models import KeyUsage, PlatformUsage, UserAPIKey

#: The counters a call adds to, on a day's row and (but ``units``) on the key.
Counters = Mapping[str, Any]

_KEY_TOTALS = {"calls": "usage_count", "cost": "estimated_cost"}
#: Databases whose upsert statement byok writes; any other takes the portable path.
UPSERT_VENDORS = frozenset({"postgresql", "sqlite", "mysql"})


def add_key_usage(key_id: uuid.UUID, today: date, now: datetime, counters: Counters) -> None:
    """Add ``counters`` to the key's totals and to its row of ``today``."""
    connection = connections[router.db_for_write(UserAPIKey)]
    if connection.vendor == "postgresql" and connection.vendor in UPSERT_VENDORS:
        _execute(
            connection,
            _key_usage_cte(connection, counters),
            _cte_params(connection, key_id, today, now, counters),
        )
        return
    if connection.vendor == "mysql" and _add_to_existing_day(
        connection, key_id, today, now, counters
    ):
        return
    with transaction.atomic(using=connection.alias):
        _add_to_key(connection, key_id, now, counters)
        upsert(KeyUsage, {"key": key_id, "date": today}, counters)


def add_platform_usage(
    user_pk: Any, service: str, environment: str, today: date, counters: Counters
) -> None:
    """Add ``counters`` to the user's row of ``today`` on the platform's key."""
    keys = {"user": user_pk, "service": service, "environment": environment, "date": today}
    upsert(PlatformUsage, keys, counters)


def upsert(model: type[models.Model], keys: dict[str, Any], counters: Counters) -> None:
    """Add ``counters`` to the row identified by ``keys``, creating it if needed.

    One ``INSERT … ON CONFLICT`` (``ON DUPLICATE KEY`` on MySQL/MariaDB) statement,
    so the addition is atomic under concurrency without a lock.
    """
    connection = connections[router.db_for_write(model)]
    if connection.vendor not in UPSERT_VENDORS:
        _upsert_portably(model, keys, counters)
        return
    quote = connection.ops.quote_name
    fields = {name: _field(model, name) for name in [*keys, *counters]}
    table = quote(model._meta.db_table)
    column = {name: quote(str(field.column)) for name, field in fields.items()}
    added = [column[name] for name in counters]
    if connection.vendor == "mysql":
        update = ", ".join(f"{c} = {c} + VALUES({c})" for c in added)
        conflict = f"ON DUPLICATE KEY UPDATE {update}"
    else:
        target = ", ".join(column[name] for name in keys)
        update = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in added)
        conflict = f"ON CONFLICT ({target}) DO UPDATE SET {update}"
    # Only quoted names from the model's metadata go into the text; values are bound.
    sql = (
        f"INSERT INTO {table} ({', '.join(column.values())}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) {conflict}"
    )
    values = {**keys, **counters}
    _execute(
        connection,
        sql,
        [fields[name].get_db_prep_save(values[name], connection) for name in fields],
    )


def _key_usage_cte(connection: BaseDatabaseWrapper, counters: Counters) -> str:
    key, day = _columns(connection, UserAPIKey), _columns(connection, KeyUsage)
    key_table = connection.ops.quote_name(UserAPIKey._meta.db_table)
    day_table = connection.ops.quote_name(KeyUsage._meta.db_table)
    totals = ", ".join(
        f"{key[total]} = {key[total]} + %s"
        for name, total in _KEY_TOTALS.items()
        if name in counters
    )
    names = ", ".join(day[name] for name in ("key", "date", *counters))
    added = ", ".join(f"{day[n]} = {day_table}.{day[n]} + excluded.{day[n]}" for n in counters)
    # Only quoted names from the models' metadata go into the text; values are bound.
    return (
        f"WITH served AS (UPDATE {key_table} SET {totals}, {key['last_used_at']} = %s "  # noqa: S608
        f"WHERE {key['id']} = %s RETURNING {key['id']}) "
        f"INSERT INTO {day_table} ({names}) "
        f"SELECT {key['id']}, %s, {', '.join(['%s'] * len(counters))} FROM served "
        f"ON CONFLICT ({day['key']}, {day['date']}) DO UPDATE SET {added}"
    )


def _cte_params(
    connection: BaseDatabaseWrapper,
    key_id: uuid.UUID,
    today: date,
    now: datetime,
    counters: Counters,
) -> list[Any]:
    return [
        *_key_totals(connection, counters),
        _prep(UserAPIKey, "last_used_at", now, connection),
        _prep(UserAPIKey, "id", key_id, connection),
        _prep(KeyUsage, "date", today, connection),
        *(_prep(KeyUsage, name, value, connection) for name, value in counters.items()),
    ]


def _add_to_existing_day(
    connection: BaseDatabaseWrapper,
    key_id: uuid.UUID,
    today: date,
    now: datetime,
    counters: Counters,
) -> bool:
    """MySQL's multi-table ``UPDATE``: ``False`` when the key has no row of ``today`` yet."""
    key, day = _columns(connection, UserAPIKey), _columns(connection, KeyUsage)
    quote = connection.ops.quote_name
    totals = [
        f"k.{key[total]} = k.{key[total]} + %s"
        for name, total in _KEY_TOTALS.items()
        if name in counters
    ]
    used = f"k.{key['last_used_at']} = %s"
    added = [f"d.{day[name]} = d.{day[name]} + %s" for name in counters]
    # Only quoted names from the models' metadata go into the text; values are bound.
    sql = (
        f"UPDATE {quote(UserAPIKey._meta.db_table)} k "  # noqa: S608
        f"JOIN {quote(KeyUsage._meta.db_table)} d ON d.{day['key']} = k.{key['id']} "
        f"AND d.{day['date']} = %s "
        f"SET {', '.join([*totals, used, *added])} "
        f"WHERE k.{key['id']} = %s"
    )
    params = [
        _prep(KeyUsage, "date", today, connection),
        *_key_totals(connection, counters),
        _prep(UserAPIKey, "last_used_at", now, connection),
        *(_prep(KeyUsage, name, value, connection) for name, value in counters.items()),
        _prep(UserAPIKey, "id", key_id, connection),
    ]
    return _execute(connection, sql, params) > 0


def _add_to_key(
    connection: BaseDatabaseWrapper, key_id: uuid.UUID, now: datetime, counters: Counters
) -> None:
    totals = {
        total: F(total) + counters[name] for name, total in _KEY_TOTALS.items() if name in counters
    }
    UserAPIKey.objects.using(connection.alias).filter(pk=key_id).update(**totals, last_used_at=now)


def _key_totals(connection: BaseDatabaseWrapper, counters: Counters) -> list[Any]:
    return [
        _prep(UserAPIKey, total, counters[name], connection)
        for name, total in _KEY_TOTALS.items()
        if name in counters
    ]


def _columns(connection: BaseDatabaseWrapper, model: type[models.Model]) -> dict[str, str]:
    """Field name to quoted column, for the concrete fields of ``model``."""
    quote = connection.ops.quote_name
    return {field.name: quote(str(field.column)) for field in model._meta.concrete_fields}


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _prep(
    model: type[models.Model], name: str, value: Any, connection: BaseDatabaseWrapper
) -> Any:
    return _field(model, name).get_db_prep_save(value, connection)


def _execute(connection: BaseDatabaseWrapper, sql: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _upsert_portably(model: type[models.Model], keys: dict[str, Any], counters: Counters) -> None:
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
