"""A small reader for gettext ``.po`` files, enough for the translation tests.

It reads what ``makemessages`` writes: ``msgctxt``, ``msgid``, ``msgid_plural``,
``msgstr`` / ``msgstr[n]``, flags (``#,``) and obsolete entries (``#~``); other
comments are skipped.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

#: What must survive translation unchanged: ``%(name)s``, ``%s``, ``{name}``, HTML tags.
PLACEHOLDER = re.compile(r"%\(\w+\)[sdifr]|%[sdif]|\{\w*\}|</?[a-z][a-z0-9]*(?:\s[^<>]*)?>")


@dataclass
class Entry:
    """One message of a catalog."""

    msgid: str = ""
    context: str | None = None
    plural: str | None = None
    strings: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self) -> tuple[str | None, str, str | None]:
        return (self.context, self.msgid, self.plural)


def _unquote(text: str) -> str:
    value = ast.literal_eval(text)
    assert isinstance(value, str), text
    return value


def read_po(path: Path) -> list[Entry]:
    """Every entry of ``path``, the header (``msgid ""``) first, in file order."""
    entries: list[Entry] = []
    entry = Entry()
    started = False
    target: tuple[str, int] = ("", 0)

    def finish() -> None:
        nonlocal entry, started
        if started:
            entries.append(entry)
        entry, started = Entry(), False

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            entry.obsolete = True
            started = True
            continue
        if line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            name, index = target
            if name == "msgstr":
                entry.strings[index] += _unquote(line)
            else:
                setattr(entry, name, (getattr(entry, name) or "") + _unquote(line))
            continue
        keyword, _, rest = line.partition(" ")
        if keyword in ("msgctxt", "msgid") and started and entry.strings:
            finish()
        started = True
        match = re.fullmatch(r"msgstr\[(\d+)\]", keyword)
        if keyword == "msgstr" or match:
            index = int(match.group(1)) if match else 0
            entry.strings[index] = _unquote(rest)
            target = ("msgstr", index)
        else:
            name = {"msgctxt": "context", "msgid": "msgid", "msgid_plural": "plural"}[keyword]
            setattr(entry, name, _unquote(rest))
            target = (name, 0)
    finish()
    return entries


def header(entries: list[Entry]) -> dict[str, str]:
    """The header's fields (``Language``, ``Plural-Forms``…) as a mapping."""
    first = entries[0]
    assert first.msgid == "", "the header comes first"
    assert first.context is None
    lines = first.strings[0].splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def placeholders(text: str) -> list[str]:
    """The placeholders and tags of ``text``, sorted (a translation may reorder them)."""
    return sorted(PLACEHOLDER.findall(text))
