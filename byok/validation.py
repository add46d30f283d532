"""``validate_credentials``: what a credential looks like, checked without storing it."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from byok.services.formats import (
    FieldError,
    FormatReport,
    placeholder_kind,
    placeholder_message,
)
from byok.services.registry import registry


@dataclass(frozen=True)
class ValidationResult:
    """Errors refuse the credential; warnings accept it but are shown to the user.

    ``credentials`` is the normalised mapping (trimmed, a pasted URL split into
    its fields); ``details`` holds facts read from the credential itself.
    """

    service: str
    credentials: dict[str, str]
    problems: dict[str, list[FieldError]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)
    environment: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def field_errors(self) -> dict[str, list[str]]:
        """Error messages by field name."""
        return {name: [p.message for p in problems] for name, problems in self.problems.items()}

    @property
    def errors(self) -> list[str]:
        """Every error message."""
        return [p.message for problems in self.problems.values() for p in problems]

    def raise_if_invalid(self) -> None:
        """Raise a ``ValidationError`` keyed by field (with stable codes) if any error."""
        if self.problems:
            raise ValidationError(
                {
                    name: [ValidationError(p.message, code=p.code) for p in problems]
                    for name, problems in self.problems.items()
                }
            )

    def __repr__(self) -> str:  # the credentials stay out of logs and tracebacks
        return f"<ValidationResult {self.service} ok={self.ok} warnings={len(self.warnings)}>"


@sensitive_variables()
def validate_credentials(
    service: str, credentials: object, *, environment: str | None = None
) -> ValidationResult:
    """Check ``credentials`` against the service's known formats; store nothing.

    Raises :class:`~byok.exceptions.UnknownService` for an unknown service id.
    ``environment`` ("production", "test", …) lets a service warn about, say, a
    Stripe test key stored as production.
    """
    spec = registry.get(service)
    report = FormatReport()
    try:
        clean = spec.normalize(spec.prepare(credentials))
    except ValidationError as error:
        by_field = (
            error.error_dict if hasattr(error, "error_dict") else {"credentials": error.error_list}
        )
        problems = {
            name: [FieldError(" ".join(e.messages), e.code or "invalid") for e in errors]
            for name, errors in by_field.items()
        }
        return ValidationResult(service, {}, problems, environment=environment)
    labels = {f.name: f.label for f in spec.fields}
    for name, value in clean.items():
        kind = placeholder_kind(value)
        if kind:
            report.error(name, placeholder_message(kind, labels[name]), code=kind)
    spec.check(clean, report, environment)
    for name, value in clean.items():
        fmt = spec.formats.get(name)
        if fmt is None or name in report.errors:
            continue
        if not fmt.fits(value):
            report.error(
                name,
                _("%(label)s must be %(shape)s.") % {"label": labels[name], "shape": fmt.shape},
            )
        elif not fmt.fits_strictly(value):
            report.warn(fmt.strict_note)
    return ValidationResult(
        service, clean, report.errors, report.warnings, report.details, environment
    )
