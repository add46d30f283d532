"""Parsing JSON that someone else wrote: a request body, an imported file, a token's
payload, a provider's answer.

:func:`loads` is ``json.loads`` that refuses a document nested deeper than
:data:`MAX_DEPTH` with :class:`JSONTooDeep` (a ``ValueError``, so callers that already
turn invalid JSON into a clear error handle it too), measured before parsing: a
document nested a thousand levels deep would otherwise raise ``RecursionError``, a
server error. Every JSON parse of outside input in byok goes through it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.views.decorators.debug import sensitive_variables

#: The deepest nesting accepted. byok's own documents are at most three levels deep.
MAX_DEPTH = 64

# A JSON string (escapes included), removed before brackets are counted; and a bracket.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_DECODER = json.JSONDecoder()


class JSONTooDeep(ValueError):
    """The document is nested deeper than :data:`MAX_DEPTH`."""

    def __init__(self, max_depth: int = MAX_DEPTH) -> None:
        super().__init__(f"JSON nested more than {max_depth} levels deep")
        self.max_depth = max_depth


@sensitive_variables()
def depth(text: str) -> int:
    """How deeply ``text``'s arrays and objects nest (brackets inside strings ignored).

    Linear in the length of ``text`` and recursion-free, for any input, valid or not.
    """
    deepest = level = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        if bracket.group() in "[{":
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


@sensitive_variables()
def loads(document: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH, **options: Any) -> Any:
    """``json.loads(document, **options)``, or :class:`JSONTooDeep` when it nests too deeply.

    Other malformed input raises ``ValueError`` as ``json.loads`` does (bytes that are
    not text included). Error reports hide this frame's variables and its callees'
    (the document may hold a secret).
    """
    if isinstance(document, bytes | bytearray):
        document = bytes(document).decode(json.detect_encoding(document), "surrogatepass")
    if depth(document) > max_depth:
        raise JSONTooDeep(max_depth)
    try:
        return json.loads(document, **options)
    except RecursionError:  # not reached with a sane MAX_DEPTH; never a server error
        raise JSONTooDeep(max_depth) from None


@sensitive_variables()
def raw_decode(text: str, index: int = 0, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value starting at ``text[index]`` (``JSONDecoder.raw_decode``'s value),
    or :class:`JSONTooDeep` when what follows ``index`` nests too deeply."""
    if depth(text[index:]) > max_depth:
        raise JSONTooDeep(max_depth)
    try:
        return _DECODER.raw_decode(text, index)[0]
    except RecursionError:
        raise JSONTooDeep(max_depth) from None
