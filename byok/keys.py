"""The public Python API: find the key that serves a user, and change stored keys.

Every change runs inside a transaction holding the lock on the slot's
:class:`~byok.models.ServicePreference` row, so concurrent requests for one user
queue instead of racing; the unique fingerprint index is the backstop.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.db import IntegrityError, router, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from byok import audit
from byok.conf import conf
from byok.crypto import get_keyring
from byok.exceptions import DecryptionError, NoAPIKey, UnknownService
from byok.fields import canonical_bytes
from byok.lookup import find_slot
from byok.models import AuditAction, Environment, ServicePreference, UserAPIKey
from byok.services import registry
from byok.signals import key_added, key_removed, key_updated, key_used

Source = Literal["user", "platform"]


@dataclass(frozen=True)
class ResolvedKey:
    """The credential that serves a call, and whose it is."""

    value: str | dict[str, str] = field(repr=False)
    source: Source
    service: str
    environment: str
    key_id: uuid.UUID | None = None

    @cached_property
    def key(self) -> UserAPIKey | None:
        """The user's key row (one query, on first access); ``None`` for the platform's."""
        return None if self.key_id is None else UserAPIKey.objects.get(pk=self.key_id)


def resolve_api_key(
    user: Any, service: str, *, environment: str | None = None, fallback: bool = True
) -> ResolvedKey:
    """The user's default active key for ``service``, else the platform's key.

    One query and one decryption when the user has a key; no writes. Raises
    :class:`~byok.exceptions.NoAPIKey` when neither exists, or when the user
    chose "always use my key" for the service and has none.
    """
    spec = registry.get(service)
    environment = Environment.resolve(environment)
    slot = None
    if user is not None and user.is_authenticated:
        slot = find_slot(user.pk, service, environment)
    if slot is not None and slot.credentials is not None:
        try:
            credentials = slot.credentials.open()
        except DecryptionError as error:
            raise error.for_row(slot.key_id) from None
        resolved = ResolvedKey(
            spec.present(credentials), "user", service, environment, slot.key_id
        )
    else:
        refused = slot is not None and not slot.allow_platform_fallback
        platform = conf.PLATFORM_KEYS.get(service)
        if not fallback or refused or not platform:
            raise NoAPIKey(service, fallback_refused=refused)
        resolved = ResolvedKey(
            spec.present(spec.normalize(platform)), "platform", service, environment
        )
    key_used.send(
        sender=UserAPIKey,
        user=user,
        service=service,
        environment=environment,
        source=resolved.source,
        key_id=resolved.key_id,
    )
    return resolved


def get_user_api_key(
    user: Any, service: str, *, environment: str | None = None, fallback: bool = True
) -> str | dict[str, str]:
    """The credential to use for ``service``: a string, or a dict for multi-field services."""
    return resolve_api_key(user, service, environment=environment, fallback=fallback).value


aresolve_api_key = sync_to_async(resolve_api_key)
aget_user_api_key = sync_to_async(get_user_api_key)


def _duplicate() -> ValidationError:
    return ValidationError(
        {"credentials": ValidationError(_("You have already stored this key."), code="duplicate")}
    )


def _atomic() -> transaction.Atomic:
    return transaction.atomic(using=router.db_for_write(UserAPIKey))


def add_user_api_key(
    user: Any,
    service: str,
    credentials: object,
    *,
    nickname: str = "",
    environment: str = Environment.PRODUCTION,
    is_default: bool = False,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> UserAPIKey:
    """Encrypt and store a credential for ``user``.

    ``credentials`` is a mapping of field names to values, or a string for
    one-field services. Raises ``ValidationError`` (keyed by field) for an
    unknown service, a malformed value or a secret the user already stored.
    The first key of a (service, environment) becomes its default.
    """
    if service not in registry:
        raise ValidationError(
            {"service": ValidationError(_("Unknown service."), code="unknown_service")}
        )
    if environment not in Environment.values:
        raise ValidationError(
            {"environment": ValidationError(_("Unknown environment."), code="invalid_choice")}
        )
    if not isinstance(nickname, str) or len(nickname) > 100 or "\x00" in nickname:
        raise ValidationError(
            {"nickname": ValidationError(_("At most 100 characters of text."), code="invalid")}
        )
    key = UserAPIKey(
        user=user, service=service, nickname=nickname.strip(), environment=environment
    )
    clean = key.set_credentials(credentials)
    with _atomic():
        preference = ServicePreference.lock(user, service, environment)
        fingerprints = get_keyring().fingerprints(canonical_bytes(clean))
        if UserAPIKey.objects.filter(user=user, fingerprint__in=fingerprints).exists():
            raise _duplicate()
        try:
            with _atomic():
                key.save()
        except IntegrityError:
            raise _duplicate() from None
        if is_default or preference.default_key_id is None:
            preference.default_key = key
            preference.save(update_fields=["default_key"])
        audit.record(AuditAction.CREATED, key=key, actor=actor or user, request=request)
    key_added.send(sender=UserAPIKey, key=key, actor=actor or user)
    return key


def _lock_slot_of(key: UserAPIKey) -> ServicePreference:
    return ServicePreference.lock(key.user_id, key.service, key.environment)


def remove_user_api_key(
    key: UserAPIKey, *, actor: Any = None, request: HttpRequest | None = None
) -> None:
    """Soft-delete: erase the ciphertext and fingerprint, keep the row for the trail."""
    with _atomic():
        preference = _lock_slot_of(key)
        key.credentials = None
        key.fingerprint = None
        key.is_active = False
        key.deleted_at = timezone.now()
        key.save(
            update_fields=["credentials", "fingerprint", "is_active", "deleted_at", "updated_at"]
        )
        preference.settle()
        audit.record(AuditAction.DELETED, key=key, actor=actor, request=request)
    key_removed.send(sender=UserAPIKey, key=key, actor=actor)


def set_default_key(
    key: UserAPIKey, *, actor: Any = None, request: HttpRequest | None = None
) -> None:
    """Make ``key`` the one that serves its (user, service, environment)."""
    if not key.is_active or key.is_deleted:
        raise ValidationError(_("Only an active key can be the default."), code="inactive")
    with _atomic():
        preference = _lock_slot_of(key)
        preference.default_key = key
        preference.save(update_fields=["default_key"])
        audit.record(
            AuditAction.UPDATED, key=key, actor=actor, request=request, fields=["is_default"]
        )
    key_updated.send(sender=UserAPIKey, key=key, actor=actor, fields=["is_default"])


def set_key_active(
    key: UserAPIKey, active: bool, *, actor: Any = None, request: HttpRequest | None = None
) -> None:
    """Switch a key on or off; a default switched off hands over to the newest active key."""
    if key.is_deleted:
        raise ValidationError(_("A deleted key cannot be switched on."), code="deleted")
    with _atomic():
        preference = _lock_slot_of(key)
        key.is_active = active
        key.save(update_fields=["is_active", "updated_at"])
        preference.settle()
        audit.record(
            AuditAction.UPDATED, key=key, actor=actor, request=request, fields=["is_active"]
        )
    key_updated.send(sender=UserAPIKey, key=key, actor=actor, fields=["is_active"])


def set_platform_fallback(
    user: Any, service: str, allow: bool, *, environment: str | None = None
) -> None:
    """Let the platform's key stand in for the user's (or not: "always use my key").

    Without ``environment`` the choice applies to every environment.
    """
    if service not in registry:
        raise UnknownService(service)
    environments = [Environment.resolve(environment)] if environment else list(Environment.values)
    with _atomic():
        for env in environments:
            preference = ServicePreference.lock(user, service, env)
            preference.allow_platform_fallback = allow
            preference.save(update_fields=["allow_platform_fallback"])
        audit.record(
            AuditAction.PREFERENCE_CHANGED,
            owner=user,
            actor=user,
            service=service,
            allow_platform_fallback=allow,
            environment=environment or "all",
        )
