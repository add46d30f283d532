"""Serializers. Secrets are write-only: no serializer here ever reads one back,
except :class:`RevealSerializer`, used by ``reveal/`` alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from byok.importing import MAX_BYTES, Outcome
from byok.key_age import key_age
from byok.models import Environment, ExpirySource, KeyStatus, UserAPIKey
from byok.rest.schema import OpenApiTypes, extend_schema_field
from byok.results import ProbeStatus
from byok.services.base import CATEGORIES, MAX_VALUE_LENGTH
from byok.services.registry import registry
from byok.validation import MAX_NICKNAME_LENGTH, clean_nickname

#: What a service id looks like (``openai``, ``google_analytics``, a host's own ids).
SERVICE_ID_PATTERN = r"^[A-Za-z0-9_.-]*$"


class StrictSerializer(serializers.Serializer[Any]):
    """Refuses fields it does not know instead of silently ignoring them."""

    #: Read-only fields of a key's representation a client may send back: ignored.
    ignored_fields: ClassVar[frozenset[str]] = frozenset()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = set(data) - set(self.fields) - self.ignored_fields
            if unknown:
                raise serializers.ValidationError(
                    {
                        str(name)[:100]: [
                            ErrorDetail(gettext("Unknown field."), code="unknown_field")
                        ]
                        for name in sorted(unknown, key=str)
                    }
                )
        return super().to_internal_value(data)


class TextField(serializers.CharField):
    """A string, and only a string: DRF's CharField would turn ``5`` into ``"5"``."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class NicknameField(TextField):
    """A key's nickname, by :func:`byok.validation.clean_nickname`'s rule."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_blank=True, max_length=MAX_NICKNAME_LENGTH, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        try:
            return clean_nickname(super().to_internal_value(data))
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages, code=error.code) from None


def secret_value(**kwargs: Any) -> serializers.CharField:
    """A credential value: kept exactly as sent (the service trims it), never echoed."""
    return TextField(
        trim_whitespace=False,
        allow_blank=True,
        max_length=MAX_VALUE_LENGTH,
        write_only=True,
        **kwargs,
    )


class NamedChoiceField(serializers.ChoiceField):
    """A choice field whose choice set the schema names ``Byok<enum_name>Enum``, where
    the field's name alone is ambiguous (a key's ``status`` is not a test's)."""

    def __init__(self, *args: Any, enum_name: str, **kwargs: Any) -> None:
        self.enum_name = enum_name
        super().__init__(*args, **kwargs)


class ServiceField(serializers.ChoiceField):
    """A service id, with the registry's current choices (read when bound, not at import)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=[], **kwargs)

    def bind(self, field_name: str, parent: Any) -> None:
        super().bind(field_name, parent)
        self.choices = registry.as_choices()


@extend_schema_field(OpenApiTypes.STR)
class CredentialValue(serializers.Field):  # type: ignore[type-arg]
    """One value of ``credentials``, handed as is to the service, which checks each
    field itself: its errors are then keyed by the credential's field names."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:  # write-only: never called on output
        raise NotImplementedError


class CredentialsInput(StrictSerializer):
    """``credentials`` (field names to values) or ``key`` (one value), not both."""

    credentials = serializers.DictField(
        child=CredentialValue(allow_null=True),
        required=False,
        write_only=True,
        help_text=_('The credential\'s fields, e.g. {"api_key": "sk-…"}.'),
    )
    key = secret_value(required=False, help_text=_("Shorthand for services with a single field."))

    @sensitive_variables()
    def credentials_from(self, attrs: dict[str, Any], *, required: bool) -> object:
        if "credentials" in attrs and "key" in attrs:
            raise serializers.ValidationError(
                {
                    "key": [
                        ErrorDetail(gettext("Send credentials or key, not both."), code="conflict")
                    ]
                }
            )
        if required and "credentials" not in attrs and "key" not in attrs:
            raise serializers.ValidationError(
                {"credentials": [ErrorDetail(gettext("This field is required."), code="required")]}
            )
        return attrs.get("credentials", attrs.get("key"))


