"""Checking what a credential looks like, before anything is stored or sent.

Each field may declare a :class:`Format`: a *loose* pattern a value must match (a
wrong prefix, alphabet or length is refused) and a *strict* one it should match
(a miss is only a warning: providers lengthen their keys now and then). A service
may also name values of a known wrong kind (:class:`Refusal`: a publishable key
where a secret one belongs) and values worth a word (:class:`Caution`: an
old-format token). Messages describe the expected shape; none of them ever repeats
the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.functional import Promise
from django.utils.translation import gettext as _

Message = str | Promise

# A masked value, a run of one character, or a documentation placeholder.
_PLACEHOLDERS = [
    (re.compile(r"\.\.\.|\*\*\*|…|•"), "masked"),
    (re.compile(r"(.)\1{7,}"), "placeholder"),
    (re.compile(r"EXAMPLE(KEY)?$"), "placeholder"),
    (re.compile(r"(?i)your[-_ ]?(api[-_ ]?)?(key|token|secret)|<[^>]*>|\{\{"), "placeholder"),
]


@dataclass(frozen=True)
class FieldError:
    """Why one field's value is refused; ``code`` is stable, ``message`` is for people."""

    message: str
    code: str = "format"

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Format:
    """What one field's values look like."""

    #: Must match (anchored), or the value is refused.
    loose: str
    #: Should match, or the user is warned; ``None`` when loose is all we know.
    strict: str | None = None
    #: The expected shape in words, for the error message.
    shape: Message = ""
    #: Why a strict miss matters, for the warning.
    strict_note: Message = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_loose", re.compile(self.loose))
        object.__setattr__(self, "_strict", re.compile(self.strict) if self.strict else None)

    def fits(self, value: str) -> bool:
        return bool(self._loose.fullmatch(value))  # type: ignore[attr-defined]

    def fits_strictly(self, value: str) -> bool:
        strict = self._strict  # type: ignore[attr-defined]
        return strict is None or bool(strict.fullmatch(value))


@dataclass(frozen=True)
class Refusal:
    """A value of a known wrong kind for ``field``, refused with its own message.

    Checked before the field's format, so the user reads "this is a publishable key",
    not "must start with sk_". ``pattern`` must match the whole value; the message may
    use ``%(label)s``, the field's label.
    """

    field: str
    pattern: str
    message: Message
    code: str = "wrong_kind"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(self.pattern))

    def matches(self, value: str) -> bool:
        return bool(self._pattern.fullmatch(value))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Caution:
    """A value of ``field`` that is accepted but worth a warning (an old-format token).

    Checked after the field's format, on values that passed it.
    """

    field: str
    pattern: str
    message: Message

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(self.pattern))

    def matches(self, value: str) -> bool:
        return bool(self._pattern.fullmatch(value))  # type: ignore[attr-defined]


@dataclass
class FormatReport:
    """What the checks found: errors by field (refuse) and warnings (tell the user)."""

    errors: dict[str, list[FieldError]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Facts read from the credential itself, e.g. a Sentry token's region.
    details: dict[str, str] = field(default_factory=dict)

    def error(self, field_name: str, message: Message, code: str = "format") -> None:
        self.errors.setdefault(field_name, []).append(FieldError(str(message), code))

    def warn(self, message: Message) -> None:
        if str(message) not in self.warnings:
            self.warnings.append(str(message))


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


def placeholder_kind(value: str) -> str | None:
    """``"placeholder"`` or ``"masked"`` when a value is obviously not a real secret."""
    for pattern, kind in _PLACEHOLDERS:
        if pattern.search(value):
            return kind
    return None


def placeholder_message(kind: str, label: Message) -> str:
    if kind == "masked":
        return _(
            "%(label)s looks like a masked value (with …, ... or ***); paste the full key."
        ) % {"label": label}
    return _("%(label)s looks like a placeholder, not a real value.") % {"label": label}
