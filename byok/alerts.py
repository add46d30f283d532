"""Budget alerts: what the e-mail and the webhooks say about a threshold or a block.

:mod:`byok.budgets` builds an event's data (:func:`event_data`) at the points that
already happen once per budget, period and threshold (once per budget and period,
for a block), in the metering transaction, and enqueues a task when it commits:
:func:`byok.tasks.send_budget_alert` writes the e-mails down and posts the webhooks.
Nothing is written or sent in the metered call's transaction (on MariaDB a row
that references the user, written there, would wait on the user's row lock that
:func:`byok.reserve` holds). What they say is the budget, its spend, its limit and
period: never a key, never a secret.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from byok.models import AppliesTo, Budget, BudgetPeriod
from byok.services.registry import registry

if TYPE_CHECKING:
    from byok.budgets import Rule

CENTS = Decimal("0.01")
#: What a budget's spend is kept to (its column's decimal places).
MICRO = Decimal("0.000001")


def occasion(data: dict[str, Any]) -> str:
    """What makes an event one of a kind: the budget, its period and the threshold."""
    parts = [str(data["budget"]["id"]), data["period_start"]]
    if "threshold" in data:
        parts.append(str(data["threshold"]))
    return ":".join(parts)


def email_context(data: dict[str, Any], budget: Budget | None) -> dict[str, Any]:
    """What the e-mail's templates get as ``details``: the event's data, and names."""
    service = data["budget"]["service"] or ""
    return {
        **data,
        "service_name": registry.get(service).name if service in registry else "",
        "period_label": str(BudgetPeriod(data["budget"]["period"]).label),
        "applies_to_label": str(AppliesTo(data["budget"]["applies_to"]).label),
        "team_name": str(budget.team) if budget is not None and budget.team_id else "",
        "spent_display": str(Decimal(data["spent"]).quantize(CENTS)),
    }


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