class APIKeySerializer(serializers.ModelSerializer[UserAPIKey]):
    """A stored key, masked."""

    service_name = serializers.SerializerMethodField()
    category = serializers.SerializerMethodField()
    masked_key = serializers.CharField(read_only=True)
    is_default = serializers.BooleanField(read_only=True)
    status = NamedChoiceField(choices=KeyStatus.choices, read_only=True, enum_name="KeyStatus")
    estimated_cost = serializers.DecimalField(max_digits=14, decimal_places=6, read_only=True)
    expiry_source = serializers.ChoiceField(
        choices=ExpirySource.choices,
        allow_blank=True,
        read_only=True,
        help_text=_("Who said when the key expires: user, provider, or blank when unknown."),
    )
    age_days = serializers.SerializerMethodField(
        help_text=_("Whole days since the key was stored.")
    )
    unused_days = serializers.SerializerMethodField(
        help_text=_("Whole days since its last use (since it was stored, if never used).")
    )
    expires_in_days = serializers.SerializerMethodField(
        help_text=_("Whole days left before it expires (negative once past); null: unknown.")
    )
    reminders = serializers.SerializerMethodField(
        help_text=_(
            "What needs its owner's attention: expired, expires_soon, rotation_due, unused."
        )
    )

    class Meta:
        model = UserAPIKey
        fields = [
            "id",
            "service",
            "service_name",
            "category",
            "nickname",
            "environment",
            "masked_key",
            "is_default",
            "is_active",
            "status",
            "last_tested_at",
            "last_test_message",
            "usage_count",
            "estimated_cost",
            "last_used_at",
            "secret_changed_at",
            "expires_at",
            "expiry_source",
            "age_days",
            "unused_days",
            "expires_in_days",
            "reminders",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_age_days(self, key: UserAPIKey) -> int:
        return key_age(key).age_days

    def get_unused_days(self, key: UserAPIKey) -> int:
        return key_age(key).unused_days

    def get_expires_in_days(self, key: UserAPIKey) -> int | None:
        return key_age(key).expires_in_days

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_reminders(self, key: UserAPIKey) -> list[str]:
        return key_age(key).reminders

    def get_service_name(self, key: UserAPIKey) -> str:
        return key.service_name

    def get_category(self, key: UserAPIKey) -> str:
        return registry.get(key.service).category if key.service in registry else ""


REPRESENTATION_FIELDS = frozenset(APIKeySerializer.Meta.fields)


class ProbeResultSerializer(serializers.Serializer[Any]):
    status = NamedChoiceField(choices=[s.value for s in ProbeStatus], enum_name="TestStatus")
    ok = serializers.BooleanField()
    message = serializers.CharField()
    http_status = serializers.IntegerField(allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text=_("When the credential expires, if the provider said.")
    )


class FieldErrorSerializer(serializers.Serializer[Any]):
    message = serializers.CharField()
    code = serializers.CharField()


class CandidateResultSerializer(ProbeResultSerializer):
    """A test of candidate credentials; ``field_errors`` when the format is wrong."""

    field_errors = serializers.DictField(
        child=serializers.ListField(child=FieldErrorSerializer()), required=False
    )


class TestedKeySerializer(APIKeySerializer):
    """A key with what a test (or the format checks) found, after a create, update or test."""

    test = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()

    class Meta(APIKeySerializer.Meta):
        fields = [*APIKeySerializer.Meta.fields, "test", "warnings"]
        read_only_fields = fields

    def get_test(self, key: UserAPIKey) -> dict[str, Any] | None:
        result = getattr(key, "probe_result", None)
        return None if result is None else result.as_dict()

    def get_warnings(self, key: UserAPIKey) -> list[str]:
        return list(getattr(key, "warnings", []))


class APIKeyCreateSerializer(CredentialsInput):
    service = ServiceField()
    nickname = NicknameField(required=False, default="")
    environment = serializers.ChoiceField(choices=Environment.choices, default=Environment.default)
    is_default = serializers.BooleanField(default=False)
    test = serializers.BooleanField(
        default=True, help_text=_("Test the key against the provider before storing it.")
    )
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text=_("When the key expires, if you know (one the provider tells wins)."),
    )

    @sensitive_variables()
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["credentials"] = self.credentials_from(attrs, required=True)
        attrs.pop("key", None)
        return attrs


