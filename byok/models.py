"""Stored keys, per-slot preferences, daily usage and the audit trail."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connections, models, router, transaction
from django.db.models import F, Q
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from byok.conf import conf
from byok.crypto import Keyring, get_keyring
from byok.exceptions import DecryptionError
from byok.fields import EncryptedCredentialsField, SealedCredentials, canonical_bytes
from byok.results import ProbeResult, ProbeStatus
from byok.services.base import Service
from byok.services.formats import ValidationResult
from byok.services.registry import registry


class Environment(models.TextChoices):
    PRODUCTION = "production", _("Production")
    TEST = "test", _("Test")
    DEVELOPMENT = "development", _("Development")

    @classmethod
    def default(cls) -> str:
        """``BYOK['DEFAULT_ENVIRONMENT']``: the environment when none is given."""
        return conf.DEFAULT_ENVIRONMENT

    @classmethod
    def resolve(cls, value: str | None) -> str:
        """``value``, or ``BYOK['DEFAULT_ENVIRONMENT']`` when it is empty."""
        value = value or cls.default()
        if value not in ENVIRONMENTS:
            raise ValueError(f"Unknown environment {value!r}; use one of {', '.join(cls.values)}.")
        return value


#: The environments' values, for a membership test on the lookup's hot path.
ENVIRONMENTS = frozenset(Environment.values)


#: A key's status: ``untested``, or the outcome of its last test, one of
#: :class:`~byok.results.ProbeStatus` (Django's functional API, which mypy cannot follow).
KeyStatus = models.TextChoices(  # type: ignore[call-overload]
    "KeyStatus",
    [
        ("UNTESTED", ("untested", _("Untested"))),
        *((status.name, (status.value, status.label)) for status in ProbeStatus),
    ],
)


class ExpirySource(models.TextChoices):
    """Who said when a key expires."""

    USER = "user", _("Entered by its owner")
    PROVIDER = "provider", _("Read from the provider")


class UserAPIKeyQuerySet(models.QuerySet["UserAPIKey"]):
    def alive(self) -> UserAPIKeyQuerySet:
        """Keys that have not been deleted."""
        return self.filter(deleted_at__isnull=True)

    def active(self) -> UserAPIKeyQuerySet:
        """Keys that can serve calls: not deleted and not switched off."""
        return self.filter(deleted_at__isnull=True, is_active=True)

    def for_user(self, user: Any) -> UserAPIKeyQuerySet:
        """The user's keys, deleted ones excluded."""
        return self.alive().filter(user=user)

    def for_slot(self, user: Any, service: str, environment: str) -> UserAPIKeyQuerySet:
        return self.filter(user=user, service=service, environment=environment)

    def masked(self) -> UserAPIKeyQuerySet:
        """Keys as lists show them: without the ciphertext, which they never decrypt."""
        return self.defer("credentials")

    def with_default_flag(self) -> UserAPIKeyQuerySet:
        """Annotate each key with whether it is its slot's default, for
        :attr:`UserAPIKey.is_default` without a query (or an object) per key."""
        return self.annotate(default_preference_id=F("default_for__id"))

    def expiring_within(self, days: int) -> UserAPIKeyQuerySet:
        """Keys with a known expiry at most ``days`` days away (or past)."""
        return self.filter(expires_at__lte=timezone.now() + timedelta(days=days))

    def secret_older_than(self, days: int) -> UserAPIKeyQuerySet:
        """Keys whose secret was stored or last replaced more than ``days`` days ago."""
        return self.filter(secret_changed_at__lt=timezone.now() - timedelta(days=days))

    def unused_for(self, days: int) -> UserAPIKeyQuerySet:
        """Keys not used for ``days`` days: last used before then, or never used and
        stored before then."""
        cutoff = timezone.now() - timedelta(days=days)
        return self.filter(
            Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff)
        )

    def defaults(self) -> UserAPIKeyQuerySet:
        """Keys that serve their (user, service, environment)."""
        return self.filter(default_for__isnull=False)

    def default_for(self, user: Any, service: str, environment: str) -> UserAPIKey | None:
        """The key that serves this user's calls to a service, if any."""
        return self.defaults().for_slot(user, service, environment).first()


