"""The public Python API: find the key that serves a user, and change stored keys.

Every change runs inside a transaction holding the lock on the slot's
:class:`~byok.models.ServicePreference` row, so concurrent requests for one user
queue instead of racing; the unique fingerprint index is the backstop.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, router, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_variables

from byok import audit, teams
from byok.conf import conf
from byok.crypto import get_keyring
from byok.exceptions import KeyRejected, UnknownService
from byok.fields import canonical_bytes
from byok.models import (
    AuditAction,
    Environment,
    ExpirySource,
    KeyStatus,
    Owner,
    ServicePreference,
    UserAPIKey,
)
from byok.probes import probe, test_credentials
from byok.results import ProbeResult, ProbeStatus
from byok.services.registry import registry
from byok.signals import (
    key_added,
    key_removed,
    key_revealed,
    key_tested,
    key_updated,
)
from byok.validation import ValidationResult, clean_nickname, validate_credentials


class Keep(Enum):
    """The default of an argument whose ``None`` means "clear it"."""

    KEEP = "keep"


KEEP = Keep.KEEP


def _duplicate() -> ValidationError:
    return ValidationError(
        {"credentials": ValidationError(_("You have already stored this key."), code="duplicate")}
    )


def too_many_keys() -> ValidationError:
    """The error for a key beyond ``BYOK["MAX_KEYS_PER_USER"]`` (code ``too_many_keys``)."""
    limit = conf.MAX_KEYS_PER_USER
    message = ngettext(
        "You already have %(limit)d key, the most this site allows: delete one to add another.",
        "You already have %(limit)d keys, the most this site allows: delete one to add another.",
        limit,
    )
    return ValidationError(message % {"limit": limit}, code="too_many_keys")


def room_for_keys(owner: Owner | Any) -> int:
    """How many more keys the owner (an :class:`Owner`, or a user) may store now: for
    checks ahead of storing; :func:`store_key` counts again under the owner's lock."""
    owner = owner if isinstance(owner, Owner) else Owner.user(owner)
    held = UserAPIKey.objects.alive().filter(**owner.filter).count()
    return max(conf.MAX_KEYS_PER_USER - held, 0)


def _require_room(owner: Owner) -> None:
    """Refuse a key beyond the cap; call with the owner's row locked.

    A locking read of the owner's keys: it sees keys committed after the transaction
    began (MySQL's REPEATABLE READ included), so concurrent adds, queued on the
    owner's lock, cannot pass the cap. Deleted keys do not count.
    """
    using = router.db_for_write(UserAPIKey)
    held = UserAPIKey.objects.using(using).alive().filter(**owner.filter).select_for_update()
    if len(held.values_list("pk", flat=True)) >= conf.MAX_KEYS_PER_USER:
        raise too_many_keys()


def _atomic() -> transaction.Atomic:
    return transaction.atomic(using=router.db_for_write(UserAPIKey))


