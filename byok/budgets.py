"""Budgets: spending limits per user that hold, under concurrency and across processes.

A budget limits what one user spends over a calendar period (a day, a week from
Monday, a month, in the site's time zone), on one service or on all, counting the
platform's key, the user's own keys, or both. The site imposes budgets
(``BYOK["DEFAULT_BUDGETS"]`` for everyone, the admin for one user); users set their
own on their own keys.

The database is the source of truth: each budget's row holds what was spent in its
current period, metering adds to it in SQL (:class:`Charge`), and the key lookup reads
it in its one query, with the money reservations hold (:mod:`byok.reservations`). A
default budget gets its row the first time its user spends under it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.signals import setting_changed
from django.db import router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.dispatch import Signal, receiver
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from byok import audit
from byok.conf import conf
from byok.exceptions import BudgetExceeded
from byok.lookup import BudgetRow
from byok.metering import Also, prep, quoted_columns
from byok.models import (
    AppliesTo,
    AuditAction,
    Budget,
    BudgetAction,
    BudgetPeriod,
    BudgetSource,
    Owner,
    Reservation,
)
from byok.services.registry import registry
from byok.signals import budget_blocked, budget_threshold_reached

logger = logging.getLogger("byok.budgets")

#: Alert thresholds (percent of the limit) when a budget names none.
DEFAULT_ALERT_AT = (50, 80, 100)
#: The most alert thresholds a budget holds (they fit ``Budget.alert_at``, 64 characters).
MAX_THRESHOLDS = 12
#: The source of a call: "own" for the user's key, "platform" for the platform's.
Source = str


# -- Periods ---------------------------------------------------------------------------


def period_start(period: str, day: date) -> date:
    """The first day of the ``period`` (day, week from Monday, month) holding ``day``."""
    if period == BudgetPeriod.DAY:
        return day
    if period == BudgetPeriod.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period_start(period: str, start: date) -> date:
    if period == BudgetPeriod.DAY:
        return start + timedelta(days=1)
    if period == BudgetPeriod.WEEK:
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def resets_at(period: str, start: date) -> datetime:
    """When a period that began on ``start`` ends, in the site's time zone."""
    return timezone.make_aware(datetime.combine(next_period_start(period, start), time.min))


# -- What a budget asks ----------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """What a budget limits, from its row or from ``BYOK["DEFAULT_BUDGETS"]``."""

    name: str
    service: str
    applies_to: str
    period: str
    limit: Decimal
    action: str
    alert_at: tuple[int, ...]
    source: str

    def covers(self, service: str, source: Source) -> bool:
        """Whether a call of ``service`` on ``source``'s key counts against it."""
        return self.service in ("", service) and self.applies_to in (source, AppliesTo.ALL)

    @property
    def blocks(self) -> bool:
        return self.action == BudgetAction.BLOCK


