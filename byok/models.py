"""Stored keys, per-slot preferences, daily usage and the audit trail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import django
from django.apps import apps
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
from byok.crypto import Keyring, binding, configured_encryption_key_ids, get_keyring
from byok.deletion import delete_with_owner
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


#: The team model byok uses: its own, or the host's (``settings.BYOK_TEAM_MODEL``).
TEAM_MODEL = getattr(settings, "BYOK_TEAM_MODEL", "byok.Team")


#: ``CheckConstraint``'s keyword for its condition: ``condition`` since Django 5.1,
#: ``check`` before.
CHECK = "condition" if django.VERSION >= (5, 1) else "check"


def one_owner(name: str) -> models.CheckConstraint:
    """A row belongs to a user or to a team, never both, never neither."""
    exactly_one = models.Q(user__isnull=False, team__isnull=True) | models.Q(
        user__isnull=True, team__isnull=False
    )
    return check_constraint(name, exactly_one)


def check_constraint(name: str, condition: models.Q) -> models.CheckConstraint:
    """A ``CheckConstraint`` under either keyword for its condition."""
    return models.CheckConstraint(name=name, **{CHECK: condition})  # type: ignore[arg-type]


class TeamRole(models.TextChoices):
    """What a member may do with a team's keys: owners and admins manage them and
    see the team's trail; members use them, masked."""

    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    MEMBER = "member", _("Member")


class Team(models.Model):
    """A group of users who share keys. A host with a team or organization model of
    its own points ``settings.BYOK_TEAM_MODEL`` at it instead (see docs/teams.md)."""

    name = models.CharField(_("name"), max_length=100)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        swappable = "BYOK_TEAM_MODEL"

    def __str__(self) -> str:
        return self.name

    def add_member(self, user: Any, role: str = TeamRole.MEMBER) -> TeamMembership:
        """Make ``user`` a member with ``role`` (or change their role)."""
        if role not in TeamRole.values:
            raise ValueError(f"Unknown role {role!r}; use one of {', '.join(TeamRole.values)}.")
        membership, _created = TeamMembership.objects.update_or_create(
            team=self, user=user, defaults={"role": role}
        )
        return membership

    def remove_member(self, user: Any) -> None:
        TeamMembership.objects.filter(team=self, user=user).delete()


class TeamMembership(models.Model):
    """A user's place in a team, with a role: what byok's default team adapter reads."""

    team = models.ForeignKey(TEAM_MODEL, on_delete=models.CASCADE, related_name="byok_memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="byok_memberships"
    )
    role = models.CharField(
        _("role"), max_length=8, choices=TeamRole.choices, default=TeamRole.MEMBER
    )
    created_at = models.DateTimeField(_("joined"), auto_now_add=True)

    class Meta:
        verbose_name = _("team membership")
        verbose_name_plural = _("team memberships")
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="byok_one_membership_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.team_id} ({self.role})"


@dataclass(frozen=True)
class Owner:
    """Whose a key (and a slot's preference) is: a user's or a team's."""

    kind: str  # "user" or "team"
    pk: Any

    @classmethod
    def user(cls, user: Any) -> Owner:
        return cls("user", getattr(user, "pk", user))

    @classmethod
    def team(cls, team: Any) -> Owner:
        return cls("team", getattr(team, "pk", team))

    @property
    def filter(self) -> dict[str, Any]:
        """The keyword arguments that select this owner's rows."""
        return {f"{self.kind}_id": self.pk}

    @property
    def label(self) -> str:
        """``user:<pk>`` or ``team:<pk>``, as audit events and ciphertexts name it."""
        return f"{self.kind}:{self.pk}"

    def lock(self, using: str) -> None:
        """Lock the owner's row for the rest of the transaction: every write byok makes
        for one owner (keys, reservations) queues behind the one before."""
        model = get_user_model() if self.kind == "user" else team_model()
        # PostgreSQL's weaker lock still serialises byok's writers but does not block
        # other tables' inserts that reference the row.
        no_key = connections[using].features.has_select_for_no_key_update
        rows = model._base_manager.using(using).select_for_update(no_key=no_key)
        list(rows.filter(pk=self.pk).values_list("pk", flat=True))


#: The widest integer a primary key column holds on any database byok supports.
MAX_ID = 2**63 - 1


