"""The service registry: the built-in services plus those the host adds in settings.

Keys store the service id as a plain string and forms take their choices from
here, so adding a service never needs a migration.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from byok.conf import conf
from byok.exceptions import UnknownService
from byok.services.base import Service

BUILTIN_SERVICES = [
    "byok.services.openai.OpenAI",
    "byok.services.anthropic.Anthropic",
    "byok.services.resend.Resend",
    "byok.services.sendgrid.SendGrid",
    "byok.services.twilio.Twilio",
    "byok.services.stripe.Stripe",
    "byok.services.google_analytics.GoogleAnalytics",
    "byok.services.mixpanel.Mixpanel",
    "byok.services.aws_s3.AWSS3",
    "byok.services.cloudinary.Cloudinary",
    "byok.services.github.GitHub",
    "byok.services.sentry.Sentry",
]


def load_service(path: str) -> type[Service]:
    """Import a service class from its dotted path, with a helpful error."""
    try:
        cls = import_string(path)
    except ImportError as error:
        raise ImproperlyConfigured(f"Cannot import service {path!r}: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, Service)):
        raise ImproperlyConfigured(f"{path!r} is not a subclass of byok.services.base.Service.")
    return cls


class ServiceRegistry:
    """Services by id, built on first use from the built-ins and ``BYOK['SERVICES']``.

    A service registered in code with :meth:`register` survives a settings
    change; the settings-driven part is rebuilt when ``BYOK`` changes.
    """

    def __init__(self) -> None:
        self._registered: list[type[Service]] = []
        self._services: dict[str, Service] | None = None
        self._lock = threading.Lock()

    def register(self, service_class: type[Service]) -> type[Service]:
        """Add (or replace, by id) a service. Usable as a class decorator."""
        self._registered.append(service_class)
        self.reset()
        return service_class

    @property
    def registered(self) -> tuple[type[Service], ...]:
        """The services added in code with :meth:`register` (not through settings)."""
        return tuple(self._registered)

    def reset(self) -> None:
        self._services = None

    def _build(self) -> dict[str, Service]:
        classes = [load_service(path) for path in [*BUILTIN_SERVICES, *conf.SERVICES]]
        services = {cls.id: cls() for cls in [*classes, *self._registered]}
        for service_id in conf.DISABLED_SERVICES:
            services.pop(service_id, None)
        return services

    @property
    def services(self) -> dict[str, Service]:
        services = self._services
        if services is None:
            with self._lock:
                services = self._services = self._build()
        return services

    def loaded(self) -> Mapping[str, Service] | None:
        """The services if they are built already, else ``None``: never builds them.

        For the log filter, which runs inside logging calls: building there could
        import host code that logs, or wait on the lock of a thread that is logging.
        The mapping is replaced, never changed, when the registry is rebuilt.
        """
        return self._services

    def get(self, service_id: str) -> Service:
        """The service with this id; ``UnknownService`` if there is none (or it is disabled)."""
        try:
            return self.services[service_id]
        except (KeyError, TypeError):
            raise UnknownService(str(service_id)) from None

    def all(self) -> list[Service]:
        return list(self.services.values())

    def as_choices(self) -> list[tuple[str, str]]:
        return [(service.id, service.name) for service in self.services.values()]

    def __contains__(self, service_id: object) -> bool:
        return isinstance(service_id, str) and service_id in self.services

    def __iter__(self) -> Iterator[Service]:
        return iter(self.all())


registry = ServiceRegistry()


@receiver(setting_changed)
def _reset_on_settings_change(*, setting: str, **kwargs: object) -> None:
    if setting == "BYOK":
        registry.reset()
