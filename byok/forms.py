"""The pages' forms: adding a key (one input per credential field of a service),
importing keys, and setting a budget."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from byok import validation
from byok.budgets import DEFAULT_ALERT_AT
from byok.importing import MAX_BYTES
from byok.models import AppliesTo, Budget, BudgetAction, BudgetPeriod, Environment
from byok.services.base import MAX_VALUE_LENGTH, Service
from byok.services.registry import registry


class HelperErrorsMixin(forms.Form):
    """A form whose values a helper of byok's validates: its errors shown on the fields."""

    def describe_fields(self) -> None:
        """Point each input at its help text and its error list (``aria-describedby``)."""
        pattern = str(self.auto_id)
        for name, field in self.fields.items():
            ids = f"{pattern % name}_errors"
            if field.help_text:
                ids = f"{pattern % name}_help {ids}"
            field.widget.attrs["aria-describedby"] = ids

    def add_validation_error(self, error: ValidationError) -> None:
        """Show a ``ValidationError`` from the helpers next to the field it names."""
        by_field = (
            error.error_dict
            if hasattr(error, "error_dict")
            else {NON_FIELD_ERRORS: error.error_list}
        )
        for name, errors in by_field.items():
            field = name if name in self.fields else None
            for item in errors:
                self.add_error(field, item)


class AddKeyForm(HelperErrorsMixin):
    """Built from a service: password inputs for secrets, never rendered back."""

    nickname = forms.CharField(
        label=_("Nickname"),
        max_length=validation.MAX_NICKNAME_LENGTH,
        required=False,
        help_text=_("To tell your keys apart, e.g. “Work” or “Side project”."),
    )
    environment = forms.ChoiceField(
        label=_("Environment"), choices=Environment.choices, initial=Environment.default
    )
    expires_on = forms.DateField(
        label=_("Expires on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("If the key has an expiry date; you will be reminded before it."),
    )
    test = forms.BooleanField(
        label=_("Test the key with the provider before saving it"), required=False, initial=True
    )

    def __init__(self, service: Service, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"byok-{service.id}-%s")
        super().__init__(*args, **kwargs)
        self.service = service
        credential_fields = {}
        for credential_field in service.fields:
            widget: forms.Widget
            if credential_field.secret:
                widget = forms.PasswordInput(
                    render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
                )
            else:
                widget = forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})
            credential_fields[credential_field.name] = forms.CharField(
                label=str(credential_field.label),
                help_text=str(credential_field.help_text),
                required=credential_field.required,
                max_length=MAX_VALUE_LENGTH,
                strip=False,
                widget=widget,
            )
        # Credential fields first, in the service's order.
        self.fields = {**credential_fields, **self.fields}
        self.credential_names = list(credential_fields)
        self.describe_fields()

    def clean_nickname(self) -> str:
        return validation.clean_nickname(self.cleaned_data["nickname"])

    def expires_at(self) -> datetime | None:
        """The expiry date, as the start of that day in the current time zone."""
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day, time.min))

    def credentials(self) -> dict[str, str]:
        return {
            name: self.cleaned_data[name]
            for name in self.credential_names
            if self.cleaned_data.get(name)
        }

    def errors_as_data(self) -> dict[str, list[dict[str, str]]]:
        """Errors for the JavaScript dialog: field name (``__all__``) to message and code."""
        return {
            name: [{"message": " ".join(e.messages), "code": e.code or ""} for e in errors]
            for name, errors in self.errors.as_data().items()
        }


class ImportForm(forms.Form):
    """A ``.env`` file or JSON list of keys to import, and what to do with it."""

    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "A .env file (OPENAI_API_KEY=…, TWILIO_ACCOUNT_SID=… and so on) or a JSON list, "
            "at most 1 MB."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".env,.txt,.json,text/plain"}),
    )
    environment = forms.ChoiceField(
        label=_("Environment"), choices=Environment.choices, initial=Environment.default
    )
    test = forms.BooleanField(
        label=_("Test each key with its provider first"), required=False, initial=False
    )
    atomic = forms.BooleanField(
        label=_("Import nothing if any key fails"), required=False, initial=True
    )
    dry_run = forms.BooleanField(label=_("Only check, store nothing"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "byok-import-%s")
        super().__init__(*args, **kwargs)

    def data_bytes(self) -> bytes:
        """The file's first ``MAX_BYTES + 1`` bytes: enough to refuse a larger file."""
        upload = self.cleaned_data["file"]
        upload.seek(0)
        data: bytes = upload.read(MAX_BYTES + 1)
        return data


class BudgetForm(HelperErrorsMixin):
    """A budget of the user's own. The values go to :func:`byok.budgets.set_budget`
    as typed: it alone checks them, and its errors are shown on the fields."""

    service = forms.CharField(label=_("Service"), required=False, widget=forms.Select)
    applies_to = forms.ChoiceField(
        label=_("Counts spend on"),
        # A team's budgets are the team's to set, not on this page.
        choices=[
            (AppliesTo.OWN, _("Your own keys")),
            (AppliesTo.PLATFORM, _("The platform's key")),
            (AppliesTo.ALL, _("All keys, yours and the platform's")),
        ],
        initial=AppliesTo.OWN,
    )
    period = forms.CharField(
        label=_("Period"),
        widget=forms.Select(choices=BudgetPeriod.choices),
        initial=BudgetPeriod.MONTH,
        help_text=_("Calendar periods in the site's time zone; weeks start on Monday."),
    )
    limit = forms.CharField(
        label=_("Limit (USD)"),
        max_length=32,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    action = forms.CharField(
        label=_("When the limit is reached"),
        widget=forms.Select(
            choices=[
                (BudgetAction.ALERT, _("Alert me only")),
                (BudgetAction.BLOCK, _("Block further calls")),
            ]
        ),
        initial=BudgetAction.ALERT,
    )
    alert_at = forms.CharField(
        label=_("Alert at (% of the limit)"),
        required=False,
        max_length=64,
        initial=", ".join(map(str, DEFAULT_ALERT_AT)),
        help_text=_("Whole percentages, separated by commas; empty for no alerts."),
    )

    def __init__(self, *args: Any, budget: Budget | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "byok-budget-%s")
        if budget is not None:
            kwargs.setdefault(
                "initial",
                {
                    "service": budget.service,
                    "applies_to": budget.applies_to,
                    "period": budget.period,
                    "limit": budget.limit,
                    "action": budget.action,
                    "alert_at": (budget.alert_at or "").replace(",", ", "),
                },
            )
        super().__init__(*args, **kwargs)
        self.fields["service"].widget.choices = [
            ("", _("All services")),
            *registry.as_choices(),
        ]
        self.describe_fields()

    def budget_values(self) -> dict[str, Any]:
        """The keyword arguments of :func:`byok.budgets.set_budget`."""
        data = self.cleaned_data
        return {
            "service": data["service"] or None,
            "applies_to": data["applies_to"],
            "period": data["period"],
            "limit": data["limit"],
            "action": data["action"],
            "alert_at": data["alert_at"],
        }
