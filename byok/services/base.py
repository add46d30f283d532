"""What a service is: catalog data, credential fields, formats, and its probe."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ValidationError
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from byok.probes import ProbeResponse, ProbeResult, ProbeStatus
from byok.services.formats import Format, FormatReport

if TYPE_CHECKING:
    from byok.probes import ProbeClient
    from byok.validation import ValidationResult

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
Text = str | Promise

DIFFICULTIES = ("easy", "medium", "advanced")


@dataclass(frozen=True)
class CredentialField:
    """One input a service needs, such as an API key or an account id."""

    name: str
    label: str | Promise
    secret: bool = True
    required: bool = True
    help_text: str | Promise = ""
    #: Names of the environment variables that hold this value in a ``.env`` file.
    env: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeRequest:
    """The one request that tests a credential, relative to the service's base URL."""

    method: str
    path: str
    # Not in the repr: the headers usually carry the credential (Authorization, x-api-key).
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    data: bytes | None = field(default=None, repr=False)
    base_url: str | None = None


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header most APIs take a key in."""
    return {"Authorization": f"Bearer {token}"}


class Service:
    """A third-party service whose credentials users can store.

    Subclasses declare the catalog data as class attributes and, usually, one
    method: :meth:`probe_request` plus :meth:`read_answer` when the answer needs
    reading beyond the status code. The registry holds one instance of each.
    """

    id: ClassVar[str]
    name: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[Text] = ""
    #: Static path of the service's icon.
    icon: ClassVar[str] = "byok/icons/service.svg"
    docs_url: ClassVar[str] = ""
    create_key_url: ClassVar[str] = ""
    pricing: ClassVar[Text] = ""
    free_tier: ClassVar[Text] = ""
    setup_minutes: ClassVar[int] = 5
    difficulty: ClassVar[str] = "easy"
    benefits: ClassVar[tuple[Text, ...]] = ()
    popular: ClassVar[bool] = False
    required: ClassVar[bool] = False
    #: Four short steps from "open the provider's site" to "paste the key here".
    setup_steps: ClassVar[tuple[Text, ...]] = ()
    fields: ClassVar[tuple[CredentialField, ...]] = (CredentialField("api_key", _("API key")),)
    #: Names of environment variables that hold the whole credential as one value
    #: (what :meth:`prepare` splits, such as ``CLOUDINARY_URL``).
    env: ClassVar[tuple[str, ...]] = ()
    #: Field name to the shape its values must (and should) have.
    formats: ClassVar[dict[str, Format]] = {}
    #: API base URL the probe's path is relative to; ``BYOK["BASE_URLS"]`` overrides it.
    base_url: ClassVar[str] = ""
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
        for spec in self.fields:
            value = credentials.get(spec.name)
            if value is None or (isinstance(value, str) and not value.strip()):
                if spec.required:
                    errors.setdefault(spec.name, []).append(
                        ValidationError(_("This field is required."), code="required")
                    )
                continue
            problem = self._value_problem(value)
            if problem is not None:
                errors.setdefault(spec.name, []).append(problem)
                continue
            clean[spec.name] = value.strip()
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
        if "…" in value or "•" in value:
            return ValidationError(
                _("This is a masked value, as byok shows keys; paste the full key."),
                code="masked",
            )
        if self.ascii_only and not (value.isascii() and value.strip().isprintable()):
            return ValidationError(
                _("Contains characters that never appear in a credential for %(service)s."),
                code="invalid",
                params={"service": self.name},
            )
        return None

    def prepare(self, credentials: object) -> object:
        """Turn what a user pasted into the field mapping (e.g. split a URL). Override."""
        return credentials

    def check(
        self, credentials: Credentials, report: FormatReport, environment: str | None
    ) -> None:
        """Service rules beyond the field formats: wrong kinds of key, checksums. Override."""

    def probe(self, checked: ValidationResult, http: ProbeClient) -> ProbeResult:
        """Test the credential: send :meth:`probe_request`, read it with :meth:`read_answer`."""
        request = self.probe_request(checked)
        if request is None:
            return self.unverifiable()
        response = http.request(
            request.method,
            request.path,
            base_url=request.base_url,
            headers=request.headers,
            auth=request.auth,
            data=request.data,
        )
        return self.read_answer(response, checked)

    def probe_request(self, checked: ValidationResult) -> ProbeRequest | None:
        """The read-only request that tests the credential; ``None`` when none exists."""
        return None

    def read_answer(self, response: ProbeResponse, checked: ValidationResult) -> ProbeResult:
        """Classify the answer by status code. Override to read the body too."""
        return self.classify(response)

    def classify(
        self, response: ProbeResponse, *, warnings: list[str] | None = None
    ) -> ProbeResult:
        """The usual reading: 2xx valid, 401 and 403 invalid, 429 busy, anything else odd."""
        code = response.status
        if 200 <= code < 300:
            return self.result(ProbeStatus.VALID, response, warnings=warnings)
        if code in (401, 403):
            if response.is_html:
                return self.result(
                    ProbeStatus.PROVIDER_ERROR,
                    response,
                    gettext(
                        "%(service)s answered with a web page instead of its API's error "
                        "(a proxy or firewall?); the key was not judged."
                    )
                    % {"service": self.name},
                )
            return self.result(ProbeStatus.INVALID, response)
        if code == 429:
            return self.result(ProbeStatus.RATE_LIMITED, response)
        if 300 <= code < 400:
            return self.result(
                ProbeStatus.PROVIDER_ERROR,
                response,
                gettext("%(service)s answered with a redirect, which byok does not follow.")
                % {"service": self.name},
            )
        return self.result(ProbeStatus.PROVIDER_ERROR, response)

    def result(
        self,
        status: ProbeStatus,
        response: ProbeResponse | None = None,
        message: str | None = None,
        *,
        warnings: list[str] | None = None,
    ) -> ProbeResult:
        """A result with the standard message for ``status`` unless one is given."""
        return ProbeResult(
            status,
            message or self.standard_message(status, response),
            None if response is None else response.status,
            list(warnings or []),
        )

    def standard_message(self, status: ProbeStatus, response: ProbeResponse | None) -> str:
        code = f" (HTTP {response.status})" if response is not None else ""
        messages = {
            ProbeStatus.VALID: gettext("%(service)s accepted the key."),
            ProbeStatus.RESTRICTED: gettext(
                "%(service)s accepted the key, but it lacks a permission byok checked for."
            ),
            ProbeStatus.INVALID: gettext("%(service)s rejected the key%(code)s."),
            ProbeStatus.RATE_LIMITED: gettext(
                "%(service)s is rate limiting requests; the key was not judged. Try again later."
            ),
            ProbeStatus.PROVIDER_ERROR: gettext(
                "%(service)s answered with an error%(code)s; the key was not judged."
            ),
            ProbeStatus.UNVERIFIABLE: gettext(
                "%(service)s offers no read-only way to check this credential; "
                "its format was checked."
            ),
        }
        return messages.get(status, str(status)) % {"service": self.name, "code": code}

    def unverifiable(self, message: str | None = None) -> ProbeResult:
        return self.result(ProbeStatus.UNVERIFIABLE, None, message)

    def catalog(self) -> dict[str, Any]:
        """The public description of the service, for pages and the API. No secrets."""
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "category_name": str(CATEGORIES.get(self.category, self.category)),
            "description": str(self.description),
            "icon": self.icon,
            "docs_url": self.docs_url,
            "create_key_url": self.create_key_url,
            "pricing": str(self.pricing),
            "free_tier": str(self.free_tier),
            "setup_minutes": self.setup_minutes,
            "difficulty": self.difficulty,
            "benefits": [str(benefit) for benefit in self.benefits],
            "popular": self.popular,
            "required": self.required,
            "setup_steps": [str(step) for step in self.setup_steps],
            "fields": [
                {
                    "name": f.name,
                    "label": str(f.label),
                    "secret": f.secret,
                    "required": f.required,
                    "help_text": str(f.help_text),
                }
                for f in self.fields
            ],
            "default_cost_per_call": str(self.default_cost_per_call),
        }

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