def parse_thresholds(value: object) -> tuple[int, ...]:
    """``"50,80,100"`` or ``[50, 80, 100]`` as sorted percentages; ``ValueError`` if not."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("alert thresholds must be a list of percentages")
    try:
        numbers = sorted({int(str(item).strip()) for item in items if str(item).strip()})
    except ValueError:
        raise ValueError("alert thresholds must be whole percentages") from None
    if any(not 1 <= number <= 1000 for number in numbers):
        raise ValueError("alert thresholds must be between 1 and 1000 percent")
    return tuple(numbers)


@functools.lru_cache(maxsize=64)
def _stored_thresholds(text: str) -> tuple[int, ...]:
    """A budget row's ``alert_at`` as thresholds: read on every metered call, and rows
    share a few values."""
    return parse_thresholds(text)


#: ``BYOK["DEFAULT_BUDGETS"]`` read, until the setting changes (the lookup needs them).
_defaults: dict[str, Rule] | None = None


@receiver(setting_changed)
def _forget_defaults(*, setting: str, **kwargs: object) -> None:
    global _defaults
    if setting == "BYOK":
        _defaults = None


def default_rules() -> dict[str, Rule]:
    """``BYOK["DEFAULT_BUDGETS"]`` by name. A malformed entry fails loudly (and check
    byok.E018 says so at start-up): a budget must never be silently ignored."""
    global _defaults
    if _defaults is None:
        rules = {}
        for position, entry in enumerate(conf.DEFAULT_BUDGETS, start=1):
            try:
                rule = default_rule(entry)
            except (KeyError, TypeError, ValueError) as error:
                raise ImproperlyConfigured(
                    f"BYOK['DEFAULT_BUDGETS'] entry {position} is not a budget: {error!r}."
                ) from None
            rules[rule.name] = rule
        _defaults = rules
    return _defaults


def default_rule(entry: Any) -> Rule:
    """One entry of ``BYOK["DEFAULT_BUDGETS"]``; ``ValueError`` (or ``TypeError``) if wrong."""
    known = {"name", "limit", "period", "service", "applies_to", "action", "alert_at"}
    unknown = set(entry) - known
    if unknown:
        raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
    name = entry["name"]
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ValueError("a name of 1 to 64 characters is required")
    return Rule(
        name=name,
        service=_service(entry.get("service")),
        applies_to=_choice(entry.get("applies_to", AppliesTo.PLATFORM), AppliesTo),
        period=_choice(entry.get("period", BudgetPeriod.MONTH), BudgetPeriod),
        limit=_limit(entry["limit"]),
        action=_choice(entry.get("action", BudgetAction.BLOCK), BudgetAction),
        alert_at=parse_thresholds(entry.get("alert_at", DEFAULT_ALERT_AT)),
        source=BudgetSource.SITE,
    )


def rule_of(budget: BudgetRow | Budget, defaults: dict[str, Rule]) -> Rule | None:
    """What ``budget``'s row asks; ``None`` for the row of a default budget the site
    no longer sets."""
    default = defaults.get(budget.default_name) if budget.default_name else None
    if budget.default_name and default is None:
        return None
    return Rule(
        name=budget.default_name or f"budget {budget.id}",
        service=budget.service,
        applies_to=budget.applies_to,
        period=budget.period,
        limit=default.limit if budget.limit is None and default else Decimal(budget.limit or 0),
        action=budget.action,
        alert_at=(
            default.alert_at
            if budget.alert_at is None and default
            else _stored_thresholds(budget.alert_at or "")
        ),
        source=BudgetSource.SITE if default else getattr(budget, "source", BudgetSource.USER),
    )


# -- Where a user stands ---------------------------------------------------------------


@dataclass(frozen=True)
class BudgetState:
    """A budget and where its user stands in the current period."""

    id: int | None
    rule: Rule
    start: date
    spent: Decimal
    reserved: Decimal

    @property
    def used(self) -> Decimal:
        """Spent and held by reservations."""
        return self.spent + self.reserved

    @property
    def resets_at(self) -> datetime:
        return resets_at(self.rule.period, self.start)

    def refuses(self, amount: Decimal) -> bool:
        """Whether a blocking budget has no room for ``amount`` more (nor, for zero, any)."""
        if not self.rule.blocks:
            return False
        return self.used + amount > self.rule.limit if amount else self.used >= self.rule.limit

    def exceeded(self, service: str) -> BudgetExceeded:
        return BudgetExceeded(
            service,
            budget=self.id,
            name=self.rule.name,
            spent=self.used,
            limit=self.rule.limit,
            resets_at=self.resets_at,
        )


def states(
    rows: Iterable[BudgetRow],
    today: date,
    *,
    covering: tuple[str, Source] | None = None,
    blocking: bool = False,
) -> list[BudgetState]:
    """Where the user stands on each budget: their rows, and the default budgets that
    have none yet (nothing spent). ``covering`` (a service and whose key) and
    ``blocking`` keep only the budgets that count a call and stop one: the lookup
    reads no more than it needs."""
    defaults = default_rules()
    found = []
    named = set()
    for row in rows:
        named.add(row.default_name)
        if (blocking and row.action != BudgetAction.BLOCK) or (
            covering and not _covers(row, *covering)
        ):
            continue
        rule = rule_of(row, defaults)
        if rule is not None:
            start = period_start(rule.period, today)
            spent = row.spent if row.period_start == start else Decimal(0)
            found.append(BudgetState(row.id, rule, start, spent, row.reserved))
    for name, rule in defaults.items():
        if name in named or (blocking and not rule.blocks):
            continue
        if covering is None or rule.covers(*covering):
            start = period_start(rule.period, today)
            found.append(BudgetState(None, rule, start, Decimal(0), Decimal(0)))
    return found


@dataclass(frozen=True)
class Listed:
    """One of a user's budgets as they see it: where they stand on it, and its row
    (``None`` for a default budget they have not spent under yet)."""

    state: BudgetState
    budget: Budget | None

    @property
    def editable(self) -> bool:
        return self.budget is not None and editable(self.budget)


def editable(budget: Budget) -> bool:
    """Whether its user may change or remove it: only the budgets they set themselves
    on their own spend (not the site's, nor one on a team's keys)."""
    return (
        budget.source == BudgetSource.USER and budget.team_id is None and not budget.default_name
    )


def budgets_for(user: Any, today: date | None = None) -> list[Listed]:
    """The user's budgets, the site's included (``BYOK["DEFAULT_BUDGETS"]`` and those
    the admin set), with what each spent and holds in its current period: one query."""
    held = (
        Reservation.objects.filter(budget=OuterRef("pk"), expires_at__gt=timezone.now())
        .order_by()
        .values("budget")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    amount = DecimalField(max_digits=14, decimal_places=6)
    found = Budget.objects.filter(user=user).annotate(
        reserved=Coalesce(
            Subquery(held, output_field=amount), Value(Decimal(0)), output_field=amount
        )
    )
    rows = {budget.pk: budget for budget in found.order_by("service", "period", "pk")}
    read = [
        BudgetRow(
            budget.pk,
            budget.service,
            budget.applies_to,
            budget.period,
            budget.limit,
            budget.action,
            budget.alert_at,
            budget.default_name,
            budget.period_start,
            budget.spent,
            budget.user_id,
            budget.team_id,
            budget.reserved,  # type: ignore[attr-defined]
            budget.source,
        )
        for budget in rows.values()
    ]
    listed = states(read, today or timezone.localdate())
    return [Listed(state, rows.get(state.id) if state.id else None) for state in listed]


def standing(user: Any, today: date | None = None) -> list[BudgetState]:
    """Where ``user`` stands on each of their budgets (not those on a team's keys) and on
    the site's default budgets, the site's first: what the pages show. One query,
    whatever the number of budgets."""
    found = [
        listed.state
        for listed in budgets_for(user, today)
        if listed.budget is None or listed.budget.team_id is None
    ]
    return sorted(
        found,
        key=lambda state: (
            state.rule.source != BudgetSource.SITE,
            state.rule.service,
            PERIODS.index(state.rule.period),
            state.id or 0,
        ),
    )


def _covers(row: BudgetRow, service: str, source: Source) -> bool:
    return row.service in ("", service) and row.applies_to in (source, AppliesTo.ALL)


def over_budget(
    rows: Iterable[BudgetRow], service: str, source: Source, today: date | None = None
) -> BudgetState | None:
    """The first blocking budget covering a call on ``source``'s key that is spent (or
    fully held): what the lookup checks on every call, so it builds nothing for a
    budget with room left, nor asks what day it is (``today``, by default the site's)
    unless a blocking budget covers the call."""
    defaults = default_rules()
    named = set()
    for row in rows:
        named.add(row.default_name)
        if row.action != BudgetAction.BLOCK or not _covers(row, service, source):
            continue
        default = defaults.get(row.default_name) if row.default_name else None
        if row.default_name and default is None:
            continue  # a default the site no longer sets
        limit = row.limit if row.limit is not None or default is None else default.limit
        today = today or timezone.localdate()
        start = period_start(row.period, today)
        spent = row.spent if row.period_start == start else Decimal(0)
        if spent + row.reserved >= (limit or 0):
            rule = rule_of(row, defaults)
            assert rule is not None
            return BudgetState(row.id, rule, start, spent, row.reserved)
    for name, rule in defaults.items():
        if name not in named and rule.blocks and rule.limit <= 0 and rule.covers(service, source):
            start = period_start(rule.period, today or timezone.localdate())
            return BudgetState(None, rule, start, Decimal(0), Decimal(0))
    return None


def refusing(
    budgets: Sequence[BudgetState], service: str, source: Source, amount: Decimal = Decimal(0)
) -> BudgetState | None:
    """The first blocking budget covering the call that has no room for ``amount``."""
    for state in budgets:
        if state.rule.covers(service, source) and state.refuses(amount):
            return state
    return None


def record_block(state: BudgetState, user: Any, service: str, team_pk: Any = None) -> None:
    """Write the first block of a budget in a period to the audit trail and post it to
    the webhooks (once per budget and period, not per refused call); ``team_pk``: the
    team whose key it was."""
    budget_id = state.id
    if budget_id is None:  # a default of limit 0 refuses before the user has its row
        budget_id = _default_row(getattr(user, "pk", user), state.rule)
        state = replace(state, id=budget_id)
    first = (
        Budget.objects.filter(pk=budget_id)
        .exclude(blocked_period=state.start)
        .update(blocked_period=state.start)
    )
    if first:
        _send(
            budget_blocked,
            budget_id=state.id,
            user=user,
            team_id=team_pk,
            service=service,
            spent=state.used,
            limit=state.rule.limit,
            period_start=state.start,
            resets_at=state.resets_at,
        )
        audit.record(
            AuditAction.BUDGET_BLOCKED,
            owner=user,
            team=team_pk,
            service=service,
            budget=state.id,
            spent=str(state.used),
            limit=str(state.rule.limit),
            period_start=state.start.isoformat(),
        )


def _default_row(user_pk: Any, rule: Rule) -> int:
    """The id of the user's row of a default budget, made if missing."""
    _make_rows(user_pk, [rule])
    rows = Budget.objects.filter(user_id=user_pk, default_name=rule.name)
    return rows.values_list("pk", flat=True).get()


# -- Reservations ----------------------------------------------------------------------


class Hold:
    """Money a call set aside on blocking budgets (:func:`byok.reserve`): settled when
    the call's usage is recorded, released when the call ends without."""

    def __init__(self, reservation_ids: list[int]) -> None:
        self.reservation_ids = reservation_ids

    def __repr__(self) -> str:
        return f"<Hold of {len(self.reservation_ids)} reservations>"

    def release(self) -> None:
        """Give the money back (settling does the same, in the usage's transaction)."""
        if self.reservation_ids:
            Reservation.objects.filter(pk__in=self.reservation_ids).delete()
            self.reservation_ids = []

    settle = release


def place_hold(user_pk: Any, states: Sequence[BudgetState], amount: Decimal) -> Hold:
    """Reserve ``amount`` on each of ``states`` (checked by the caller, under the user's
    row lock): rows first for default budgets that have none."""
    _make_rows(user_pk, [state.rule for state in states if state.id is None])
    names = [state.rule.name for state in states if state.id is None]
    ids = [state.id for state in states if state.id is not None]
    if names:
        ids += Budget.objects.filter(user_id=user_pk, default_name__in=names).values_list(
            "pk", flat=True
        )
    expires_at = timezone.now() + timedelta(seconds=conf.RESERVATION_TTL)
    made = Reservation.objects.bulk_create(
        [Reservation(budget_id=pk, amount=amount, expires_at=expires_at) for pk in ids]
    )
    return Hold([reservation.pk for reservation in made])


# -- Metering --------------------------------------------------------------------------


class Charge:
    """What a call adds to the user's budgets that cover it: made before the usage is
    recorded, applied with it (:func:`byok.track_api_usage`).

    ``rows`` are the budgets the lookup read; a default budget with no row yet gets its
    row first (:meth:`make_rows`). Each alert threshold the spend reaches is announced
    once per budget, period and threshold.
    """

    def __init__(
        self,
        user_pk: Any,
        service: str,
        source: Source,
        amount: Decimal,
        rows: Iterable[BudgetRow],
        team_pk: Any = None,
    ) -> None:
        self.user_pk, self.team_pk = user_pk, team_pk
        self.service, self.source, self.amount = service, source, amount
        self.today = timezone.localdate()
        rows = list(rows) if amount else []
        covering = states(rows, self.today, covering=(service, source))
        self.rules = {state.id or state.rule.name: state.rule for state in covering}
        self.missing = [state.rule for state in covering if state.id is None]
        #: Whether a budget's period may roll over with this call (it had spent in an
        #: earlier one, as the lookup read it).
        self.rolls_over = any(
            row.period_start is not None
            and row.period_start != period_start(row.period, self.today)
            for row in rows
            if _covers(row, service, source)
        )

    def __bool__(self) -> bool:
        """Whether any budget counts the call."""
        return bool(self.rules)

    def make_rows(self) -> None:
        """Rows for the default budgets that have none yet: before the usage is
        recorded, so that its transaction takes no lock but the usage's rows'."""
        _make_rows(self.user_pk, self.missing)

    def update(self, connection: BaseDatabaseWrapper) -> Also:
        """The ``UPDATE`` that adds the call to the budgets' rows (the user's own, theirs
        on this team's key, and the team's), starting a new period where theirs ended,
        for the metering to run with the usage (:mod:`byok.metering`)."""
        if connection.vendor not in _spend_sql:
            _spend_sql[connection.vendor] = _spend_text(connection)
        table, assignments, where, returning = _spend_sql[connection.vendor]
        starts = _period_starts(connection, self.today)
        spent = _prep("spent", self.amount, connection)
        team = None if self.team_pk is None else _prep("team", self.team_pk, connection)
        covering = [_prep("user", self.user_pk, connection), team, team, self.service, self.source]
        params = [*starts, spent, spent, *starts, *starts]
        return Also(table, assignments, params, where, covering, returning, self.rolls_over)

    def announce(self, returned: Iterable[tuple[Any, ...]]) -> None:
        """Announce the thresholds reached, from the budgets' rows right after the call."""
        for spent in (Spent.of(row) for row in returned):
            rule = self.rules.get(spent.id) or self.rules.get(spent.default_name)
            if rule is not None:
                _alert_if_due(spent, rule)


def _make_rows(user_pk: Any, rules: Iterable[Rule]) -> None:
    """Rows for default budgets the user spends under for the first time (under the
    user's lock: MariaDB cannot hold the partial unique constraint that stops a twin)."""
    wanted = {rule.name: rule for rule in rules}
    if not wanted:
        return
    using = router.db_for_write(Budget)
    with transaction.atomic(using=using):
        Owner.user(user_pk).lock(using)
        mine = Budget.objects.using(using).filter(user_id=user_pk, default_name__in=wanted)
        made = set(mine.values_list("default_name", flat=True))
        rows = [
            Budget(
                user_id=user_pk,
                service=rule.service,
                applies_to=rule.applies_to,
                period=rule.period,
                action=rule.action,
                source=BudgetSource.SITE,
                default_name=rule.name,
            )
            for name, rule in wanted.items()
            if name not in made
        ]
        Budget.objects.using(using).bulk_create(rows, ignore_conflicts=True)


class Spent(NamedTuple):
    """A budget's row right after a call was added to it."""

    id: int
    spent: Decimal
    alerted: int
    period_start: date
    default_name: str

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> Spent:
        pk, amount, alerted, start, name = row
        return cls(int(pk), _SPENT.to_python(amount), int(alerted), _START.to_python(start), name)


#: The parts of :meth:`Charge.update`'s statement, per database vendor.
_spend_sql: dict[str, tuple[str, str, str, str]] = {}


#: :func:`_period_starts` per database vendor and day (a few days at most).
_starts: dict[tuple[str, date], list[Any]] = {}


def _period_starts(connection: BaseDatabaseWrapper, today: date) -> list[Any]:
    """The first day of each of :data:`PERIODS` holding ``today``, as the database
    takes a date: worked out once a day, not on every metered call."""
    cache_key = (connection.vendor, today)
    starts = _starts.get(cache_key)
    if starts is None:
        if len(_starts) > 8:
            _starts.clear()
        starts = [_prep("period_start", period_start(p, today), connection) for p in PERIODS]
        _starts[cache_key] = starts
    return starts


def _spend_text(connection: BaseDatabaseWrapper) -> tuple[str, str, str, str]:
    """The table, assignments, condition and returned columns; on MySQL each column is
    named with its table, for the multi-table ``UPDATE`` it joins."""
    table = connection.ops.quote_name(Budget._meta.db_table)
    named = f"{table}." if connection.vendor == "mysql" else ""
    quoted = quoted_columns(connection, Budget)
    column = {name: f"{named}{name_quoted}" for name, name_quoted in quoted.items()}
    user, team = column["user"], column["team"]
    service, applies_to = column["service"], column["applies_to"]
    where = (
        f"(({user} = %s AND ({team} IS NULL OR {team} = %s)) OR ({user} IS NULL AND {team} = %s)) "
        f"AND {service} IN ('', %s) AND {applies_to} IN (%s, '{AppliesTo.ALL}')"
    )
    day, week = PERIODS[0], PERIODS[1]  # names from the model's choices, not input
    current = f"CASE {column['period']} WHEN '{day}' THEN %s WHEN '{week}' THEN %s ELSE %s END"
    same = f"{column['period_start']} = ({current})"
    # Only quoted names from the model's metadata go into the text; values are bound.
    # MySQL assigns left to right, seeing new values: period_start is set last (its
    # multi-table UPDATE promises no order: metering does not use it for a rollover).
    assignments = (
        f"{column['spent']} = CASE WHEN {same} THEN {column['spent']} + %s ELSE %s END, "
        f"{column['alerted']} = CASE WHEN {same} THEN {column['alerted']} ELSE 0 END, "
        f"{column['period_start']} = ({current})"
    )
    return table, assignments, where, ", ".join(column[name] for name in Spent._fields)


def _alert_if_due(spent: Spent, rule: Rule) -> None:
    """Announce the thresholds the spend has reached that no one announced yet.

    Whoever moves ``alerted`` past a threshold announces it: a compare-and-set on the
    row, so of many processes crossing it together exactly one does.
    """
    if rule.limit <= 0:
        return
    percent = spent.spent * 100 / rule.limit
    reached = [t for t in rule.alert_at if spent.alerted < t <= percent]
    if not reached:
        return
    won = Budget.objects.filter(
        pk=spent.id, alerted=spent.alerted, period_start=spent.period_start
    ).update(alerted=reached[-1])
    if not won:
        return  # another call moved it on: that call announces
    budget = Budget.objects.select_related("user", "team").get(pk=spent.id)
    for threshold in reached:
        announce(budget, rule, threshold, spent.spent, spent.period_start)


def announce(budget: Budget, rule: Rule, threshold: int, spent: Decimal, start: date) -> None:
    """Send ``budget_threshold_reached``: to the host's receivers and to byok's own
    (:mod:`byok.alerts`: the e-mail and the webhooks, tasks enqueued on commit)."""
    _send(
        budget_threshold_reached,
        budget=budget,
        user=budget.user,
        team=budget.team,
        threshold=threshold,
        spent=spent,
        limit=rule.limit,
        period_start=start,
    )


def _send(signal: Signal, **kwargs: Any) -> None:
    """Send ``signal`` to every receiver, each on its own: one that fails is logged,
    and neither stops the others nor fails the call being metered. In a savepoint, so
    that a receiver's database error leaves the metering transaction usable."""
    try:
        with transaction.atomic(using=router.db_for_write(Budget)):
            for found, result in signal.send_robust(sender=Budget, **kwargs):
                if isinstance(result, Exception):
                    logger.error(
                        "A receiver of a budget signal failed: %r",
                        found,
                        exc_info=(type(result), result, result.__traceback__),
                    )
    except Exception:
        logger.exception("Sending a budget signal failed")


# -- Setting budgets -------------------------------------------------------------------


def set_budget(
    user: Any,
    *,
    team: Any = None,
    limit: Decimal | int | str,
    period: str = BudgetPeriod.MONTH,
    service: str | None = None,
    applies_to: str = AppliesTo.OWN,
    action: str = BudgetAction.ALERT,
    alert_at: Sequence[int] = DEFAULT_ALERT_AT,
    site: bool = False,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> Budget:
    """Set the user's budget on ``service`` (``None``: every service), ``applies_to`` and
    ``period``: created, or changed if one exists. ``site=True`` imposes it: the user
    can then neither raise nor remove it. Raises ``ValidationError`` for bad values.

    With ``team``, the budget counts spend on that team's keys: the member ``user``'s
    alone, or (``user=None``) all its members' together.
    """
    if user is None and team is None:
        raise ValueError("A budget belongs to a user, a team, or a member of a team.")
    identity: dict[str, Any] = {
        "service": _service(service, field="service"),
        "applies_to": AppliesTo.TEAM
        if team is not None
        else _choice(applies_to, AppliesTo, field="applies_to"),
        "period": _choice(period, BudgetPeriod, field="period"),
    }
    values: dict[str, Any] = {
        "action": _choice(action, BudgetAction, field="action"),
        "limit": _limit(limit, field="limit"),
        "alert_at": _thresholds(alert_at),
    }
    source = BudgetSource.SITE if site else BudgetSource.USER
    using = router.db_for_write(Budget)
    with transaction.atomic(using=using):
        # Two requests setting the same budget at once queue here, so the second finds
        # the first's row instead of adding a twin (a unique constraint cannot say
        # this on every database: the identity has NULLs, MariaDB has no partial ones).
        (Owner.team(team) if user is None else Owner.user(user)).lock(using)
        budget, created = Budget.objects.update_or_create(
            user=user, team=team, source=source, default_name="", **identity, defaults=values
        )
        _record_change(budget, created=created, actor=actor, request=request)
    return budget


def check_budget(budget: Budget) -> None:
    """Check and normalise a budget row changed field by field (the admin's form) as
    :func:`set_budget` checks its arguments: ``ValidationError`` by field if wrong. A
    row of a default budget may leave ``limit`` and ``alert_at`` empty (the setting's
    then apply); another row's empty ``alert_at`` is the default thresholds. A budget
    on a team's keys applies to them (``applies_to="team"``), as :func:`set_budget`
    makes it."""
    errors: dict[str, Any] = {}
    default = bool(budget.default_name)
    checks: dict[str, Callable[[], object]] = {
        "service": lambda: _service(budget.service, field="service"),
        "applies_to": lambda: _choice(budget.applies_to, AppliesTo, field="applies_to"),
        "period": lambda: _choice(budget.period, BudgetPeriod, field="period"),
        "action": lambda: _choice(budget.action, BudgetAction, field="action"),
        "source": lambda: _choice(budget.source, BudgetSource, field="source"),
        "limit": lambda: (
            None if budget.limit is None and default else _limit(budget.limit, field="limit")
        ),
        "alert_at": lambda: (
            None
            if budget.alert_at is None and default
            else _thresholds(DEFAULT_ALERT_AT if budget.alert_at is None else budget.alert_at)
        ),
    }
    for name, check in checks.items():
        try:
            setattr(budget, name, check())
        except ValidationError as error:
            errors.update(error.message_dict)
    if budget.team_id is not None and budget.applies_to != AppliesTo.TEAM:
        # The metering charges a team's budget only for calls on the team's keys.
        errors.setdefault("applies_to", []).append(
            _("A budget on a team's keys applies to the team's keys.")
        )
    if errors:
        raise ValidationError(errors)


def save_budget(
    budget: Budget, *, actor: Any = None, request: HttpRequest | None = None
) -> Budget:
    """Save a budget row changed field by field (the admin's form), checked by
    :func:`check_budget`, and audit it as :func:`set_budget` does."""
    check_budget(budget)
    created = budget._state.adding
    with transaction.atomic(using=router.db_for_write(Budget)):
        budget.save()
        _record_change(budget, created=created, actor=actor, request=request)
    return budget


def _record_change(
    budget: Budget, *, created: bool, actor: Any, request: HttpRequest | None
) -> None:
    """One ``budget_changed`` event: what the budget now asks, never what it spent."""
    audit.record(
        AuditAction.BUDGET_CHANGED,
        owner=budget.user_id,
        team=budget.team_id,
        actor=actor,
        request=request,
        service=budget.service,
        budget=budget.pk,
        created=created,
        limit=None if budget.limit is None else str(budget.limit),
        period=budget.period,
        applies_to=budget.applies_to,
        budget_action=budget.action,
        source=budget.source,
        default_name=budget.default_name,
    )


def remove_budget(
    budget: Budget, *, actor: Any = None, request: HttpRequest | None = None
) -> None:
    """Delete a budget (the caller checks who may: users only their own)."""
    with transaction.atomic(using=router.db_for_write(Budget)):
        audit.record(
            AuditAction.BUDGET_CHANGED,
            owner=budget.user_id,
            team=budget.team_id,
            actor=actor,
            request=request,
            service=budget.service,
            budget=budget.pk,
            removed=True,
        )
        budget.delete()


def _service(value: object, *, field: str | None = None) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or value not in registry:
        raise _invalid(field, _("Unknown service."), "unknown_service")
    return value


def _choice(value: object, choices: Any, *, field: str | None = None) -> str:
    if value not in choices.values:
        raise _invalid(
            field, _("One of: %(choices)s.") % {"choices": ", ".join(choices.values)}, "invalid"
        )
    return str(value)


def _limit(value: object, *, field: str | None = None) -> Decimal:
    try:
        amount = Decimal(str(value)) if not isinstance(value, bool | float) else None
    except ArithmeticError:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0 or amount >= 10**10:
        raise _invalid(field, _("A number of US dollars, 0 or more."), "invalid")
    return amount.quantize(Decimal("0.01"))


def _thresholds(value: object) -> str:
    try:
        thresholds = parse_thresholds(value)
    except ValueError:
        thresholds = None
    if thresholds is None or len(thresholds) > MAX_THRESHOLDS:
        message = _("Up to %(count)d whole percentages between 1 and 1000.")
        raise _invalid("alert_at", message % {"count": MAX_THRESHOLDS}, "invalid")
    return ",".join(map(str, thresholds))


def _invalid(field: str | None, message: str, code: str) -> Exception:
    """A ``ValidationError`` under ``field`` (for the helpers), or a ``ValueError`` (for
    the settings)."""
    if field is None:
        return ValueError(message)
    return ValidationError({field: ValidationError(message, code=code)})


def _prep(name: str, value: Any, connection: BaseDatabaseWrapper) -> Any:
    return prep(Budget, name, value, connection)


#: The periods, in the order :meth:`Charge.update`'s ``CASE`` takes them (month last).
PERIODS = (BudgetPeriod.DAY, BudgetPeriod.WEEK, BudgetPeriod.MONTH)
_SPENT = Budget._meta.get_field("spent")
_START = Budget._meta.get_field("period_start")