def fits_an_id(value: object) -> bool:
    """Whether an integer from a URL could be a row's id: one past a 64-bit column would
    make some databases' drivers raise (``OverflowError`` with SQLite), not find nothing.
    Any other value is the field's to judge."""
    return not isinstance(value, int) or -MAX_ID - 1 <= value <= MAX_ID


def team_model() -> type[models.Model]:
    """The team model in use (``settings.BYOK_TEAM_MODEL``, or byok's ``Team``)."""
    return apps.get_model(TEAM_MODEL, require_ready=False)


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

    def for_team(self, team: Any) -> UserAPIKeyQuerySet:
        """The team's keys, deleted ones excluded."""
        return self.alive().filter(team=team)

    def for_slot(self, owner: Owner, service: str, environment: str) -> UserAPIKeyQuerySet:
        return self.filter(**owner.filter, service=service, environment=environment)

    def masked(self) -> UserAPIKeyQuerySet:
        """Keys as lists show them: without the ciphertext, which they never decrypt."""
        return self.defer("credentials")

    def decryptable(self) -> UserAPIKeyQuerySet:
        """Keys with a secret under a configured encryption key (by the stored key id:
        nothing is decrypted)."""
        return self.filter(encryption_key_id__in=configured_encryption_key_ids())

    def needing_reentry(self) -> UserAPIKeyQuerySet:
        """Keys with a secret under an encryption key that is not configured any more:
        only their owner entering them again makes them usable. (Deleted keys hold no
        secret and are in neither this nor :meth:`decryptable`.)"""
        return self.alive().exclude(encryption_key_id__in=configured_encryption_key_ids())

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

    def default_for(self, owner: Owner, service: str, environment: str) -> UserAPIKey | None:
        """The key that serves this owner's calls to a service, if any."""
        return self.defaults().for_slot(owner, service, environment).first()


class UserAPIKey(models.Model):
    """One credential a user stored for a service.

    The secret is encrypted (``credentials``); what the pages and the API show is
    ``masked_key``, made at write time so listing never decrypts. Deleting a key
    erases the ciphertext and keeps the row for the audit trail.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    #: The owner: a user, or (``user`` empty) a team.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=delete_with_owner,
        null=True,
        blank=True,
        related_name="byok_api_keys",
        verbose_name=_("user"),
    )
    team = models.ForeignKey(
        TEAM_MODEL,
        on_delete=delete_with_owner,
        null=True,
        blank=True,
        related_name="byok_api_keys",
        verbose_name=_("team"),
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
    #: Set by the dashboard on a team's keys it lists to a member: their calls on it.
    my_calls: int

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "service", "environment"], name="byok_key_slot_idx"),
            models.Index(fields=["team", "service", "environment"], name="byok_key_team_slot_idx"),
            models.Index(fields=["encryption_key_id", "id"], name="byok_key_encryption_key_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "fingerprint"], name="byok_unique_secret_per_user"
            ),
            models.UniqueConstraint(
                fields=["team", "fingerprint"], name="byok_unique_secret_per_team"
            ),
            one_owner("byok_key_has_one_owner"),
        ]

    def __str__(self) -> str:
        label = self.nickname or self.masked_key
        return f"{self.service_name}: {label}"

    @property
    def owner(self) -> Owner:
        """The key's user, or its team."""
        return Owner.user(self.user_id) if self.user_id is not None else Owner.team(self.team_id)

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
    def needs_reentering(self) -> bool:
        """Whether the secret is under an encryption key that is not configured: the
        rule of :meth:`UserAPIKeyQuerySet.needing_reentry`, read from the stored key id
        (no decryption, no query: lists defer the ciphertext)."""
        return (
            self.deleted_at is None
            and self.encryption_key_id not in configured_encryption_key_ids()
        )

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

    @property
    def binding(self) -> bytes:
        """What a format 2 ciphertext is bound to: this row's id, owner and service
        (none of which changes after the key is stored)."""
        return binding(self.pk, self.owner.label, self.service)

    @sensitive_variables()
    def seal(self, credentials: dict[str, str], keyring: Keyring) -> None:
        """Encrypt ``credentials`` under the keyring's primary key, bound to this row,
        with their fingerprint."""
        self.credentials = SealedCredentials.seal(credentials, keyring, binding=self.binding)
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
            return self.credentials.open(binding=self.binding)
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
        settings.AUTH_USER_MODEL,
        on_delete=delete_with_owner,
        null=True,
        blank=True,
        related_name="byok_preferences",
    )
    team = models.ForeignKey(
        TEAM_MODEL,
        on_delete=delete_with_owner,
        null=True,
        blank=True,
        related_name="byok_preferences",
    )
    service = models.CharField(max_length=64)
    environment = models.CharField(max_length=16, choices=Environment.choices)
    default_key = models.OneToOneField(
        UserAPIKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="default_for"
    )
    allow_platform_fallback = models.BooleanField(
        _("use the platform's key when I have none"), default=True
    )
    #: A team's slot only: its members use the team's key and no other for the service.
    required = models.BooleanField(_("members must use the team's key"), default=False)

    class Meta:
        verbose_name = _("service preference")
        verbose_name_plural = _("service preferences")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "service", "environment"], name="byok_one_preference_per_slot"
            ),
            models.UniqueConstraint(
                fields=["team", "service", "environment"],
                name="byok_one_preference_per_team_slot",
            ),
            one_owner("byok_preference_has_one_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.service} ({self.environment})"

    @property
    def owner(self) -> Owner:
        return Owner.user(self.user_id) if self.user_id is not None else Owner.team(self.team_id)

    @classmethod
    def lock(cls, owner: Owner | Any, service: str, environment: str) -> ServicePreference:
        """The slot's row, created if needed, for a transaction that changes keys.

        ``owner`` is an :class:`Owner`, or a user. It first locks the owner's own row,
        which always exists: every key write of one owner then queues behind the
        previous one, and concurrent first writes cannot deadlock on the gap lock
        MySQL takes for a missing row. Locking reads see rows committed after the
        transaction began, even under MySQL's REPEATABLE READ.
        """
        using = router.db_for_write(cls)
        if not transaction.get_connection(using).in_atomic_block:
            raise TransactionManagementError("ServicePreference.lock() needs a transaction.")
        owner = owner if isinstance(owner, Owner) else Owner.user(owner)
        owner.lock(using)
        slot = {**owner.filter, "service": service, "environment": environment}
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
            .for_slot(self.owner, self.service, self.environment)
            .order_by("-created_at")
            .first()
        )
        if newest != current:
            self.default_key = newest
            self.save(update_fields=["default_key"])


