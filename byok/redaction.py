"""``RedactSecretsFilter``: a logging filter that takes credentials out of log records.

Install it on handlers (docs/logging.md has the ``LOGGING`` snippet). It rewrites
each record in place: the message, its arguments, the exception text and the stack
text. What it looks for comes from what the services declare, the host's own
services included:

* **shape**: a service's ``key_prefixes``, when they prefix its secret, followed by
  at least 20 token characters (``sk-proj-…``, ``SG.…``, ``ghp_…``, ``sntryu_…``);
* **pairs**: a secret without a prefix right after the identifier it is used with,
  both in their strict ``formats`` (a Twilio auth token after ``AC…``, an AWS
  secret after ``AKIA…``);
* **context**: the value after the name of a secret field or of its environment
  variable (``auth_token=…``, ``"AWS_SECRET_ACCESS_KEY": "…"``), an
  ``Authorization`` header's credentials, a token after ``Bearer``, and the password
  of a URL (``cloudinary://key:secret@cloud``).

A secret found by its shape or pair becomes its kind, ``[redacted OpenAI key]``; one
found by its context becomes ``[redacted]``, and the context that stays says what it
was. Nothing of a secret is kept, not even its last characters.
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
from collections.abc import Container, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from byok.services.base import Service
    from byok.services.registry import ServiceRegistry

    ServiceLike = type[Service] | Service

REDACTED = "[redacted]"
WITHHELD = "[log message withheld: byok could not redact it]"
WITHHELD_TEXT = "[withheld: byok could not redact it]"

#: What may follow a key's prefix: base64 and URL-safe base64, and dots (JWTs, SG.).
_KEY_TAIL = r"[A-Za-z0-9_\-+/=.]"
#: A key found by its shape has at least this many characters after its prefix ...
MIN_TAIL = 20
#: ... one of them a capital or a digit, so that ``re_authenticate_session`` is spared.
_RANDOM = re.compile(r"[A-Z0-9]")
#: A value found by its context: up to a space, a quote or a separator.
_VALUE = r"[^\s\"'`,;&<>(){}\[\]]+"
#: A %-format placeholder is never a value: ``auth_token=%s`` is a template.
PLACEHOLDER = r"%(?:\([^)]*\))?[#0 +\-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]"
#: Between a name and its value: ``=``, ``: ``, ``': '``, ``" = "``.
_ASSIGN = r"[\"']?\s*[:=]\s*[\"']?"
#: Between an identifier and the secret paired with it: ``AC…:token``, ``'AKIA…', '…'``.
_PAIR_SEP = r"[\"']?(?:\s*[:,=]\s*|\s+)[\"']?"

#: Names that announce a secret besides the services' field and variable names.
EXTRA_NAMES = ("x-api-key",)
#: Keys of a logged mapping whose value is an ``Authorization`` header's.
AUTH_HEADERS = ("authorization", "proxy-authorization", "http_authorization")
#: The user of a URL's user:password, with its colon.
_URL_USER = r"[^\s:/@\"'<>]{1,256}:"
#: Secrets with no prefix, found right after the identifier they go with:
#: (service id, identifier field, secret field), matched in the fields' strict formats.
PAIRED = (
    ("twilio", "account_sid", "auth_token"),
    ("aws_s3", "access_key_id", "secret_access_key"),
)
#: Values after a secret's name that say there is none.
_NO_SECRET = frozenset({"none", "null", "nil", "true", "false", "undefined"})
_SCHEME = re.compile(r"[A-Za-z][\w-]*\s+(?=\S)")

#: Argument types left as they are (for ``%d`` and ``%f``): their text holds no secret.
_SIMPLE = frozenset({int, float, bool, type(None)})
_CONTAINERS = (tuple, list, set, frozenset)
_MAX_DEPTH = 4
#: How many message templates the filter remembers the verdict on.
TEMPLATE_CACHE_SIZE = 2048
_FORMATTER = logging.Formatter()
#: Joins strings scanned together: a character that no anchor matches.
_SEPARATOR = ">"


def _alternatives(words: Iterable[str]) -> str:
    """A regex alternation of literal words, longest first (so ``sk-proj-`` beats ``sk-``)."""
    return "|".join(re.escape(word) for word in sorted(set(words), key=lambda w: (-len(w), w)))


def _shortest(words: Iterable[str]) -> list[str]:
    """The words that contain no other: finding those finds them all."""
    unique = set(words)
    return sorted(word for word in unique if not any(o != word and o in word for o in unique))


def _trie(entries: list[tuple[str, str]]) -> str:
    """One regex for (literal head, regex tail) pairs, the heads merged as a trie.

    re tries the alternatives of a group one after another; merged, it tries one
    per character. ``[("sk-", "A"), ("sg.", "B"), ("re_", "C")]`` gives ``re_C|s(?:g\\.B|k\\-A)``.
    """
    tree: dict[str, Any] = {}
    for head, tail in entries:
        node = tree
        for char in head:
            node = node.setdefault(char, {})
        node.setdefault("", []).append(tail)

    def branches(node: dict[str, Any]) -> list[str]:
        found = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        tails: list[str] = node.get("", [])
        return found + tails

    def emit(node: dict[str, Any]) -> str:
        found = branches(node)
        return found[0] if len(found) == 1 else f"(?:{'|'.join(found)})"

    return "|".join(branches(tree))  # no group around the top: re skips by first character


def _lower_pattern(pattern: str) -> str:
    """A pattern of literals and letter ranges, for lower-cased text (``[A-Z]`` → ``[a-z]``).

    Escapes keep their letter (``\\S`` stays ``\\S``). An ``(?i:…)`` group would do
    the same, but it stops ``re`` from skipping ahead by the first character.
    """
    return re.sub(r"\\.|[^\\]+", lambda m: m[0] if m[0][0] == "\\" else m[0].lower(), pattern)


def _prefixes_mark_secrets(service: ServiceLike) -> bool:
    """A service's ``key_prefixes`` describe its hint field: are they a secret's?"""
    hint = service.hint_field or next((f.name for f in service.fields if f.secret), None)
    return any(f.secret for f in service.fields if f.name == hint)


def _secret_names(service: ServiceLike) -> Iterator[str]:
    """Field and environment variable names whose values are secrets of ``service``."""
    for credential_field in service.fields:
        if credential_field.secret:
            yield credential_field.name
            yield from credential_field.env
    yield from service.env  # whole credentials, such as CLOUDINARY_URL


def _paired(declared: list[ServiceLike]) -> Iterator[tuple[str, str, str]]:
    """(service name, identifier pattern, secret pattern) for each of :data:`PAIRED`."""
    by_id: dict[str, ServiceLike] = {}
    for service in declared:
        by_id.setdefault(service.id, service)
    for service_id, identifier, secret in PAIRED:
        found = by_id.get(service_id)
        formats = {} if found is None else found.formats
        if found is not None and identifier in formats and secret in formats:
            ident, value = formats[identifier], formats[secret]
            yield found.name, ident.strict or ident.loose, value.strict or value.loose


def _looks_harmless(value: str) -> bool:
    """A masked hint (``sk-…AbCd``) or a word such as ``None`` after a secret's name."""
    return "…" in value or "•" in value or value.lower() in _NO_SECRET


