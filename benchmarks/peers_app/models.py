"""One row per user holding a secret, each model in another library's encrypted field."""

from django.conf import settings
from django.db import models
from django_cryptography.fields import encrypt
from encrypted_fields.fields import EncryptedCharField


class FernetFieldSecret(models.Model):
    """django-fernet-encrypted-fields: Fernet under a key derived from SECRET_KEY."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    service = models.CharField(max_length=64)
    secret = EncryptedCharField(max_length=4096)

    class Meta:
        app_label = "peers_app"


class CryptographyFieldSecret(models.Model):
    """django-cryptography: its ``encrypt()`` around a CharField."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    service = models.CharField(max_length=64)
    secret = encrypt(models.CharField(max_length=4096))

    class Meta:
        app_label = "peers_app"