class DailyUsage(models.Model):
    """Calls, units, tokens and estimated cost of one model on one day, and how the
    measured calls went (outcomes and latency buckets, :mod:`byok.measurement`).

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
    # How the measured calls ended (byok.measurement.OUTCOME_COLUMNS) ...
    ok_calls = models.PositiveBigIntegerField(_("successful calls"), default=0)
    client_errors = models.PositiveBigIntegerField(_("client errors (4xx)"), default=0)
    rate_limited = models.PositiveBigIntegerField(_("rate-limited calls (429)"), default=0)
    server_errors = models.PositiveBigIntegerField(_("server errors (5xx)"), default=0)
    timeouts = models.PositiveBigIntegerField(_("timeouts"), default=0)
    other_errors = models.PositiveBigIntegerField(
        _("other errors (no answer, a connection error)"), default=0
    )
    # ... and how long they took: calls per latency bucket (byok.measurement.LATENCY_COLUMNS).
    latency_le_50 = models.PositiveBigIntegerField(_("calls of at most 50 ms"), default=0)
    latency_le_100 = models.PositiveBigIntegerField(_("calls of 51 to 100 ms"), default=0)
    latency_le_250 = models.PositiveBigIntegerField(_("calls of 101 to 250 ms"), default=0)
    latency_le_500 = models.PositiveBigIntegerField(_("calls of 251 to 500 ms"), default=0)
    latency_le_1000 = models.PositiveBigIntegerField(_("calls of 501 to 1,000 ms"), default=0)
    latency_le_2500 = models.PositiveBigIntegerField(_("calls of 1,001 to 2,500 ms"), default=0)
    latency_le_5000 = models.PositiveBigIntegerField(_("calls of 2,501 to 5,000 ms"), default=0)
    latency_le_10000 = models.PositiveBigIntegerField(_("calls of 5,001 to 10,000 ms"), default=0)
    latency_gt_10000 = models.PositiveBigIntegerField(_("calls of more than 10,000 ms"), default=0)

    class Meta:
        abstract = True
        ordering = ["-date"]


class KeyUsage(DailyUsage):
    """Daily usage served by one stored key, by whoever made the calls: the key's owner,
    or for a team's key each member apart."""

    key = models.ForeignKey(UserAPIKey, on_delete=models.CASCADE, related_name="daily_usage")
    #: Who made the calls (empty once their account is deleted: a team's key keeps its
    #: history).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="byok_key_usage",
        verbose_name=_("made by"),
    )

    class Meta(DailyUsage.Meta):
        verbose_name = _("daily key usage")
        verbose_name_plural = _("daily key usage")
        constraints = [
            models.UniqueConstraint(
                fields=["key", "user", "date", "model"],
                name="byok_one_usage_row_per_key_caller_day_model",
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


class BudgetPeriod(models.TextChoices):
    """A calendar period, in the site's time zone (weeks start on Monday)."""

    DAY = "day", _("Day")
    WEEK = "week", _("Week")
    MONTH = "month", _("Month")


class AppliesTo(models.TextChoices):
    """Whose keys' spend a budget counts."""

    PLATFORM = "platform", _("The platform's key")
    OWN = "own", _("The user's own keys")
    TEAM = "team", _("The team's keys")
    ALL = "all", _("All keys")


class BudgetAction(models.TextChoices):
    ALERT = "alert", _("Alert")
    BLOCK = "block", _("Block")


class BudgetSource(models.TextChoices):
    """Who set a budget: the site (which users cannot change) or the user."""

    SITE = "site", _("Set by the site")
    USER = "user", _("Set by the user")


class BudgetQuerySet(models.QuerySet["Budget"]):
    def for_user(self, user: Any) -> BudgetQuerySet:
        return self.filter(user=user)


class Budget(models.Model):
    """A spending limit over a calendar period, on one service or all: a user's (counting
    the platform's key, the user's own keys, a team's or all), a team's (its members'
    spend on its keys together) or one member's on a team's keys.

    The row also holds what was spent in its current period (``period_start``):
    metering adds to it in SQL, and the key lookup reads it, so a blocking budget
    holds across processes with the database as the source of truth. A row made for
    one of ``BYOK["DEFAULT_BUDGETS"]`` names it (``default_name``) and takes its
    limit, period and thresholds from the setting unless the admin set its own.
    """

    #: The user whose spend counts; empty on a team's budget (its members' spend on its key).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=delete_with_owner,
        null=True,
        blank=True,
        related_name="byok_budgets",
        verbose_name=_("user"),
    )
    #: With a user: that member's spend on the team's key; alone: all its members'.
    team = models.ForeignKey(
        TEAM_MODEL,
        on_delete=delete_with_owner,
        null=True,
        blank=True,
        related_name="byok_budgets",
        verbose_name=_("team"),
    )
    service = models.CharField(
        _("service"), max_length=64, blank=True, help_text=_("Empty: every service.")
    )
    applies_to = models.CharField(
        _("applies to"), max_length=16, choices=AppliesTo.choices, default=AppliesTo.OWN
    )
    period = models.CharField(
        _("period"), max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH
    )
    #: USD; ``None`` on a row of a default budget: the setting's limit.
    limit = models.DecimalField(
        _("limit (USD)"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    action = models.CharField(
        _("action"), max_length=8, choices=BudgetAction.choices, default=BudgetAction.ALERT
    )
    #: Percentages of the limit that send an alert, such as ``"50,80,100"``; ``None`` on a
    #: row of a default budget: the setting's.
    alert_at = models.CharField(  # noqa: DJ001 - None means "the default's"
        _("alert at (%)"), max_length=64, null=True, blank=True
    )
    source = models.CharField(
        _("set by"), max_length=8, choices=BudgetSource.choices, default=BudgetSource.USER
    )
    default_name = models.CharField(_("default budget"), max_length=64, blank=True)
    #: The period ``spent`` and ``alerted`` are about.
    period_start = models.DateField(_("period start"), null=True, blank=True, editable=False)
    spent = models.DecimalField(
        _("spent"), max_digits=14, decimal_places=6, default=Decimal(0), editable=False
    )
    #: The highest alert threshold (percent) already sent in the period.
    alerted = models.PositiveSmallIntegerField(default=0, editable=False)
    #: The period whose first block was written to the audit trail.
    blocked_period = models.DateField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects: ClassVar[BudgetQuerySet] = BudgetQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("budget")
        verbose_name_plural = _("budgets")
        ordering = ["user", "service", "period"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "default_name"],
                condition=~models.Q(default_name=""),
                name="byok_one_row_per_default_budget",
            ),
            check_constraint(
                "byok_budget_has_owner",
                models.Q(user__isnull=False) | models.Q(team__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["user", "service"], name="byok_budget_user_idx"),
            models.Index(fields=["team", "service"], name="byok_budget_team_idx"),
        ]

    def __str__(self) -> str:
        service = registry.get(self.service).name if self.service in registry else self.service
        limit = "…" if self.limit is None else f"{self.limit} USD"
        return f"{service or _('all services')}, {self.get_period_display()}: {limit}"


class Reservation(models.Model):
    """Money set aside on a blocking budget for a call under way (``byok.reserve``).

    Settled (deleted) when the call's usage is recorded or the call ends; one left by
    a process that died stops counting at ``expires_at``.
    """

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="reservations")
    amount = models.DecimalField(max_digits=14, decimal_places=6)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        indexes = [models.Index(fields=["budget", "expires_at"], name="byok_reservation_idx")]

    def __str__(self) -> str:
        return f"{self.amount} USD on budget {self.budget_id}"


class AuditAction(models.TextChoices):
    CREATED = "created", _("Created")
    UPDATED = "updated", _("Updated")
    TESTED = "tested", _("Tested")
    REVEALED = "revealed", _("Revealed")
    DELETED = "deleted", _("Deleted")
    ROTATED = "rotated", _("Re-encrypted")
    IMPORTED = "imported", _("Imported")
    PREFERENCE_CHANGED = "preference_changed", _("Preference changed")
    BUDGET_CHANGED = "budget_changed", _("Budget changed")
    BUDGET_BLOCKED = "budget_blocked", _("Blocked by a budget")


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def for_owner(self, user: Any) -> AuditEventQuerySet:
        """A user's trail: everything that happened to their keys."""
        return self.filter(owner=user)

    def for_team(self, team: Any) -> AuditEventQuerySet:
        """A team's trail: everything that happened to its keys and budgets."""
        return self.filter(team=team)


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
    #: The team whose key (or budget) it was about; its admins see the event.
    team = models.ForeignKey(
        TEAM_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("team"),
    )
    service = models.CharField(_("service"), max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=255, blank=True)
    metadata = models.JSONField(_("details"), default=dict, blank=True)

    objects: ClassVar[AuditEventQuerySet] = AuditEventQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.service} at {self.created_at:%Y-%m-%d %H:%M}"


