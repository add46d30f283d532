"""Twilio: an Account SID and its auth token, tested by reading the account itself."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from byok.http import ProbeResponse
from byok.results import ProbeResult, ProbeStatus
from byok.services.answers import Answer
from byok.services.auth import Basic
from byok.services.base import CredentialField, ProbeRequest, Service
from byok.services.formats import Format, Refusal, ValidationResult

# Twilio error codes (twilio.com/docs/api/errors/…) the probe can meet.
TEST_CREDENTIALS = "20008"
ACCOUNT_NOT_ACTIVE = "20403"


class Twilio(Service):
    id = "twilio"
    name = "Twilio"
    category = "sms"
    description = _("SMS, WhatsApp, voice calls and phone numbers through one API.")
    icon = "byok/icons/twilio.svg"
    docs_url = "https://www.twilio.com/docs/usage/api"
    create_key_url = "https://console.twilio.com/"
    pricing = _("Pay as you go, per message or per minute; prices depend on the country.")
    free_tier = _(
        "A trial account with a small credit; trial messages only reach verified numbers."
    )
    setup_minutes = 5
    difficulty = "medium"
    popular = True
    benefits = (
        _("Messages sent from your own numbers and sender ids"),
        _("Usage billed straight to your Twilio account"),
        _("Your own throughput and messaging registrations"),
        _("Delivery logs in your own Twilio Console"),
    )
    setup_steps = (
        _("Sign in at console.twilio.com."),
        _("On the Console's home page, find “Account Info”."),
        _("Copy the Account SID, then show and copy the Auth token."),
    )
    fields = (
        CredentialField(
            "account_sid",
            _("Account SID"),
            env=("TWILIO_ACCOUNT_SID",),
            secret=False,
            help_text=_("Starts with AC, followed by 32 hex characters."),
        ),
        CredentialField(
            "auth_token",
            _("Auth token"),
            env=("TWILIO_AUTH_TOKEN",),
            help_text=_("32 hex characters, shown under the Account SID in the Twilio Console."),
        ),
    )
    formats = {
        # The SID goes into the probe's URL: the loose pattern is already exact.
        "account_sid": Format(
            loose=r"AC[0-9a-fA-F]{32}",
            strict=r"AC[0-9a-f]{32}",
            shape=_("AC followed by 32 hex characters"),
            strict_note=_(
                "Twilio Account SIDs are written in lowercase hex: check that the SID was "
                "copied unchanged."
            ),
        ),
        "auth_token": Format(
            loose=r"[A-Za-z0-9]{32,64}",
            strict=r"[0-9a-f]{32}",
            shape=_("32 to 64 letters or digits"),
            strict_note=_(
                "A Twilio auth token is usually 32 lowercase hex characters: check that it "
                "was copied whole."
            ),
        ),
    }
    default_cost_per_call = Decimal("0.0079")
    base_url = "https://api.twilio.com"
    authentication = Basic("account_sid", "auth_token")

    refusals = (
        Refusal(
            "account_sid",
            r"[Ss][Kk].*",
            _(
                "This is an API key SID (SK…). byok needs the Account SID (AC…) and its "
                "auth token, both shown on the Twilio Console's home page."
            ),
        ),
        # A SID of any kind: two capitals and 32 hex digits (AC account, SK API key, …).
        Refusal(
            "auth_token",
            r"[A-Z]{2}[0-9a-fA-F]{32}",
            _(
                "This is a Twilio SID, not the auth token: copy the Auth token shown "
                "under the Account SID."
            ),
        ),
    )
    error_code_at = "code"
    answers = (
        Answer(
            403,
            ProbeStatus.UNVERIFIABLE,
            _(
                "These are Twilio test credentials: they only work for sending test "
                "messages and calls, so byok cannot check them. Use the live Account SID "
                "and auth token to send real messages."
            ),
            code=TEST_CREDENTIALS,
        ),
        Answer(
            403,
            ProbeStatus.RESTRICTED,
            _("Twilio accepted the credentials, but the account is suspended or closed."),
            code=ACCOUNT_NOT_ACTIVE,
        ),
        # Authenticated (a bad pair is a 401) but refused: not a wrong key.
        Answer(
            403,
            ProbeStatus.RESTRICTED,
            _("Twilio accepted the credentials, but refused to show the account (HTTP 403)."),
        ),
        Answer(
            401,
            ProbeStatus.INVALID,
            _(
                "Twilio rejected the Account SID and auth token (HTTP 401): check that the "
                "token belongs to this account and has not been replaced."
            ),
        ),
    )

    def probe_request(self, checked: ValidationResult) -> ProbeRequest:
        sid = checked.credentials["account_sid"]
        path = f"/2010-04-01/Accounts/{quote(sid, safe='')}.json"
        return ProbeRequest("GET", path, auth=self.credential_basic(checked.credentials))

    def read_accepted(self, response: ProbeResponse, checked: ValidationResult) -> ProbeResult:
        return self.result(
            ProbeStatus.VALID, response, warnings=account_warnings(response.json_dict())
        )


def account_warnings(account: dict[str, object]) -> list[str]:
    """What the account resource says the user should know: not active, or a trial."""
    warnings = []
    status = account.get("status")
    if status == "suspended":
        warnings.append(
            gettext(
                "The Twilio account is suspended: it cannot send messages or make calls "
                "until Twilio reactivates it."
            )
        )
    elif status == "closed":
        warnings.append(
            gettext("The Twilio account is closed: it can no longer send messages or make calls.")
        )
    elif isinstance(status, str) and status != "active":
        warnings.append(gettext("The Twilio account is not active."))
    if account.get("type") == "Trial":
        warnings.append(
            gettext(
                "This is a Twilio trial account: it can only send to verified numbers, "
                "and its messages carry a trial notice."
            )
        )
    return warnings
