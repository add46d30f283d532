"""The admin for support staff: keys listed masked, secrets write-only, the trail read-only.

A secret can be set through a password input that is never filled back in, and is
never shown: not in the list, the form, the history, the delete confirmation or the
admin's own change log. Changes go through byok's helpers, so they are checked,
audited and signalled like any other.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.utils.decorators import method_decorator
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from byok import jsonsafe, kms, validation
from byok.budgets import (
    check_budget,
    default_rules,
    period_start,
    remove_budget,
    save_budget,
)
from byok.conf import conf
from byok.exceptions import DecryptionError, KmsError, TooManyTests, UnknownService
from byok.keys import (
    add_user_api_key,
    holds_secret,
    prepare_key,
    remove_user_api_key,
    room_for_keys,
    store_key,
    test_user_api_key,
    too_many_keys,
    update_user_api_key,
)
from byok.models import (
    AuditEvent,
    Budget,
    BudgetSource,
    KeyUsage,
    Notification,
    Owner,
    RecheckRun,
    UserAPIKey,
    UserAPIKeyQuerySet,
    team_model,
)
from byok.rate_limits import spend_test_budget, too_many_tests
from byok.recheck import progress_of
from byok.services.base import CATEGORIES
from byok.services.registry import registry
from byok.validation import validate_credentials


class CategoryFilter(admin.SimpleListFilter):
    title = _("category")
    parameter_name = "category"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, str(label)) for value, label in CATEGORIES.items()]

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


class OwnerKindFilter(admin.SimpleListFilter):
    """Users' keys, or teams' keys."""

    title = _("owned by")
    parameter_name = "owned_by"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("user", str(_("a user"))), ("team", str(_("a team")))]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[UserAPIKey]
    ) -> QuerySet[UserAPIKey]:
        if self.value() in ("user", "team"):
            return queryset.filter(**{f"{self.value()}__isnull": False})
        return queryset


def acting(request: HttpRequest, key: UserAPIKey) -> Any:
    """The actor the admin hands byok's helpers for ``key``.

    Staff change a team's keys without being in the team (the admin's own permissions
    guard them): for a team's key the helpers get no actor to check, as for the host's
    own code, and the audit event still names the staff member, from the request.
    """
    return None if key.team_id is not None else request.user


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


def login_fields(relation: str) -> list[str]:
    """The search fields of a user's login: the field they sign in with, and their
    e-mail address and username where the user model has them."""
    user_model = get_user_model()
    names = {f.name for f in user_model._meta.get_fields()}
    login = {f"{relation}__{user_model.USERNAME_FIELD}"} | {
        f"{relation}__{name}" for name in ("email", "username") if name in names
    }
    return sorted(login)


DUPLICATE = {
    "user": _("This user has already stored this key."),
    "team": _("This team has already stored this key."),
}


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
        fields = ["user", "team", "service", "nickname", "environment", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["service"].choices = registry.as_choices()  # type: ignore[attr-defined]
        # Not ``instance.pk``: the UUID primary key is set before the first save.
        if not self.instance._state.adding:
            for owner in ("user", "team"):  # absent when the admin shows the key read-only
                if owner in self.fields:
                    self.fields[owner].disabled = True
            self.fields["service"].disabled = True
            self.fields["service"].choices = [  # type: ignore[attr-defined]
                (self.instance.service, self.instance.service_name)
            ]

    def clean_nickname(self) -> str:
        return validation.clean_nickname(self.cleaned_data.get("nickname", ""))

    @sensitive_variables()
    def credentials(self) -> object:
        """What the secret input holds, as the helpers take it."""
        secret = self.cleaned_data.get("secret", "")
        if secret.lstrip().startswith("{"):
            try:
                return jsonsafe.loads(secret)
            except jsonsafe.JSONTooDeep as error:
                raise ValidationError(
                    {
                        "secret": _("The JSON is nested more than %(depth)d levels deep.")
                        % {"depth": error.max_depth}
                    }
                ) from None
            except ValueError:
                raise ValidationError(
                    {"secret": _("This is not a JSON object of field names to values.")}
                ) from None
        return secret

    def owner(self) -> Owner | None:
        """The user or team the key is (to be) owned by, if the form says one alone."""
        user, team = self.cleaned_data.get("user"), self.cleaned_data.get("team")
        if (user is None) == (team is None):
            return None
        return Owner.user(user) if user is not None else Owner.team(team)

    def _post_clean(self) -> None:
        """The model's own checks, once the form names one owner: without one,
        :meth:`clean` has said so in words (not the one-owner constraint's name)."""
        if self.owner() is not None:
            super()._post_clean()  # type: ignore[misc]

    @sensitive_variables()
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        service = cleaned.get("service") or self.instance.service
        adding = self.instance._state.adding
        chosen = self.owner() is not None or self.has_error("user") or self.has_error("team")
        if adding and not chosen:
            self.add_error(None, _("A key belongs to a user or to a team: choose one."))
        if adding and not cleaned.get("secret"):
            self.add_error("secret", _("A new key needs its secret."))
        owner = self.owner()
        if self.instance._state.adding and owner and not room_for_keys(owner):
            self.add_error(None, too_many_keys())
        if cleaned.get("secret") and service in registry:
            checked = validate_credentials(
                service, self.credentials(), environment=cleaned.get("environment")
            )
            for message in checked.errors:
                self.add_error("secret", message)
            owner = self.owner()
            if checked.ok and owner is not None:
                editing = None if adding else self.instance
                if holds_secret(owner, checked.credentials, exclude=editing):
                    self.add_error("secret", DUPLICATE[owner.kind])
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


class RefusedOnSave(Exception):
    """The store refused a key the add form had found fine (the admin's transaction
    then rolls back whole)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__(messages)
        self.messages = messages


@admin.register(UserAPIKey)
class UserAPIKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = UserAPIKeyForm
    #: The most keys "Test the selected keys" tests in one go (each is a provider call).
    test_action_limit = 10
    # Six columns, two lines in some, so that the list fits a 1280 px screen with the
    # admin's sidebar and the filters open: the nickname over the masked key, the
    # environment under the service, "switched off" or "deleted" under the status.
    list_display = ["api_key", "owner", "service_name", "state", "calls", "last_used"]
    list_filter = [
        ServiceFilter,
        CategoryFilter,
        OwnerKindFilter,
        "environment",
        "status",
        "is_active",
        ExpiryFilter,
        SecretAgeFilter,
        UnusedFilter,
        DecryptableFilter,
    ]
    list_select_related = ["user", "team"]
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
    raw_id_fields = ["user", "team"]

    @method_decorator(sensitive_post_parameters("secret"))
    @method_decorator(sensitive_variables())
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        """The add and change pages: a crash report never shows the posted secret. What
        the store refuses after the form was checked (another request took the owner's
        last place meanwhile; the KMS could not make a data key) is an error message and
        the empty form again."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except RefusedOnSave as refused:
            for message in refused.messages:
                self.message_user(request, message, messages.ERROR)
        except KmsError as error:
            self.message_user(request, kms.unavailable(error), messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

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
        editable = ["user", "team", "service", "nickname", "environment", "is_active", "secret"]
        if obj is None:
            return [(None, {"fields": editable})]
        return [
            (None, {"fields": editable}),
            (_("State"), {"fields": self.readonly_fields}),
        ]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        team_names = {f.name for f in team_model()._meta.get_fields()}
        team = [f"team__{name}" for name in ("name", "slug") if name in team_names]
        return [*login_fields("user"), *team, "nickname"]

    class Media:
        css = {"all": ["byok/admin.css"]}

    @admin.display(description=_("key"), ordering="nickname")
    def api_key(self, key: UserAPIKey) -> SafeString:
        if not key.nickname:
            return format_html('<span class="{}">{}</span>', HINT, key.masked_key)
        return two_lines(key.nickname, key.masked_key, HINT)

    @admin.display(description=_("owner"), ordering="user")
    def owner(self, key: UserAPIKey) -> str:
        if key.team_id is not None:
            return str(_("%(team)s (team)")) % {"team": key.team}
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
            try:
                created = self._add(request, form)
            except ValidationError as error:
                raise RefusedOnSave(error.messages) from None
            obj.__dict__.update({k: v for k, v in created.__dict__.items() if k != "_state"})
            obj._state.adding = False
            if not data["is_active"]:
                update_user_api_key(
                    obj, is_active=False, actor=acting(request, obj), request=request
                )
            return
        update_user_api_key(
            obj,
            nickname=data["nickname"],
            environment=data["environment"],
            is_active=data["is_active"],
            credentials=form.credentials() if data.get("secret") else None,
            actor=acting(request, obj),
            request=request,
        )

    @sensitive_variables()
    def _add(self, request: HttpRequest, form: UserAPIKeyForm) -> UserAPIKey:
        """Store the key the add form describes, for its user or its team."""
        data = form.cleaned_data
        options = {"nickname": data["nickname"], "environment": data["environment"]}
        if data.get("team") is None:
            return add_user_api_key(
                data["user"],
                data["service"],
                form.credentials(),
                **options,
                actor=request.user,
                request=request,
            )
        # Not add_team_api_key, which asks for one of the team's managers: see acting().
        key = prepare_key(None, data["service"], form.credentials(), team=data["team"], **options)
        return store_key(key, request=request)

    def delete_model(self, request: HttpRequest, obj: UserAPIKey) -> None:
        """Deleting erases the secret and keeps the row, as everywhere else."""
        if not obj.is_deleted:
            remove_user_api_key(obj, actor=acting(request, obj), request=request)

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
        """Test at most :attr:`test_action_limit` keys, each spending one call of the
        staff member's ``byok_test`` budget, all up front: over either, nothing is tested."""
        limit = self.test_action_limit
        keys = list(queryset.filter(deleted_at__isnull=True).defer(None)[: limit + 1])
        if len(keys) > limit:
            too_many = ngettext(
                "Select at most %(limit)d key to test at once; nothing was tested.",
                "Select at most %(limit)d keys to test at once; nothing was tested.",
                limit,
            )
            self.message_user(request, too_many % {"limit": limit}, messages.ERROR)
            return
        try:
            spend_test_budget(request.user, len(keys))
        except TooManyTests as refused:
            refusal = too_many_tests(refused.wait)
            self.message_user(
                request,
                _("%(refusal)s Nothing was tested.") % {"refusal": refusal},
                messages.ERROR,
            )
            return
        outcomes: dict[str, int] = {}
        for key in keys:
            try:
                tested = test_user_api_key(key, actor=acting(request, key), request=request)
                status = tested.status.value
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
            update_user_api_key(key, is_active=active, actor=acting(request, key), request=request)
            self.log_change(request, key, [{"changed": {"fields": ["is_active"]}}])
            changed += 1
        self.message_user(
            request,
            ngettext("%(count)d key switched.", "%(count)d keys switched.", changed)
            % {"count": changed},
            messages.SUCCESS,
        )


class BudgetOwnerFilter(admin.SimpleListFilter):
    title = _("whose")
    parameter_name = "whose"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("user", str(_("a user's"))),
            ("member", str(_("a member's, on a team's keys"))),
            ("team", str(_("a team's"))),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Budget]) -> QuerySet[Budget]:
        whose = {
            "user": Q(team__isnull=True),
            "member": Q(user__isnull=False, team__isnull=False),
            "team": Q(user__isnull=True),
        }
        chosen = whose.get(self.value() or "")
        return queryset if chosen is None else queryset.filter(chosen)