#: A rule: (group, context, value, after, label); the value is what is replaced.
Rule = tuple[str, str, str, str, "str | None"]


def _rules(
    kinds: dict[str, str], names: set[str], pairs: list[tuple[str, str, str]]
) -> list[Rule]:
    """The rules for these key prefixes, secret names and identifier-secret pairs."""
    rules: list[Rule] = []
    if kinds:
        shape = f"(?:{_alternatives(kinds)}){_KEY_TAIL}{{{MIN_TAIL},}}"
        rules.append(("key", r"(?<![A-Za-z0-9])", shape, "", None))
    for number, (service, identifier, secret) in enumerate(pairs):
        rules.append(
            (
                f"pair{number}",
                rf"(?<![A-Za-z0-9])(?:{identifier}){_PAIR_SEP}",
                f"(?:{secret})",
                r"(?![A-Za-z0-9_\-+/=])",
                f"[redacted {service} secret]",
            )
        )
    name = rf"(?<![A-Za-z0-9])(?i:{_alternatives(names)})(?![A-Za-z0-9_]){_ASSIGN}"
    header = rf"(?<![A-Za-z0-9])(?i:(?:proxy-)?authorization){_ASSIGN}(?:[A-Za-z][\w\-]*\s+)?"
    return [
        *rules,
        ("name", name, _VALUE, "", None),
        ("auth", header, _VALUE, "", None),
        ("bearer", r"(?<![A-Za-z0-9])(?i:bearer)\s+", r"[A-Za-z0-9\-._~+/]{16,}=*", "", None),
        ("url", f"://{_URL_USER}", r"[^\s@/\"'<>]{1,1024}", "(?=@)", None),
    ]


