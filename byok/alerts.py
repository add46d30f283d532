"""Budget alerts: the e-mail and the webhooks that follow a threshold or a first block.

:mod:`byok.budgets` calls these from the points that already happen once per budget,
period and threshold (or once per budget and period, for a block), in the metering
transaction: the e-mail and the posts are tasks enqueued when it commits, so nothing
here sends anything on the metered call's way, nor can fail it. What they say is
the budget, its spend, its limit and period: never a key, never a secret.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from byok import webhooks
from byok.models import AppliesTo, Budget, BudgetPeriod, NotificationKind
from byok.notifications import budget_recipients
from byok.services.registry import registry
from byok.tasks import announce, notify

if TYPE_CHECKING:
    from byok.budgets import Rule

CENTS = Decimal("0.01")
#: What a budget's spend is kept to (its column's decimal places).
MICRO = Decimal("0.000001")


def threshold_reached(
    budget: Budget, rule: Rule, threshold: int, spent: Decimal, start: date, resets: datetime
) -> None:
    """E-mail the budget's user (a team's owners and admins, for a team's budget) and
    post ``budget.threshold_reached`` to the webhooks that want it."""
    occasion = f"{budget.pk}:{start.isoformat()}:{threshold}"
    data = event_data(budget.pk, rule, budget.user_id, budget.team_id, spent, start, resets)
    data["threshold"] = threshold
    context = {
        **data,
        "service_name": registry.get(rule.service).name if rule.service in registry else "",
        "period_label": str(BudgetPeriod(rule.period).label),
        "applies_to_label": str(AppliesTo(rule.applies_to).label),
        "team_name": str(budget.team) if budget.team_id is not None else "",
        "spent_display": str(spent.quantize(CENTS)),
    }
    for user_id in budget_recipients(budget):
        notify(user_id, NotificationKind.BUDGET_THRESHOLD, occasion, context=context)
    announce(webhooks.THRESHOLD_REACHED, occasion, data)


def blocked(
    budget_id: int,
    rule: Rule,
    user_pk: Any,
    team_pk: Any,
    spent: Decimal,
    start: date,
    resets: datetime,
) -> None:
    """Post ``budget.blocked`` (the budget's first refused call in its period);
    ``user_pk``: whose call it was."""
    data = event_data(budget_id, rule, user_pk, team_pk, spent, start, resets)
    announce(webhooks.BLOCKED, f"{budget_id}:{start.isoformat()}", data)


def event_data(
    budget_id: int,
    rule: Rule,
    user_pk: Any,
    team_pk: Any,
    spent: Decimal,
    start: date,
    resets: datetime,
) -> dict[str, Any]:
    """What an event says about a budget: strings, numbers and ``None`` (task
    arguments and JSON both take them)."""
    return {
        "budget": {
            "id": budget_id,
            "name": rule.name,
            "service": rule.service or None,
            "applies_to": rule.applies_to,
            "period": rule.period,
            "action": rule.action,
            "set_by": rule.source,
        },
        "user": None if user_pk is None else str(user_pk),
        "team": None if team_pk is None else str(team_pk),
        "spent": str(spent.quantize(MICRO)),
        "limit": str(rule.limit.quantize(CENTS)),
        "currency": "USD",
        "period_start": start.isoformat(),
        "resets_at": resets.isoformat(),
    }
