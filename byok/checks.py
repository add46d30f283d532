"""System checks. Each id is documented in docs/settings.md and has a test.

None of the messages ever shows a configured key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured, ValidationError

from byok.conf import conf
from byok.crypto import HOW_TO_CONFIGURE, KeyTooShort, MalformedKey, parse_key
from byok.services.registry import BUILTIN_SERVICES, load_service, registry

NO_KEY = "BYOK['ENCRYPTION_KEYS'] is empty: byok cannot store or read any secret."


@register(Tags.security)
def check_encryption_keys(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    keys = conf.ENCRYPTION_KEYS
    if not keys:
        if settings.DEBUG:
            return [Warning(NO_KEY, hint=HOW_TO_CONFIGURE, id="byok.W001")]
        return [Error(NO_KEY, hint=HOW_TO_CONFIGURE, id="byok.E001")]
    messages: list[CheckMessage] = []
    secrets_in_use = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    seen: set[bytes] = set()
    for position, key in enumerate(keys, start=1):
        where = f"BYOK['ENCRYPTION_KEYS'] entry {position}"
        try:
            raw = parse_key(key)
        except MalformedKey as error:
            messages.append(
                Error(f"{where} is malformed: {error}.", hint=HOW_TO_CONFIGURE, id="byok.E002")
            )
            continue
        except KeyTooShort as error:
            messages.append(
                Error(f"{where} is too short: {error}.", hint=HOW_TO_CONFIGURE, id="byok.E003")
            )
            continue
        if key in secrets_in_use:
            messages.append(
                Error(
                    f"{where} is the same as SECRET_KEY (or one of SECRET_KEY_FALLBACKS).",
                    hint="Use a separate key: rotating SECRET_KEY must never touch stored "
                    "secrets. " + HOW_TO_CONFIGURE,
                    id="byok.E004",
                )
            )
        if raw in seen:
            messages.append(Warning(f"{where} repeats an earlier key.", id="byok.W002"))
        seen.add(raw)
    return messages


@register(Tags.security, deploy=True)
def check_encryption_keys_for_deploy(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Under ``check --deploy`` a missing key is an error even with DEBUG on."""
    if not conf.ENCRYPTION_KEYS and settings.DEBUG:
        return [Error(NO_KEY, hint=HOW_TO_CONFIGURE, id="byok.E001")]
    return []


@register()
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = [
        Warning(
            f"BYOK[{name!r}] is not a byok setting.", hint="Check the spelling.", id="byok.W003"
        )
        for name in conf.unknown_names
    ]
    from byok.models import Environment

    if conf.DEFAULT_ENVIRONMENT not in Environment.values:
        messages.append(
            Error(
                f"BYOK['DEFAULT_ENVIRONMENT'] must be one of {', '.join(Environment.values)}.",
                id="byok.E008",
            )
        )
    return messages + _check_probe_timeout() + _check_services()


def _check_services() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    known: set[str] = set()
    for path in [*BUILTIN_SERVICES, *conf.SERVICES]:
        try:
            known.add(load_service(path).id)
        except ImproperlyConfigured as error:
            messages.append(Error(str(error), obj="BYOK['SERVICES']", id="byok.E006"))
    if messages:
        return messages
    known.update(service.id for service in registry.registered)
    for service_id in conf.DISABLED_SERVICES:
        if service_id not in known:
            messages.append(_unknown_service("DISABLED_SERVICES", service_id))
    for service_id, url in conf.BASE_URLS.items():
        if service_id not in registry:
            messages.append(_unknown_service("BASE_URLS", service_id))
            continue
        messages.extend(_check_base_url(service_id, url))
    for service_id, value in conf.PLATFORM_KEYS.items():
        if service_id not in registry:
            messages.append(_unknown_service("PLATFORM_KEYS", service_id))
            continue
        service = registry.get(service_id)
        try:
            service.normalize(value)
        except ValidationError as error:
            fields = (
                ", ".join(sorted(error.message_dict)) if hasattr(error, "error_dict") else "value"
            )
            messages.append(
                Error(
                    f"BYOK['PLATFORM_KEYS'][{service_id!r}] does not fit the service ({fields}).",
                    hint=f"Fields of {service_id}: {', '.join(service.field_names)}.",
                    id="byok.E007",
                )
            )
    return messages


def _check_base_url(service_id: str, url: object) -> list[CheckMessage]:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Error(
                f"BYOK['BASE_URLS'][{service_id!r}] must be an absolute http(s) URL.",
                id="byok.E009",
            )
        ]
    if parts.query or parts.fragment or parts.username or parts.password:
        return [
            Error(
                f"BYOK['BASE_URLS'][{service_id!r}] must not carry credentials, a query or "
                "a fragment.",
                id="byok.E009",
            )
        ]
    if parts.scheme == "http" and not conf.ALLOW_PRIVATE_BASE_URLS:
        return [
            Error(
                f"BYOK['BASE_URLS'][{service_id!r}] is plain http: credentials would travel "
                "unencrypted.",
                hint="Use https, or set BYOK['ALLOW_PRIVATE_BASE_URLS'] = True for an internal "
                "host.",
                id="byok.E010",
            )
        ]
    return []


def _check_probe_timeout() -> list[CheckMessage]:
    value = conf.PROBE_TIMEOUT
    numbers = list(value) if isinstance(value, list | tuple) else [value]
    fits = len(numbers) in (1, 2) and all(
        isinstance(n, int | float) and not isinstance(n, bool) and 0 < n <= 120 for n in numbers
    )
    if fits:
        return []
    return [
        Error(
            "BYOK['PROBE_TIMEOUT'] must be a number of seconds or a (connect, read) pair, "
            "each between 0 and 120.",
            id="byok.E011",
        )
    ]


def _unknown_service(setting: str, service_id: object) -> Error:
    return Error(
        f"BYOK[{setting!r}] names {service_id!r}, which is not a registered service.",
        hint="Registered services: " + ", ".join(sorted(service.id for service in registry)),
        id="byok.E005",
    )