class BudgetForm(forms.ModelForm):  # type: ignore[type-arg]
    """A budget the admin sets: checked as ``byok.set_budget`` checks one."""

    service = forms.ChoiceField(
        label=capfirst(Budget._meta.get_field("service").verbose_name), choices=(), required=False
    )
    default_name = forms.ChoiceField(
        label=capfirst(Budget._meta.get_field("default_name").verbose_name),
        choices=(),
        required=False,
        help_text=_(
            "One of BYOK['DEFAULT_BUDGETS'], to change it for this user: it starts as the "
            "setting says (service, applies to, period, action); leave the limit or the "
            "thresholds empty to keep the setting's."
        ),
    )

    class Meta:
        model = Budget
        fields = [
            "user",
            "team",
            "default_name",
            "service",
            "applies_to",
            "period",
            "limit",
            "action",
            "alert_at",
        ]
        help_texts = {
            "alert_at": _("Percentages of the limit, such as 50,80,100 (empty: those)."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance
        services = [("", str(_("Every service"))), *registry.as_choices()]
        if current.service and current.service not in registry:
            services.append((current.service, current.service))
        self.fields["service"].choices = services  # type: ignore[attr-defined]
        names = [("", "-"), *[(name, name) for name in default_rules()]]
        if current.default_name and current.default_name not in default_rules():
            names.append((current.default_name, current.default_name))
        self.fields["default_name"].choices = names  # type: ignore[attr-defined]
        if not current._state.adding:
            for name in ("user", "team", "default_name"):
                if name in self.fields:
                    self.fields[name].disabled = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        rule = default_rules().get(cleaned.get("default_name") or "")
        if rule is not None and self.instance._state.adding:
            if cleaned.get("team") is not None:
                self.add_error("team", _("A default budget is a user's."))
            for name in ("service", "applies_to", "period", "action"):
                cleaned[name] = getattr(rule, name)
        return cleaned

    def _post_clean(self) -> None:
        """After the model's own checks (its constraints), byok's, on the built row."""
        super()._post_clean()  # type: ignore[misc]
        try:
            check_budget(self.instance)
        except ValidationError as error:
            self.add_error(None, error)
        budget = self.instance
        if budget.default_name or self.errors:
            return
        twins = Budget.objects.filter(
            user=budget.user_id,
            team=budget.team_id,
            source=budget.source if not budget._state.adding else BudgetSource.SITE,
            default_name="",
            service=budget.service,
            applies_to=budget.applies_to,
            period=budget.period,
        ).exclude(pk=budget.pk)
        if twins.exists():
            self.add_error(
                None, _("This owner has a budget of this service, applies to and period.")
            )


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Budgets per user and team. One the admin adds is the site's: its user can
    neither raise nor remove it. Changes go through ``byok.budgets``, audited."""

    form = BudgetForm
    list_display = [
        "owner",
        "service_name",
        "applies_to",
        "period",
        "limit_shown",
        "action",
        "spent_now",
        "source",
    ]
    list_filter = [BudgetOwnerFilter, "source", "action", "period", "applies_to", ServiceFilter]
    list_select_related = ["user", "team"]
    raw_id_fields = ["user", "team"]
    readonly_fields = [
        "source",
        "period_start",
        "spent",
        "alerted",
        "blocked_period",
        "created_at",
        "updated_at",
    ]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [*login_fields("user"), "default_name"]

    def get_fieldsets(self, request: HttpRequest, obj: Budget | None = None) -> Any:
        editable = list(BudgetForm.Meta.fields)
        if obj is None:
            return [(None, {"fields": editable})]
        return [(None, {"fields": editable}), (_("State"), {"fields": self.readonly_fields})]

    @admin.display(description=_("owner"))
    def owner(self, budget: Budget) -> str:
        if budget.team_id is None:
            return str(budget.user)
        if budget.user_id is None:
            return str(budget.team)
        return f"{budget.user} ({budget.team})"

    @admin.display(description=_("service"), ordering="service")
    def service_name(self, budget: Budget) -> str:
        if not budget.service:
            return str(_("Every service"))
        return registry.get(budget.service).name if budget.service in registry else budget.service

    @admin.display(description=_("limit (USD)"), ordering="limit")
    def limit_shown(self, budget: Budget) -> SafeString | str:
        if budget.limit is not None:
            return number_format(budget.limit, 2)
        rule = default_rules().get(budget.default_name)
        if rule is None:
            return "-"
        return two_lines(number_format(rule.limit, 2), _("the setting's"))

    @admin.display(description=_("spent this period"))
    def spent_now(self, budget: Budget) -> str:
        current = period_start(budget.period, localtime().date())
        return number_format(budget.spent if budget.period_start == current else 0, 2)

    def save_model(self, request: HttpRequest, obj: Budget, form: Any, change: bool) -> None:
        if not change:
            obj.source = BudgetSource.SITE
        save_budget(obj, actor=request.user, request=request)

    def delete_model(self, request: HttpRequest, obj: Budget) -> None:
        remove_budget(obj, actor=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Budget]) -> None:
        for budget in queryset:
            self.delete_model(request, budget)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The trail, read-only for everyone: no add, change or delete."""

    list_display = [
        "created_at",
        "action",
        "service",
        "owner",
        "team",
        "actor",
        "key",
        "ip_address",
    ]
    list_filter = ["action", "service"]
    list_select_related = ["owner", "team", "actor", "key"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "created_at",
        "action",
        "actor",
        "owner",
        "team",
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
