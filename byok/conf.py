"""The ``BYOK`` settings dict, read lazily.

Nothing is read at import time. The dict is looked up on first use and again whenever
``setting_changed`` says ``BYOK`` changed (``override_settings`` and pytest-django's
``settings`` fixture send it), so overriding just works and the hot path does not pay
for Django's lazy settings object on every read. Nothing is ever written back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    "ENCRYPTION_KEYS": [],
    "KEYRING": "local",
    "KMS": None,
    "PLATFORM_KEYS": {},
    "DEFAULT_ENVIRONMENT": "production",
    "SERVICES": [],
    "DISABLED_SERVICES": [],
    "BASE_URLS": {},
    "ALLOW_PRIVATE_BASE_URLS": False,
    "PROBE_TIMEOUT": 10,
    "ALLOW_REVEAL": True,
    "BASE_TEMPLATE": "byok/base.html",
    "RENDER_MESSAGES": "auto",
    "PRICES": {},
    "DEFAULT_BUDGETS": [],
    "RESERVATION_TTL": 600,
    "RESOLUTION_ORDER": ["user", "team", "platform"],
    "TEAM_ADAPTER": "byok.teams.MembershipAdapter",
    "CURRENT_TEAM": None,
    "CLIENT_HOOKS": [],
    "RATE_LIMIT_CACHE": "default",
    "TASK_BACKEND": "default",
    "EXPIRY_REMINDER_DAYS": [14, 3, 0],
    "ROTATION_REMINDER_DAYS": None,
    "UNUSED_REMINDER_DAYS": None,
    "MAX_KEYS_PER_USER": 100,
    "WEBHOOKS": [],
    "WEBHOOK_ALLOWED_HOSTS": [],
    "WEBHOOK_MAX_ATTEMPTS": 5,
    "WEBHOOK_RETRY_DELAY": 30,
    "POSTGRES_ROW_LEVEL_SECURITY": False,
}

#: The values ``BYOK["RENDER_MESSAGES"]`` takes (check byok.E016 refuses others).
RENDER_MESSAGES_CHOICES = (True, False, "auto")


def _configured(value: object) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, Mapping):
        return any(isinstance(v, str) and v.strip() for v in value.values())
    return True  # not a credential at all: byok.E007 says so


def _days(value: object) -> int | None:
    """A number of days from settings; ``None`` (off) for ``None``. Check byok.E022
    reports values that are not whole numbers of at least one day."""
    if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


class ByokSettings:
    """Typed access to ``settings.BYOK`` with the documented defaults."""

    _cached: Mapping[str, Any] | None = None

    @property
    def _user_settings(self) -> Mapping[str, Any]:
        cached = self._cached
        if cached is None:
            cached = self._cached = getattr(settings, "BYOK", None) or {}
        return cached

    def forget(self, *, setting: str, **kwargs: object) -> None:
        """Read ``settings.BYOK`` afresh next time (connected to ``setting_changed``)."""
        if setting == "BYOK":
            self._cached = None

    def _get(self, name: str) -> Any:
        return self._user_settings.get(name, DEFAULTS[name])

    @property
    def unknown_names(self) -> list[str]:
        """Names in ``settings.BYOK`` that byok does not know (likely typos)."""
        return sorted(set(self._user_settings) - set(DEFAULTS))

    @property
    def ENCRYPTION_KEYS(self) -> Sequence[str]:
        """Keys for stored secrets: the first encrypts, all of them decrypt.

        A string is split on commas (a key never holds one) and blank entries are
        dropped, so ``os.environ.get("BYOK_ENCRYPTION_KEYS", "")`` is the whole
        setting, and an unset variable means no key (check byok.E001), not a
        malformed one.
        """
        keys = self._get("ENCRYPTION_KEYS")
        entries = keys.split(",") if isinstance(keys, str) else list(keys)
        stripped = [entry.strip() if isinstance(entry, str) else entry for entry in entries]
        return [entry for entry in stripped if entry != ""]

    @property
    def KEYRING(self) -> str:
        """Which keys encrypt new secrets: ``"local"`` (``ENCRYPTION_KEYS``) or ``"kms"``
        (data keys a KMS wraps, ``KMS``). Both kinds decrypt whatever is configured."""
        return self._get("KEYRING")  # type: ignore[no-any-return]

    @property
    def KMS(self) -> Mapping[str, Any] | None:
        """The KMS that wraps data keys: ``BACKEND`` (default ``byok.kms.AwsKms``),
        ``KEY_ID``, ``CACHE_SECONDS`` (default 300) and the backend's own options."""
        value = self._get("KMS")
        return dict(value) if isinstance(value, Mapping) else value

    @property
    def PLATFORM_KEYS(self) -> Mapping[str, str | Mapping[str, str]]:
        """Service id to the platform's own credential, used as the fallback.

        An empty value (``""``, or a mapping whose values are all empty), as
        ``os.environ.get("OPENAI_API_KEY", "")`` gives, means no platform key.
        """
        keys: Mapping[str, Any] = self._get("PLATFORM_KEYS")
        return {service: value for service, value in keys.items() if _configured(value)}

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

    @property
    def BASE_URLS(self) -> Mapping[str, str]:
        """Service id to the API base URL its probe uses (self-hosted, regional, gateway)."""
        return self._get("BASE_URLS")  # type: ignore[no-any-return]

    @property
    def ALLOW_PRIVATE_BASE_URLS(self) -> bool:
        """Whether a base URL may resolve to a loopback, private or link-local address."""
        return bool(self._get("ALLOW_PRIVATE_BASE_URLS"))

    @property
    def ALLOW_REVEAL(self) -> bool:
        """Whether owners may see a stored key's plaintext again (``reveal/``)."""
        return bool(self._get("ALLOW_REVEAL"))

    @property
    def PRICES(self) -> Mapping[str, Mapping[str, Any]]:
        """Service id to model to prices (USD per million tokens, or per unit): added to,
        or replacing, what the service declares."""
        return self._get("PRICES")  # type: ignore[no-any-return]

    @property
    def DEFAULT_BUDGETS(self) -> Sequence[Mapping[str, Any]]:
        """Budgets every user has, such as a free allowance on the platform's key."""
        return list(self._get("DEFAULT_BUDGETS"))

    @property
    def MAX_KEYS_PER_USER(self) -> int:
        """The most keys (not deleted) one user, or one team, may hold. Check byok.E023
        refuses values that are not a whole number of at least 1."""
        value = self._get("MAX_KEYS_PER_USER")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        return 100

    @property
    def RESERVATION_TTL(self) -> float:
        """Seconds a reservation holds money when its call never settles (a crash)."""
        return float(self._get("RESERVATION_TTL"))

    @property
    def RESOLUTION_ORDER(self) -> Sequence[str]:
        """Whose key serves first: ``user``, ``team`` and ``platform``, in order."""
        return list(self._get("RESOLUTION_ORDER"))

    @property
    def TEAM_ADAPTER(self) -> str:
        """Import path of the class that says who is in which team (byok.teams)."""
        return str(self._get("TEAM_ADAPTER"))

    @property
    def CURRENT_TEAM(self) -> Any:
        """A callable, or its import path, ``(user, request) -> team | None``."""
        return self._get("CURRENT_TEAM")

    @property
    def CLIENT_HOOKS(self) -> Sequence[str]:
        """Import paths of :class:`byok.clients.CallHook` classes the metered clients run
        around each call, in order."""
        return list(self._get("CLIENT_HOOKS"))

    @property
    def BASE_TEMPLATE(self) -> str:
        """The template byok's pages extend; it must have ``title`` and ``content`` blocks."""
        return str(self._get("BASE_TEMPLATE"))

    @property
    def RENDER_MESSAGES(self) -> bool | str:
        """Whether byok's pages show Django's messages: ``True``, ``False``, or ``"auto"``,
        which shows those the page has not shown already (in the host's layout)."""
        return self._get("RENDER_MESSAGES")  # type: ignore[no-any-return]

    @property
    def RATE_LIMIT_CACHE(self) -> str:
        """The alias (in ``CACHES``) of the cache the per-user budgets are counted in."""
        return str(self._get("RATE_LIMIT_CACHE"))

    @property
    def TASK_BACKEND(self) -> str:
        """The alias (in ``TASKS``) of the task backend byok's background work goes to."""
        return str(self._get("TASK_BACKEND"))

    @property
    def EXPIRY_REMINDER_DAYS(self) -> list[int]:
        """Days before a key's expiry on which its owner is told, largest first."""
        return sorted({int(days) for days in self._get("EXPIRY_REMINDER_DAYS")}, reverse=True)

    @property
    def ROTATION_REMINDER_DAYS(self) -> int | None:
        """Age of a secret (days since it was last replaced) past which its owner is
        reminded to rotate it; ``None``: never."""
        return _days(self._get("ROTATION_REMINDER_DAYS"))

    @property
    def UNUSED_REMINDER_DAYS(self) -> int | None:
        """Days without use after which a key's owner is asked whether it is still
        needed; ``None``: never."""
        return _days(self._get("UNUSED_REMINDER_DAYS"))

    @property
    def WEBHOOKS(self) -> Sequence[Mapping[str, Any]]:
        """Where byok posts its events: ``{"url", "secret", "events"}`` each (byok.E026)."""
        return list(self._get("WEBHOOKS"))

    @property
    def WEBHOOK_ALLOWED_HOSTS(self) -> Sequence[str]:
        """Host names a webhook may reach over plain http or at a private, loopback or
        link-local address (an internal receiver); every other one is https to a
        public address."""
        return [str(host).lower() for host in self._get("WEBHOOK_ALLOWED_HOSTS")]

    @property
    def WEBHOOK_MAX_ATTEMPTS(self) -> int:
        """Attempts at delivering one event to one webhook before giving up (byok.E029)."""
        return int(self._get("WEBHOOK_MAX_ATTEMPTS"))

    @property
    def WEBHOOK_RETRY_DELAY(self) -> float:
        """Seconds before the first retry; each later one waits twice as long (byok.E029)."""
        return float(self._get("WEBHOOK_RETRY_DELAY"))

    @property
    def POSTGRES_ROW_LEVEL_SECURITY(self) -> bool:
        """Whether byok scopes each connection to one user's rows (byok.rls): the
        policies ``byok_row_level_security enable`` puts on byok's tables then let a
        request read only its user's rows and their teams'. PostgreSQL only (byok.E030)."""
        return self._get("POSTGRES_ROW_LEVEL_SECURITY") is True

    @property
    def PROBE_TIMEOUT(self) -> float | tuple[float, float]:
        """Seconds a probe waits: one number (connect at most 5 s), or (connect, read)."""
        return self._get("PROBE_TIMEOUT")  # type: ignore[no-any-return]


conf = ByokSettings()
setting_changed.connect(conf.forget, dispatch_uid="byok.conf.forget")
