"""Budgets as the pages draw them: a bar of what was spent against the limit.

The dashboard's cards, the Budgets page and the settings card all show a budget the
same way, so the figures (percent, what is left, blocked or not) are worked out here
once, from :func:`byok.budgets.standing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from byok.budgets import BudgetState, standing
from byok.models import AppliesTo, BudgetAction, BudgetPeriod, BudgetSource
from byok.services.registry import registry

HUNDRED = Decimal(100)
#: A budget's title: "Monthly budget · OpenAI · spend on your own keys".
PERIOD_TITLES = {
    BudgetPeriod.DAY: gettext_lazy("Daily budget"),
    BudgetPeriod.WEEK: gettext_lazy("Weekly budget"),
    BudgetPeriod.MONTH: gettext_lazy("Monthly budget"),
}
LEFT_TEXTS = {
    BudgetPeriod.DAY: gettext_lazy("$%(left)s of $%(limit)s left today, resets on %(date)s"),
    BudgetPeriod.WEEK: gettext_lazy("$%(left)s of $%(limit)s left this week, resets on %(date)s"),
    BudgetPeriod.MONTH: gettext_lazy(
        "$%(left)s of $%(limit)s left this month, resets on %(date)s"
    ),
}
SPEND_TITLES = {
    AppliesTo.PLATFORM: gettext_lazy("spend on the platform's key"),
    AppliesTo.OWN: gettext_lazy("spend on your own keys"),
    AppliesTo.TEAM: gettext_lazy("spend on the team's keys"),
    AppliesTo.ALL: gettext_lazy("spend on all keys"),
}


@dataclass(frozen=True)
class BudgetBar:
    """One budget and where the user stands on it in the current period."""

    state: BudgetState

    @property
    def id(self) -> int | None:
        return self.state.id

    @property
    def dom_id(self) -> str:
        """Unique on a page: a default budget without a row yet has no id."""
        slug = "".join(c if c.isalnum() else "-" for c in self.state.rule.name)
        return f"byok-budget-{self.state.id or slug}"

    @property
    def service(self) -> str:
        return self.state.rule.service

    @property
    def service_name(self) -> str:
        service = self.state.rule.service
        if not service:
            return _("All services")
        return registry.get(service).name if service in registry else service

    @property
    def title(self) -> str:
        rule = self.state.rule
        return _("%(period)s · %(service)s · %(spend)s") % {
            "period": PERIOD_TITLES[BudgetPeriod(rule.period)],
            "service": self.service_name,
            "spend": SPEND_TITLES[AppliesTo(rule.applies_to)],
        }

    @property
    def applies_to(self) -> str:
        return self.state.rule.applies_to

    @property
    def applies_to_label(self) -> str:
        return str(AppliesTo(self.state.rule.applies_to).label)

    @property
    def period(self) -> str:
        return self.state.rule.period

    @property
    def period_label(self) -> str:
        return str(BudgetPeriod(self.state.rule.period).label)

    @property
    def action(self) -> str:
        return self.state.rule.action

    @property
    def blocks(self) -> bool:
        return self.state.rule.action == BudgetAction.BLOCK

    @property
    def alert_at(self) -> str:
        return ", ".join(map(str, self.state.rule.alert_at))

    @property
    def site(self) -> bool:
        """Set by the site: the user can neither change nor remove it."""
        return self.state.rule.source == BudgetSource.SITE

    @property
    def editable(self) -> bool:
        return not self.site and self.state.id is not None

    @property
    def spent(self) -> Decimal:
        return self.state.spent

    @property
    def limit(self) -> Decimal:
        return self.state.rule.limit

    @property
    def left(self) -> Decimal:
        return max(self.state.rule.limit - self.state.used, Decimal(0))

    @property
    def percent(self) -> int:
        """Spent, in whole percent of the limit (over 100 once over it)."""
        limit = self.state.rule.limit
        if limit <= 0:
            return 100 if self.state.used > 0 or self.blocks else 0
        return int((self.state.spent * HUNDRED / limit).to_integral_value(ROUND_FLOOR))

    @property
    def fill(self) -> int:
        """The bar's length, in percent: full at the limit and beyond."""
        return min(self.percent, 100)

    @property
    def blocked(self) -> bool:
        """A blocking budget with nothing left: calls it covers are refused."""
        return self.state.refuses(Decimal(0))

    @property
    def over(self) -> bool:
        """At or over the limit (an alert-only budget lets calls through)."""
        return self.state.used >= self.state.rule.limit

    @property
    def level(self) -> str:
        """How the bar is coloured: ``ok``, ``warning`` (80% or more) or ``danger``."""
        if self.blocked or self.over:
            return "danger"
        return "warning" if self.percent >= 80 else "ok"

    @property
    def left_text(self) -> str:
        """ "$1.25 of $5.00 left this month, resets on Dec. 1, 2026" (with the service's
        name first on a budget of one service)."""
        values = {
            "left": number_format(self.left, 2),
            "limit": number_format(self.limit, 2),
            "date": date_format(self.resets_at, "DATE_FORMAT"),
        }
        text = LEFT_TEXTS[BudgetPeriod(self.state.rule.period)] % values
        if not self.service:
            return text
        return _("%(service)s: %(left)s") % {"service": self.service_name, "left": text}

    @property
    def aria_now(self) -> str:
        """``spent`` for ``aria-valuenow``: a plain number, never localized."""
        return f"{self.state.spent:.2f}"

    @property
    def aria_max(self) -> str:
        return f"{self.state.rule.limit:.2f}"

    @property
    def resets_at(self) -> datetime:
        return self.state.resets_at


def budget_bars(user: Any) -> list[BudgetBar]:
    """Every budget the user is under, the site's first. One query."""
    if not user.is_authenticated:
        return []
    return [BudgetBar(state) for state in standing(user)]


def covering(bars: list[BudgetBar], service: str) -> list[BudgetBar]:
    """The budgets that count calls of ``service``: its own and those on every service."""
    return [bar for bar in bars if bar.service in ("", service)]


def platform_allowance(bars: list[BudgetBar]) -> list[BudgetBar]:
    """The site's budgets on its own key: what the user may spend on it."""
    return [bar for bar in bars if bar.site and bar.applies_to == AppliesTo.PLATFORM]
