"""Serializers of ``budgets/``. The values are checked by :func:`byok.budgets.set_budget`,
the one way a budget is set; these say what each field's type is (and the schema)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from byok.budgets import MAX_THRESHOLDS, Listed
from byok.models import AppliesTo, BudgetAction, BudgetPeriod, BudgetSource
from byok.rest.schema import extend_schema_field
from byok.rest.serializers import NamedChoiceField, StrictSerializer, TextField

#: A budget's fields that say which budget it is: set when it is created, then fixed.
IDENTITY = ("service", "applies_to", "period")
#: A budget's limit: USD, two decimals, below 10 billion (what ``Budget.limit`` holds).
LIMIT = {"max_digits": 12, "decimal_places": 2, "min_value": 0}


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "format": "decimal", "pattern": r"^\d{0,10}(?:\.\d{0,2})?$"},
            {"type": "number", "minimum": 0, "maximum": 9999999999.99},
        ]
    }
)
class LimitField(serializers.DecimalField):
    """A limit in USD, as a decimal string (``"12.50"``) or a JSON number."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**LIMIT, **kwargs)  # type: ignore[arg-type]


def applies_to_field(**kwargs: Any) -> NamedChoiceField:
    return NamedChoiceField(choices=AppliesTo.choices, enum_name="BudgetAppliesTo", **kwargs)


def period_field(**kwargs: Any) -> NamedChoiceField:
    return NamedChoiceField(choices=BudgetPeriod.choices, enum_name="BudgetPeriod", **kwargs)


def action_field(**kwargs: Any) -> NamedChoiceField:
    return NamedChoiceField(choices=BudgetAction.choices, enum_name="BudgetAction", **kwargs)


class BudgetSerializer(serializers.Serializer[Any]):
    """A budget and where the user stands on it in its current period."""

    id = serializers.IntegerField(
        allow_null=True,
        help_text=_("Null for a default budget of the site you have not spent under yet."),
    )
    name = serializers.CharField(
        allow_null=True, help_text=_("The site's name for a default budget; null otherwise.")
    )
    service = serializers.CharField(allow_null=True, help_text=_("Null: every service."))
    applies_to = applies_to_field()
    period = period_field()
    limit = serializers.DecimalField(**LIMIT, help_text=_("USD."))  # type: ignore[arg-type]
    action = action_field()
    alert_at = serializers.ListField(
        child=serializers.IntegerField(), help_text=_("Alert thresholds, percent of the limit.")
    )
    spent = serializers.DecimalField(
        max_digits=14, decimal_places=6, help_text=_("USD recorded in the current period.")
    )
    reserved = serializers.DecimalField(
        max_digits=14, decimal_places=6, help_text=_("USD held for calls under way.")
    )
    period_start = serializers.DateField()
    resets_at = serializers.DateTimeField(help_text=_("When the current period ends."))
    source = NamedChoiceField(  # type: ignore[assignment]
        choices=BudgetSource.choices,
        enum_name="BudgetSource",
        help_text=_("site: set by the site (its defaults, or the admin); user: set by you."),
    )
    editable = serializers.BooleanField(
        help_text=_("Whether you may change or delete it: only budgets you set yourself.")
    )

    def to_representation(self, instance: Any) -> Any:
        if isinstance(instance, Listed):
            instance = budget_fields(instance)
        return super().to_representation(instance)


def budget_fields(listed: Listed) -> dict[str, Any]:
    state, budget, rule = listed.state, listed.budget, listed.state.rule
    site = budget is None or budget.source == BudgetSource.SITE or bool(budget.default_name)
    return {
        "id": state.id,
        "name": rule.name if budget is None or budget.default_name else None,
        "service": rule.service or None,
        "applies_to": rule.applies_to,
        "period": rule.period,
        "limit": rule.limit,
        "action": rule.action,
        "alert_at": list(rule.alert_at),
        "spent": state.spent,
        "reserved": state.reserved,
        "period_start": state.start,
        "resets_at": state.resets_at,
        "source": BudgetSource.SITE if site else BudgetSource.USER,
        "editable": listed.editable,
    }


class BudgetInputSerializer(StrictSerializer):
    """A budget of your own, on your own spend."""

    #: What a budget's representation holds and a client may send back: ignored.
    ignored_fields: ClassVar[frozenset[str]] = frozenset(
        {"id", "name", "spent", "reserved", "period_start", "resets_at", "source", "editable"}
    )

    limit = LimitField(help_text=_("USD, 0 or more: a decimal string or a number."))
    service = TextField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=64,
        default=None,
        help_text=_("A service id; null or empty: every service."),
    )
    applies_to = applies_to_field(
        default=AppliesTo.OWN,
        help_text=_("Whose keys' spend counts: own, platform, team (any team's), all."),
    )
    period = period_field(default=BudgetPeriod.MONTH)
    action = action_field(
        default=BudgetAction.ALERT,
        help_text=_("alert: alerts only; block: refuse keys once spent."),
    )
    alert_at = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=1000),
        max_length=MAX_THRESHOLDS,
        default=[50, 80, 100],
        help_text=_("Alert thresholds, whole percent of the limit (1 to 1000)."),
    )


class BudgetChangeSerializer(BudgetInputSerializer):
    """A change of one of your budgets: its limit, action and thresholds. Its service,
    ``applies_to`` and period say which budget it is: sent, they must be unchanged."""

    def __init__(self, *args: Any, budget: Any, **kwargs: Any) -> None:
        self.budget = budget
        super().__init__(*args, partial=True, **kwargs)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        current = {"service": self.budget.service or None}
        current.update(applies_to=self.budget.applies_to, period=self.budget.period)
        changed = {
            name: [
                serializers.ErrorDetail(
                    str(_("A budget's %(field)s cannot change: create another budget."))
                    % {"field": name},
                    code="immutable",
                )
            ]
            for name in IDENTITY
            if name in attrs and (attrs[name] or None) != current[name]
        }
        if changed:
            raise serializers.ValidationError(changed)
        return attrs
