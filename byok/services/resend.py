"""Resend: one API key, tested with ``GET /domains``.

Resend inverts the usual status codes: a bad key is a 403 and a sending-only key a
401, so the answer is read from the JSON ``name`` field, never the status alone.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from byok.results import ProbeStatus
from byok.services.answers import Answer
from byok.services.auth import Bearer
from byok.services.base import CredentialField, ProbeRequest, Service
from byok.services.formats import Format, Refusal, ValidationResult


class Resend(Service):
    id = "resend"
    name = "Resend"
    category = "email"
    description = _("Transactional e-mail with a simple API, sent from your own domain.")
    icon = "byok/icons/resend.svg"
    docs_url = "https://resend.com/docs/api-reference/introduction"
    create_key_url = "https://resend.com/api-keys"
    pricing = _("Monthly plans by the number of e-mails sent.")
    free_tier = _("A free plan with a monthly and daily sending limit and one domain.")
    setup_minutes = 5
    difficulty = "easy"
    popular = False
    benefits = (
        _("Mail sent from your own verified domain"),
        _("Your own sending limits and reputation"),
        _("Delivery logs in your Resend dashboard"),
        _("A sending-only key is enough"),
    )
    setup_steps = (
        _("Sign in at resend.com and verify your sending domain."),
        _("Open “API Keys” and choose “Create API Key”."),
        _("Choose full or sending access, then copy the key: it is shown once."),
    )
    fields = (
        CredentialField(
            "api_key", _("API key"), env=("RESEND_API_KEY",), help_text=_("Starts with re_.")
        ),
    )
    key_prefixes = ("re_",)
    formats = {
        "api_key": Format(
            loose=r"re_[A-Za-z0-9_]{20,128}",
            strict=r"re_[A-Za-z0-9]{8}_[A-Za-z0-9]{24}",
            shape=_("re_ followed by 20 to 128 letters, digits or _"),
            strict_note=_(
                "The Resend key does not have the usual shape (re_, 8 characters, _, "
                "24 characters): check that it was copied whole."
            ),
        ),
    }
    default_cost_per_call = Decimal("0.0004")
    base_url = "https://api.resend.com"
    authentication = Bearer()

    refusals = (
        # re_123, re_123456789: the example keys of Resend's documentation.
        Refusal(
            "api_key",
            r"re_123\d*",
            _("This is the example key from Resend's documentation, not a real key."),
            code="placeholder",
        ),
    )
    error_code_at = "name"
    answers = (
        Answer(
            401,
            ProbeStatus.RESTRICTED,
            _(
                "Resend accepted the key: it is a sending-only key, which can send e-mail "
                "but not read the domains."
            ),
            code="restricted_api_key",
        ),
        Answer(
            401,
            ProbeStatus.PROVIDER_ERROR,
            _(
                "Resend received byok's request without the key (a proxy dropping the "
                "header?); the key was not judged."
            ),
            code="missing_api_key",
        ),
        Answer(403, ProbeStatus.INVALID, code="invalid_api_key"),
        Answer(
            403,
            ProbeStatus.PROVIDER_ERROR,
            _(
                "Resend's firewall refused byok's request (not an answer from its API); "
                "the key was not judged."
            ),
            code="",
            html=True,
        ),
        Answer((401, 403), ProbeStatus.PROVIDER_ERROR, html=True),
    )

    def probe_request(self, checked: ValidationResult) -> ProbeRequest:
        return ProbeRequest(
            "GET", "/domains", headers=self.credential_headers(checked.credentials)
        )