class UserAPIKey(models.Model):
    """One credential a user stored for a service.

    The secret is encrypted (``credentials``); what the pages and the API show is
    ``masked_key``, made at write time so listing never decrypts. Deleting a key
    erases the ciphertext and keeps the row for the audit trail.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="byok_api_keys",
        verbose_name=_("user"),
    )
    service = models.CharField(_("service"), max_length=64, db_index=True)
    credentials = EncryptedCredentialsField(_("credentials"), null=True)
    #: The id of the encryption key the ciphertext is under (``""`` once deleted): a
    #: copy of what the token says, so that rotation walks an index, not the table.
    encryption_key_id = models.CharField(
        _("encryption key"), max_length=16, blank=True, default="", editable=False
    )
    nickname = models.CharField(_("nickname"), max_length=100, blank=True)
    environment = models.CharField(
        _("environment"),
        max_length=16,
        choices=Environment.choices,
        default=Environment.PRODUCTION,
    )
    is_active = models.BooleanField(_("active"), default=True)
    status = models.CharField(
        _("status"), max_length=20, choices=KeyStatus.choices, default=KeyStatus.UNTESTED
    )
    last_tested_at = models.DateTimeField(_("last tested"), null=True, blank=True)
    last_test_message = models.CharField(_("last test message"), max_length=255, blank=True)
    masked_key = models.CharField(_("masked key"), max_length=64, editable=False)
    # HMAC of the credential under a key derived from the encryption key: finds
    # duplicates without decrypting, and cannot be brute-forced without the key.
    # NULL once deleted, so the unique index lets the same secret be stored again.
    fingerprint = models.CharField(max_length=64, null=True, editable=False)  # noqa: DJ001
    usage_count = models.PositiveBigIntegerField(_("usage count"), default=0)
    estimated_cost = models.DecimalField(
        _("estimated cost"), max_digits=14, decimal_places=6, default=Decimal("0")
    )
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    #: When the secret was stored or last replaced: what a rotation policy measures.
    secret_changed_at = models.DateTimeField(_("secret changed"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    expiry_source = models.CharField(
        _("expiry from"), max_length=16, choices=ExpirySource.choices, blank=True
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)

    objects: ClassVar[UserAPIKeyQuerySet] = UserAPIKeyQuerySet.as_manager()  # type: ignore[assignment]

    default_for: ServicePreference
    #: Set by add_user_api_key and update_user_api_key on the instance they
    #: return, never stored: what to tell the user about the credential.
    warnings: list[str]
    probe_result: ProbeResult | None
    #: Set by the dashboard on the keys it lists: a :class:`byok.key_age.KeyAge`.
    age: Any

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "service", "environment"], name="byok_key_slot_idx"),
            models.Index(fields=["encryption_key_id", "id"], name="byok_key_encryption_key_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "fingerprint"], name="byok_unique_secret_per_user"
            ),
        ]

    def __str__(self) -> str:
        label = self.nickname or self.masked_key
        return f"{self.service_name}: {label}"

    def get_service(self) -> Service:
        """The key's service; :class:`~byok.exceptions.UnknownService` if it is gone."""
        return registry.get(self.service)

    @property
    def service_name(self) -> str:
        return self.get_service().name if self.service in registry else self.service

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def is_default(self) -> bool:
        """Whether this key serves its (user, service, environment)."""
        if "default_preference_id" in self.__dict__:  # see with_default_flag()
            return self.__dict__["default_preference_id"] is not None
        try:
            return self.default_for is not None
        except ServicePreference.DoesNotExist:
            return False

    @sensitive_variables()
    def set_credentials(self, checked: ValidationResult) -> None:
        """Encrypt a credential :func:`~byok.validate_credentials` found valid, with its
        masked key and fingerprint. The caller saves.

        Raises ``ValidationError`` for a credential that is not valid, or for this
        key's masked value echoed back instead of a real secret.
        """
        if checked.service != self.service:
            raise ValueError(f"A credential for {checked.service!r}, not {self.service!r}.")
        checked.raise_if_invalid()
        clean = checked.credentials
        if self.masked_key and self.masked_key in clean.values():
            raise ValidationError(
                _("That is the masked value shown to you; paste the full key instead."),
                code="masked_value",
            )
        self.seal(clean, get_keyring())
        self.masked_key = self.get_service().mask(clean)

    @sensitive_variables()
    def seal(self, credentials: dict[str, str], keyring: Keyring) -> None:
        """Encrypt ``credentials`` under the keyring's primary key, with their fingerprint."""
        self.credentials = SealedCredentials.seal(credentials, keyring)
        self.fingerprint = keyring.fingerprint(canonical_bytes(credentials))
        self.encryption_key_id = self.credentials.encryption_key_id

    def record_test(self, result: ProbeResult) -> None:
        """Keep a test's outcome on the key, and the expiry the provider told (the
        caller saves)."""
        self.status = result.status.value
        self.last_tested_at = timezone.now()
        self.last_test_message = result.message[:255]
        if result.expires_at is not None:
            self.expires_at = result.expires_at
            self.expiry_source = ExpirySource.PROVIDER

    def get_credentials(self) -> dict[str, str]:
        """Decrypt the stored credential mapping."""
        if self.credentials is None:
            raise ValueError(f"API key {self.pk} was deleted; its secret is gone.")
        try:
            return self.credentials.open()
        except DecryptionError as error:
            raise error.for_row(self.pk) from None

    def get_secret(self) -> str | dict[str, str]:
        """The value host code uses: a string for one-field services."""
        return self.get_service().present(self.get_credentials())


