"""The hot path: one statement that finds what serves a (user, service, environment).

``get_user_api_key`` runs on every call a host makes to a provider, so it skips
the ORM's query building: the statement is written once per database vendor
from the models' metadata and each call only binds three parameters. It reads
the slot's preference row joined to its default key, which answers "the user's
key, or may the platform stand in?" in one round trip whether or not a key
exists. ``benchmarks/lookup.py`` holds the budget.
"""

from __future__ import annotations

import functools
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

from byok import teams
from byok.fields import SealedCredentials
from byok.models import (
    Budget,
    BudgetSource,
    Reservation,
    ServicePreference,
    UserAPIKey,
    team_model,
)


class SlotRow(NamedTuple):
    """The row the lookup reads for a slot: its preference and default key, still encrypted.

    A named tuple, not a dataclass: it is built on every lookup.
    """

    allow_platform_fallback: bool
    key_id: uuid.UUID | None
    credentials: SealedCredentials | None


class TeamSlotRow(NamedTuple):
    """The team's slot, read only when the user is a member of the team asked for."""

    team_id: Any
    required: bool
    allow_platform_fallback: bool
    key_id: uuid.UUID | None
    credentials: SealedCredentials | None


class BudgetRow(NamedTuple):
    """One budget that covers the service, as the lookup read it: the user's own
    (``team_id`` empty), the user's on a team's key, or (``user_id`` empty) the team's."""

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
    user_id: Any
    team_id: Any
    #: The amount its unexpired reservations hold.
    reserved: Decimal
    #: Who set it (the pages read it; the lookup has no use for it).
    source: str = BudgetSource.USER


class Found(NamedTuple):
    """What the lookup read: the user's slot (``None`` if the user never had one), the
    team's (``None`` without a team, or for a user not in it) and the budgets."""

    slot: SlotRow | None
    team_slot: TeamSlotRow | None
    budgets: tuple[BudgetRow, ...]


#: The statement per database vendor and team adapter's membership table and columns:
#: all it depends on that a setting may change (the user and team models are fixed
#: when Django starts).
_statements: dict[tuple[str, Any, str, str], str] = {}


def _statement(connection: BaseDatabaseWrapper) -> str:
    adapter = teams.adapter()
    cache_key = (
        connection.vendor,
        adapter.membership_model,
        adapter.team_field,
        adapter.user_field,
    )
    sql = _statements.get(cache_key)
    if sql is None:
        membership = teams.membership_model()
        sql = _statements[cache_key] = _build_statement(connection.ops.quote_name, membership)
    return sql


def _build_statement(quote_name: Any, membership_model: Any) -> str:
    user, pref, key = get_user_model()._meta, ServicePreference._meta, UserAPIKey._meta
    budget, reservation, membership = Budget._meta, Reservation._meta, membership_model._meta
    adapter = teams.adapter()

    def column(meta: Any, name: str) -> str:
        return str(quote_name(meta.get_field(name).column))

    user_id = f"u.{column(user, user.pk.name)}"
    team_id = f"m.{column(membership, adapter.team_field)}"
    budget_columns = ", ".join(f"b.{column(budget, name)}" for name in BUDGET_COLUMNS)
    reserved = (
        f"SELECT SUM(r.{column(reservation, 'amount')}) "  # noqa: S608
        f"FROM {quote_name(reservation.db_table)} r "
        f"WHERE r.{column(reservation, 'budget')} = b.{column(budget, 'id')} "
        f"AND r.{column(reservation, 'expires_at')} > %(now)s"
    )
    b_user, b_team = f"b.{column(budget, 'user')}", f"b.{column(budget, 'team')}"
    # Only quoted names from the models' metadata go into the text; values are bound.
    return (
        f"SELECT p.{column(pref, 'allow_platform_fallback')}, "  # noqa: S608
        f"k.{column(key, 'id')}, k.{column(key, 'credentials')}, {team_id}, "
        f"tp.{column(pref, 'required')}, tp.{column(pref, 'allow_platform_fallback')}, "
        f"tk.{column(key, 'id')}, tk.{column(key, 'credentials')}, "
        f"{budget_columns}, ({reserved}) "
        f"FROM {quote_name(user.db_table)} u "
        f"LEFT JOIN {quote_name(pref.db_table)} p ON p.{column(pref, 'user')} = {user_id} "
        f"AND p.{column(pref, 'service')} = %(service)s "
        f"AND p.{column(pref, 'environment')} = %(environment)s "
        f"LEFT JOIN {quote_name(key.db_table)} k "
        f"ON k.{column(key, 'id')} = p.{column(pref, 'default_key')} "
        f"LEFT JOIN {quote_name(membership.db_table)} m ON {team_id} = %(team)s "
        f"AND m.{column(membership, adapter.user_field)} = {user_id} "
        f"LEFT JOIN {quote_name(pref.db_table)} tp ON tp.{column(pref, 'team')} = {team_id} "
        f"AND tp.{column(pref, 'service')} = %(service)s "
        f"AND tp.{column(pref, 'environment')} = %(environment)s "
        f"LEFT JOIN {quote_name(key.db_table)} tk "
        f"ON tk.{column(key, 'id')} = tp.{column(pref, 'default_key')} "
        f"LEFT JOIN {quote_name(budget.db_table)} b "
        f"ON b.{column(budget, 'service')} IN ('', %(service)s) "
        f"AND (({b_user} = {user_id} AND ({b_team} IS NULL OR {b_team} = {team_id})) "
        f"OR ({b_user} IS NULL AND {b_team} = {team_id})) "
        f"WHERE {user_id} = %(user)s"
    )


