"""Mixpanel: a project token, and optionally a service account that byok can test.

The project token is public (it ships in every page's tracking snippet) and only
the ingestion endpoints accept it, so on its own it cannot be tested. A service
account can: ``GET /api/app/me`` on the host of the organization's region.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from byok.results import ProbeStatus
from byok.services.answers import ACCEPTED, Answer, Region
from byok.services.auth import Basic
from byok.services.base import CredentialField, ProbeRequest, Service
from byok.services.formats import Format, Refusal, ValidationResult

ME_PATH = "/api/app/me"


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
    authentication = Basic("service_account_username", "service_account_secret")

    refusals = (
        Refusal(
            "project_token",
            r"\d+",
            _(
                "This looks like the project ID; byok needs the project token, shown "
                "under “Access keys” in the project settings."
            ),
        ),
    )
    together = (("service_account_username", "service_account_secret"),)
    # A service account of an EU or India organization may be unknown to the US host.
    regions = (
        Region("https://eu.mixpanel.com", _("EU")),
        Region("https://in.mixpanel.com", _("India")),
    )
    rejected_everywhere = _(
        "Mixpanel rejected the service account on its US, EU and India hosts (HTTP 401)."
    )
    answers = (
        Answer(
            ACCEPTED,
            ProbeStatus.VALID,
            _(
                "Mixpanel accepted the service account. The project token cannot be "
                "tested; its format was checked."
            ),
        ),
    )
    unverifiable_reason = _(
        "A Mixpanel project token is public and only the ingestion endpoints, "
        "which record data, accept it; byok checked its format only. Add a "
        "service account to let byok test the credentials."
    )

    def probe_request(self, checked: ValidationResult) -> ProbeRequest | None:
        if self.authentication is None or self.authentication.missing(checked.credentials):
            return None
        return ProbeRequest("GET", ME_PATH, auth=self.credential_basic(checked.credentials))
