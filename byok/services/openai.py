"""OpenAI: one API key (user, project or service-account), tested with ``GET /models``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from byok.results import ProbeStatus
from byok.services.answers import Answer
from byok.services.auth import Bearer
from byok.services.base import CredentialField, ProbeRequest, Service
from byok.services.formats import Format, Refusal, ValidationResult
from byok.services.prices import PriceTable, per_million

#: When the models OpenAI's pricing page no longer lists were last listed there.
LEGACY = date(2025, 10, 1)


class OpenAI(Service):
    id = "openai"
    name = "OpenAI"
    category = "ai"
    description = _("GPT models for chat, reasoning, images, embeddings and speech.")
    icon = "byok/icons/openai.svg"
    docs_url = "https://platform.openai.com/docs/api-reference"
    create_key_url = "https://platform.openai.com/api-keys"
    pricing = _("Pay as you go, per token; the price depends on the model.")
    free_tier = _("No free API tier: you add prepaid credit to your account.")
    setup_minutes = 3
    popular = True
    benefits = (
        _("Your own rate limits, not a share of the platform's"),
        _("Usage billed straight to your OpenAI account"),
        _("Every model your organization can use"),
        _("Prompts stay under your own data controls"),
    )
    setup_steps = (
        _("Sign in at platform.openai.com."),
        _("Open “API keys” and choose “Create new secret key”."),
        _("Pick the project, give the key a name and copy it: it is shown once."),
    )
    fields = (
        CredentialField(
            "api_key",
            _("API key"),
            env=("OPENAI_API_KEY",),
            help_text=_("Starts with sk-proj-, sk-svcacct- or sk-."),
        ),
    )
    key_prefixes = ("sk-proj-", "sk-svcacct-", "sk-")
    formats = {
        "api_key": Format(
            loose=r"sk-(?!admin-)[A-Za-z0-9_-]{40,250}",
            strict=r"sk-(?:(?:proj|svcacct)-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}",
            shape=_("sk- followed by 40 to 250 letters, digits, - or _"),
            strict_note=_(
                "The OpenAI key does not have the usual shape of a user, project or "
                "service-account key: check that it was copied whole."
            ),
        ),
    }
    default_cost_per_call = Decimal("0.002")
    # Standard (not Batch, Flex or Priority) prices, short context, USD per million tokens.
    prices = PriceTable(
        as_of=date(2026, 6, 4),
        source="https://openai.com/api/pricing",
        models={
            "gpt-5.5": per_million("5.00", "30.00", "0.50"),
            "gpt-5.5-pro": per_million("30.00", "180.00"),
            "gpt-5.4": per_million("2.50", "15.00", "0.25"),
            "gpt-5.4-mini": per_million("0.75", "4.50", "0.075"),
            "gpt-5.4-nano": per_million("0.20", "1.25", "0.02"),
            "gpt-5.4-pro": per_million("30.00", "180.00"),
            "gpt-5": per_million("1.25", "10.00", "0.125", as_of=LEGACY),
            "gpt-5-mini": per_million("0.25", "2.00", "0.025", as_of=LEGACY),
            "gpt-5-nano": per_million("0.05", "0.40", "0.005", as_of=LEGACY),
            "gpt-4.1": per_million("2.00", "8.00", "0.50", as_of=LEGACY),
            "gpt-4.1-mini": per_million("0.40", "1.60", "0.10", as_of=LEGACY),
            "gpt-4.1-nano": per_million("0.10", "0.40", "0.025", as_of=LEGACY),
            "gpt-4o": per_million("2.50", "10.00", "1.25", as_of=LEGACY),
            "gpt-4o-mini": per_million("0.15", "0.60", "0.075", as_of=LEGACY),
            "o3": per_million("2.00", "8.00", "0.50", as_of=LEGACY),
            "o4-mini": per_million("1.10", "4.40", "0.275", as_of=LEGACY),
            "text-embedding-3-small": per_million("0.02", as_of=LEGACY),
            "text-embedding-3-large": per_million("0.13", as_of=LEGACY),
        },
    )
    base_url = "https://api.openai.com/v1"
    authentication = Bearer()

    refusals = (
        Refusal(
            "api_key",
            r"sk-admin-.*",
            _(
                "This is an OpenAI admin key, which manages the organization; "
                "create a project API key instead."
            ),
            code="format",
        ),
    )
    error_code_at = "error.code"
    error_message_at = "error.message"
    answers = (
        Answer(
            401,
            ProbeStatus.RESTRICTED,
            _(
                "OpenAI accepted the key, but it is restricted and cannot read the model list "
                "(give it the “Models: Read” permission to let byok check it)."
            ),
            says=("Missing scopes", "insufficient permissions"),
        ),
        Answer(
            401,
            ProbeStatus.RESTRICTED,
            _("OpenAI accepted the key, but the project's IP allowlist blocks this server."),
            says="IP not authorized",
        ),
        Answer(
            429,
            ProbeStatus.RESTRICTED,
            _("OpenAI accepted the key, but the account has no credit left."),
            code="insufficient_quota",
        ),
        Answer(
            403,
            ProbeStatus.PROVIDER_ERROR,
            _("OpenAI does not serve the country this server is in; the key was not judged."),
            says="not supported",
        ),
    )

    def probe_request(self, checked: ValidationResult) -> ProbeRequest:
        return ProbeRequest("GET", "/models", headers=self.credential_headers(checked.credentials))
