"""The hot path: one statement that finds what serves a (user, service, environment).

``get_user_api_key`` runs on every call a host makes to a provider, so it skips
the ORM's query building: the statement is written once per database vendor
from the models' metadata and each call only binds three parameters. It reads
the slot's preference row joined to its default key, which answers "the user's
key, or may the platform stand in?" in one round trip whether or not a key
exists. ``benchmarks/lookup.py`` holds the budget.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from byok.fields import SealedCredentials
from byok.models import Budget, Reservation, ServicePreference, UserAPIKey


class SlotRow(NamedTuple):
    """The row the lookup reads for a slot: its preference and default key, still encrypted.

    A named tuple, not a dataclass: it is built on every lookup.
    """

    allow_platform_fallback: bool
    key_id: uuid.UUID | None
    credentials: SealedCredentials | None


class BudgetRow(NamedTuple):
    """One of the user's budgets that covers the service, as the lookup read it."""

    id: int
    service: str
    applies_to: str
    period: str
    limit: Decimal | None
    action: str
    alert_at: str | None
    default_name: str
    period_start: date | None
    spent: Decimal
    #: The amount its unexpired reservations hold.
    reserved: Decimal


class Found(NamedTuple):
    """What the lookup read: the slot (``None`` if the user never had one) and the
    user's budgets on the service."""

    slot: SlotRow | None
    budgets: tuple[BudgetRow, ...]


_statements: dict[str, str] = {}


def _statement(connection: BaseDatabaseWrapper) -> str:
    sql = _statements.get(connection.vendor)
    if sql is None:
        sql = _statements[connection.vendor] = _build_statement(connection.ops.quote_name)
    return sql


def _build_statement(quote_name: Any) -> str:
    user, pref, key = get_user_model()._meta, ServicePreference._meta, UserAPIKey._meta
    budget, reservation = Budget._meta, Reservation._meta

    def column(meta: Any, name: str) -> str:
        return str(quote_name(meta.get_field(name).column))

    user_id = f"u.{column(user, user.pk.name)}"
    budget_columns = ", ".join(f"b.{column(budget, name)}" for name in BUDGET_COLUMNS)
    reserved = (
        f"SELECT SUM(r.{column(reservation, 'amount')}) "  # noqa: S608
        f"FROM {quote_name(reservation.db_table)} r "
        f"WHERE r.{column(reservation, 'budget')} = b.{column(budget, 'id')} "
        f"AND r.{column(reservation, 'expires_at')} > %s"
    )
    # Only quoted names from the models' metadata go into the text; values are bound.
    return (
        f"SELECT p.{column(pref, 'allow_platform_fallback')}, "  # noqa: S608
        f"k.{column(key, 'id')}, k.{column(key, 'credentials')}, {budget_columns}, ({reserved}) "
        f"FROM {quote_name(user.db_table)} u "
        f"LEFT JOIN {quote_name(pref.db_table)} p ON p.{column(pref, 'user')} = {user_id} "
        f"AND p.{column(pref, 'service')} = %s AND p.{column(pref, 'environment')} = %s "
        f"LEFT JOIN {quote_name(key.db_table)} k "
        f"ON k.{column(key, 'id')} = p.{column(pref, 'default_key')} "
        f"LEFT JOIN {quote_name(budget.db_table)} b ON b.{column(budget, 'user')} = {user_id} "
        f"AND b.{column(budget, 'service')} IN ('', %s) "
        f"WHERE {user_id} = %s"
    )


#: The budget's columns the lookup reads, in :class:`BudgetRow`'s order.
BUDGET_COLUMNS = (
    "id", "service", "applies_to", "period", "limit", "action", "alert_at", "default_name",
    "period_start", "spent",
)  # fmt: skip


def find(user_pk: Any, service: str, environment: str, now: datetime) -> Found | None:
    """The slot's preference and default key, and the user's budgets on ``service``;
    ``None`` for a user who does not exist."""
    connection: BaseDatabaseWrapper = connections[router.db_for_read(ServicePreference)]
    params = [
        _prep(Reservation, "expires_at", now, connection),
        service,
        environment,
        service,
        _user_pk().get_db_prep_value(user_pk, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_statement(connection), params)
        rows = cursor.fetchall()
    if not rows:
        return None
    allow, key_id, token = rows[0][:3]
    slot = None
    if allow is not None:
        slot = SlotRow(
            bool(allow),
            None if key_id is None else _KEY_PK.to_python(key_id),
            None if token is None else SealedCredentials(token),
        )
    budgets = tuple(_budget(row[3:]) for row in rows if row[3] is not None)
    return Found(slot, budgets)


def find_slot(user_pk: Any, service: str, environment: str) -> SlotRow | None:
    """The slot's preference and default key, or ``None`` if the user never had one."""
    found = find(user_pk, service, environment, timezone.now())
    return None if found is None else found.slot


def _budget(values: tuple[Any, ...]) -> BudgetRow:
    (pk, service, applies_to, period, limit, action, alert_at, default_name, start, spent) = (
        values[:10]
    )
    reserved = values[10]
    return BudgetRow(
        int(pk),
        service,
        applies_to,
        period,
        None if limit is None else _decimal(limit),
        action,
        alert_at,
        default_name,
        start if start is None or isinstance(start, date) else date.fromisoformat(start),
        _decimal(spent),
        Decimal(0) if reserved is None else _decimal(reserved),
    )


def _decimal(value: Any) -> Decimal:
    """A decimal column's value as the driver returned it (SQLite: a float or an int)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _prep(model: Any, name: str, value: Any, connection: BaseDatabaseWrapper) -> Any:
    return model._meta.get_field(name).get_db_prep_value(value, connection)


def _user_pk() -> Any:
    """The user model's primary key field (the swappable model is only known at run time)."""
    return get_user_model()._meta.pk


#: The fields whose conversions the lookup runs on each call.
_KEY_PK = UserAPIKey._meta.pk
