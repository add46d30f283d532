"""Budget alerts: the e-mail and the webhooks that follow a threshold or a first block.

Receivers of :data:`~byok.signals.budget_threshold_reached` and
:data:`~byok.signals.budget_blocked`, which :mod:`byok.budgets` sends from the points
that already happen once per budget, period and threshold (once per budget and
period, for a block), in the metering transaction. They only enqueue tasks, on
commit: :func:`send_budget_alert` writes the e-mails down and posts the webhooks
(:func:`byok.tasks.send_webhook`). Nothing is written in the metered call's
transaction (on MariaDB a row that references the user, written there, would wait
on the user's row lock that :func:`byok.reserve` holds). What they say is the
budget, its spend, its limit and period: never a key, never a secret.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from byok import budgets, webhooks
from byok.budgets import Rule
from byok.models import AppliesTo, Budget, BudgetPeriod, NotificationKind
from byok.notifications import budget_recipients
from byok.rls import bypassing
from byok.services.registry import registry
from byok.signals import budget_blocked, budget_threshold_reached
from byok.task_framework import task
from byok.tasks import announce, enqueue_quietly, notify

CENTS = Decimal("0.01")
#: How the e-mail says a budget's period and whose keys it counts, mid-sentence.
PER_PERIOD = {
    BudgetPeriod.DAY: _("per day"),
    BudgetPeriod.WEEK: _("per week"),
    BudgetPeriod.MONTH: _("per month"),
}
COUNTING = {
    AppliesTo.OWN: _("the user's own keys"),
    AppliesTo.PLATFORM: _("the platform's key"),
    AppliesTo.TEAM: _("the team's keys"),
    AppliesTo.ALL: _("all keys"),
}
#: What a budget's spend is kept to (its column's decimal places).
MICRO = Decimal("0.000001")


@receiver(budget_threshold_reached, dispatch_uid="byok.alerts.threshold_reached")
def threshold_reached(
    *, budget: Budget, threshold: int, spent: Decimal, period_start: date, **kwargs: Any
) -> None:
    """Enqueue the e-mail and the posts of a threshold (on commit)."""
    rule = budgets.rule_of(budget, budgets.default_rules())
    if rule is None:  # pragma: no cover  (a removed default budget alerts nothing)
        return
    resets = budgets.resets_at(rule.period, period_start)
    data = event_data(budget.pk, rule, budget.user_id, budget.team_id, spent, period_start, resets)
    data["threshold"] = threshold
    enqueue_quietly(send_budget_alert, budget.pk, data)


@receiver(budget_blocked, dispatch_uid="byok.alerts.blocked")
def blocked(
    *,
    budget_id: int,
    user: Any,
    team_id: Any,
    spent: Decimal,
    period_start: date,
    resets_at: datetime,
    **kwargs: Any,
) -> None:
    """Enqueue the posts of a budget's first refused call in its period (on commit)."""
    budget = Budget.objects.filter(pk=budget_id).first()
    rule = None if budget is None else budgets.rule_of(budget, budgets.default_rules())
    if rule is None:  # pragma: no cover  (deleted meanwhile)
        return
    user_pk = getattr(user, "pk", None)
    data = event_data(budget_id, rule, user_pk, team_id, spent, period_start, resets_at)
    announce(webhooks.BLOCKED, occasion(data), data)


@task()
@bypassing
def send_budget_alert(budget_id: int, data: dict[str, Any]) -> int:
    """E-mail a budget's threshold to its user (a team's owners and admins, for a
    team's budget) and post it to the webhooks that want it; the number of e-mails
    written down. ``data``: :func:`event_data`, with the threshold."""
    budget = Budget.objects.select_related("team").filter(pk=budget_id).first()
    key = occasion(data)
    count = 0
    if budget is not None:
        context = email_context(data, budget)
        for user_id in budget_recipients(budget):
            due = notify(user_id, NotificationKind.BUDGET_THRESHOLD, key, context=context)
            count += due is not None
    announce(webhooks.THRESHOLD_REACHED, key, data)
    return count


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
        # Whole phrases for the middle of a sentence: lowering a label would break a
        # language whose nouns keep their capitals.
        "per_period": str(PER_PERIOD[data["budget"]["period"]]),
        "counting": str(COUNTING[data["budget"]["applies_to"]]),
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