class APIKeyUpdateSerializer(CredentialsInput):
    """PUT needs the four settings; PATCH any of them. A secret is replaced only if sent."""

    ignored_fields = REPRESENTATION_FIELDS
    nickname = NicknameField()
    environment = serializers.ChoiceField(choices=Environment.choices)
    is_default = serializers.BooleanField()
    is_active = serializers.BooleanField()
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text=_("When the key expires, if you know; null forgets it."),
    )
    test = serializers.BooleanField(
        default=True, help_text=_("Test a new secret against the provider before storing it.")
    )

    @sensitive_variables()
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        credentials = self.credentials_from(attrs, required=False)
        attrs.pop("key", None)
        attrs["credentials"] = credentials
        return attrs


class CandidateSerializer(CredentialsInput):
    """Credentials to test without storing them."""

    service = ServiceField()
    environment = serializers.ChoiceField(choices=Environment.choices, required=False)

    @sensitive_variables()
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["credentials"] = self.credentials_from(attrs, required=True)
        attrs.pop("key", None)
        return attrs


class RevealSerializer(serializers.Serializer[Any]):
    credentials = serializers.DictField(child=serializers.CharField())
    key = serializers.CharField(
        required=False, help_text=_("The value itself, for services with a single field.")
    )


# Some API field names below (label, required, help_text, fields) are also attributes
# of DRF's Field and Serializer. DRF's metaclass takes declared fields out of the
# class, so they do not clash at run time; only the type checker needs telling.


class CredentialFieldSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    secret = serializers.BooleanField()
    required = serializers.BooleanField()  # type: ignore[assignment]
    help_text = serializers.CharField()  # type: ignore[assignment]


class ServiceSerializer(serializers.Serializer[Any]):
    """A service of the catalog, with what the current user has stored for it."""

    id = serializers.CharField()
    name = serializers.CharField()
    category = serializers.ChoiceField(choices=list(CATEGORIES))
    category_name = serializers.CharField()
    description = serializers.CharField()
    icon = serializers.CharField(help_text=_("The icon's static-files path."))
    icon_url = serializers.CharField(help_text=_("The icon's URL."))
    docs_url = serializers.CharField()
    create_key_url = serializers.CharField()
    pricing = serializers.CharField()
    free_tier = serializers.CharField()
    setup_minutes = serializers.IntegerField()
    difficulty = serializers.ChoiceField(choices=["easy", "medium", "advanced"])
    benefits = serializers.ListField(child=serializers.CharField())
    popular = serializers.BooleanField()
    required = serializers.BooleanField()  # type: ignore[assignment]
    setup_steps = serializers.ListField(child=serializers.CharField())
    fields = CredentialFieldSerializer(many=True)  # type: ignore[assignment]
    default_cost_per_call = serializers.DecimalField(max_digits=14, decimal_places=6)
    connected = serializers.BooleanField()
    key_count = serializers.IntegerField()


class StatsSerializer(serializers.Serializer[Any]):
    connected_services = serializers.IntegerField()
    available_services = serializers.IntegerField()
    estimated_monthly_cost = serializers.DecimalField(max_digits=14, decimal_places=6)
    total_api_calls = serializers.IntegerField()
    month = serializers.CharField(help_text=_("The calendar month counted, YYYY-MM."))


class UsageRowSerializer(serializers.Serializer[Any]):
    date = serializers.DateField()
    service = serializers.CharField()
    source = serializers.ChoiceField(choices=["user", "platform"])  # type: ignore[assignment]
    calls = serializers.IntegerField()
    units = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=6)