def _anchor_pattern(
    kinds: dict[str, str], names: set[str], pairs: list[tuple[str, str, str]]
) -> re.Pattern[str]:
    """The literal parts of the rules, in lower case, as one regex.

    Python's re has no trie for alternatives: trying every rule at every character is
    slow. Each match of a rule holds one of these anchors, which a regex of
    literal-first alternatives finds several times faster: re skips ahead to the
    characters they start with. Text without an anchor is left alone.
    """
    anchors = [(prefix.lower(), f"{_KEY_TAIL}{{{MIN_TAIL}}}") for prefix in kinds]
    anchors += [(name, _ASSIGN) for name in _shortest(names)]
    anchors += [("authorization", _ASSIGN), ("bearer", r"\s"), ("://", _URL_USER)]
    return re.compile(
        "|".join(
            [_trie(anchors)]
            + [_lower_pattern(f"{identifier}{_PAIR_SEP}") for _s, identifier, _ in pairs]
        )
    )


class Redactor:
    """The rules for one set of services, compiled into one regex."""

    def __init__(self, services: Iterable[ServiceLike]) -> None:
        declared = list(services)
        kinds: dict[str, str] = {}
        for service in declared:
            if _prefixes_mark_secrets(service):
                for prefix in service.key_prefixes:
                    kinds.setdefault(prefix, service.name)
        #: (prefix, service name), longest prefix first.
        self.kinds = sorted(kinds.items(), key=lambda item: -len(item[0]))
        names = {name.lower() for service in declared for name in _secret_names(service)}
        names.update(EXTRA_NAMES)
        #: Lower-cased keys of a logged mapping whose values are secrets.
        self.secret_keys = frozenset({*names, *AUTH_HEADERS})
        pairs = list(_paired(declared))
        rules = _rules(kinds, names, pairs)
        #: Every rule, one alternative each: a context (kept) and a value (replaced).
        self.pattern = re.compile(
            "|".join(
                f"(?P<c_{group}>{context})(?!{PLACEHOLDER})(?P<v_{group}>{value}){after}"
                for group, context, value, after, _label in rules
            )
        )
        #: A context before a placeholder: the secret is in the arguments.
        contexts = [context for group, context, *_ in rules if group != "key"]
        self.split_context = re.compile("|".join(f"(?:{c}){PLACEHOLDER}" for c in contexts))
        self._labels = {f"v_{group}": label for group, _c, _v, _a, label in rules}
        self._anchors = _anchor_pattern(kinds, names, pairs)
        self._templates: dict[str, bool] = {}

    def template_anchored(self, template: str) -> bool:
        """Whether a message template holds an anchor; remembered, as templates repeat."""
        known = self._templates.get(template)
        if known is None:
            if len(self._templates) >= TEMPLATE_CACHE_SIZE:
                self._templates.clear()  # messages built with f-strings never repeat
            known = self._templates[template] = self._anchors.search(template.lower()) is not None
        return known

    def redact(self, text: str) -> str:
        """``text`` with every secret the rules find replaced."""
        if self._anchors.search(text.lower()) is None:
            return text
        return self.pattern.sub(self.replace, text)

    def anchored(self, strings: list[str]) -> set[str]:
        """Those of ``strings`` that hold an anchor of some rule, found in one scan."""
        # No anchor can take in the separator, so none runs from one string into the
        # next (and hides the start of another there from finditer).
        text = _SEPARATOR.join(strings)
        lowered = text.lower()
        hit = self._anchors.search(lowered)
        if hit is None:
            return set()
        if len(lowered) != len(text):  # a few characters lower-case to two
            return {s for s in strings if self._anchors.search(s.lower())}
        starts, offset = [], 0
        for string in strings:
            starts.append(offset)
            offset += len(string) + len(_SEPARATOR)
        return {
            strings[bisect.bisect_right(starts, found.start()) - 1]
            for found in self._anchors.finditer(lowered, hit.start())
        }

    def replace(self, match: re.Match[str]) -> str:
        """The replacement of one match of :attr:`pattern`."""
        group = next(group for group in self._labels if match.start(group) >= 0)
        value = match.group(group)
        head = match.string[match.start() : match.start(group)]
        if group == "v_key":
            kind = self._kind(value)
            if kind is None:
                return match.group()
            token = value.rstrip(".")  # a full stop after the key is not part of it
            return f"{head}[redacted {kind} key]{value[len(token) :]}"
        if _looks_harmless(value):
            return match.group()
        return head + (self._labels[group] or REDACTED)

    def _kind(self, value: str) -> str | None:
        for prefix, name in self.kinds:
            if value.startswith(prefix):
                return name if _RANDOM.search(value, len(prefix)) else None
        return None  # pragma: no cover - the regex only matches known prefixes

    def names_a_secret(self, mapping: dict[Any, Any]) -> bool:
        """Whether a key of ``mapping`` is a secret's name (``auth_token``, ``Authorization``)."""
        return any(type(key) is str and key.lower() in self.secret_keys for key in mapping)

    def redact_named(self, value: str) -> str:
        """The value of a mapping key that names a secret (``{"auth_token": …}``)."""
        if not value or _looks_harmless(value):
            return value
        scheme = _SCHEME.match(value)  # keep the "Bearer " of an Authorization header
        return (scheme.group() if scheme else "") + REDACTED

    def redact_args(
        self,
        value: Any,
        anchored: Container[str] | None = None,
        depth: int = 0,
        *,
        as_text: bool = False,
    ) -> Any:
        """Arguments with their strings redacted (those in ``anchored``, when given),
        plain containers rebuilt, anything else left as it is.

        With ``as_text``, anything else becomes its redacted ``repr()``.
        """
        if isinstance(value, str):
            if anchored is None:
                return self.redact(value)
            return self.pattern.sub(self.replace, value) if value in anchored else value
        deeper = depth < _MAX_DEPTH
        if deeper and type(value) is dict:
            return {
                self.redact_args(key, anchored, depth + 1, as_text=as_text): (
                    self.redact_named(item)
                    if isinstance(key, str)
                    and isinstance(item, str)
                    and key.lower() in self.secret_keys
                    else self.redact_args(item, anchored, depth + 1, as_text=as_text)
                )
                for key, item in value.items()
            }
        if deeper and type(value) in _CONTAINERS:
            return type(value)(
                self.redact_args(item, anchored, depth + 1, as_text=as_text) for item in value
            )
        if as_text and type(value) not in _SIMPLE:
            return self.redact(_safe_repr(value))
        return value


