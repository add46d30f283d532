"""Metering: count calls, units and estimated cost, per key or on the platform's key;
and read it back, day by day.

Each call is at most two writes: one upsert of the day's row, and, when the
user's key served, one update of the key's running totals; with them, the spend of
the budgets that cover the call; all in as few round trips as the database allows
(:mod:`byok.metering`). Each adds to the stored values in SQL, so concurrent
requests never lose a count.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple

from asgiref.sync import sync_to_async
from django.db import OperationalError, router, transaction
from django.db.models import F, Sum
from django.utils import timezone

from byok import budgets, measurement, teams
from byok.budgets import Hold
from byok.lookup import BudgetRow, find
from byok.metering import Also, add_key_usage, add_platform_usage
from byok.models import AppliesTo, Environment, KeyUsage, PlatformUsage, UserAPIKey
from byok.resolution import SPENDS, ResolvedKey, choose
from byok.services.prices import Tokens
from byok.services.registry import registry

DEADLOCK_RETRIES = 3
#: The longest model name kept (``DailyUsage.model``).
MAX_MODEL_LENGTH = 100
#: The usage columns that add up per key (or user), model and day.
USAGE_COLUMNS = (
    "calls",
    "units",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "unpriced_calls",
    "cost",
)


def track_api_usage(
    user: Any,
    service: str,
    *,
    calls: int = 1,
    units: int = 0,
    cost: Decimal | int | str | None = None,
    environment: str | None = None,
    key: ResolvedKey | UserAPIKey | None = None,
    model: str | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cached_input_tokens: int = 0,
    cache_write_tokens: int = 0,
    latency_ms: int | None = None,
    outcome: str | None = None,
) -> Decimal:
    """Record usage of ``service`` for ``user``, against whichever key served it, and
    return the cost recorded.

    Pass ``key`` (what :func:`~byok.resolve_api_key` returned) to charge exactly
    the key that was used; otherwise the slot's current default is looked up.
    ``cost=None`` prices the call: from the service's price table for ``model`` and
    the tokens (``input_tokens`` counts every input token, the cached and
    cache-written ones included) and units, or, for a model no table lists (recorded
    as unpriced) or no model, the service's estimate per call. Usage is kept per
    model per day. Anonymous users are not metered.

    ``outcome`` (``"ok"``, ``"4xx"``, ``"429"``, ``"5xx"``, ``"timeout"`` or
    ``"error"``: no answer) and ``latency_ms`` say how the calls went: each of the
    ``calls`` counts once in that outcome and in that latency's bucket
    (:mod:`byok.measurement`), in the same statement as the usage. Leave them out
    for calls that were not measured.
    """
    definition = registry.get(service)
    counts = {
        "calls": calls,
        "units": units,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_input_tokens": cached_input_tokens,
        "cache_write_tokens": cache_write_tokens,
    }
    if any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in counts.values()):
        raise ValueError("calls, units and token counts must be non-negative integers.")
    model = _check_model(model)
    measurement.check(latency_ms, outcome)
    tokens = Tokens(input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, units)
    priced, found = definition.cost(model, tokens, calls)
    amount = priced if cost is None else Decimal(str(cost))
    if amount < 0:
        raise ValueError("cost must not be negative.")
    environment = Environment.resolve(environment if key is None else key.environment)
    if user is None or not user.is_authenticated:
        return amount
    served = _served_by(user, service, environment, key)
    key_id, spends, hold = served.key_id, served.spends, served.hold
    charge = budgets.Charge(user.pk, service, spends, amount, served.budgets, served.team_id)
    counters = {
        **{name: n for name, n in counts.items() if name != "cache_write_tokens"},
        "unpriced_calls": calls if model and cost is None and not found else 0,
        "cost": amount,
        **measurement.counters(calls, latency_ms, outcome),
    }
    using = router.db_for_write(UserAPIKey)
    connection = transaction.get_connection(using)
    # A deadlock victim's transaction was rolled back whole, so running it again
    # is safe; inside a caller's transaction the caller must decide instead.
    attempts = 1 if connection.in_atomic_block else DEADLOCK_RETRIES
    record = partial(_record, user, service, environment, key_id, model, counters)
    charge.make_rows()
    for attempt in range(1, attempts + 1):
        try:
            # The usage and the budgets' spend go together (byok.metering), and with
            # them the settling of the reservation.
            also = charge.update(connection) if charge else None
            if hold is None:
                returned = record(also=also)
            else:
                with transaction.atomic(using=using):
                    returned = record(also=also)
                    hold.settle()
            charge.announce(returned)
            return amount
        except OperationalError as error:
            if attempt == attempts or not is_deadlock(error):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _check_model(model: object) -> str:
    """A model name as recorded: up to 100 printable characters, or ``""`` for none."""
    if model is None:
        return ""
    if not isinstance(model, str) or len(model) > MAX_MODEL_LENGTH or not model.isprintable():
        raise ValueError(f"model must be a name of at most {MAX_MODEL_LENGTH} characters.")
    return model


def _record(
    user: Any,
    service: str,
    environment: str,
    key_id: uuid.UUID | None,
    model: str,
    counters: dict[str, Any],
    *,
    also: Also | None = None,
) -> list[tuple[Any, ...]]:
    day = {"date": timezone.localdate(), "model": model}
    if key_id is None:
        return add_platform_usage(user.pk, service, environment, day, counters, also=also)
    return add_key_usage(key_id, {"user": user.pk, **day}, timezone.now(), counters, also=also)


def is_deadlock(error: OperationalError) -> bool:
    """Whether the database chose this transaction as a deadlock victim."""
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    return sqlstate in ("40P01", "40001") or (bool(error.args) and error.args[0] == 1213)


atrack_api_usage = sync_to_async(track_api_usage)


class Served(NamedTuple):
    """Which key served a call, whose money it spends, the budgets that may count it and
    the money reserved for it."""

    key_id: uuid.UUID | None
    spends: str
    team_id: Any
    budgets: Sequence[BudgetRow]
    hold: Hold | None


def _served_by(
    user: Any, service: str, environment: str, key: ResolvedKey | UserAPIKey | None
) -> Served:
    """What :func:`~byok.resolve_api_key` returned says it all; a key row, or nothing
    (the key that serves now, as the lookup would choose it), takes one query."""
    if isinstance(key, ResolvedKey):
        return Served(key.key_id, key.spends, key.team_id, key.budgets, key.hold)
    if isinstance(key, UserAPIKey):
        found = find(user.pk, service, environment, timezone.now(), key.team_id)
        spends = AppliesTo.TEAM if key.team_id is not None else AppliesTo.OWN
        return Served(key.pk, spends, key.team_id, found.budgets if found else (), None)
    team = teams.team_pk(teams.current_team(user))
    found = find(user.pk, service, environment, timezone.now(), team)
    choice = choose(found, service)
    spends = SPENDS[choice.source or "platform"]
    return Served(choice.key_id, spends, choice.team_id, found.budgets if found else (), None)


@dataclass(frozen=True)
class UsageWindow:
    start: date
    end: date
    days: int
    service: str | None
    #: One per (date, service, source): ``calls``, ``units``, ``cost``, sorted.
    rows: list[dict[str, Any]]


def usage_for(user: Any, *, days: int = 30, service: str | None = None) -> UsageWindow:
    """Daily usage over the last ``days`` days (today included), by whose key served it."""
    end = timezone.localdate()
    start = end - timedelta(days=days - 1)
    own = KeyUsage.objects.filter(key__user=user, date__gte=start)
    platform = PlatformUsage.objects.filter(user=user, date__gte=start)
    if service:
        own, platform = own.filter(key__service=service), platform.filter(service=service)
    totals = {"calls": Sum("calls"), "units": Sum("units"), "cost": Sum("cost")}
    rows = [
        {**row, "source": "user"}
        for row in own.values("date", service=F("key__service")).annotate(**totals).order_by()
    ] + [
        {**row, "source": "platform"}
        for row in platform.values("date", "service").annotate(**totals).order_by()
    ]
    rows.sort(key=lambda row: (row["date"], row["service"], row["source"]))
    return UsageWindow(start, end, days, service or None, rows)


@dataclass(frozen=True)
class ModelUsageWindow:
    start: date
    end: date
    days: int
    service: str | None
    #: The window's estimated cost, all models together.
    cost: Decimal
    #: Whether some calls were of a model no price table lists (their cost is the
    #: service's estimate per call): the estimate is then incomplete.
    incomplete: bool
    #: One per (service, model, source): calls, units, tokens, cost, unpriced_calls.
    rows: list[dict[str, Any]]


def usage_by_model(user: Any, *, days: int = 30, service: str | None = None) -> ModelUsageWindow:
    """Usage over the last ``days`` days (today included) per service, model and whose
    key served it: two queries, whatever the number of days, keys and models."""
    end = timezone.localdate()
    start = end - timedelta(days=days - 1)
    own = KeyUsage.objects.filter(key__user=user, date__gte=start)
    platform = PlatformUsage.objects.filter(user=user, date__gte=start)
    if service:
        own, platform = own.filter(key__service=service), platform.filter(service=service)
    totals = {name: Sum(name) for name in USAGE_COLUMNS}
    rows: list[dict[str, Any]] = [
        {**row, "source": "user"}
        for row in own.values("model", service=F("key__service")).annotate(**totals).order_by()
    ] + [
        {**row, "source": "platform"}
        for row in platform.values("service", "model").annotate(**totals).order_by()
    ]
    rows.sort(key=lambda row: (row["service"], row["model"], row["source"]))
    for row in rows:
        row["incomplete"] = row["unpriced_calls"] > 0
    return ModelUsageWindow(
        start,
        end,
        days,
        service or None,
        cost=sum((row["cost"] for row in rows), Decimal(0)),
        incomplete=any(row["incomplete"] for row in rows),
        rows=rows,
    )


#: What the usage page's table of cost by model adds up.
_PAGE_TOTALS = ("calls", "input_tokens", "output_tokens", "unpriced_calls", "cost")


def cost_by_model(user: Any, *, days: int = 30) -> list[dict[str, Any]]:
    """Calls, tokens and estimated cost per (service, model) over the last ``days`` days
    (today included), the user's keys and the platform's together, the costliest first.
    ``unpriced_calls`` counts the calls of models no price table lists, priced at the
    service's estimate per call. Two queries (:func:`usage_by_model`'s)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in usage_by_model(user, days=days).rows:
        total = merged.setdefault(
            (row["service"], row["model"]),
            {"service": row["service"], "model": row["model"], **dict.fromkeys(_PAGE_TOTALS, 0)},
        )
        for name in _PAGE_TOTALS:
            total[name] += row[name] or 0
    return sorted(merged.values(), key=lambda row: (-row["cost"], row["service"], row["model"]))


