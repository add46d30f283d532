"""The one extension point of the metered clients: code that runs around each call.

A :class:`CallHook` sees each request before it is sent (:meth:`CallHook.before`,
with the parsed JSON body) and each call once it is recorded (:meth:`CallHook.after`,
with the model, tokens, cost, outcome and latency). ``BYOK["CLIENT_HOOKS"]`` lists
the hooks every metered client runs. A budget reserves an estimate in ``before``
(raising its own exception refuses the call: it reaches the caller unchanged,
nothing is sent) and settles it in ``after``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from byok.conf import conf
from byok.resolution import ResolvedKey
from byok.services.prices import Tokens

__all__ = ["Call", "CallHook", "CallRecord", "Outcome", "configured_hooks", "outcome_of"]


class Outcome:
    """How a call ended, as :attr:`CallRecord.outcome` says it."""

    OK = "ok"
    CLIENT_ERROR = "4xx"
    RATE_LIMITED = "429"
    SERVER_ERROR = "5xx"
    TIMEOUT = "timeout"
    #: No answer: the connection failed, or the answer was not HTTP.
    ERROR = "error"
    #: A hook's ``before`` refused the call: nothing was sent or recorded.
    REFUSED = "refused"


def outcome_of(status: int) -> str:
    """The outcome of an answer with HTTP ``status``."""
    if status == 429:
        return Outcome.RATE_LIMITED
    if 400 <= status < 500:
        return Outcome.CLIENT_ERROR
    if status >= 500:
        return Outcome.SERVER_ERROR
    return Outcome.OK if 200 <= status < 300 else Outcome.ERROR


@dataclass
class Call:
    """One request about to be sent (each retry is a call of its own)."""

    user: Any = field(repr=False)
    key: ResolvedKey
    method: str
    #: The URL's path, without the query string.
    path: str
    #: The request's JSON body, parsed; empty for a request without one.
    body: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: 0 for the first try, then 1, 2… for the SDK's retries.
    attempt: int = 0
    #: Free for hooks: what ``before`` leaves here, ``after`` finds (a reservation).
    notes: dict[str, Any] = field(default_factory=dict, repr=False)
    #: Whether the hooks' ``before`` ran (then their ``after`` runs too).
    hooked: bool = field(default=False, repr=False)

    @property
    def service(self) -> str:
        return self.key.service

    @property
    def model(self) -> str | None:
        """The model the request names."""
        model = self.body.get("model")
        return model if isinstance(model, str) else None

    @property
    def max_tokens(self) -> int | None:
        """The most output tokens the request allows (``max_tokens``,
        ``max_completion_tokens`` or ``max_output_tokens``), when it says."""
        for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
            value = self.body.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    @property
    def messages(self) -> Any:
        """What the model is asked: ``messages`` (chat, Anthropic) or ``input``
        (the Responses API, embeddings), as sent."""
        return self.body.get("messages", self.body.get("input"))

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


@dataclass(frozen=True)
class CallRecord:
    """What a call used and how it went, as it was recorded."""

    model: str
    tokens: Tokens
    #: The cost recorded; ``None`` when recording failed.
    cost: Decimal | None
    #: The answer's HTTP status; ``None`` when there was no answer.
    status: int | None
    #: One of :class:`Outcome`'s values.
    outcome: str
    #: From sending the request to the end of the answer's body.
    latency_ms: float


class CallHook:
    """Runs around each call of the metered clients. Subclass and list the class in
    ``BYOK["CLIENT_HOOKS"]``; one instance serves every call, from any thread.

    Async clients call :meth:`abefore` and :meth:`aafter`, which run the sync methods
    in a thread (``sync_to_async``): override them for native async code.
    """

    def before(self, call: Call) -> None:
        """Before the request is sent. An exception raised here reaches the caller
        as it is (the SDK neither wraps nor retries it) and nothing is sent."""

    def after(self, call: Call, record: CallRecord) -> None:
        """After the call is recorded (also for a call a later hook refused, with
        outcome ``refused``). Exceptions are logged, never raised to the caller."""

    async def abefore(self, call: Call) -> None:
        await sync_to_async(self.before)(call)

    async def aafter(self, call: Call, record: CallRecord) -> None:
        await sync_to_async(self.after)(call, record)


def configured_hooks() -> tuple[CallHook, ...]:
    """The hooks ``BYOK["CLIENT_HOOKS"]`` names, made once per value of the setting."""
    return _load(tuple(conf.CLIENT_HOOKS))


@functools.lru_cache(maxsize=8)
def _load(paths: Sequence[str]) -> tuple[CallHook, ...]:
    hooks = []
    for path in paths:
        try:
            hook = import_string(path)()
        except ImportError as error:
            raise ImproperlyConfigured(
                f"BYOK['CLIENT_HOOKS'] names {path!r}, which cannot be imported: {error}"
            ) from error
        if not isinstance(hook, CallHook):
            raise ImproperlyConfigured(
                f"BYOK['CLIENT_HOOKS'] names {path!r}, which is not a byok.clients.CallHook."
            )
        hooks.append(hook)
    return tuple(hooks)