class ServicePreference(models.Model):
    """A user's choice for one service in one environment.

    It names the key that serves calls (``default_key``) and whether the
    platform's key may stand in when the user has none. Reading this single
    row, joined to its key, is the whole of ``get_user_api_key``; it is also
    the row locked while keys of the slot change, so concurrent writes queue.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="byok_preferences"
    )
    service = models.CharField(max_length=64)
    environment = models.CharField(max_length=16, choices=Environment.choices)
    default_key = models.OneToOneField(
        UserAPIKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="default_for"
    )
    allow_platform_fallback = models.BooleanField(
        _("use the platform's key when I have none"), default=True
    )

    class Meta:
        verbose_name = _("service preference")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "service", "environment"], name="byok_one_preference_per_slot"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service} ({self.environment})"

    @classmethod
    def lock(cls, user: Any, service: str, environment: str) -> ServicePreference:
        """The slot's row, created if needed, for a transaction that changes keys.

        It first locks the owner's user row, which always exists: every key write
        of one user then queues behind the previous one, and concurrent first
        writes cannot deadlock on the gap lock MySQL takes for a missing row.
        Locking reads see rows committed after the transaction began, even under
        MySQL's REPEATABLE READ.
        """
        using = router.db_for_write(cls)
        if not transaction.get_connection(using).in_atomic_block:
            raise TransactionManagementError("ServicePreference.lock() needs a transaction.")
        user_pk = getattr(user, "pk", user)
        _lock_user_row(user_pk, using)
        slot = {"user_id": user_pk, "service": service, "environment": environment}
        row = cls.objects.using(using).select_for_update().filter(**slot).first()
        return row or cls.objects.using(using).create(**slot)

    def settle(self) -> None:
        """Point ``default_key`` at an active key of the slot whenever one exists.

        The newest active key takes over when the default is deleted, switched
        off or moved to another environment. Call it with the row locked.
        """
        current = self.default_key
        if (
            current is not None
            and current.is_active
            and current.deleted_at is None
            and current.environment == self.environment  # not moved to another slot
        ):
            return
        newest = (
            UserAPIKey.objects.active()
            .for_slot(self.user_id, self.service, self.environment)
            .order_by("-created_at")
            .first()
        )
        if newest != current:
            self.default_key = newest
            self.save(update_fields=["default_key"])


def _lock_user_row(user_pk: Any, using: str) -> None:
    user_model = get_user_model()
    # PostgreSQL's weaker lock still serialises byok's writers but does not block
    # other tables' inserts that reference the user.
    no_key = connections[using].features.has_select_for_no_key_update
    list(
        user_model._base_manager.using(using)
        .select_for_update(no_key=no_key)
        .filter(pk=user_pk)
        .values_list("pk", flat=True)
    )


class DailyUsage(models.Model):
    """Calls, units, tokens and estimated cost of one model on one day.

    ``model`` is ``""`` for calls recorded without one. ``unpriced_calls`` counts the
    calls of a model no price table lists: their cost is the service's per-call
    estimate, so the day's cost is incomplete.
    """

    date = models.DateField(_("date"))
    model = models.CharField(_("model"), max_length=100, blank=True, default="")
    calls = models.PositiveBigIntegerField(_("calls"), default=0)
    units = models.PositiveBigIntegerField(_("units"), default=0)
    input_tokens = models.PositiveBigIntegerField(_("input tokens"), default=0)
    output_tokens = models.PositiveBigIntegerField(_("output tokens"), default=0)
    cached_input_tokens = models.PositiveBigIntegerField(_("cached input tokens"), default=0)
    unpriced_calls = models.PositiveBigIntegerField(_("unpriced calls"), default=0)
    cost = models.DecimalField(_("cost"), max_digits=14, decimal_places=6, default=Decimal("0"))

    class Meta:
        abstract = True
        ordering = ["-date"]


class KeyUsage(DailyUsage):
    """Daily usage served by one of the user's keys."""

    key = models.ForeignKey(UserAPIKey, on_delete=models.CASCADE, related_name="daily_usage")

    class Meta(DailyUsage.Meta):
        verbose_name = _("daily key usage")
        verbose_name_plural = _("daily key usage")
        constraints = [
            models.UniqueConstraint(
                fields=["key", "date", "model"], name="byok_one_usage_row_per_key_day_model"
            ),
        ]

    def __str__(self) -> str:
        model = f" ({self.model})" if self.model else ""
        return f"{self.key_id}{model} on {self.date}: {self.calls} calls"


