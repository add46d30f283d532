"""Reading the model and token counts out of a provider's answer as its body streams past.

:class:`BodyReader` takes the body chunk by chunk, as the SDK reads it: a JSON body
is parsed when it ends (a large one from its first and last bytes only, where
the model and the usage are), an event stream event by event, keeping no more
than the event being read. A provider's reader (:class:`OpenAIUsage`,
:class:`AnthropicUsage`) picks the model and the tokens out of each JSON object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from byok import jsonsafe
from byok.services.prices import Tokens
from byok.usage import MAX_MODEL_LENGTH

#: A JSON body up to this size is parsed whole; past it, only its two ends are kept.
WHOLE_JSON = 1 << 20
#: How much of each end of a larger JSON body is kept.
JSON_END = 64 << 10
#: An event larger than this is skipped rather than held (no usage event comes near).
MAX_EVENT = 8 << 20

_KEY = re.compile(r'"(model|usage)"\s*:\s*')


@dataclass(frozen=True)
class Usage:
    """What an answer says it used: the model that served it, and its tokens when it
    reports them."""

    model: str | None = None
    tokens: Tokens | None = None


class UsageReader(Protocol):
    """A provider's way of reporting usage, fed each JSON object of an answer."""

    def read(self, payload: Mapping[str, Any]) -> None: ...

    def usage(self) -> Usage: ...


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _model(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_MODEL_LENGTH and value.isprintable():
        return value
    return None


class OpenAIUsage:
    """OpenAI's answers: chat completions and embeddings (``prompt_tokens``…), the
    Responses API (``input_tokens``…, in ``response.completed`` when streamed)."""

    def __init__(self) -> None:
        self._model: str | None = None
        self._tokens: Tokens | None = None

    def read(self, payload: Mapping[str, Any]) -> None:
        inner = payload.get("response")
        if isinstance(inner, Mapping) and str(payload.get("type", "")).startswith("response."):
            payload = inner
        self._model = _model(payload.get("model")) or self._model
        usage = payload.get("usage")
        if not isinstance(usage, Mapping):
            return
        # Chat completions and embeddings name them prompt and completion; the
        # Responses API input and output.
        for input_name, output_name in (("prompt", "completion"), ("input", "output")):
            if f"{input_name}_tokens" in usage:
                details = usage.get(f"{input_name}_tokens_details")
                details = details if isinstance(details, Mapping) else {}
                self._tokens = Tokens(
                    input=_count(usage.get(f"{input_name}_tokens")),
                    output=_count(usage.get(f"{output_name}_tokens")),
                    cached=_count(details.get("cached_tokens")),
                    cache_write=_count(details.get("cache_write_tokens")),
                )
                return

    def usage(self) -> Usage:
        return Usage(self._model, self._tokens)


class AnthropicUsage:
    """Anthropic's messages: the input in ``usage`` does not count the cached and
    cache-written tokens, which come apart; streamed, ``message_start`` has the
    input and ``message_delta`` the output (each figure as of that event)."""

    FIELDS = (
        "input_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "output_tokens",
    )

    def __init__(self) -> None:
        self._model: str | None = None
        self._figures: dict[str, int] = {}

    def read(self, payload: Mapping[str, Any]) -> None:
        message = payload.get("message")
        if payload.get("type") == "message_start" and isinstance(message, Mapping):
            payload = message
        self._model = _model(payload.get("model")) or self._model
        usage = payload.get("usage")
        if not isinstance(usage, Mapping):
            return
        for name in self.FIELDS:
            if usage.get(name) is not None:
                self._figures[name] = _count(usage[name])

    def usage(self) -> Usage:
        if not self._figures:
            return Usage(self._model)
        figures = self._figures
        cached = figures.get("cache_read_input_tokens", 0)
        written = figures.get("cache_creation_input_tokens", 0)
        return Usage(
            self._model,
            Tokens(
                input=figures.get("input_tokens", 0) + cached + written,
                output=figures.get("output_tokens", 0),
                cached=cached,
                cache_write=written,
            ),
        )


class BodyReader:
    """Feeds an answer's body to a :class:`UsageReader` as it passes, without
    holding a stream whole."""

    def __init__(self, reader: UsageReader, *, events: bool) -> None:
        self.reader = reader
        self.events = events
        self._chunks: list[bytes] = []
        self._size = 0
        self._tail = bytearray()
        self._line = bytearray()
        self._data: list[bytes] = []
        self._skipping = False

    @classmethod
    def for_answer(cls, reader: UsageReader, content_type: str) -> BodyReader | None:
        """A reader for a body of ``content_type``; ``None`` for one that is not JSON
        or an event stream (audio, a file)."""
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind == "text/event-stream":
            return cls(reader, events=True)
        if kind == "application/json" or kind.endswith("+json"):
            return cls(reader, events=False)
        return None

    def feed(self, chunk: bytes) -> None:
        if self.events:
            self._feed_events(chunk)
            return
        self._size += len(chunk)
        if self._size <= WHOLE_JSON:
            self._chunks.append(chunk)
            return
        self._tail += chunk
        del self._tail[: max(0, len(self._tail) - JSON_END)]

    def finish(self) -> Usage:
        """What the body said, once it has ended (or was cut short)."""
        if self.events:
            if self._line:
                self._event_line(bytes(self._line))
            self._dispatch()
        elif self._size <= WHOLE_JSON:
            self._read_json(b"".join(self._chunks))
        else:
            self._read_ends()
        return self.reader.usage()

    def _read_json(self, body: bytes) -> None:
        try:
            data = jsonsafe.loads(body)
        except ValueError:
            return
        if isinstance(data, dict):
            self.reader.read(data)

    def _read_ends(self) -> None:
        """The model and usage of a large JSON body, from its two ends: each value after
        a ``"model"`` or ``"usage"`` key there that parses whole."""
        head = b"".join(self._chunks)[:JSON_END]
        found: dict[str, Any] = {}
        for end in (head, bytes(self._tail)):
            text = end.decode("utf-8", errors="replace")
            for match in _KEY.finditer(text):
                try:
                    found[match.group(1)] = jsonsafe.raw_decode(text, match.end())
                except ValueError:
                    continue
        self.reader.read(found)

    def _feed_events(self, chunk: bytes) -> None:
        if self._skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return
            self._skipping, chunk = False, chunk[newline + 1 :]
        self._line += chunk
        if b"\n" not in chunk:
            if len(self._line) > MAX_EVENT:
                self._line.clear()
                self._data.clear()
                self._skipping = True
            return
        *lines, rest = self._line.split(b"\n")
        self._line = bytearray(rest)
        for line in lines:
            self._event_line(bytes(line))

    def _event_line(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if not line:
            self._dispatch()
        elif line.startswith(b"data:"):
            data = line[5:]
            self._data.append(data[1:] if data.startswith(b" ") else data)

    def _dispatch(self) -> None:
        if not self._data:
            return
        data = b"\n".join(self._data)
        self._data.clear()
        # Only events that carry usage (or the model beside it) are worth parsing.
        if b'"usage"' in data:
            self._read_json(data)
