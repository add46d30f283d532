"""What a service is: its credential fields, and how byok handles a credential for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from django.core.exceptions import ValidationError
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

#: Longest credential value byok accepts; real ones stay far below it.
MAX_VALUE_LENGTH = 4096

#: Categories, in the order the pages show them.
CATEGORIES: dict[str, str] = {
    "ai": "AI",
    "email": "Email",
    "sms": "SMS",
    "payment": "Payment",
    "analytics": "Analytics",
    "storage": "Storage",
    "developer": "Developer",
}

Credentials = dict[str, str]


@dataclass(frozen=True)
class CredentialField:
    """One input a service needs, such as an API key or an account id."""

    name: str
    label: str | Promise
    secret: bool = True
    required: bool = True
    help_text: str | Promise = ""


class Service:
    """A third-party service whose credentials users can store.

    Subclasses declare the catalog data as class attributes; the registry holds
    one instance of each.
    """

    id: ClassVar[str]
    name: ClassVar[str]
    category: ClassVar[str]
    fields: ClassVar[tuple[CredentialField, ...]] = (CredentialField("api_key", _("API key")),)
    #: Well-known public prefixes, kept visible in the masked value.
    key_prefixes: ClassVar[tuple[str, ...]] = ()
    #: The field whose value the masked display hint is made from.
    hint_field: ClassVar[str | None] = None
    #: Whether values must be printable ASCII (true of every built-in service).
    ascii_only: ClassVar[bool] = True
    #: Estimated cost of one call, used when the host tracks usage without a cost.
    default_cost_per_call: ClassVar[Decimal] = Decimal("0")

    def __repr__(self) -> str:
        return f"<Service {self.id}>"

    @property
    def field_names(self) -> list[str]:
        return [field.name for field in self.fields]

    @property
    def single_field(self) -> bool:
        """Whether the credential is one value (returned as a string, not a dict)."""
        return len(self.fields) == 1

    def normalize(self, credentials: object) -> Credentials:
        """Check the shape of ``credentials`` and return a clean mapping.

        Accepts a string for one-field services. Trims whitespace, drops empty
        optional fields, and raises ``ValidationError`` keyed by field name. No
        message ever repeats the value it rejects.
        """
        if isinstance(credentials, str):
            if not self.single_field:
                raise ValidationError(
                    _("%(service)s needs several fields: %(fields)s."),
                    code="invalid",
                    params={"service": self.name, "fields": ", ".join(self.field_names)},
                )
            credentials = {self.fields[0].name: credentials}
        if not isinstance(credentials, Mapping):
            raise ValidationError(
                _("Credentials must be an object of field names to values."), code="invalid"
            )
        errors: dict[str, list[ValidationError]] = {}
        for name in credentials:
            if name not in self.field_names:
                errors.setdefault(str(name), []).append(
                    ValidationError(
                        _("Unknown field for %(service)s."),
                        code="unknown_field",
                        params={"service": self.name},
                    )
                )
        clean: Credentials = {}
        for field in self.fields:
            value = credentials.get(field.name)
            if value is None or (isinstance(value, str) and not value.strip()):
                if field.required:
                    errors.setdefault(field.name, []).append(
                        ValidationError(_("This field is required."), code="required")
                    )
                continue
            problem = self._value_problem(value)
            if problem is not None:
                errors.setdefault(field.name, []).append(problem)
                continue
            clean[field.name] = value.strip()
        if errors:
            raise ValidationError(errors)
        return clean

    def _value_problem(self, value: object) -> ValidationError | None:
        if not isinstance(value, str):
            return ValidationError(_("Must be a string."), code="invalid")
        if len(value) > MAX_VALUE_LENGTH:
            return ValidationError(
                _("Longer than %(limit)d characters: this is not a credential."),
                code="max_length",
                params={"limit": MAX_VALUE_LENGTH},
            )
        if "\x00" in value:
            return ValidationError(_("Contains a NUL byte."), code="invalid")
        if self.ascii_only and not (value.isascii() and value.strip().isprintable()):
            return ValidationError(
                _(
                    "Contains characters that never appear in a %(service)s credential "
                    "(a masked value such as sk-…AbCd cannot be stored; paste the full key)."
                ),
                code="invalid",
                params={"service": self.name},
            )
        return None

    def present(self, credentials: Mapping[str, str]) -> str | Credentials:
        """What host code receives: the value itself for one-field services."""
        if self.single_field:
            return credentials[self.fields[0].name]
        return dict(credentials)

    def mask(self, credentials: Mapping[str, str]) -> str:
        """A short display hint such as ``sk-proj-…AbCd``, stored at write time."""
        name = self.hint_field or next(
            (field.name for field in self.fields if field.secret and field.name in credentials),
            self.fields[0].name,
        )
        return mask_value(credentials.get(name, ""), self.key_prefixes)


def mask_value(value: str, prefixes: tuple[str, ...] = ()) -> str:
    """Keep a well-known prefix and the last four characters; hide the rest.

    Values too short to spare four characters show none of them.
    """
    prefix = max((p for p in prefixes if value.startswith(p)), key=len, default="")
    rest = value[len(prefix) :]
    if len(rest) < 16:
        return f"{prefix}••••"
    return f"{prefix}…{rest[-4:]}"