@sensitive_variables()
def add_user_api_key(
    user: Any,
    service: str,
    credentials: object,
    *,
    nickname: str = "",
    environment: str | None = None,
    test: bool = False,
    is_default: bool = False,
    expires_at: datetime | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> UserAPIKey:
    """Check, encrypt and store a credential for ``user``.

    ``credentials`` is a mapping of field names to values, or a string for
    one-field services. Raises ``ValidationError`` (keyed by field) for an
    unknown service, a malformed value or a secret the user already stored.
    With ``test=True`` the credential is first tested against the provider: one
    the provider rejects is not stored (``ValidationError`` with code
    ``invalid_key``); any other outcome is stored as the key's status.
    The first key of a (service, environment) becomes its default. ``expires_at`` is
    the expiry its owner knows of; one the provider tells during the test wins.

    The returned key carries, on this instance only, ``warnings`` (format and
    test warnings to show the user) and ``probe_result`` (``None`` untested).
    """
    key = prepare_key(
        user,
        service,
        credentials,
        nickname=nickname,
        environment=environment,
        test=test,
        expires_at=expires_at,
    )
    return store_key(key, is_default=is_default, actor=actor, request=request)


@sensitive_variables()
def add_team_api_key(
    team: Any,
    service: str,
    credentials: object,
    *,
    actor: Any,
    nickname: str = "",
    environment: str | None = None,
    test: bool = False,
    is_default: bool = False,
    expires_at: datetime | None = None,
    request: HttpRequest | None = None,
) -> UserAPIKey:
    """Check, encrypt and store a credential owned by ``team``, which its members use
    without seeing it. Refused (``PermissionDenied``) unless ``actor`` is one of the
    team's owners or admins; otherwise as :func:`add_user_api_key`."""
    teams.require_manager(actor, team)
    key = prepare_key(
        None,
        service,
        credentials,
        team=team,
        nickname=nickname,
        environment=environment,
        test=test,
        expires_at=expires_at,
    )
    return store_key(key, is_default=is_default, actor=actor, request=request)


@sensitive_variables()
def prepare_key(
    user: Any,
    service: str,
    credentials: object,
    *,
    team: Any = None,
    nickname: str = "",
    environment: str | None = None,
    test: bool = False,
    expires_at: datetime | None = None,
) -> UserAPIKey:
    """The checked (and, with ``test``, tested) key :func:`add_user_api_key` would store:
    ``user``'s, or (``user`` ``None``) ``team``'s.

    Nothing is written. Raises what :func:`add_user_api_key` raises, except that a
    secret the owner already stored is only found by :func:`store_key` (which also
    counts the owner's keys again, under a lock, against ``BYOK["MAX_KEYS_PER_USER"]``).
    """
    if not isinstance(service, str) or service not in registry:
        raise ValidationError(
            {"service": ValidationError(_("Unknown service."), code="unknown_service")}
        )
    environment = _check_environment(environment)
    nickname = _check_nickname(nickname)
    if room_for_keys(Owner.user(user) if user is not None else Owner.team(team)) < 1:
        raise too_many_keys()  # before the secret is tested: it could not be stored
    checked, result = check_new_secret(service, credentials, environment, test=test)
    key = UserAPIKey(
        user=user, team=team, service=service, nickname=nickname, environment=environment
    )
    key.set_credentials(checked)
    if expires_at is not None:
        key.expires_at, key.expiry_source = expires_at, ExpirySource.USER
    if result is not None:
        key.record_test(result)
    key.warnings = list(result.warnings if result is not None else checked.warnings)
    key.probe_result = result
    return key


@sensitive_variables()
def check_new_secret(
    service: str, credentials: object, environment: str, *, test: bool
) -> tuple[ValidationResult, ProbeResult | None]:
    """Validate a secret about to be stored (once) and, with ``test``, test it.

    Raises ``ValidationError`` for a malformed one and :class:`KeyRejected` for one
    the provider rejects.
    """
    checked = validate_credentials(service, credentials, environment=environment)
    checked.raise_if_invalid()
    result = probe(checked) if test else None
    if result is not None and result.status is ProbeStatus.INVALID:
        raise KeyRejected(result)
    return checked, result


def is_stored(owner: Owner | Any, key: UserAPIKey) -> bool:
    """Whether the owner (an :class:`Owner`, or a user) already stored the secret of
    the unsaved ``key``."""
    return holds_secret(owner, key.get_credentials())


@sensitive_variables()
def holds_secret(
    owner: Owner | Any, credentials: Mapping[str, str], *, exclude: Any = None
) -> bool:
    """Whether the owner (an :class:`Owner`, a user, or a user's id) stored
    ``credentials`` in a key other than ``exclude``, whichever encryption key made its
    fingerprint."""
    owner = owner if isinstance(owner, Owner) else Owner.user(owner)
    fingerprints = get_keyring().fingerprints(canonical_bytes(credentials))
    keys = UserAPIKey.objects.filter(**owner.filter, fingerprint__in=fingerprints)
    if exclude is not None:
        keys = keys.exclude(pk=exclude.pk)
    return keys.exists()


def store_key(
    key: UserAPIKey,
    *,
    is_default: bool = False,
    actor: Any = None,
    request: HttpRequest | None = None,
    action: str = AuditAction.CREATED,
) -> UserAPIKey:
    """Save a key from :func:`prepare_key`, unless its owner already stored the secret
    or holds ``BYOK["MAX_KEYS_PER_USER"]`` keys (:func:`too_many_keys`)."""
    user = key.user
    with _atomic():
        preference = ServicePreference.lock(key.owner, key.service, key.environment)
        if is_stored(key.owner, key):
            raise _duplicate()
        _require_room(key.owner)
        try:
            with _atomic():
                key.save()
        except IntegrityError:
            raise _duplicate() from None
        if is_default or preference.default_key_id is None:
            preference.default_key = key
            preference.save(update_fields=["default_key"])
        audit.record(
            action,
            key=key,
            actor=actor or user,
            request=request,
            tested=getattr(key, "probe_result", None) is not None,
            status=key.status,
        )
    key_added.send(sender=UserAPIKey, key=key, actor=actor or user)
    return key


def test_user_api_key(
    key: UserAPIKey, *, actor: Any = None, request: HttpRequest | None = None
) -> ProbeResult:
    """Test a stored key against its provider and record the outcome on the key.

    Updates ``status``, ``last_tested_at`` and ``last_test_message``, writes a
    ``tested`` audit event and sends ``key_tested``. Raises
    :class:`~byok.exceptions.DecryptionError` if the key cannot be decrypted.
    """
    _require_manager_of(key, actor)
    result = test_credentials(key.service, key.get_credentials(), environment=key.environment)
    record_test_result(key, result, actor=actor, request=request)
    return result


test_user_api_key.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def record_test_result(
    key: UserAPIKey,
    result: ProbeResult,
    *,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> None:
    """Record a test of ``key`` made elsewhere, as :func:`test_user_api_key` does.

    For callers that run the probe themselves (``byok_check_keys`` probes in
    worker threads and records here, on the thread that owns the connection).
    """
    key.record_test(result)
    key.updated_at = timezone.now()
    UserAPIKey.objects.filter(pk=key.pk).update(
        status=key.status,
        last_tested_at=key.last_tested_at,
        last_test_message=key.last_test_message,
        expires_at=key.expires_at,
        expiry_source=key.expiry_source,
        updated_at=key.updated_at,
    )
    audit.record(
        AuditAction.TESTED,
        key=key,
        actor=actor,
        request=request,
        status=result.status.value,
        http_status=result.http_status,
    )
    key_tested.send(sender=UserAPIKey, key=key, actor=actor, result=result)


@sensitive_variables()
def reveal_user_api_key(
    key: UserAPIKey, *, actor: Any = None, request: HttpRequest | None = None
) -> dict[str, str]:
    """The key's plaintext credentials, for showing them to their owner once.

    Writes a ``revealed`` audit event and sends ``key_revealed``. Raises
    :class:`~byok.exceptions.DecryptionError` if the key cannot be decrypted.
    """
    _require_manager_of(key, actor)
    credentials = key.get_credentials()
    audit.record(AuditAction.REVEALED, key=key, actor=actor, request=request)
    key_revealed.send(sender=UserAPIKey, key=key, actor=actor)
    return credentials


def _require_manager_of(key: UserAPIKey, actor: Any) -> None:
    """A team's key is changed, tested and revealed only by the team's owners and
    admins. ``actor=None`` is the host's own code, trusted as it is for users' keys."""
    if key.team_id is not None and actor is not None:
        teams.require_manager(actor, key.team)


def _check_nickname(nickname: object) -> str:
    try:
        return clean_nickname(nickname)
    except ValidationError as error:
        raise ValidationError({"nickname": error}) from None


def _check_environment(environment: object) -> str:
    """``environment``, or ``BYOK["DEFAULT_ENVIRONMENT"]`` when it is ``None``."""
    if environment is None:
        environment = Environment.default()
    if environment not in Environment.values:
        raise ValidationError(
            {"environment": ValidationError(_("Unknown environment."), code="invalid_choice")}
        )
    return str(environment)


@sensitive_variables()
def update_user_api_key(
    key: UserAPIKey,
    *,
    nickname: str | None = None,
    environment: str | None = None,
    is_default: bool | None = None,
    is_active: bool | None = None,
    credentials: object = None,
    test: bool = False,
    expires_at: datetime | Keep | None = KEEP,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> UserAPIKey:
    """Change a key's settings, or replace its secret. ``None`` leaves a field as it is.

    ``expires_at`` sets the expiry its owner knows of (``None`` forgets it); left
    out, the expiry stays, unless the secret is replaced: a new secret starts with no
    expiry but the one its test tells.

    A new secret is checked like :func:`add_user_api_key` checks one (and tested
    first with ``test=True``); the masked value echoed back is refused. Moving a
    key to another environment moves it to that environment's slot. The only
    active key of a slot is its default: unsetting that is refused.
    Returns ``key``, refreshed, with ``warnings`` and ``probe_result`` set as
    :func:`add_user_api_key` sets them.
    """
    _require_manager_of(key, actor)
    nickname = None if nickname is None else _check_nickname(nickname)
    environment = None if environment is None else _check_environment(environment)
    checked = result = None
    if credentials is not None:
        checked, result = check_new_secret(
            key.service, credentials, environment or key.environment, test=test
        )
    with _atomic():
        preference = _lock_preference_of(key)
        key.refresh_from_db()
        if key.is_deleted:
            raise ValidationError(_("A deleted key cannot be changed."), code="deleted")
        changed = _apply_changes(
            key,
            nickname=nickname,
            secret=None if checked is None else (checked, result),
            environment=environment,
            is_active=is_active,
            expires_at=expires_at,
        )
        _save(key)
        changed += _settle_after_update(key, preference, is_default)
        if changed:
            audit.record(
                AuditAction.UPDATED, key=key, actor=actor, request=request, fields=changed
            )
    if changed:
        key_updated.send(sender=UserAPIKey, key=key, actor=actor, fields=changed)
    key.warnings = list(
        result.warnings if result is not None else checked.warnings if checked else []
    )
    key.probe_result = result
    return key


@sensitive_variables()
def _apply_changes(
    key: UserAPIKey,
    *,
    nickname: str | None,
    secret: tuple[ValidationResult, ProbeResult | None] | None,
    environment: str | None,
    is_active: bool | None,
    expires_at: datetime | Keep | None = KEEP,
) -> list[str]:
    """Set what changes on ``key`` (not saved); the names of the fields that did."""
    changed = []
    if nickname is not None and nickname != key.nickname:
        key.nickname = nickname
        changed.append("nickname")
    if secret is not None:
        _replace_secret(key, *secret)
        changed.append("credentials")
    if environment is not None and environment != key.environment:
        key.environment = environment
        changed.append("environment")
    if is_active is not None and is_active != key.is_active:
        key.is_active = is_active
        changed.append("is_active")
    told = secret is not None and secret[1] is not None and secret[1].expires_at is not None
    if not isinstance(expires_at, Keep) and not told and expires_at != key.expires_at:
        key.expires_at = expires_at
        key.expiry_source = "" if expires_at is None else ExpirySource.USER
        changed.append("expires_at")
    return changed


def _save(key: UserAPIKey) -> None:
    """Save ``key``; the same secret stored twice (a race) is a duplicate."""
    try:
        with _atomic():
            key.save()
    except IntegrityError:
        raise _duplicate() from None


def _settle_after_update(
    key: UserAPIKey, old: ServicePreference, is_default: bool | None
) -> list[str]:
    """Give the key's slot (and the one it left) their defaults; ``["is_default"]`` if an
    explicit ``is_default`` changed anything."""
    moved = key.environment != old.environment
    preference = _lock_preference_of(key) if moved else old
    if moved:
        old.settle()
    changed = _apply_default(key, preference, is_default)
    preference.settle()
    key.__dict__.pop("default_preference_id", None)  # a with_default_flag() snapshot
    return changed


@sensitive_variables()
def _replace_secret(
    key: UserAPIKey, checked: ValidationResult, result: ProbeResult | None
) -> None:
    if holds_secret(key.owner, checked.credentials, exclude=key):
        raise _duplicate()
    key.set_credentials(checked)
    key.secret_changed_at = timezone.now()
    key.expires_at, key.expiry_source = None, ""  # the old secret's
    if result is None:
        key.status, key.last_tested_at, key.last_test_message = KeyStatus.UNTESTED, None, ""
    else:
        key.record_test(result)


def _apply_default(
    key: UserAPIKey, preference: ServicePreference, is_default: bool | None
) -> list[str]:
    """Apply an explicit ``is_default``. A key switched off is never the default."""
    if is_default and not key.is_active:
        raise ValidationError(
            {
                "is_default": ValidationError(
                    _("A key that is switched off cannot be the default."), code="inactive"
                )
            }
        )
    currently = preference.default_key_id == key.pk
    if is_default is None or is_default == currently or not key.is_active:
        return []  # a key switched off hands over when the slot settles
    if is_default:
        preference.default_key = key
        preference.save(update_fields=["default_key"])
        return ["is_default"]
    successor = (
        UserAPIKey.objects.active()
        .for_slot(key.owner, key.service, key.environment)
        .exclude(pk=key.pk)
        .order_by("-created_at")
        .first()
    )
    if successor is None:
        raise ValidationError(
            {
                "is_default": ValidationError(
                    _(
                        "This is the only active key for the service, so it stays the default; "
                        "switch it off instead."
                    ),
                    code="only_key",
                )
            }
        )
    preference.default_key = successor
    preference.save(update_fields=["default_key"])
    return ["is_default"]


def _lock_preference_of(key: UserAPIKey) -> ServicePreference:
    return ServicePreference.lock(key.owner, key.service, key.environment)


def remove_user_api_key(
    key: UserAPIKey, *, actor: Any = None, request: HttpRequest | None = None
) -> None:
    """Soft-delete: erase the ciphertext and fingerprint, keep the row for the trail."""
    _require_manager_of(key, actor)
    with _atomic():
        preference = _lock_preference_of(key)
        key.credentials = None
        key.fingerprint = None
        key.encryption_key_id = ""
        key.is_active = False
        key.deleted_at = timezone.now()
        key.save(
            update_fields=[
                "credentials",
                "fingerprint",
                "encryption_key_id",
                "is_active",
                "deleted_at",
                "updated_at",
            ]
        )
        preference.settle()
        audit.record(AuditAction.DELETED, key=key, actor=actor, request=request)
    key_removed.send(sender=UserAPIKey, key=key, actor=actor)


def set_default_key(
    key: UserAPIKey, *, actor: Any = None, request: HttpRequest | None = None
) -> None:
    """Make ``key`` the one that serves its (user, service, environment)."""
    update_user_api_key(key, is_default=True, actor=actor, request=request)


def set_key_active(
    key: UserAPIKey, active: bool, *, actor: Any = None, request: HttpRequest | None = None
) -> None:
    """Switch a key on or off; a default switched off hands over to the newest active key."""
    update_user_api_key(key, is_active=active, actor=actor, request=request)


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


def require_team_key(
    team: Any,
    service: str,
    required: bool = True,
    *,
    actor: Any,
    environment: str | None = None,
) -> None:
    """Make the team's members use the team's key for ``service`` and no other (theirs
    or the platform's), or stop requiring it. Refused unless ``actor`` manages the team.

    Without ``environment`` the choice applies to every environment.
    """
    if service not in registry:
        raise UnknownService(service)
    teams.require_manager(actor, team)
    environments = [Environment.resolve(environment)] if environment else list(Environment.values)
    with _atomic():
        for env in environments:
            preference = ServicePreference.lock(Owner.team(team), service, env)
            preference.required = required
            preference.save(update_fields=["required"])
        audit.record(
            AuditAction.PREFERENCE_CHANGED,
            team=team,
            actor=actor,
            service=service,
            team_key_required=required,
            environment=environment or "all",
        )
