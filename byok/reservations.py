"""Reserving money on blocking budgets before a call, so that a cap holds exactly.

:func:`reserve` checks, under a lock on the user's row, that an estimate of the
call's cost fits in every blocking budget that covers it, and sets the estimate aside
(a :class:`~byok.models.Reservation` per budget) before the call is made. The call's
:func:`~byok.track_api_usage` (with ``key=`` the reserved key) then records what it
really cost and removes the reservation in one transaction; leaving the block gives
back what was not used. Concurrent calls queue on the lock, each seeing what the
others spent or hold: the recorded spend never exceeds the limit as long as no call
costs more than its estimate. A reservation a crashed process left behind stops
counting after ``BYOK["RESERVATION_TTL"]`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import router, transaction
from django.utils import timezone

from byok import budgets, teams
from byok.exceptions import BudgetExceeded
from byok.models import Budget, Owner
from byok.resolution import ResolvedKey, resolve_api_key


def hold(
    user: Any,
    service: str,
    estimate: Decimal | int | str,
    *,
    environment: str | None = None,
    team: Any = None,
) -> ResolvedKey:
    """The key to call with, with ``estimate`` (USD) set aside on each blocking budget
    that covers the call (``hold`` on the result); :class:`~byok.BudgetExceeded` when it
    does not fit. Release it with ``resolved.hold.release()`` if the call is not made.

    A call for a team also locks the team's row (after the user's: always in that
    order), so that members racing for one team budget queue too."""
    amount = _amount(estimate)
    using = router.db_for_write(Budget)
    with transaction.atomic(using=using):
        if user is not None and user.is_authenticated:
            Owner.user(user).lock(using)
            team = team if team is not None else teams.current_team(user)
            if team is not None:
                Owner.team(teams.team_pk(team)).lock(using)
        # A refusal leaves the block normally and is raised after it: the first block's
        # audit row and webhook, written on the way, must not be rolled back with it.
        try:
            found = resolve_api_key(user, service, environment=environment, team=team)
        except BudgetExceeded as refusal:
            outcome: ResolvedKey | BudgetExceeded = refusal
        else:
            outcome = _hold_or_refuse(user, service, found, amount)
    if isinstance(outcome, BudgetExceeded):
        raise outcome
    return outcome


def _hold_or_refuse(
    user: Any, service: str, resolved: ResolvedKey, amount: Decimal
) -> ResolvedKey | BudgetExceeded:
    """``resolved`` with ``amount`` set aside on its blocking budgets (its ``hold``), or
    the refusal of the first that has no room for it (recorded)."""
    covering = budgets.states(
        resolved.budgets,
        timezone.localdate(),
        covering=(service, resolved.spends),
        blocking=True,
    )
    for state in covering:
        if state.refuses(amount):
            budgets.record_block(state, user, service, resolved.team_id)
            return state.exceeded(service)
    placed = budgets.place_hold(user.pk, covering, amount) if covering else None
    return replace(resolved, hold=placed or budgets.Hold([]))


@contextmanager
def reserve(
    user: Any,
    service: str,
    estimate: Decimal | int | str,
    *,
    environment: str | None = None,
    team: Any = None,
) -> Iterator[ResolvedKey]:
    """``with byok.reserve(user, "openai", estimate) as resolved:`` — call the provider
    with ``resolved.value`` and record the call with
    ``track_api_usage(..., key=resolved)`` inside the block; see :func:`hold`."""
    resolved = hold(user, service, estimate, environment=environment, team=team)
    try:
        yield resolved
    finally:
        if resolved.hold is not None:
            resolved.hold.release()


def _amount(estimate: object) -> Decimal:
    try:
        amount = Decimal(str(estimate))
    except (InvalidOperation, ValueError):
        raise ValueError("The estimate must be a number of US dollars.") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError("The estimate must be a number of US dollars, 0 or more.")
    return amount
