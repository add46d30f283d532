"""The admin for support staff: keys listed masked, secrets write-only, the trail read-only.

A secret can be set through a password input that is never filled back in, and is
never shown: not in the list, the form, the history, the delete confirmation or the
admin's own change log. Changes go through byok's helpers, so they are checked,
audited and signalled like any other.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from byok.conf import conf
from byok.exceptions import DecryptionError, UnknownService
from byok.keys import (
    add_user_api_key,
    holds_secret,
    remove_user_api_key,
    test_user_api_key,
    update_user_api_key,
)
from byok.models import (
    AuditEvent,
    KeyUsage,
    Notification,
    RecheckRun,
    UserAPIKey,
    UserAPIKeyQuerySet,
)
from byok.recheck import progress_of
from byok.services.base import CATEGORIES
from byok.services.registry import registry
from byok.validation import validate_credentials


class CategoryFilter(admin.SimpleListFilter):
    title = _("category")
    parameter_name = "category"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, str(_(label))) for value, label in CATEGORIES.items()]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[UserAPIKey]
    ) -> QuerySet[UserAPIKey]:
        if not self.value():
            return queryset
        return queryset.filter(service__in=[s.id for s in registry if s.category == self.value()])


class ServiceFilter(admin.SimpleListFilter):
    """The registry's services (a stored id the registry no longer has still filters)."""

    title = _("service")
    parameter_name = "service"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return registry.as_choices()

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[UserAPIKey]
    ) -> QuerySet[UserAPIKey]:
        return queryset.filter(service=self.value()) if self.value() else queryset


class DecryptableFilter(admin.SimpleListFilter):
    """Keys whose secret is under a configured encryption key, or not (by the stored key
    id: nothing is decrypted). Deleted keys hold no secret and are in neither."""

    title = _("decryptable")
    parameter_name = "decryptable"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", str(_("Yes"))), ("no", str(_("No: needs re-entering")))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[UserAPIKey]) -> Any:
        keys: UserAPIKeyQuerySet = queryset  # type: ignore[assignment]
        if self.value() == "yes":
            return keys.decryptable()
        if self.value() == "no":
            return keys.needing_reentry()
        return queryset


#: The class of the masked key in the key list (byok/admin.css): one line, monospace.
HINT = "byok-admin-hint"


def two_lines(value: object, note: object, css_class: str = "mini quiet") -> SafeString:
    """A key-list cell of two lines, a value and a smaller note under it: the list fits a
    1280 px screen as six columns, not eleven."""
    return format_html('{}<br><span class="{}">{}</span>', value, css_class, note)


class DaysFilter(admin.SimpleListFilter):
    """A filter of keys by a number of days; the site's policy (a ``BYOK`` setting)
    is offered first when it is set."""

    day_choices: tuple[int, ...] = ()
    policy_label = _("past the site's policy (%(days)d days)")

    def policy(self) -> int | None:
        return None

    def label(self, days: int) -> str:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        found = []
        policy = self.policy()
        if policy is not None:
            found.append(("policy", str(self.policy_label) % {"days": policy}))
        return found + [(str(days), self.label(days)) for days in self.day_choices]

    def days(self) -> int | None:
        if self.value() == "policy":
            return self.policy()
        value = str(self.value())
        return int(value) if value.isdigit() else None

    def matching(self, keys: UserAPIKeyQuerySet, days: int) -> UserAPIKeyQuerySet:
        raise NotImplementedError

    def queryset(self, request: HttpRequest, queryset: QuerySet[UserAPIKey]) -> Any:
        days = self.days()
        if days is None:
            return queryset
        return self.matching(queryset, days)  # type: ignore[arg-type]


class ExpiryFilter(DaysFilter):
    title = _("expiry")
    parameter_name = "expires"
    day_choices = (0, 3, 14, 30)

    def label(self, days: int) -> str:
        if days == 0:
            return str(_("expired"))
        return str(_("expires within %(days)d days")) % {"days": days}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*super().lookups(request, model_admin), ("unknown", str(_("no known expiry")))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[UserAPIKey]) -> Any:
        if self.value() == "unknown":
            return queryset.filter(expires_at__isnull=True)
        return super().queryset(request, queryset)

    def matching(self, keys: UserAPIKeyQuerySet, days: int) -> UserAPIKeyQuerySet:
        return keys.expiring_within(days)


