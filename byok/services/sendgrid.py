"""Twilio SendGrid: one API key, tested with ``GET /v3/scopes``.

The answer lists the key's own scopes, so the probe also tells whether the key can
send mail. Keys of EU regional subusers only work on the EU host: a 401 from the
global host is checked there once before the key is called invalid.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from byok.http import ProbeResponse
from byok.results import ProbeResult, ProbeStatus
from byok.services.answers import Answer, Region
from byok.services.auth import Bearer
from byok.services.base import CredentialField, ProbeRequest, Service
from byok.services.formats import Format, ValidationResult

EU_BASE_URL = "https://api.eu.sendgrid.com"
#: The scope a key needs to send mail.
MAIL_SEND = "mail.send"


class SendGrid(Service):
    id = "sendgrid"
    name = "SendGrid"
    category = "email"
    description = _("Twilio's e-mail delivery platform for transactional and marketing mail.")
    icon = "byok/icons/sendgrid.svg"
    docs_url = "https://www.twilio.com/docs/sendgrid/api-reference"
    create_key_url = "https://app.sendgrid.com/settings/api_keys"
    pricing = _("Monthly plans by the number of e-mails sent.")
    free_tier = _("A free trial with a small daily sending limit.")
    setup_minutes = 10
    difficulty = "medium"
    popular = False
    benefits = (
        _("Mail sent from your own authenticated domain"),
        _("Your own sending limits and reputation"),
        _("Delivery and engagement stats in your account"),
        _("A key limited to “Mail Send” is enough"),
    )
    setup_steps = (
        _("Sign in at app.sendgrid.com and authenticate your sending domain."),
        _("Open “Settings”, then “API Keys”, and choose “Create API Key”."),
        _("Give it “Mail Send” access (or full access) and copy it: it is shown once."),
    )
    fields = (
        CredentialField(
            "api_key",
            _("API key"),
            env=("SENDGRID_API_KEY",),
            help_text=_("Starts with SG. and is 69 characters long."),
        ),
    )
    key_prefixes = ("SG.",)
    formats = {
        "api_key": Format(
            loose=r"SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{32,64}",
            strict=r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
            shape=_(
                "SG. followed by two parts separated by a dot, made of letters, digits, - or _"
            ),
            strict_note=_(
                "The SendGrid key is not 69 characters long, as SendGrid keys are: check that "
                "it was copied whole."
            ),
        ),
    }
    default_cost_per_call = Decimal("0.0004")
    base_url = "https://api.sendgrid.com"
    authentication = Bearer()

    regions = (Region(EU_BASE_URL, _("EU")),)
    regional_note = _(
        "The key belongs to a SendGrid EU subuser and only works on the EU host: the site's "
        'administrator should set BYOK["BASE_URLS"]["sendgrid"] = "%(url)s".'
    )
    answers = (
        Answer(
            403,
            ProbeStatus.RESTRICTED,
            _("SendGrid accepted the key, but it may not read its own permissions."),
        ),
    )

    def probe_request(self, checked: ValidationResult) -> ProbeRequest:
        return ProbeRequest(
            "GET", "/v3/scopes", headers=self.credential_headers(checked.credentials)
        )

    def read_accepted(self, response: ProbeResponse, checked: ValidationResult) -> ProbeResult:
        """The key's scopes: without ``mail.send`` it cannot send mail."""
        scopes = response.json_dict().get("scopes")
        if not isinstance(scopes, list):
            return self.result(
                ProbeStatus.VALID,
                response,
                gettext("SendGrid accepted the key; its permissions could not be read."),
            )
        if MAIL_SEND not in scopes:
            return self.result(
                ProbeStatus.RESTRICTED,
                response,
                gettext(
                    "SendGrid accepted the key, but it cannot send mail: give it the "
                    "“Mail Send” permission."
                ),
            )
        return self.result(ProbeStatus.VALID, response)
