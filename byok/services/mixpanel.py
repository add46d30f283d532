"""Mixpanel: a project token, and optionally a service account that byok can test.

The project token is public (it ships in every page's tracking snippet) and only
the ingestion endpoints accept it, so on its own it cannot be tested. A service
account can: ``GET /api/app/me`` on the host of the organization's region.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from byok.probes import ProbeStatus
from byok.services.base import CredentialField, Service
from byok.services.formats import Format

if TYPE_CHECKING:
    from django.utils.functional import Promise

    from byok.probes import ProbeClient, ProbeResponse, ProbeResult
    from byok.services.formats import FormatReport
    from byok.validation import ValidationResult

ME_PATH = "/api/app/me"

#: Data-residency hosts tried, in order, when the US host answers 401.
REGIONAL_HOSTS: tuple[tuple[str, Promise], ...] = (
    ("https://eu.mixpanel.com", _("EU")),
    ("https://in.mixpanel.com", _("India")),
)


class Mixpanel(Service):
    id = "mixpanel"
    name = "Mixpanel"
    category = "analytics"
    description = _("Product analytics: events, funnels, retention and user journeys.")
    icon = "byok/icons/mixpanel.svg"
    docs_url = "https://developer.mixpanel.com/reference/overview"
    create_key_url = "https://mixpanel.com/settings/project"
    pricing = _("A free plan, then paid plans priced by monthly events.")
    free_tier = _("A free plan with a monthly event allowance.")
    setup_minutes = 5
    difficulty = "medium"
    benefits = (
        _("Events go to your own Mixpanel project"),
        _("Your choice of data residency: US, EU or India"),
        _("Your own plan's event allowance"),
        _("Reports and exports under your control"),
    )
    setup_steps = (
        _("Sign in at mixpanel.com and open your project's settings."),
        _("Copy the project token under “Access keys”."),
        _(
            "To let byok test the credentials, also create a service account in the "
            "organization settings and copy its username and secret."
        ),
        _("Paste it here and choose “Add & test key”."),
    )
    fields = (
        CredentialField(
            "project_token",
            _("Project token"),
            env=("MIXPANEL_PROJECT_TOKEN", "MIXPANEL_TOKEN"),
            secret=False,
            help_text=_("Shown under “Access keys” in the project settings."),
        ),
        CredentialField(
            "service_account_username",
            _("Service account username"),
            env=("MIXPANEL_SERVICE_ACCOUNT_USERNAME",),
            secret=False,
            required=False,
            help_text=_("Optional. Ends in .mp-service-account; needed to test the credentials."),
        ),
        CredentialField(
            "service_account_secret",
            _("Service account secret"),
            env=("MIXPANEL_SERVICE_ACCOUNT_SECRET",),
            required=False,
            help_text=_("Optional. Shown once, when the service account is created."),
        ),
    )
    formats = {
        "project_token": Format(
            loose=r"[A-Za-z0-9]{16,64}",
            strict=r"[0-9a-f]{32}",
            shape=_("16 to 64 letters or digits"),
            strict_note=_(
                "Mixpanel project tokens are usually 32 lowercase hex characters: check that "
                "you copied the project token whole."
            ),
        ),
        # Observed usernames: <name>.<hex>.mp-service-account; the middle part varies.
        "service_account_username": Format(
            loose=r"[^\s:]+\.mp-service-account",
            shape=_("a service account username ending in .mp-service-account"),
        ),
        "service_account_secret": Format(
            loose=r"\S{16,128}",
            strict=r"[A-Za-z0-9]{32}",
            shape=_("16 to 128 characters without spaces"),
            strict_note=_(
                "Mixpanel service account secrets are usually 32 letters and digits: check "
                "that the secret was copied whole."
            ),
        ),
    }
    base_url = "https://mixpanel.com"

    def check(
        self, credentials: dict[str, str], report: FormatReport, environment: str | None
    ) -> None:
        if credentials["project_token"].isdigit() and "project_token" not in report.errors:
            report.error(
                "project_token",
                _(
                    "This looks like the project ID; byok needs the project token, shown "
                    "under “Access keys” in the project settings."
                ),
                code="wrong_kind",
            )
        if (
            "service_account_username" in credentials
            and "service_account_secret" not in credentials
        ):
            report.error(
                "service_account_secret",
                _(
                    "Add the service account's secret too, or leave both service account "
                    "fields empty."
                ),
                code="required",
            )
        if (
            "service_account_secret" in credentials
            and "service_account_username" not in credentials
        ):
            report.error(
                "service_account_username",
                _(
                    "Add the service account's username too, or leave both service account "
                    "fields empty."
                ),
                code="required",
            )

    def probe(self, checked: ValidationResult, http: ProbeClient) -> ProbeResult:
        username = checked.credentials.get("service_account_username")
        secret = checked.credentials.get("service_account_secret")
        if not (username and secret):
            return self.unverifiable(
                gettext(
                    "A Mixpanel project token is public and only the ingestion endpoints, "
                    "which record data, accept it; byok checked its format only. Add a "
                    "service account to let byok test the credentials."
                )
            )
        auth = (username, secret)
        response = http.request("GET", ME_PATH, auth=auth)
        if not self._rejected(response) or http.overridden:
            return self._read(response)
        # A service account of an EU or India organization may be unknown to the US host.
        for base_url, region in REGIONAL_HOSTS:
            regional = http.request("GET", ME_PATH, base_url=base_url, auth=auth)
            if 200 <= regional.status < 300:
                warning = gettext(
                    "The service account belongs to Mixpanel's %(region)s region: set "
                    'BYOK["BASE_URLS"]["mixpanel"] to "%(url)s" so that byok tests it '
                    "there directly."
                ) % {"region": region, "url": base_url}
                return self._read(regional, warnings=[warning])
            if not self._rejected(regional):
                return self._read(regional)
        return self.result(
            ProbeStatus.INVALID,
            response,
            gettext(
                "Mixpanel rejected the service account on its US, EU and India hosts (HTTP 401)."
            ),
        )

    @staticmethod
    def _rejected(response: ProbeResponse) -> bool:
        """A 401 from Mixpanel's API itself (not a proxy's page)."""
        return response.status == 401 and not response.is_html

    def _read(self, response: ProbeResponse, warnings: list[str] | None = None) -> ProbeResult:
        if 200 <= response.status < 300:
            return self.result(
                ProbeStatus.VALID,
                response,
                gettext(
                    "Mixpanel accepted the service account. The project token cannot be "
                    "tested; its format was checked."
                ),
                warnings=warnings,
            )
        return self.classify(response, warnings=warnings)
