"""Stripe: one secret (sk_) or restricted (rk_) key, tested with ``GET /v1/balance``.

The key says whether it is a test or a live key, and so does the balance's
``livemode``: either is compared with the environment the key is stored for.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from byok.http import ProbeResponse
from byok.results import ProbeResult, ProbeStatus
from byok.services.answers import Answer
from byok.services.auth import Bearer
from byok.services.base import CredentialField, ProbeRequest, Service
from byok.services.formats import Format, FormatReport, Refusal, ValidationResult

MODE = re.compile(r"(?:sk|rk)_(test|live)_")
#: A restricted-key permission name, as Stripe's 403 message quotes it. Not secret.
PERMISSION = re.compile(r"\brak_[a-z_]{1,64}\b")


def mode_warning(live: bool, environment: str | None) -> str | None:
    """The warning for a test key stored for production, or a live key stored for tests."""
    if environment == "production" and not live:
        return gettext(
            "This is a Stripe test key, but it is stored for production: no real payment "
            "can be made with it."
        )
    if environment in ("test", "development") and live:
        return gettext(
            "This is a Stripe live key, which moves real money, but it is stored for "
            "testing or development."
        )
    return None


class Stripe(Service):
    id = "stripe"
    name = "Stripe"
    category = "payment"
    description = _("Online payments, subscriptions and invoicing.")
    icon = "byok/icons/stripe.svg"
    docs_url = "https://docs.stripe.com/api"
    create_key_url = "https://dashboard.stripe.com/apikeys"
    pricing = _("A fee per successful payment; no monthly fee on the standard plan.")
    free_tier = _("No charge for API calls or for test mode; you pay fees on real payments only.")
    setup_minutes = 5
    difficulty = "medium"
    popular = True
    benefits = (
        _("Payments go straight to your own Stripe account"),
        _("Your own payouts, fees and dashboard"),
        _("A restricted key can limit what is allowed"),
        _("Test mode keys for trying things safely"),
    )
    setup_steps = (
        _("Sign in at dashboard.stripe.com."),
        _("Open “Developers”, then “API keys”."),
        _("Create a restricted key (or reveal the secret key) and copy it."),
    )
    fields = (
        CredentialField(
            "api_key",
            _("Secret key"),
            env=("STRIPE_SECRET_KEY", "STRIPE_API_KEY"),
            help_text=_(
                "Starts with sk_live_, sk_test_, rk_live_ or rk_test_ (never the publishable "
                "pk_ key)."
            ),
        ),
    )
    key_prefixes = ("sk_live_", "sk_test_", "rk_live_", "rk_test_")
    formats = {
        "api_key": Format(
            loose=r"(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{10,247}",
            strict=r"(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{20,247}",
            shape=_("sk_ or rk_, then test_ or live_, then 10 to 247 letters or digits"),
            strict_note=_(
                "The Stripe key is shorter than Stripe keys are: check that it was copied whole."
            ),
        ),
    }
    default_cost_per_call = Decimal("0")
    base_url = "https://api.stripe.com"
    authentication = Bearer()

    refusals = (
        Refusal(
            "api_key",
            r"pk_.*",
            _(
                "This is a Stripe publishable key, which is public; paste the secret key "
                "(sk_) or a restricted key (rk_) instead."
            ),
        ),
        Refusal(
            "api_key",
            r"whsec_.*",
            _(
                "This is a Stripe webhook signing secret, not an API key; paste the secret "
                "key (sk_) or a restricted key (rk_) instead."
            ),
        ),
    )
    error_code_at = "error.type"
    error_message_at = "error.message"
    answers = (
        # Any 403 but a restricted key's missing permission (read_answer) says nothing
        # about the key.
        Answer(403, ProbeStatus.PROVIDER_ERROR),
    )

    def check(
        self, credentials: dict[str, str], report: FormatReport, environment: str | None
    ) -> None:
        mode = MODE.match(credentials.get("api_key", ""))
        warning = mode and mode_warning(mode.group(1) == "live", environment)
        if warning:
            report.warn(warning)

    def probe_request(self, checked: ValidationResult) -> ProbeRequest:
        return ProbeRequest(
            "GET", "/v1/balance", headers=self.credential_headers(checked.credentials)
        )

    def read_answer(self, response: ProbeResponse, checked: ValidationResult) -> ProbeResult:
        """A restricted key's 403 quotes the permission it lacks: say which."""
        if response.status == 403 and self.error_code(response) == "permission_error":
            permission = PERMISSION.search(self.error_message(response))
            if permission is None:
                message = gettext(
                    "Stripe accepted the restricted key, but it may not read the balance."
                )
            else:
                message = gettext(
                    "Stripe accepted the restricted key, but it lacks the “%(permission)s” "
                    "permission byok needs to read the balance."
                ) % {"permission": permission.group()}
            return self.result(ProbeStatus.RESTRICTED, response, message)
        return super().read_answer(response, checked)

    def read_accepted(self, response: ProbeResponse, checked: ValidationResult) -> ProbeResult:
        """The balance says test or live mode too: warn if it is not the environment's."""
        livemode = response.json_dict().get("livemode")
        warning = (
            mode_warning(livemode, checked.environment) if isinstance(livemode, bool) else None
        )
        # The key's prefix usually gave the same warning already.
        fresh = [warning] if warning and warning not in checked.warnings else []
        return self.result(ProbeStatus.VALID, response, warnings=fresh)
