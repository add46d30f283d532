"""A service of the example site's own, registered with BYOK["SERVICES"].

It shows everything a host needs to add a provider byok does not ship: catalog
data, the credential's fields and format, and the one read-only request that
tests a key. (DeepL's API: ``GET /v2/usage`` with a ``DeepL-Auth-Key`` header;
free-plan keys end in ``:fx`` and use the api-free host.)
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from byok.services import (
    Answer,
    CredentialField,
    Format,
    Header,
    ProbeRequest,
    ProbeStatus,
    Service,
    ValidationResult,
)


class DeepL(Service):
    id = "deepl"
    name = "DeepL"
    category = "ai"
    description = _("Machine translation between 30-odd languages.")
    docs_url = "https://developers.deepl.com/docs"
    create_key_url = "https://www.deepl.com/your-account/keys"
    pricing = _("Pay per character translated on the Pro plan.")
    free_tier = _("The Free plan translates a monthly allowance of characters.")
    setup_minutes = 3
    benefits = (
        _("Your own monthly character allowance"),
        _("Glossaries and formality settings from your account"),
        _("Usage billed to your DeepL account"),
    )
    setup_steps = (
        _("Sign in at deepl.com and open your account."),
        _("Open the “API Keys” tab."),
        _("Copy your authentication key."),
    )
    fields = (
        CredentialField(
            "api_key",
            _("Authentication key"),
            help_text=_("A UUID; free-plan keys end in :fx."),
            env=("DEEPL_AUTH_KEY",),
        ),
    )
    formats = {
        "api_key": Format(
            loose=r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(:fx)?",
            shape=_("a UUID, optionally followed by :fx"),
        ),
    }
    default_cost_per_call = Decimal("0.0001")
    base_url = "https://api.deepl.com"
    authentication = Header("Authorization", prefix="DeepL-Auth-Key ")
    # A bad key is a 403, which byok reads as "invalid" like any other service's;
    # only what DeepL says differently needs a row.
    answers = (
        Answer(
            456,
            ProbeStatus.RESTRICTED,
            _("DeepL accepted the key, but its character quota for this period is used up."),
        ),
    )

    @sensitive_variables()  # the key is in ``checked`` and ``key``: out of error reports
    def probe_request(self, checked: ValidationResult) -> ProbeRequest:
        key = checked.credentials["api_key"]
        # Free-plan keys only work on the free host; both hosts are DeepL's own (a base
        # URL set in BYOK["BASE_URLS"] wins over either).
        host = "https://api-free.deepl.com" if key.endswith(":fx") else None
        headers = self.credential_headers(checked.credentials)
        return ProbeRequest("GET", "/v2/usage", headers=headers, base_url=host)
