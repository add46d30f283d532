from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ByokConfig(AppConfig):
    name = "byok"
    verbose_name = _("Bring your own keys")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from byok import checks, receivers  # noqa: F401  (registers checks and handlers)