#: The budget's columns the lookup reads, in :class:`BudgetRow`'s order.
BUDGET_COLUMNS = (
    "id", "service", "applies_to", "period", "limit", "action", "alert_at", "default_name",
    "period_start", "spent", "user", "team",
)  # fmt: skip


#: Where a row's budget columns start, after the slots'.
_BUDGET = 8


def find(
    user_pk: Any, service: str, environment: str, now: datetime, team_pk: Any = None
) -> Found | None:
    """The user's slot, the slot of the team ``team_pk`` if the user is in it, and the
    budgets on ``service`` (the user's, and the team's); ``None`` for a user who does
    not exist."""
    connection: BaseDatabaseWrapper = connections[router.db_for_read(ServicePreference)]
    params = {
        "now": _EXPIRES_AT.get_db_prep_value(now, connection),
        "service": service,
        "environment": environment,
        "team": None if team_pk is None else _team_pk().get_db_prep_value(team_pk, connection),
        "user": _user_pk().get_db_prep_value(user_pk, connection),
    }
    with connection.cursor() as cursor:
        cursor.execute(_statement(connection), params)
        rows = cursor.fetchall()
    if not rows:
        return None
    first = rows[0][:_BUDGET]
    allow, key_id, token, member_of, required, team_allow, team_key_id, team_token = first
    slot = team_slot = None
    if allow is not None:
        slot = SlotRow(bool(allow), _key_pk(key_id), _sealed(token))
    if required is not None:  # the team's slot, joined through the user's membership
        team_slot = TeamSlotRow(
            _team_pk().to_python(member_of),
            bool(required),
            bool(team_allow),
            _key_pk(team_key_id),
            _sealed(team_token),
        )
    budgets = tuple(_budget(row[_BUDGET:]) for row in rows if row[_BUDGET] is not None)
    return Found(slot, team_slot, budgets)


def _key_pk(value: Any) -> uuid.UUID | None:
    return None if value is None else _KEY_PK.to_python(value)


def _sealed(token: str | None) -> SealedCredentials | None:
    return None if token is None else SealedCredentials(token)


def _budget(values: tuple[Any, ...]) -> BudgetRow:
    (pk, service, applies_to, period, limit, action, alert_at, default_name, start, spent) = (
        values[:10]
    )
    user_id, team_id, reserved = values[10:]
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
        None if user_id is None else _user_pk().to_python(user_id),
        None if team_id is None else _team_pk().to_python(team_id),
        Decimal(0) if reserved is None else _decimal(reserved),
    )


def _decimal(value: Any) -> Decimal:
    """A decimal column's value as the driver returned it (SQLite: a float or an int)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


@functools.cache
def _user_pk() -> Any:
    """The user model's primary key field (the swappable model is only known at run time)."""
    return get_user_model()._meta.pk


@functools.cache
def _team_pk() -> Any:
    return team_model()._meta.pk


#: The fields whose conversions the lookup runs on each call.
_KEY_PK = UserAPIKey._meta.pk
_EXPIRES_AT = Reservation._meta.get_field("expires_at")