class SecretAgeFilter(DaysFilter):
    title = _("secret age")
    parameter_name = "secret_age"
    day_choices = (90, 365)

    def policy(self) -> int | None:
        return conf.ROTATION_REMINDER_DAYS

    def label(self, days: int) -> str:
        return str(_("not replaced for %(days)d days")) % {"days": days}

    def matching(self, keys: UserAPIKeyQuerySet, days: int) -> UserAPIKeyQuerySet:
        return keys.secret_older_than(days)


class UnusedFilter(DaysFilter):
    title = _("last use")
    parameter_name = "unused"
    day_choices = (30, 90, 365)

    def policy(self) -> int | None:
        return conf.UNUSED_REMINDER_DAYS

    def label(self, days: int) -> str:
        return str(_("unused for %(days)d days")) % {"days": days}

    def matching(self, keys: UserAPIKeyQuerySet, days: int) -> UserAPIKeyQuerySet:
        return keys.unused_for(days)


class UserAPIKeyForm(forms.ModelForm):  # type: ignore[type-arg]
    """The secret is a password input, empty every time the form is shown."""

    # Labelled as a model form labels the fields it makes: the model's name, capitalised.
    service = forms.ChoiceField(
        label=capfirst(UserAPIKey._meta.get_field("service").verbose_name), choices=()
    )
    secret = forms.CharField(
        label=_("Secret"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "Write-only: never shown, never filled back in. Leave empty to keep the stored "
            "secret. For a service with several fields, a JSON object such as "
            '{"account_sid": "AC…", "auth_token": "…"}.'
        ),
    )

    class Meta:
        model = UserAPIKey
        fields = ["user", "service", "nickname", "environment", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["service"].choices = registry.as_choices()  # type: ignore[attr-defined]
        # Not ``instance.pk``: the UUID primary key is set before the first save.
        if not self.instance._state.adding:
            if "user" in self.fields:  # absent when the admin shows the key read-only
                self.fields["user"].disabled = True
            self.fields["service"].disabled = True
            self.fields["service"].choices = [  # type: ignore[attr-defined]
                (self.instance.service, self.instance.service_name)
            ]

    @sensitive_variables()
    def credentials(self) -> object:
        """What the secret input holds, as the helpers take it."""
        secret = self.cleaned_data.get("secret", "")
        if secret.lstrip().startswith("{"):
            try:
                return json.loads(secret)
            except ValueError:
                raise ValidationError(
                    {"secret": _("This is not a JSON object of field names to values.")}
                ) from None
        return secret

    @sensitive_variables()
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        service = cleaned.get("service") or self.instance.service
        if self.instance._state.adding and not cleaned.get("secret"):
            self.add_error("secret", _("A new key needs its secret."))
        if cleaned.get("secret") and service in registry:
            checked = validate_credentials(
                service, self.credentials(), environment=cleaned.get("environment")
            )
            for message in checked.errors:
                self.add_error("secret", message)
            if checked.ok and cleaned.get("user"):
                editing = None if self.instance._state.adding else self.instance
                if holds_secret(cleaned["user"], checked.credentials, exclude=editing):
                    self.add_error("secret", _("This user has already stored this key."))
        return cleaned


class KeyUsageInline(admin.TabularInline):  # type: ignore[type-arg]
    model = KeyUsage
    fields = ("date", "calls", "units", "cost")
    readonly_fields = ("date", "calls", "units", "cost")
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-date"]
    verbose_name_plural = _("daily usage")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(UserAPIKey)
class UserAPIKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = UserAPIKeyForm
    # Six columns, two lines in some, so that the list fits a 1280 px screen with the
    # admin's sidebar and the filters open: the nickname over the masked key, the
    # environment under the service, "switched off" or "deleted" under the status.
    list_display = ["api_key", "owner", "service_name", "state", "calls", "last_used"]
    list_filter = [
        ServiceFilter,
        CategoryFilter,
        "environment",
        "status",
        "is_active",
        ExpiryFilter,
        SecretAgeFilter,
        UnusedFilter,
        DecryptableFilter,
    ]
    list_select_related = ["user"]
    readonly_fields = [
        "masked_key",
        "status",
        "last_tested_at",
        "last_test_message",
        "usage_count",
        "estimated_cost",
        "last_used_at",
        "secret_changed_at",
        "expires_at",
        "expiry_source",
        "created_at",
        "updated_at",
        "deleted_at",
    ]
    inlines = [KeyUsageInline]
    actions = ["test_keys", "activate_keys", "deactivate_keys"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user"]

    @method_decorator(sensitive_post_parameters("secret"))
    @method_decorator(sensitive_variables())
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        """The add and change pages: a crash report never shows the posted secret."""
        return super().changeform_view(request, object_id, form_url, extra_context)

    def has_change_permission(self, request: HttpRequest, obj: UserAPIKey | None = None) -> bool:
        """A deleted key is kept for the trail: it can be viewed, not changed."""
        if obj is not None and obj.is_deleted:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: UserAPIKey | None = None) -> bool:
        """A deleted key is deleted already: nothing more to erase."""
        if obj is not None and obj.is_deleted:
            return False
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """Deleting erases the secret and keeps the row and its usage: nothing else goes."""
        return [str(obj) for obj in objs], {}, set(), []

    def get_fieldsets(self, request: HttpRequest, obj: UserAPIKey | None = None) -> Any:
        editable = ["user", "service", "nickname", "environment", "is_active", "secret"]
        if obj is None:
            return [(None, {"fields": editable})]
        return [
            (None, {"fields": editable}),
            (_("State"), {"fields": self.readonly_fields}),
        ]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        user_model = get_user_model()
        names = {f.name for f in user_model._meta.get_fields()}
        owner = {f"user__{user_model.USERNAME_FIELD}"} | {
            f"user__{name}" for name in ("email", "username") if name in names
        }
        return [*sorted(owner), "nickname"]

    class Media:
        css = {"all": ["byok/admin.css"]}

    @admin.display(description=_("key"), ordering="nickname")
    def api_key(self, key: UserAPIKey) -> SafeString:
        if not key.nickname:
            return format_html('<span class="{}">{}</span>', HINT, key.masked_key)
        return two_lines(key.nickname, key.masked_key, HINT)

    @admin.display(description=_("owner"), ordering="user")
    def owner(self, key: UserAPIKey) -> str:
        return str(key.user)

    @admin.display(description=_("service"), ordering="service")
    def service_name(self, key: UserAPIKey) -> SafeString:
        return two_lines(key.service_name, key.get_environment_display())

    @admin.display(description=_("status"), ordering="status")
    def state(self, key: UserAPIKey) -> SafeString:
        if key.is_deleted:
            return two_lines(key.get_status_display(), _("Deleted"))
        if not key.is_active:
            return two_lines(key.get_status_display(), _("Switched off"))
        return format_html("{}", key.get_status_display())

    @admin.display(description=_("calls"), ordering="usage_count")
    def calls(self, key: UserAPIKey) -> str:
        return number_format(key.usage_count, force_grouping=True)

    @admin.display(description=_("last used"), ordering="last_used_at")
    def last_used(self, key: UserAPIKey) -> SafeString | None:
        """The day, with the time in a tooltip: a full date and time takes two columns."""
        if key.last_used_at is None:
            return None  # the admin's empty value
        when = localtime(key.last_used_at)
        return format_html(
            '<time datetime="{}" title="{}">{}</time>',
            when.isoformat(),
            date_format(when, "DATETIME_FORMAT"),
            date_format(when, "SHORT_DATE_FORMAT"),
        )

    @admin.display(description=_("masked key"))
    def masked_key(self, key: UserAPIKey) -> str:
        return key.masked_key

    @sensitive_variables()
    def save_model(self, request: HttpRequest, obj: UserAPIKey, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = add_user_api_key(
                data["user"],
                data["service"],
                form.credentials(),
                nickname=data["nickname"],
                environment=data["environment"],
                actor=request.user,
                request=request,
            )
            obj.__dict__.update({k: v for k, v in created.__dict__.items() if k != "_state"})
            obj._state.adding = False
            if not data["is_active"]:
                update_user_api_key(obj, is_active=False, actor=request.user, request=request)
            return
        update_user_api_key(
            obj,
            nickname=data["nickname"],
            environment=data["environment"],
            is_active=data["is_active"],
            credentials=form.credentials() if data.get("secret") else None,
            actor=request.user,
            request=request,
        )

    def delete_model(self, request: HttpRequest, obj: UserAPIKey) -> None:
        """Deleting erases the secret and keeps the row, as everywhere else."""
        if not obj.is_deleted:
            remove_user_api_key(obj, actor=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[UserAPIKey]) -> None:
        for key in queryset:
            self.delete_model(request, key)

    def get_queryset(self, request: HttpRequest) -> QuerySet[UserAPIKey]:
        """Without the ciphertext: no admin page ever decrypts it."""
        return super().get_queryset(request).defer("credentials")

    @admin.action(
        description=_("Test the selected keys with their providers"), permissions=["change"]
    )
    def test_keys(self, request: HttpRequest, queryset: QuerySet[UserAPIKey]) -> None:
        outcomes: dict[str, int] = {}
        for key in queryset.filter(deleted_at__isnull=True).defer(None):
            try:
                status = test_user_api_key(key, actor=request.user, request=request).status.value
            except (DecryptionError, UnknownService):
                status = "not testable"
            outcomes[status] = outcomes.get(status, 0) + 1
        summary = ", ".join(f"{status}: {count}" for status, count in sorted(outcomes.items()))
        self.message_user(request, _("Tested: %(summary)s.") % {"summary": summary or "0"})

    @admin.action(description=_("Switch the selected keys on"), permissions=["change"])
    def activate_keys(self, request: HttpRequest, queryset: QuerySet[UserAPIKey]) -> None:
        self._switch(request, queryset, True)

    @admin.action(description=_("Switch the selected keys off"), permissions=["change"])
    def deactivate_keys(self, request: HttpRequest, queryset: QuerySet[UserAPIKey]) -> None:
        self._switch(request, queryset, False)

    def _switch(self, request: HttpRequest, queryset: QuerySet[UserAPIKey], active: bool) -> None:
        changed = 0
        for key in queryset.filter(deleted_at__isnull=True).exclude(is_active=active):
            update_user_api_key(key, is_active=active, actor=request.user, request=request)
            self.log_change(request, key, [{"changed": {"fields": ["is_active"]}}])
            changed += 1
        self.message_user(
            request,
            ngettext("%(count)d key switched.", "%(count)d keys switched.", changed)
            % {"count": changed},
            messages.SUCCESS,
        )


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The trail, read-only for everyone: no add, change or delete."""

    list_display = ["created_at", "action", "service", "owner", "actor", "key", "ip_address"]
    list_filter = ["action", "service"]
    list_select_related = ["owner", "actor", "key"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "created_at",
        "action",
        "actor",
        "owner",
        "key",
        "service",
        "ip_address",
        "user_agent",
        "metadata",
    ]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        user_model = get_user_model()
        return [f"owner__{user_model.USERNAME_FIELD}", f"actor__{user_model.USERNAME_FIELD}"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Rows byok writes itself: viewed in the admin, never added or changed there."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RecheckRun)
class RecheckRunAdmin(ReadOnlyAdmin):
    """Runs of ``byok_check_keys --enqueue``: how far each got, and what it found."""

    list_display = ["__str__", "key_count", "batch_count", "batches_done", "finished_at"]
    readonly_fields = [
        "created_at",
        "finished_at",
        "options",
        "key_count",
        "batch_count",
        "summary",
    ]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[RecheckRun]:
        done = Count("batches", filter=Q(batches__finished_at__isnull=False))
        runs: QuerySet[RecheckRun] = super().get_queryset(request).annotate(done=done)
        return runs

    @admin.display(description=_("batches done"))
    def batches_done(self, run: RecheckRun) -> int:
        return int(getattr(run, "done", 0))

    @admin.display(description=_("summary"))
    def summary(self, run: RecheckRun) -> str:
        progress = progress_of(run)
        counts = ", ".join(f"{outcome}: {n}" for outcome, n in sorted(progress.counts.items()))
        limited = ", ".join(progress.rate_limited_services)
        text = str(_("%(done)d of %(total)d batches done; %(keys)d keys tested (%(counts)s).")) % {
            "done": progress.batches_done,
            "total": run.batch_count,
            "keys": progress.keys_done,
            "counts": counts or "-",
        }
        if limited:
            text += " " + str(_("Rate limited: %(services)s.")) % {"services": limited}
        return text


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """What byok told users, and what it still has to: a row per notification."""

    list_display = ["created_at", "kind", "user", "key", "sent_at", "attempts", "last_error"]
    list_filter = ["kind", ("sent_at", admin.EmptyFieldListFilter)]
    list_select_related = ["user", "key"]
    readonly_fields = [
        "created_at",
        "kind",
        "user",
        "key",
        "occasion",
        "context",
        "claimed_at",
        "sent_at",
        "attempts",
        "last_error",
    ]
    date_hierarchy = "created_at"
