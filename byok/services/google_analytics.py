"""Google Analytics 4: a measurement id and a Measurement Protocol API secret."""

from django.utils.translation import gettext_lazy as _

from byok.services.base import CredentialField, Service


class GoogleAnalytics(Service):
    id = "google_analytics"
    name = "Google Analytics"
    category = "analytics"
    fields = (
        CredentialField("measurement_id", _("Measurement ID"), secret=False),
        CredentialField("api_secret", _("Measurement Protocol API secret")),
    )
