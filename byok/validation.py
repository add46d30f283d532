"""``validate_credentials``: what a credential looks like, checked without storing it.

The checks run in one order for every service, each on the fields the previous ones
left without an error: the shape of the input (:meth:`Service.normalize`),
placeholders and masked values, the service's :attr:`~Service.refusals`, fields
pasted the wrong way round (:attr:`~Service.swaps`), fields that go together, the
:attr:`~Service.formats`, :attr:`~Service.cautions`, and last the service's own
:meth:`~Service.check`.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from byok.services.base import Credentials, Service
from byok.services.formats import (
    FieldError,
    FormatReport,
    ValidationResult,
    placeholder_kind,
    placeholder_message,
)
from byok.services.registry import registry

__all__ = ["ValidationResult", "clean_nickname", "validate_credentials"]

#: The longest nickname (the model's ``max_length``).
MAX_NICKNAME_LENGTH = 100


def clean_nickname(value: object) -> str:
    """A key's nickname, stripped; ``ValidationError`` (code ``invalid``) unless it is
    text of at most :data:`MAX_NICKNAME_LENGTH` characters without control characters
    or lone surrogates (which no database stores).

    The one rule for nicknames: the REST API, the pages, the admin, imports and the
    Python helpers all apply it.
    """
    if not isinstance(value, str):
        raise ValidationError(_("A nickname is text."), code="invalid")
    nickname = value.strip()
    if len(nickname) > MAX_NICKNAME_LENGTH:
        raise ValidationError(
            _("A nickname has at most %(limit)d characters.") % {"limit": MAX_NICKNAME_LENGTH},
            code="invalid",
        )
    if any(unicodedata.category(character) in ("Cc", "Cs") for character in nickname):
        raise ValidationError(
            _("A nickname cannot hold control characters or invalid Unicode."), code="invalid"
        )
    return nickname


@sensitive_variables()
def validate_credentials(
    service: str, credentials: object, *, environment: str | None = None
) -> ValidationResult:
    """Check ``credentials`` against the service's known formats; store nothing.

    Raises :class:`~byok.exceptions.UnknownService` for an unknown service id.
    ``environment`` ("production", "test", …) lets a service warn about, say, a
    Stripe test key stored as production.
    """
    return check_credentials(registry.get(service), credentials, environment)


@sensitive_variables()
def check_credentials(
    service: Service, credentials: object, environment: str | None
) -> ValidationResult:
    """:func:`validate_credentials` for a service already looked up."""
    try:
        clean = service.normalize(service.prepare(credentials))
    except ValidationError as error:
        return ValidationResult(service.id, {}, _problems(error), environment=environment)
    report = FormatReport()
    for check in (_placeholders, _refusals, _swaps, _together, _formats, _cautions):
        check(service, clean, report)
    service.check(_unrefused(clean, report), report, environment)
    return ValidationResult(
        service.id, clean, report.errors, report.warnings, report.details, environment
    )


def _problems(error: ValidationError) -> dict[str, list[FieldError]]:
    by_field = (
        error.error_dict if hasattr(error, "error_dict") else {"credentials": error.error_list}
    )
    return {
        name: [FieldError(" ".join(e.messages), e.code or "invalid") for e in errors]
        for name, errors in by_field.items()
    }


def _unrefused(credentials: Credentials, report: FormatReport) -> Credentials:
    """The fields no check has refused yet."""
    return {name: value for name, value in credentials.items() if name not in report.errors}


@sensitive_variables()
def _placeholders(service: Service, credentials: Credentials, report: FormatReport) -> None:
    for name, value in credentials.items():
        kind = placeholder_kind(value)
        if kind:
            report.error(name, placeholder_message(kind, service.labels[name]), code=kind)


@sensitive_variables()
def _refusals(service: Service, credentials: Credentials, report: FormatReport) -> None:
    for refusal in service.refusals:
        value = _unrefused(credentials, report).get(refusal.field)
        if value is not None and refusal.matches(value):
            message = str(refusal.message) % {"label": service.labels[refusal.field]}
            report.error(refusal.field, message, code=refusal.code)


@sensitive_variables()
def _swaps(service: Service, credentials: Credentials, report: FormatReport) -> None:
    for first, second in service.swaps:
        values = _unrefused(credentials, report)
        if first not in values or second not in values:
            continue
        one, other = service.formats[first], service.formats[second]
        if (
            not one.fits(values[first])
            and not other.fits(values[second])
            and one.fits(values[second])
            and other.fits(values[first])
        ):
            labels = service.labels
            report.error(
                first,
                _("The %(first)s and the %(second)s look swapped.")
                % {"first": labels[first], "second": labels[second]},
                code="swapped",
            )


def _together(service: Service, credentials: Credentials, report: FormatReport) -> None:
    for group in service.together:
        given = [name for name in group if name in credentials]
        if not given or len(given) == len(group):
            continue
        labels = service.labels
        for name in group:
            if name not in credentials:
                report.error(
                    name,
                    _("Give the %(label)s too, or leave %(fields)s empty.")
                    % {"label": labels[name], "fields": ", ".join(labels[n] for n in group)},
                    code="required",
                )


@sensitive_variables()
def _formats(service: Service, credentials: Credentials, report: FormatReport) -> None:
    for name, value in _unrefused(credentials, report).items():
        fmt = service.formats.get(name)
        if fmt is None:
            continue
        if not fmt.fits(value):
            report.error(
                name,
                _("%(label)s must be %(shape)s.")
                % {"label": service.labels[name], "shape": fmt.shape},
            )
        elif not fmt.fits_strictly(value):
            report.warn(fmt.strict_note)


@sensitive_variables()
def _cautions(service: Service, credentials: Credentials, report: FormatReport) -> None:
    values = _unrefused(credentials, report)
    for caution in service.cautions:
        value = values.get(caution.field)
        if value is not None and caution.matches(value):
            report.warn(caution.message)
