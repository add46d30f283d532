"""What a service is: catalog data, credential fields and formats, and how to test a key.

A service is a declaration. Its class attributes say what the catalog shows, which
fields a credential has and what their values look like (:mod:`byok.services.formats`),
the one read-only request that tests a key (:meth:`Service.probe_request`) and what
each answer means (:mod:`byok.services.answers`). The methods here read those
declarations; a service overrides one only for what is truly its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils.functional import Promise
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from byok.conf import conf
from byok.http import ProbeClient, ProbeRequest, ProbeResponse, Unreachable
from byok.results import ProbeResult, ProbeStatus
from byok.services.answers import Answer, Region
from byok.services.auth import Authentication, CredentialAuth
from byok.services.formats import Caution, Format, FormatReport, Refusal, ValidationResult
from byok.services.prices import PriceTable, Tokens, price_table

__all__ = [
    "CATEGORIES",
    "DIFFICULTIES",
    "MAX_VALUE_LENGTH",
    "RESERVED_FIELD_NAMES",
    "CredentialField",
    "ProbeRequest",
    "Service",
    "bearer",
    "mask_value",
]

Text = str | Promise

#: Longest credential value byok accepts; real ones stay far below it.
MAX_VALUE_LENGTH = 4096

#: Categories, in the order the pages show them (value → label).
CATEGORIES: dict[str, Text] = {
    "ai": pgettext_lazy("service category", "AI"),
    "email": pgettext_lazy("service category", "Email"),
    "sms": pgettext_lazy("service category", "SMS"),
    "payment": pgettext_lazy("service category", "Payment"),
    "analytics": pgettext_lazy("service category", "Analytics"),
    "storage": pgettext_lazy("service category", "Storage"),
    "developer": pgettext_lazy("service category", "Developer"),
}

#: How hard getting a key is, as the pages show it (value → label).
DIFFICULTIES: dict[str, Text] = {
    "easy": pgettext_lazy("difficulty", "easy"),
    "medium": pgettext_lazy("difficulty", "medium"),
    "advanced": pgettext_lazy("difficulty", "advanced"),
}

#: Inputs the add-key form has besides the credential's: no credential field takes
#: one of these names (system check byok.E014).
RESERVED_FIELD_NAMES = ("nickname", "environment", "expires_on", "test")

#: The last setup step of every service, added to the ones it declares.
FINAL_SETUP_STEP = _("Paste it here and choose “Add & test key”.")

Credentials = dict[str, str]


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


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header most APIs take a key in."""
    return {"Authorization": f"Bearer {token}"}


