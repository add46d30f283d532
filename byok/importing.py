"""Importing a user's keys from a ``.env`` file or a JSON list.

Variables are matched to services by the names the services declare
(:attr:`CredentialField.env <byok.services.base.CredentialField.env>` and
:attr:`Service.env <byok.services.base.Service.env>`), so a host's own services
import too. Every entry is checked like a key added by hand; results name the
variables or the item, never a value.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.debug import sensitive_variables

from byok import jsonsafe
from byok.exceptions import KeyRejected
from byok.keys import _atomic, is_stored, prepare_key, room_for_keys, store_key, too_many_keys
from byok.models import AuditAction, Owner, UserAPIKey
from byok.services.base import Service
from byok.services.registry import registry

#: The largest file accepted: a ``.env`` file of keys is a few kilobytes.
MAX_BYTES = 1024 * 1024
#: The most entries one file may hold.
MAX_ENTRIES = 200

_ASSIGNMENT = re.compile(r"(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*)")


class Outcome(models.TextChoices):
    """What became of an entry: the value is the API's, the label the user's language."""

    IMPORTED = "imported", gettext_lazy("imported")
    WOULD_IMPORT = "would import", gettext_lazy("would import")
    DUPLICATE = "duplicate", gettext_lazy("duplicate")
    FORMAT_ERROR = "format error", gettext_lazy("format error")
    REJECTED = "rejected by the provider", gettext_lazy("rejected by the provider")
    MALFORMED = "malformed", gettext_lazy("malformed")
    TOO_MANY_KEYS = "too many keys", gettext_lazy("too many keys")
    UNKNOWN_VARIABLE = "unknown variable", gettext_lazy("unknown variable")
    IGNORED = "ignored", gettext_lazy("ignored")
    NOT_IMPORTED = "not imported", gettext_lazy("not imported")


#: Outcomes that make an import fail (and, with ``atomic``, import nothing).
FAILURES = frozenset(
    {Outcome.FORMAT_ERROR, Outcome.REJECTED, Outcome.MALFORMED, Outcome.TOO_MANY_KEYS}
)


@dataclass
class Entry:
    """One thing found in the file: a credential for a service, or a line that is not one."""

    where: str
    service: str = ""
    credentials: object = field(default=None, repr=False)
    nickname: str = ""
    environment: str | None = None
    outcome: Outcome | None = None
    message: str = ""
    key: UserAPIKey | None = field(default=None, repr=False)

    def conclude(self, outcome: Outcome, message: str = "") -> None:
        self.outcome, self.message = outcome, message

    @property
    def service_name(self) -> str:
        return registry.get(self.service).name if self.service in registry else ""

    def __str__(self) -> str:
        service = f" {self.service_name}" if self.service_name else ""
        message = f": {self.message}" if self.message else ""
        return f"{self.where}{service}: {self.outcome}{message}"


@dataclass
class ImportReport:
    entries: list[Entry]
    dry_run: bool = False

    @property
    def failed(self) -> list[Entry]:
        return [entry for entry in self.entries if entry.outcome in FAILURES]

    @property
    def imported(self) -> list[Entry]:
        return [entry for entry in self.entries if entry.outcome is Outcome.IMPORTED]

    @property
    def refused(self) -> bool:
        """Entries failed and nothing was stored: the import as a whole failed."""
        return bool(self.failed) and not self.imported and not self.dry_run

    def failure_message(self) -> str:
        count = len(self.failed)
        return ngettext(
            "%(count)d entry could not be imported; nothing was imported.",
            "%(count)d entries could not be imported; nothing was imported.",
            count,
        ) % {"count": count}

    def counts(self) -> dict[str, int]:
        """How many entries ended with each outcome, in the order of :class:`Outcome`."""
        counts = {str(outcome): 0 for outcome in Outcome}
        for entry in self.entries:
            counts[str(entry.outcome)] += 1
        return {outcome: count for outcome, count in counts.items() if count}


def file_error(message: str, code: str) -> ValidationError:
    return ValidationError({"file": ValidationError(message, code=code)})


def decode(data: bytes) -> str:
    """The file's text; ``ValidationError`` under ``file`` if it is not a small text file."""
    if len(data) > MAX_BYTES:
        raise file_error(
            _("The file is larger than %(size)d KB.") % {"size": MAX_BYTES // 1024}, "too_large"
        )
    if b"\x00" in data:
        raise file_error(_("This is not a text file."), "binary")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise file_error(_("This is not a UTF-8 text file."), "binary") from None
    return text


def parse(text: str) -> list[Entry]:
    """The entries of a JSON list (text starting with ``[``) or of a ``.env`` file."""
    entries = parse_json(text) if text.lstrip()[:1] in ("[", "{") else parse_env(text)
    if not entries:
        raise file_error(_("The file holds no keys."), "empty")
    if len(entries) > MAX_ENTRIES:
        raise file_error(
            _("The file holds more than %(count)d entries.") % {"count": MAX_ENTRIES}, "too_many"
        )
    return entries


def parse_json(text: str) -> list[Entry]:
    """Entries from ``[{"service": …, "credentials": …, "nickname": …, "environment": …}]``."""
    try:
        items = jsonsafe.loads(text)
    except jsonsafe.JSONTooDeep as error:
        raise file_error(
            _("The JSON is nested more than %(depth)d levels deep.") % {"depth": error.max_depth},
            "too_deep",
        ) from None
    except ValueError:
        raise file_error(_("This is not valid JSON."), "invalid_json") from None
    if not isinstance(items, list):
        raise file_error(_("Expected a JSON list of keys."), "invalid_json")
    entries = []
    for number, item in enumerate(items, start=1):
        entry = Entry(_("item %(number)d") % {"number": number})
        entries.append(entry)
        if not isinstance(item, dict) or not isinstance(item.get("service"), str):
            entry.conclude(
                Outcome.MALFORMED, _('Expected an object with "service" and "credentials".')
            )
            continue
        entry.service = item["service"]
        entry.credentials = item.get("credentials")
        entry.nickname = item.get("nickname", "")
        entry.environment = item.get("environment")
    return entries


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return re.split(r"\s+#", value, maxsplit=1)[0].strip()


def read_variables(text: str) -> tuple[dict[str, tuple[int, str]], list[Entry]]:
    """Each variable's line number and value (the last assignment wins), and bad lines."""
    variables: dict[str, tuple[int, str]] = {}
    malformed = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ASSIGNMENT.fullmatch(line.strip())
        if match is None:
            entry = Entry(_("line %(number)d") % {"number": number})
            entry.conclude(Outcome.MALFORMED, _("Expected NAME=value."))
            malformed.append(entry)
            continue
        variables[match["name"]] = (number, _unquote(match["value"]))
    return variables, malformed


def _lines(variables: dict[str, tuple[int, str]], names: list[str]) -> str:
    numbers = sorted(variables[name][0] for name in names)
    lines = ngettext("line %(numbers)s", "lines %(numbers)s", len(numbers)) % {
        "numbers": ", ".join(map(str, numbers))
    }
    return f"{' + '.join(names)} ({lines})"


def _service_entries(service: Service, variables: dict[str, tuple[int, str]]) -> Iterator[Entry]:
    """The service's credential from its field variables, and one per whole-credential one."""
    used: list[str] = []
    credentials: dict[str, str] = {}
    for credential_field in service.fields:
        name = next((name for name in credential_field.env if name in variables), None)
        if name is not None:
            used.append(name)
            credentials[credential_field.name] = variables[name][1]
    if used:
        given = [f for f in service.fields if f.name in credentials]
        complete = all(f in given for f in service.fields if f.required)
        has_secret = any(f.secret for f in given)
        entry = Entry(_lines(variables, used), service=service.id, credentials=credentials)
        if not (complete or has_secret):
            entry.conclude(Outcome.IGNORED, _("No secret for this service."))
        yield entry
    for name in service.env:
        if name in variables:
            yield Entry(
                _lines(variables, [name]), service=service.id, credentials=variables[name][1]
            )


def parse_env(text: str) -> list[Entry]:
    """Entries from a ``.env`` file: one per service found, and one per line not understood."""
    variables, entries = read_variables(text)
    known: set[str] = set()
    for service in registry:
        known.update(service.env, *(credential_field.env for credential_field in service.fields))
        entries.extend(_service_entries(service, variables))
    for name in variables.keys() - known:
        entry = Entry(_lines(variables, [name]))
        entry.conclude(Outcome.UNKNOWN_VARIABLE)
        entries.append(entry)
    return sorted(entries, key=lambda entry: _first_line(entry.where))


def _first_line(where: str) -> int:
    digits = re.search(r"\d+", where.split("(")[-1])
    return int(digits.group()) if digits else 0


@sensitive_variables()
def import_file(user: Any, data: bytes, **options: Any) -> ImportReport:
    """:func:`import_keys` for the entries of a file's bytes (see :func:`decode`)."""
    return import_keys(user, parse(decode(data)), **options)


@sensitive_variables()
def import_keys(
    user: Any,
    entries: list[Entry],
    *,
    team: Any = None,
    environment: str | None = None,
    test: bool = False,
    dry_run: bool = False,
    atomic: bool = False,
    actor: Any = None,
    request: HttpRequest | None = None,
    test_budget: Callable[[int], None] | None = None,
) -> ImportReport:
    """Check every entry, then store the good ones (all or none with ``atomic``).

    With ``test`` each credential is tested first and one the provider rejects is
    not stored; ``test_budget`` is first called with how many entries may be tested,
    and may raise (:class:`~byok.exceptions.TooManyTests`) to stop the import before
    anything happens. A secret the user already has, or one earlier in the file, is a
    duplicate and skipped. Stored keys get an ``imported`` audit event.

    With ``team`` (and ``user`` ``None``) the keys are the team's: the caller checked
    that whoever asked may manage them.
    """
    if test and test_budget is not None:
        test_budget(sum(entry.outcome is None for entry in entries))
    report = ImportReport(entries, dry_run=dry_run)
    ready = [
        (entry, key) for entry in entries if (key := _check(user, team, entry, test, environment))
    ]
    _skip_repeats(ready)
    ready = [(entry, key) for entry, key in ready if entry.outcome is None]
    owner = Owner.user(user) if team is None else Owner.team(team)
    ready = _within_the_cap(owner, ready)
    if dry_run or (atomic and report.failed):
        outcome, message = (
            (Outcome.WOULD_IMPORT, "")
            if dry_run
            else (Outcome.NOT_IMPORTED, _("The import failed."))
        )
        for entry, _key in ready:
            entry.conclude(outcome, message)
        return report
    with _atomic() if atomic else contextlib.nullcontext():
        for entry, key in ready:
            try:
                entry.key = store_key(
                    key, actor=actor, request=request, action=AuditAction.IMPORTED
                )
            except ValidationError as error:
                if getattr(error, "code", None) == "too_many_keys":  # taken meanwhile
                    entry.conclude(Outcome.TOO_MANY_KEYS, error.messages[0])
                else:
                    entry.conclude(Outcome.DUPLICATE)
            else:
                entry.conclude(Outcome.IMPORTED)
    return report


def _check(
    user: Any, team: Any, entry: Entry, test: bool, environment: str | None
) -> UserAPIKey | None:
    if entry.outcome is not None:
        return None
    try:
        return prepare_key(
            user,
            entry.service,
            entry.credentials,
            team=team,
            nickname=entry.nickname,
            environment=entry.environment or environment,
            test=test,
        )
    except KeyRejected as error:
        entry.conclude(Outcome.REJECTED, error.probe_result.message)
    except ValidationError as error:
        too_many = getattr(error, "code", None) == "too_many_keys"
        outcome = Outcome.TOO_MANY_KEYS if too_many else Outcome.FORMAT_ERROR
        entry.conclude(outcome, " ".join(error.messages))
    return None


def _within_the_cap(
    owner: Owner, ready: list[tuple[Entry, UserAPIKey]]
) -> list[tuple[Entry, UserAPIKey]]:
    """The entries that fit under ``BYOK["MAX_KEYS_PER_USER"]`` for their owner (a user
    or a team), in file order; the others fail (``too many keys``). :func:`store_key`
    counts again under a lock."""
    room = room_for_keys(owner)
    for entry, _key in ready[room:]:
        entry.conclude(Outcome.TOO_MANY_KEYS, too_many_keys().messages[0])
    return ready[:room]


def _skip_repeats(ready: list[tuple[Entry, UserAPIKey]]) -> None:
    seen: set[str | None] = set()
    for entry, key in ready:
        if key.fingerprint in seen or is_stored(key.owner, key):
            entry.conclude(Outcome.DUPLICATE)
        seen.add(key.fingerprint)
