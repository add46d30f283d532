"""Which key a metered client uses, and where its calls go."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

from byok.clients.hooks import configured_hooks
from byok.clients.meter import Meter
from byok.http import Unreachable, refuse_unsafe_base_url
from byok.resolution import resolve_api_key
from byok.services.base import Service
from byok.services.registry import registry


def base_url(definition: Service, credentials: Mapping[str, str]) -> str:
    """Where ``definition``'s calls go; a base URL the host configured is checked as
    the probes check it (``BYOK["ALLOW_PRIVATE_BASE_URLS"]``)."""
    url = definition.api_url(credentials)
    if definition.overridden:
        try:
            refuse_unsafe_base_url(url)
        except Unreachable as error:
            raise ImproperlyConfigured(f"{definition.name}: {error}") from None
    return url


@sensitive_variables()
def resolve(
    user: Any, service: str, environment: str | None, team: Any = None
) -> tuple[Meter, str]:
    """The meter of the key that serves ``user`` for ``service`` (with the configured
    hooks), and the base URL. Raises :class:`~byok.NoAPIKey` when no key serves."""
    definition = registry.get(service)
    resolved = resolve_api_key(user, service, environment=environment, team=team)
    url = base_url(definition, definition.as_fields(resolved.value))
    return Meter(user, resolved, configured_hooks()), url