class NotificationKind(models.TextChoices):
    """What byok tells a key's owner about, by e-mail and the ``notification`` signal."""

    KEY_INVALID = "key_invalid", _("A key stopped working")
    KEY_EXPIRING = "key_expiring", _("A key expires soon")
    ROTATION_DUE = "rotation_due", _("A key is older than the rotation policy")
    KEY_UNUSED = "key_unused", _("A key has not been used for a long time")
    BUDGET_THRESHOLD = "budget_threshold", _("A budget reached an alert threshold")


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
        verbose_name_plural = _("notifications")
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
        verbose_name_plural = _("notification opt-outs")
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
        verbose_name_plural = _("re-check runs")
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
        verbose_name_plural = _("re-check back-offs")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "service"], name="byok_one_backoff_per_service"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service} in run {self.run_id}"


class DataKey(models.Model):
    """A data key of envelope encryption: made by the KMS, stored only wrapped by it.

    ``id`` is the key id its tokens carry (derived from the plaintext key as a local
    key's is); ``wrapped`` is the KMS's ciphertext of it, base64; ``kms_key`` is the
    KMS key that wrapped it, as ``BYOK["KMS"]["KEY_ID"]`` named it.
    """

    id = models.CharField(primary_key=True, max_length=8, editable=False)
    wrapped = models.TextField(editable=False)
    kms_key = models.CharField(_("KMS key"), max_length=2048)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    rewrapped_at = models.DateTimeField(_("rewrapped"), null=True, blank=True)

    class Meta:
        verbose_name = _("data key")
        verbose_name_plural = _("data keys")
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return f"data key {self.id} ({self.kms_key})"
