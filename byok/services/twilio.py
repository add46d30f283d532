"""Twilio: an Account SID and its auth token."""

from django.utils.translation import gettext_lazy as _

from byok.services.base import CredentialField, Service


class Twilio(Service):
    id = "twilio"
    name = "Twilio"
    category = "sms"
    fields = (
        CredentialField("account_sid", _("Account SID"), secret=False),
        CredentialField("auth_token", _("Auth token")),
    )
