"""Anthropic: one API key, tested with ``GET /v1/models``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from byok.results import ProbeStatus
from byok.services.answers import Answer
from byok.services.auth import Header
from byok.services.base import CredentialField, ProbeRequest, Service
from byok.services.formats import Format, Refusal, ValidationResult
from byok.services.prices import Price, PriceTable, per_million

#: The API version byok speaks; the API answers 400 without one.
API_VERSION = "2023-06-01"


#: When the older models' prices were read from Anthropic's pricing documentation.
LEGACY = date(2025, 8, 1)


def claude(input_price: str, output_price: str, *, as_of: date | None = None) -> Price:
    """A Claude model's prices: cache hits at a tenth of input, cache writes at 1.25 times."""
    base = Decimal(input_price)
    return per_million(
        input_price,
        output_price,
        str(base / 10),
        cache_write=str(base * Decimal("1.25")),
        as_of=as_of,
    )


class Anthropic(Service):
    id = "anthropic"
    name = "Anthropic"
    category = "ai"
    description = _("Claude models for chat, reasoning, coding and document understanding.")
    icon = "byok/icons/anthropic.svg"
    docs_url = "https://docs.anthropic.com/en/api/overview"
    create_key_url = "https://console.anthropic.com/settings/keys"
    pricing = _("Pay as you go, per token; the price depends on the model.")
    free_tier = _("No free API tier: you buy prepaid credit for your organization.")
    setup_minutes = 3
    difficulty = "easy"
    popular = True
    benefits = (
        _("Your own rate limits, not a share of the platform's"),
        _("Usage billed straight to your Anthropic account"),
        _("Every Claude model your workspace can use"),
        _("Spend limits and usage reports per workspace"),
    )
    setup_steps = (
        _("Sign in at console.anthropic.com."),
        _("Open “API keys” and choose “Create key”."),
        _("Pick the workspace, name the key and copy it: it is shown once."),
    )
    fields = (
        CredentialField(
            "api_key",
            _("API key"),
            env=("ANTHROPIC_API_KEY",),
            help_text=_("Starts with sk-ant-api03-."),
        ),
    )
    key_prefixes = ("sk-ant-api03-", "sk-ant-")
    formats = {
        "api_key": Format(
            loose=r"sk-ant-api\d{2,4}-[A-Za-z0-9_-]{80,120}",
            strict=r"sk-ant-api03-[A-Za-z0-9_-]{93}AA",
            shape=_(
                "sk-ant-api, a version number, a dash, then 80 to 120 letters, digits, - or _"
            ),
            strict_note=_(
                "The Anthropic key does not have the usual shape (sk-ant-api03-, 108 characters "
                "ending in AA): check that it was copied whole."
            ),
        ),
    }
    default_cost_per_call = Decimal("0.003")
    # USD per million tokens; cache writes at the 5-minute rate, cached input at the
    # cache-hit rate.
    prices = PriceTable(
        as_of=date(2026, 5, 1),
        source="https://www.anthropic.com/pricing#api",
        models={
            "claude-opus-4-7": claude("5", "25"),
            "claude-opus-4-6": claude("5", "25"),
            "claude-opus-4-5": claude("5", "25"),
            "claude-sonnet-4-6": claude("3", "15"),
            "claude-sonnet-4-5": claude("3", "15"),
            "claude-haiku-4-5": claude("1", "5"),
            "claude-sonnet-4": claude("3", "15", as_of=LEGACY),
            "claude-opus-4-1": claude("15", "75", as_of=LEGACY),
            "claude-opus-4": claude("15", "75", as_of=LEGACY),
            "claude-3-7-sonnet": claude("3", "15", as_of=LEGACY),
            "claude-3-5-haiku": claude("0.80", "4", as_of=LEGACY),
        },
    )
    base_url = "https://api.anthropic.com"
    authentication = Header("x-api-key", fixed_headers={"anthropic-version": API_VERSION})

    refusals = (
        Refusal(
            "api_key",
            r"sk-ant-admin.*",
            _(
                "This is an Anthropic Admin API key, which manages the organization and "
                "cannot call the models; create a regular API key instead."
            ),
        ),
    )
    error_code_at = "error.type"
    answers = (
        Answer(
            403,
            ProbeStatus.RESTRICTED,
            _("Anthropic accepted the key, but it has no permission to list the models."),
            code="permission_error",
        ),
        # Any other 403 says nothing sure about the key.
        Answer(403, ProbeStatus.PROVIDER_ERROR),
        Answer(
            404,
            ProbeStatus.INVALID,
            _("Anthropic does not know this key, or it has been disabled (HTTP 404)."),
        ),
        Answer(
            400,
            ProbeStatus.PROVIDER_ERROR,
            _(
                "Anthropic refused byok's test request (HTTP 400): a problem with the "
                "request, not with the key, which was not judged."
            ),
        ),
        Answer(
            529,
            ProbeStatus.PROVIDER_ERROR,
            _("Anthropic is overloaded (HTTP 529); the key was not judged. Try later."),
        ),
    )

    def probe_request(self, checked: ValidationResult) -> ProbeRequest:
        return ProbeRequest(
            "GET", "/v1/models", headers=self.credential_headers(checked.credentials)
        )