class Service:
    """A third-party service whose credentials users can store.

    Subclasses declare the catalog data and the credential's fields as class
    attributes, :meth:`probe_request` for the request that tests a key, and
    :attr:`answers` for what the provider's answers mean. The registry holds one
    instance of each.
    """

    # -- The catalog ---------------------------------------------------------------
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
    #: One of :data:`DIFFICULTIES`.
    difficulty: ClassVar[str] = "easy"
    benefits: ClassVar[tuple[Text, ...]] = ()
    popular: ClassVar[bool] = False
    required: ClassVar[bool] = False
    #: The steps on the provider's side, from "sign in" to "copy the key";
    #: :data:`FINAL_SETUP_STEP` ("paste it here") follows them.
    setup_steps: ClassVar[tuple[Text, ...]] = ()
    #: Estimated cost of one call, used when the host tracks usage without a cost and
    #: for calls of a model :attr:`prices` does not list.
    default_cost_per_call: ClassVar[Decimal] = Decimal("0")
    #: List prices by model (``BYOK["PRICES"]`` adds to them).
    prices: ClassVar[PriceTable | None] = None

    # -- The credential --------------------------------------------------------------
    fields: ClassVar[tuple[CredentialField, ...]] = (CredentialField("api_key", _("API key")),)
    #: Names of environment variables that hold the whole credential as one value
    #: (what :meth:`prepare` splits, such as ``CLOUDINARY_URL``).
    env: ClassVar[tuple[str, ...]] = ()
    #: Field name to the shape its values must (and should) have.
    formats: ClassVar[dict[str, Format]] = {}
    #: Values of a known wrong kind, refused with their own message before the format.
    refusals: ClassVar[tuple[Refusal, ...]] = ()
    #: Accepted values worth a warning, checked after the format.
    cautions: ClassVar[tuple[Caution, ...]] = ()
    #: Pairs of fields users paste the wrong way round: when each value fits the
    #: other's format and not its own, the error says they look swapped.
    swaps: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: Optional fields that go together: give all of a group, or none.
    together: ClassVar[tuple[tuple[str, ...], ...]] = ()
    #: Well-known public prefixes, kept visible in the masked value.
    key_prefixes: ClassVar[tuple[str, ...]] = ()
    #: The field whose value the masked key is made from (default: the first secret one).
    hint_field: ClassVar[str | None] = None
    #: Whether values must be printable ASCII (true of every built-in service).
    ascii_only: ClassVar[bool] = True

    # -- Testing a key -----------------------------------------------------------------
    #: API base URL the probe's path is relative to; ``BYOK["BASE_URLS"]`` overrides it.
    base_url: ClassVar[str] = ""
    #: How a request carries the credential (:mod:`byok.services.auth`): the probe and
    #: :meth:`authenticate` both read it.
    authentication: ClassVar[Authentication | None] = None
    #: What the provider's answers mean: the first row that matches wins.
    answers: ClassVar[tuple[Answer, ...]] = ()
    #: Where an error answer's JSON holds the provider's error code and message, as
    #: dotted paths (``"error.type"``), read by :meth:`error_code` and :meth:`error_message`.
    error_code_at: ClassVar[str] = ""
    error_message_at: ClassVar[str] = ""
    #: Other data regions' hosts, tried in turn when the main host answers 401.
    regions: ClassVar[tuple[Region, ...]] = ()
    #: The warning when a key is accepted in another region (``%(region)s``, ``%(url)s``).
    regional_note: ClassVar[Text] = _(
        "The key belongs to %(service)s's %(region)s region: set "
        'BYOK["BASE_URLS"]["%(id)s"] = "%(url)s" so that byok tests it there directly.'
    )
    #: The message when every region rejected the key (default: the main host's answer).
    rejected_everywhere: ClassVar[Text] = ""
    #: The header of an accepted answer that says when the credential expires (a date,
    #: optionally a time and a zone: ``2026-05-01 12:00:00 UTC``), read by
    #: :meth:`read_expiry`; ``""`` when the provider's answers never say.
    expiry_header: ClassVar[str] = ""
    #: Why a credential cannot be tested, when :meth:`probe_request` has no request.
    unverifiable_reason: ClassVar[Text] = _(
        "%(service)s offers no read-only way to check this credential; its format was checked."
    )

    def __repr__(self) -> str:
        return f"<Service {self.id}>"

    @property
    def field_names(self) -> list[str]:
        return [field.name for field in self.fields]

    @property
    def labels(self) -> dict[str, str]:
        """Field name to its label, in the user's language."""
        return {field.name: str(field.label) for field in self.fields}

    @property
    def single_field(self) -> bool:
        """Whether the credential is one value (returned as a string, not a dict)."""
        return len(self.fields) == 1

    @property
    def overridden(self) -> bool:
        """Whether the host set this service's base URL in ``BYOK["BASE_URLS"]``."""
        return self.id in conf.BASE_URLS

    def price_table(self) -> PriceTable | None:
        """:attr:`prices` with the host's ``BYOK["PRICES"]`` for this service on top."""
        return price_table(self.prices, conf.PRICES.get(self.id, {}))

    def cost(self, model: str | None, tokens: Tokens, calls: int = 1) -> tuple[Decimal, bool]:
        """What ``calls`` calls of ``model`` using ``tokens`` cost, and whether a price
        was found (else: :attr:`default_cost_per_call` for each call)."""
        table = self.price_table() if model else None
        price = table.price(model) if table is not None and model else None
        if price is None:
            return self.default_cost_per_call * calls, False
        return price.cost(tokens), True

    # -- Calling the API --------------------------------------------------------------

    def api_url(self, credentials: Mapping[str, str] | None = None) -> str:
        """The base URL calls with ``credentials`` go to: ``BYOK["BASE_URLS"]`` when the
        host set it, else :attr:`base_url`. A service whose hosts depend on the
        credential (a region) overrides this."""
        return str(conf.BASE_URLS.get(self.id) or self.base_url).rstrip("/")

    def authenticate(self, credentials: str | Mapping[str, str]) -> CredentialAuth:
        """A ``requests`` auth object that sends ``credentials`` as :attr:`authentication`
        declares. Raises ``ValueError`` when the credential lacks a field it needs."""
        if self.authentication is None:
            raise ImproperlyConfigured(f"{self.name} declares no authentication.")
        fields = self.as_fields(credentials)
        missing = self.authentication.missing(fields)
        if missing:
            raise ValueError(
                f"The {self.name} credential has no {', '.join(missing)}, which calls need."
            )
        return self.authentication.auth(fields)

    def credential_headers(self, credentials: Mapping[str, str]) -> dict[str, str]:
        """The headers that carry ``credentials``, as :attr:`authentication` declares."""
        return {} if self.authentication is None else self.authentication.headers(credentials)

    def credential_basic(self, credentials: Mapping[str, str]) -> tuple[str, str] | None:
        """The HTTP basic pair of ``credentials``, when :attr:`authentication` uses one."""
        return None if self.authentication is None else self.authentication.basic(credentials)

    def as_fields(self, credentials: str | Mapping[str, str]) -> Credentials:
        """The field mapping of a credential as :meth:`present` gives it."""
        if isinstance(credentials, str):
            return {self.fields[0].name: credentials}
        return dict(credentials)

    # -- Reading what users paste -------------------------------------------------------

    def prepare(self, credentials: object) -> object:
        """Turn what a user pasted into the field mapping (e.g. split a URL). Override."""
        return credentials

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

    def check(
        self, credentials: Credentials, report: FormatReport, environment: str | None
    ) -> None:
        """Rules of the service's own beyond what it declares: checksums, fields that
        depend on each other, the environment. Runs after the declared checks, with
        the fields that passed them. Override."""

    # -- Testing a key ------------------------------------------------------------------

    def probe_request(self, checked: ValidationResult) -> ProbeRequest | None:
        """The read-only request that tests the credential; ``None`` when none exists
        (the result is then ``unverifiable``, for :attr:`unverifiable_reason`)."""
        return None

    def probe(self, checked: ValidationResult, http: ProbeClient) -> ProbeResult:
        """Send :meth:`probe_request` and read the answer with :meth:`read_answer`."""
        request = self.probe_request(checked)
        if request is None:
            return self.unverifiable()
        response = http.send(request)
        if self.regions and self.rejected(response) and not http.overridden:
            return self._probe_regions(request, response, checked, http)
        return self.read_answer(response, checked)

    def _probe_regions(
        self,
        request: ProbeRequest,
        rejected: ProbeResponse,
        checked: ValidationResult,
        http: ProbeClient,
    ) -> ProbeResult:
        """Ask each other region's host once: a key may live in only one region."""
        everywhere = True
        for region in self.regions:
            try:
                response = http.send(replace(request, base_url=region.base_url))
            except Unreachable:
                everywhere = False
                continue
            if response.accepted:
                result = self.read_answer(response, checked)
                note = str(self.regional_note) % {
                    "service": self.name,
                    "id": self.id,
                    "region": region.name,
                    "url": region.base_url,
                }
                return replace(result, warnings=[*result.warnings, note])
            if response.status == 429:
                return self.read_answer(response, checked)
            everywhere = everywhere and self.rejected(response)
        if everywhere and self.rejected_everywhere:
            return self.result(ProbeStatus.INVALID, rejected, str(self.rejected_everywhere))
        return self.read_answer(rejected, checked)

    @staticmethod
    def rejected(response: ProbeResponse) -> bool:
        """A 401 from the API itself (not a proxy's page)."""
        return response.status == 401 and not response.is_html

    def read_answer(self, response: ProbeResponse, checked: ValidationResult) -> ProbeResult:
        """The first of :attr:`answers` that matches; else :meth:`read_accepted` for a
        2xx answer and the usual reading (:meth:`classify`) for any other."""
        code, message = self.error_code(response), self.error_message(response)
        for answer in self.answers:
            if answer.matches(response, code, message):
                return self.result(answer.status, response, str(answer.message) or None)
        if response.accepted:
            return self.read_accepted(response, checked)
        return self.classify(response)

    def read_accepted(self, response: ProbeResponse, checked: ValidationResult) -> ProbeResult:
        """A 2xx answer no row matched: valid. Override to read what it says."""
        return self.result(ProbeStatus.VALID, response)

    def error_code(self, response: ProbeResponse) -> str:
        """The provider's error code, from :attr:`error_code_at`; ``""`` when there is none."""
        return _json_text(response, self.error_code_at)

    def error_message(self, response: ProbeResponse) -> str:
        """The provider's error message, from :attr:`error_message_at`."""
        return _json_text(response, self.error_message_at)

    def classify(
        self, response: ProbeResponse, *, warnings: list[str] | None = None
    ) -> ProbeResult:
        """The usual reading: 2xx valid, 401 and 403 invalid, 429 busy, anything else odd."""
        code = response.status
        if response.accepted:
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

    def read_expiry(self, response: ProbeResponse) -> datetime | None:
        """When the credential expires, from :attr:`expiry_header` of an accepted
        answer; ``None`` when the answer does not say. Override for a provider that
        says it elsewhere (in the body, say)."""
        if not self.expiry_header:
            return None
        return parse_expiry(response.headers.get(self.expiry_header, ""))

    def result(
        self,
        status: ProbeStatus,
        response: ProbeResponse | None = None,
        message: str | None = None,
        *,
        warnings: list[str] | None = None,
    ) -> ProbeResult:
        """A result with the standard message for ``status`` unless one is given, and
        the expiry an accepted answer told (:meth:`read_expiry`)."""
        accepted = status in (ProbeStatus.VALID, ProbeStatus.RESTRICTED)
        return ProbeResult(
            status,
            message or self.standard_message(status, response),
            None if response is None else response.status,
            list(warnings or []),
            expires_at=self.read_expiry(response) if accepted and response else None,
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
            ProbeStatus.UNVERIFIABLE: str(self.unverifiable_reason),
        }
        return messages.get(status, str(status)) % {"service": self.name, "code": code}

    def unverifiable(self) -> ProbeResult:
        """The credential cannot be tested: :attr:`unverifiable_reason` says why."""
        return self.result(ProbeStatus.UNVERIFIABLE)

    # -- Showing it ------------------------------------------------------------------

    @property
    def difficulty_label(self) -> str:
        """How hard getting a key is, in the active language."""
        return str(DIFFICULTIES.get(self.difficulty, self.difficulty))

    def catalog(self) -> dict[str, Any]:
        """The public description of the service, for pages and the API. No secrets."""
        steps = [str(step) for step in self.setup_steps]
        if not steps or steps[-1] != str(FINAL_SETUP_STEP):
            steps.append(str(FINAL_SETUP_STEP))
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
            "setup_steps": steps,
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
        """A short masked value such as ``sk-proj-…AbCd``, stored at write time."""
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


