"""Mixpanel: a project token, and optionally a service account."""

from django.utils.translation import gettext_lazy as _

from byok.services.base import CredentialField, Service


class Mixpanel(Service):
    id = "mixpanel"
    name = "Mixpanel"
    category = "analytics"
    fields = (
        CredentialField("project_token", _("Project token"), secret=False),
        CredentialField(
            "service_account_username",
            _("Service account username"),
            secret=False,
            required=False,
        ),
        CredentialField("service_account_secret", _("Service account secret"), required=False),
    )