class PlatformUsage(DailyUsage):
    """Daily usage a user made of the platform's key for a service."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="byok_platform_usage"
    )
    service = models.CharField(max_length=64)
    environment = models.CharField(max_length=16, choices=Environment.choices)

    class Meta(DailyUsage.Meta):
        verbose_name = _("daily platform usage")
        verbose_name_plural = _("daily platform usage")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "service", "environment", "date", "model"],
                name="byok_one_platform_usage_row_per_day_model",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service} for user {self.user_id} on {self.date}: {self.calls} calls"


class AuditAction(models.TextChoices):
    CREATED = "created", _("Created")
    UPDATED = "updated", _("Updated")
    TESTED = "tested", _("Tested")
    REVEALED = "revealed", _("Revealed")
    DELETED = "deleted", _("Deleted")
    ROTATED = "rotated", _("Re-encrypted")
    IMPORTED = "imported", _("Imported")
    PREFERENCE_CHANGED = "preference_changed", _("Preference changed")


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def for_owner(self, user: Any) -> AuditEventQuerySet:
        """A user's trail: everything that happened to their keys."""
        return self.filter(owner=user)


class AuditEvent(models.Model):
    """An append-only record of something done to a key. Never holds a secret."""

    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    action = models.CharField(_("action"), max_length=32, choices=AuditAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("owner"),
    )
    key = models.ForeignKey(
        UserAPIKey,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
        verbose_name=_("key"),
    )
    service = models.CharField(_("service"), max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=255, blank=True)
    metadata = models.JSONField(_("details"), default=dict, blank=True)

    objects: ClassVar[AuditEventQuerySet] = AuditEventQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("audit event")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.service} at {self.created_at:%Y-%m-%d %H:%M}"


class NotificationKind(models.TextChoices):
    """What byok tells a key's owner about, by e-mail and the ``notification`` signal."""

    KEY_INVALID = "key_invalid", _("A key stopped working")
    KEY_EXPIRING = "key_expiring", _("A key expires soon")
    ROTATION_DUE = "rotation_due", _("A key is older than the rotation policy")
    KEY_UNUSED = "key_unused", _("A key has not been used for a long time")


class Notification(models.Model):
    """One notification that is due: written before it is sent, marked when it is.

    The unique (user, kind, occasion) makes each one happen once, however many
    workers notice it; a row whose sending failed stays unsent and is tried again.
    ``context`` holds what the message says (names, dates), never a secret.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="byok_notifications"
    )
    key = models.ForeignKey(
        UserAPIKey,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("key"),
    )
    kind = models.CharField(_("kind"), max_length=32, choices=NotificationKind.choices)
    #: What makes this one distinct from earlier ones of the same kind (the key and
    #: the expiry date and threshold, the day the key turned invalid…).
    occasion = models.CharField(_("occasion"), max_length=128)
    context = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("due since"), default=timezone.now, db_index=True)
    claimed_at = models.DateTimeField(_("being sent since"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("notification")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "occasion"], name="byok_one_notification_per_occasion"
            ),
        ]
        indexes = [models.Index(fields=["sent_at", "created_at"], name="byok_notif_unsent_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.occasion})"


class NotificationOptOut(models.Model):
    """A kind of notification a user turned off."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="byok_opt_outs"
    )
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)

    class Meta:
        verbose_name = _("notification opt-out")
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="byok_one_opt_out_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: no {self.kind}"


class RecheckRun(models.Model):
    """One ``byok_check_keys --enqueue``: its keys, split into batches workers share."""

    created_at = models.DateTimeField(_("started"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    #: The selection (service ids, stale days, owner id, inactive keys), for the record.
    options = models.JSONField(_("options"), default=dict, blank=True)
    key_count = models.PositiveIntegerField(_("keys"), default=0)
    batch_count = models.PositiveIntegerField(_("batches"), default=0)
    concurrency = models.PositiveSmallIntegerField(_("requests in flight per batch"), default=4)

    class Meta:
        verbose_name = _("re-check run")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Re-check {self.pk} of {self.created_at:%Y-%m-%d %H:%M}"


class RecheckBatch(models.Model):
    """A slice of a run's keys, by primary key: claimed by one worker, once."""

    run = models.ForeignKey(RecheckRun, on_delete=models.CASCADE, related_name="batches")
    number = models.PositiveIntegerField()
    #: The batch's keys come after this one (``None``: from the first) up to ``last_key``.
    after_key = models.UUIDField(null=True, blank=True)
    last_key = models.UUIDField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: Outcome to the number of keys that had it.
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("re-check batch")
        verbose_name_plural = _("re-check batches")
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "number"], name="byok_one_batch_number_per_run"
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.number} of run {self.run_id}"


class RecheckBackoff(models.Model):
    """A service that answered 429 during a run: no worker tests its keys any more."""

    run = models.ForeignKey(RecheckRun, on_delete=models.CASCADE, related_name="backoffs")
    service = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("re-check back-off")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "service"], name="byok_one_backoff_per_service"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service} in run {self.run_id}"
