"""Sentry: one user or organization auth token, tested with the API root ``GET /api/0/``.

Organization tokens (``sntrys_``) carry base64 JSON naming their organization and
region; byok reads it to probe an EU organization at its own host.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from decimal import Decimal

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from byok import jsonsafe
from byok.http import ProbeResponse
from byok.results import ProbeResult, ProbeStatus
from byok.services.answers import Answer
from byok.services.auth import Bearer
from byok.services.base import CredentialField, ProbeRequest, Service
from byok.services.formats import Caution, Format, FormatReport, ValidationResult

ORG_PREFIX = "sntrys_"
#: The only region hosts byok will send a token to: the token itself is user input.
_REGION_URL = re.compile(r"https://[a-z0-9-]+\.sentry\.io")
#: sentry.io itself, as an organization token's ``url`` names it.
_SENTRY_IO = re.compile(r"https://(?:[a-z0-9-]+\.)?sentry\.io/?")


def read_org_token(token: str) -> dict[str, object] | None:
    """The JSON between ``sntrys_`` and the last ``_``; ``None`` when it does not decode."""
    payload = token[len(ORG_PREFIX) : token.rfind("_")]
    try:
        data = jsonsafe.loads(base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True))
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Sentry(Service):
    id = "sentry"
    name = "Sentry"
    category = "developer"
    description = _("Error and performance monitoring, reported to your own organization.")
    icon = "byok/icons/sentry.svg"
    docs_url = "https://docs.sentry.io/api/"
    create_key_url = "https://sentry.io/settings/account/api/auth-tokens/"
    pricing = _("Monthly plans, priced by the volume of errors and other events you send.")
    free_tier = _("A free plan for a single developer, with a limited monthly event quota.")
    setup_minutes = 3
    benefits = (
        _("Errors reported to your own Sentry organization"),
        _("Your own event quota and data retention"),
        _("Only the scopes you grant the token"),
        _("Works with organizations hosted in the EU"),
    )
    setup_steps = (
        _("Sign in at sentry.io."),
        _("Open Settings → Personal Tokens (or Organization Tokens) and create a token."),
        _("Give it the scopes you need and copy it: it is shown once."),
    )
    fields = (
        CredentialField(
            "api_key",
            _("Auth token"),
            env=("SENTRY_AUTH_TOKEN",),
            help_text=_(
                "A personal token (starts with sntryu_) or an organization token (sntrys_)."
            ),
        ),
    )
    key_prefixes = ("sntryu_", "sntrys_")
    formats = {
        "api_key": Format(
            loose=r"sntryu_[A-Za-z0-9]{32,256}|sntrys_[A-Za-z0-9+/=_-]{40,3000}|[0-9a-f]{64}",
            strict=r"sntryu_[0-9a-f]{64}|sntrys_eyJ[A-Za-z0-9+/]+={0,2}_[A-Za-z0-9+/]{43}"
            r"|[0-9a-f]{64}",
            shape=_("a Sentry token: sntryu_ or sntrys_ followed by letters and digits"),
            strict_note=_(
                "The Sentry token does not have the usual shape of a personal (sntryu_) or "
                "organization (sntrys_) token: check that it was copied whole."
            ),
        ),
    }
    default_cost_per_call = Decimal("0")
    base_url = "https://sentry.io/api/0"
    authentication = Bearer()

    cautions = (
        Caution(
            "api_key",
            r"[0-9a-f]{64}",
            _(
                "This is an old-format Sentry token (64 hex characters, no prefix). It may "
                "still work, but new tokens start with sntryu_: consider creating one."
            ),
        ),
    )
    answers = (
        Answer(
            403,
            ProbeStatus.RESTRICTED,
            _("Sentry accepted the token, but it lacks a scope this check needs."),
        ),
    )
    # Sending a self-hosted server's token to sentry.io would hand it to a third party,
    # and its answer would say nothing about the token.
    unverifiable_reason = _(
        "This organization token was issued by a self-hosted Sentry server, "
        "so byok did not send it to sentry.io; its format was checked."
    )

    def api_url(self, credentials: Mapping[str, str] | None = None) -> str:
        """An organization token's own region host, unless the host set a base URL."""
        token = (credentials or {}).get("api_key", "")
        data = read_org_token(token) if token.startswith(ORG_PREFIX) else None
        region_url = data.get("region_url") if data else None
        if self.overridden or not isinstance(region_url, str):
            return super().api_url(credentials)
        if not _REGION_URL.fullmatch(region_url):
            raise ValueError("The Sentry token names a region host that is not sentry.io's.")
        return f"{region_url}/api/0"

    def check(
        self, credentials: dict[str, str], report: FormatReport, environment: str | None
    ) -> None:
        """An organization token names its organization and region: keep them."""
        token = credentials.get("api_key", "")
        if not token.startswith(ORG_PREFIX):
            return
        data = read_org_token(token)
        if data is None:
            report.warn(
                _(
                    "The organization and region inside this Sentry organization token "
                    "could not be read: check that it was copied whole."
                )
            )
            return
        for name in ("org", "region_url", "url"):
            value = data.get(name)
            if isinstance(value, str):
                report.details[name] = value

    def probe_request(self, checked: ValidationResult) -> ProbeRequest | None:
        url = checked.details.get("url")
        if url is not None and not _SENTRY_IO.fullmatch(url) and not self.overridden:
            return None
        region_url = checked.details.get("region_url", "")
        return ProbeRequest(
            "GET",
            "/",
            headers=self.credential_headers(checked.credentials),
            base_url=f"{region_url}/api/0" if _REGION_URL.fullmatch(region_url) else None,
        )

    def read_accepted(self, response: ProbeResponse, checked: ValidationResult) -> ProbeResult:
        """The API root answers anonymous requests too: only its ``auth`` tells."""
        body = response.json_dict()
        if isinstance(body.get("auth"), dict):
            return self.result(ProbeStatus.VALID, response)
        if "auth" in body and body["auth"] is None:
            return self.result(
                ProbeStatus.INVALID,
                response,
                gettext("Sentry answered, but did not recognize the token."),
            )
        return self.result(
            ProbeStatus.PROVIDER_ERROR,
            response,
            gettext(
                "Sentry answered with something other than its API's answer; the key "
                "was not judged."
            ),
        )
