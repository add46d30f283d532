"""The ``BYOK`` settings dict, read lazily.

Every property reads ``settings.BYOK`` again, so ``override_settings`` just works
and nothing is read at import time. Nothing is ever written back to settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "ENCRYPTION_KEYS": [],
    "PLATFORM_KEYS": {},
    "DEFAULT_ENVIRONMENT": "production",
    "SERVICES": [],
    "DISABLED_SERVICES": [],
}


class ByokSettings:
    """Typed access to ``settings.BYOK`` with the documented defaults."""

    @property
    def _user_settings(self) -> Mapping[str, Any]:
        return getattr(settings, "BYOK", None) or {}

    def _get(self, name: str) -> Any:
        return self._user_settings.get(name, DEFAULTS[name])

    @property
    def unknown_names(self) -> list[str]:
        """Names in ``settings.BYOK`` that byok does not know (likely typos)."""
        return sorted(set(self._user_settings) - set(DEFAULTS))

    @property
    def ENCRYPTION_KEYS(self) -> Sequence[str]:
        """Keys for stored secrets: the first encrypts, all of them decrypt."""
        keys = self._get("ENCRYPTION_KEYS")
        return [keys] if isinstance(keys, str) else list(keys)

    @property
    def PLATFORM_KEYS(self) -> Mapping[str, str | Mapping[str, str]]:
        """Service id to the platform's own credential, used as the fallback."""
        return self._get("PLATFORM_KEYS")  # type: ignore[no-any-return]

    @property
    def DEFAULT_ENVIRONMENT(self) -> str:
        """The environment used when a helper is called without one."""
        return self._get("DEFAULT_ENVIRONMENT")  # type: ignore[no-any-return]

    @property
    def SERVICES(self) -> Sequence[str]:
        """Import paths of extra or replacement service classes."""
        return list(self._get("SERVICES"))

    @property
    def DISABLED_SERVICES(self) -> Sequence[str]:
        """Service ids hidden from users and refused by every helper."""
        return list(self._get("DISABLED_SERVICES"))


conf = ByokSettings()