_EXPIRY = re.compile(
    r"\s*(?P<date>\d{4}-\d{2}-\d{2})(?:[ T](?P<time>\d{2}:\d{2}(?::\d{2})?))?"
    r"\s*(?:(?P<utc>UTC|GMT|Z)|(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2}))?\s*$"
)


def parse_expiry(text: str) -> datetime | None:
    """An aware datetime from ``2026-05-01``, ``2026-05-01 12:00:00 UTC`` or
    ``2026-05-01 12:00:00 -0700`` (what GitHub sends); ``None`` for anything else.
    A date alone means midnight UTC; a time without a zone, UTC."""
    match = _EXPIRY.match(text or "")
    if match is None:
        return None
    offset = timedelta(0)
    if match["sign"]:
        offset = timedelta(hours=int(match["hours"]), minutes=int(match["minutes"]))
        offset = -offset if match["sign"] == "-" else offset
    try:
        when = datetime.fromisoformat(f"{match['date']}T{match['time'] or '00:00'}")
        return when.replace(tzinfo=timezone(offset)).astimezone(timezone.utc)
    except ValueError:  # 2026-02-30, 25:00, an offset of a day or more
        return None


def _json_text(response: ProbeResponse, path: str) -> str:
    """The text at a dotted ``path`` of the answer's JSON; ``""`` when there is none."""
    if not path:
        return ""
    value: object = response.json_dict()
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return "" if value is None or isinstance(value, dict | list) else str(value)
