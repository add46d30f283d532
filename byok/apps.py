from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ByokConfig(AppConfig):
    name = "byok"
    verbose_name = _("Bring your own keys")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # django-cryptography writes its defaults onto settings when first imported.
        # Import it now: first imported inside an override_settings() block, those
        # defaults would vanish when the block ends.
        import django_cryptography.utils.crypto  # noqa: F401

        # checks and handlers register themselves; kms gives byok.crypto its KMS keyring.
        from byok import alerts, checks, kms, receivers  # noqa: F401