def _arg_strings(args: Any) -> list[str] | None:
    """The strings among the arguments (a tuple, or a dict's keys and values) if the
    others are plain numbers; ``None`` if one is anything else, such as a container
    or an object: what it holds is known once it is formatted."""
    if type(args) is tuple:
        items: Iterable[Any] = args
    elif type(args) is dict:
        items = [*args, *args.values()]
    else:
        return [] if args is None else None
    strings: list[str] = []
    for item in items:
        kind = type(item)
        if kind is str:
            strings.append(item)
        elif kind not in _SIMPLE:
            return None
    return strings


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


class _Current:
    """The redactor for the services loaded now; rebuilt when the registry is.

    The registry is read, never built, from here (see ``ServiceRegistry.loaded``):
    until it is built, the built-in services' rules apply.
    """

    def __init__(self) -> None:
        self.registry: ServiceRegistry | None = None
        self.services: Mapping[str, Service] | None = None
        self.redactor: Redactor | None = None
        self.local = threading.local()

    def get(self) -> Redactor | None:
        if self.registry is None:
            from byok.services.registry import registry

            self.registry = registry
        services = self.registry.loaded()
        redactor = self.redactor
        if redactor is not None and (services is None or services is self.services):
            return redactor
        if getattr(self.local, "building", False):
            # A record logged while the rules are built (by an import they need):
            # the previous rules, or none the first time.
            return redactor
        self.local.building = True
        try:
            redactor = Redactor([*_builtin_services(), *(services or {}).values()])
        finally:
            self.local.building = False
        self.services, self.redactor = services, redactor
        return redactor