class UsageSerializer(serializers.Serializer[Any]):
    start = serializers.DateField()
    end = serializers.DateField()
    days = serializers.IntegerField()
    service = serializers.CharField(allow_null=True)
    rows = UsageRowSerializer(many=True)


class ModelUsageRowSerializer(serializers.Serializer[Any]):
    service = serializers.CharField()
    model = serializers.CharField(
        allow_blank=True, help_text=_("Empty for calls recorded without a model.")
    )
    source = serializers.ChoiceField(choices=["user", "platform"])  # type: ignore[assignment]
    calls = serializers.IntegerField()
    units = serializers.IntegerField()
    input_tokens = serializers.IntegerField(
        help_text=_("Every input token, the cached ones included.")
    )
    output_tokens = serializers.IntegerField()
    cached_input_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=6)
    unpriced_calls = serializers.IntegerField(
        help_text=_("Calls of a model no price table lists, priced at the service's estimate.")
    )
    incomplete = serializers.BooleanField(help_text=_("Whether unpriced_calls is above 0."))


class ModelUsageSerializer(serializers.Serializer[Any]):
    start = serializers.DateField()
    end = serializers.DateField()
    days = serializers.IntegerField()
    service = serializers.CharField(allow_null=True)
    cost = serializers.DecimalField(
        max_digits=16, decimal_places=6, help_text=_("The window's estimated cost.")
    )
    incomplete = serializers.BooleanField(
        help_text=_("Whether some calls were of an unpriced model: the cost is then a floor.")
    )
    rows = ModelUsageRowSerializer(many=True)


class UsageQuerySerializer(serializers.Serializer[Any]):
    days = serializers.IntegerField(min_value=1, max_value=366, default=30)
    # Any service id, like the list's filter: usage of a removed service stays readable.
    service = serializers.RegexField(
        SERVICE_ID_PATTERN,
        required=False,
        allow_blank=True,
        max_length=64,
        trim_whitespace=False,
    )


class ErrorSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()


class ImportOptionsSerializer(StrictSerializer):
    """What to do with the keys of an imported file."""

    environment = serializers.ChoiceField(choices=Environment.choices, default=Environment.default)
    test = serializers.BooleanField(
        default=False, help_text=_("Test each key first; one the provider rejects is skipped.")
    )
    dry_run = serializers.BooleanField(default=False, help_text=_("Check, store nothing."))
    atomic = serializers.BooleanField(
        default=False, help_text=_("Import everything or, if any entry fails, nothing.")
    )


class ImportUploadSerializer(ImportOptionsSerializer):
    """A ``.env`` file or JSON list of keys, uploaded as multipart/form-data."""

    file = serializers.FileField(write_only=True, help_text=_("The file."))

    @sensitive_variables()
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["data"] = attrs.pop("file").read(MAX_BYTES + 1)
        return attrs


class ImportTextSerializer(ImportOptionsSerializer):
    """A ``.env`` file or JSON list of keys, its content sent as JSON."""

    text = TextField(
        write_only=True,
        trim_whitespace=False,
        allow_blank=True,
        max_length=MAX_BYTES,
        help_text=_("The file's content."),
    )

    @sensitive_variables()
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["data"] = attrs.pop("text").encode()
        return attrs


class ImportEntrySerializer(serializers.Serializer[Any]):
    where = serializers.CharField(help_text=_("The variables and lines, or the item number."))
    service = serializers.CharField(allow_blank=True)
    outcome = serializers.ChoiceField(choices=[str(outcome) for outcome in Outcome])
    message = serializers.CharField(allow_blank=True)
    key = serializers.UUIDField(source="key.pk", allow_null=True, default=None)


class ImportResultSerializer(serializers.Serializer[Any]):
    entries = ImportEntrySerializer(many=True)
    counts = serializers.DictField(child=serializers.IntegerField())
    dry_run = serializers.BooleanField()
