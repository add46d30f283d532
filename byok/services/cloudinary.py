"""Cloudinary: a cloud name, an API key and its secret."""

from django.utils.translation import gettext_lazy as _

from byok.services.base import CredentialField, Service


class Cloudinary(Service):
    id = "cloudinary"
    name = "Cloudinary"
    category = "storage"
    fields = (
        CredentialField("cloud_name", _("Cloud name"), secret=False),
        CredentialField("api_key", _("API key"), secret=False),
        CredentialField("api_secret", _("API secret")),
    )
