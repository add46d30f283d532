"""Checking what a credential looks like, before anything is stored or sent.

Each field may declare a :class:`Format`: a *loose* pattern a value must match (a
wrong prefix, alphabet or length is refused) and a *strict* one it should match
(a miss is only a warning: providers lengthen their keys now and then). Messages
describe the expected shape; none of them ever repeats the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