def team_usage_for(
    team: Any, *, days: int = 30, service: str | None = None, member: Any = None
) -> UsageWindow:
    """Daily usage of the team's keys over the last ``days`` days, per member who made
    the calls (``member`` alone, if given): what the team's admins, or one member, see.

    Each row has ``user``: the caller's id, ``None`` once their account is deleted.
    """
    end = timezone.localdate()
    start = end - timedelta(days=days - 1)
    usage = KeyUsage.objects.filter(key__team=team, date__gte=start)
    if member is not None:
        usage = usage.filter(user=member)
    if service:
        usage = usage.filter(key__service=service)
    rows = [
        dict(row)
        for row in usage.values("date", "user", service=F("key__service"))
        .annotate(calls=Sum("calls"), units=Sum("units"), cost=Sum("cost"))
        .order_by()
    ]
    rows.sort(key=lambda row: (row["date"], row["service"], str(row["user"])))
    return UsageWindow(start, end, days, service or None, rows)


def team_totals(team: Any, *, by: str, days: int = 30, member: Any = None) -> list[dict[str, Any]]:
    """Calls, units and estimated cost of the team's keys over the last ``days`` days
    (today included), per member (``by="user"``: each row's ``user`` is the caller's
    id, ``None`` once their account is deleted) or per service (``by="service"``);
    ``member``'s calls alone, if given. One query, whatever the number of days."""
    if by not in ("user", "service"):
        raise ValueError("by must be 'user' or 'service'.")
    start = timezone.localdate() - timedelta(days=days - 1)
    usage = KeyUsage.objects.filter(key__team=team, date__gte=start)
    if member is not None:
        usage = usage.filter(user=member)
    grouped = usage.values("user") if by == "user" else usage.values(service=F("key__service"))
    totals = {"calls": Sum("calls"), "units": Sum("units"), "cost": Sum("cost")}
    return [dict(row) for row in grouped.annotate(**totals).order_by()]


def calls_by_key(team: Any, member: Any) -> dict[uuid.UUID, int]:
    """How many calls ``member`` made on each of the team's keys, ever: what the
    dashboard shows a member as "used by your calls". One query."""
    rows = (
        KeyUsage.objects.filter(key__team=team, user=member)
        .values("key")
        .annotate(calls=Sum("calls"))
        .order_by()
    )
    return {row["key"]: row["calls"] or 0 for row in rows}