def _builtin_services() -> list[type[Service]]:
    """The built-in service classes, whether or not the site enabled them."""
    from byok.services.registry import BUILTIN_SERVICES, load_service

    return [load_service(path) for path in BUILTIN_SERVICES]


_current = _Current()


def redactor() -> Redactor | None:
    """The rules :class:`RedactSecretsFilter` applies now (``None`` only while first built)."""
    return _current.get()


class RedactSecretsFilter(logging.Filter):
    """Removes credentials from every record; never drops a record, never raises.

    Attach it to handlers, not loggers: a logger's filters do not see the records
    of its child loggers, a handler's see every record it writes. The record is
    changed in place, so the handlers after this one see it redacted too.

    Arguments stay lazy: numbers are left for ``%d``, strings and plain containers
    are redacted one by one. The message is formatted first only when it has to
    be: an argument is another kind of object (its text is unknown until it is
    formatted), or the message puts a secret's context before a placeholder
    (``"auth_token=%s"``). If that formatted text held a secret, it replaces the
    message and the arguments. The exception is formatted into ``exc_text`` and
    redacted, so the handlers' formatters print the redacted text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            rules = _current.get()
            if rules is not None:
                try:
                    _redact(record, rules)
                except Exception:
                    # Typically arguments that do not fit the message: logging will
                    # report that as usual, with every value redacted.
                    _redact_as_text(record, rules)
        except Exception:
            _withhold(record)
        return True


def _redact(record: logging.LogRecord, rules: Redactor) -> None:
    message, args = record.msg, record.args
    strings = _arg_strings(args) if type(message) is str else None
    if strings is None:
        _redact_formatted(record, rules)
    else:
        in_message = rules.template_anchored(message)
        anchored = rules.anchored(strings) if strings else set()
        named = type(args) is dict and rules.names_a_secret(args)
        if not (in_message or anchored or named):
            pass  # the common case: nothing looked at closer, nothing rebuilt
        elif args and in_message and rules.split_context.search(message):
            _redact_formatted(record, rules)
        else:
            if in_message:
                record.msg = rules.pattern.sub(rules.replace, message)
            if anchored or named:
                record.args = rules.redact_args(args, anchored)
    _redact_extras(record, rules)


def _redact_formatted(record: logging.LogRecord, rules: Redactor) -> None:
    """Format the message; if the text held a secret, it replaces message and arguments.

    A mapping's values under a secret's name are replaced first: ``%(auth_token)s``
    formats to the bare value, without the name that gives it away.
    """
    if type(record.args) is dict and rules.names_a_secret(record.args):
        record.args = rules.redact_args(record.args, ())
    text = record.getMessage()
    clean = rules.redact(text)
    if clean != text:
        record.msg, record.args = clean, ()


def _redact_as_text(record: logging.LogRecord, rules: Redactor) -> None:
    """Every value of the record as redacted text, without formatting the message."""
    message = record.msg
    record.msg = rules.redact(message if isinstance(message, str) else _safe_repr(message))
    if record.args:
        record.args = rules.redact_args(record.args, as_text=True)
    _redact_extras(record, rules)


def _redact_extras(record: logging.LogRecord, rules: Redactor) -> None:
    if record.exc_info and not record.exc_text:
        try:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        except Exception:
            record.exc_text = f"Traceback {WITHHELD_TEXT}"
    if record.exc_text:
        record.exc_text = rules.redact(record.exc_text)
    if record.stack_info:
        record.stack_info = rules.redact(record.stack_info)


def _withhold(record: logging.LogRecord) -> None:
    """The last resort: keep the record, drop what could not be redacted."""
    record.msg, record.args = WITHHELD, ()
    if record.exc_info or record.exc_text:
        record.exc_text = f"Traceback {WITHHELD_TEXT}"
    if record.stack_info:
        record.stack_info = f"Stack {WITHHELD_TEXT}"
