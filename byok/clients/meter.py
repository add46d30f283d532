"""Recording calls made with one resolved key, and running the hooks around them.

When a blocking budget covers the key, each call first reserves an estimate of its
cost (:func:`byok.reservations.hold`: the request's model and ``max_tokens`` priced
from the service's table) and is refused with :class:`~byok.BudgetExceeded`, before
anything is sent, when that does not fit; recording the call settles the reservation.

Recording never makes a provider call fail: an error while recording, or in a
hook's ``after``, is logged (the service, the model and the error's type: never a
credential) and swallowed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from byok import budgets
from byok.budgets import Hold
from byok.clients.answers import Usage
from byok.clients.hooks import Call, CallHook, CallRecord, Outcome
from byok.reservations import hold
from byok.resolution import ResolvedKey
from byok.services.prices import Tokens
from byok.services.registry import registry
from byok.usage import track_api_usage

logger = logging.getLogger("byok.clients")

NO_TOKENS = Tokens()
#: Where a call's reservation waits in :attr:`Call.notes` for the call to be recorded.
HOLD = "byok.hold"
#: The output a request that sets no ``max_tokens`` is reserved for.
DEFAULT_MAX_OUTPUT = 4096
#: Characters of a request per input token, counted low so the estimate is high.
CHARACTERS_PER_TOKEN = 3


def estimate(call: Call) -> Decimal:
    """What ``call`` may cost at most, as the service's price table says: its messages
    at one token per three characters, and ``max_tokens`` (else 4,096) of output. A
    model no table lists costs the service's estimate per call."""
    sent = json.dumps(call.messages, ensure_ascii=False) if call.messages else ""
    tokens = Tokens(
        input=len(sent) // CHARACTERS_PER_TOKEN + 1,
        output=call.max_tokens or DEFAULT_MAX_OUTPUT,
    )
    cost, _priced = registry.get(call.service).cost(call.model, tokens)
    return cost


class Meter:
    """Records what one user's calls with one key used: ``track_api_usage`` against
    that key, per call (each retry included), and hands each call to the hooks."""

    def __init__(self, user: Any, key: ResolvedKey, hooks: Sequence[CallHook] = ()) -> None:
        self.user = user
        self.key = key
        self.hooks = tuple(hooks)
        #: Whether a blocking budget covers the key's calls (as the lookup read them).
        self.reserves = bool(
            budgets.states(
                key.budgets,
                timezone.localdate(),
                covering=(key.service, key.spends),
                blocking=True,
            )
        )

    @property
    def service(self) -> str:
        return self.key.service

    def __repr__(self) -> str:
        return f"<Meter {self.service} ({self.key.source}'s key)>"

    def call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, attempt: int = 0
    ) -> Call:
        return Call(self.user, self.key, method, path, body or {}, attempt)

    # -- Before a call is sent --------------------------------------------------------

    def before(self, call: Call) -> None:
        """Reserve the call's estimate, then run each hook's ``before``; if one
        raises, the reservation is given back, those that ran see the call as
        refused, and the exception goes on to the caller."""
        self.reserve(call)
        for done, hook in enumerate(self.hooks):
            try:
                hook.before(call)
            except BaseException:
                self.release(call)
                self._refused(call, self.hooks[:done])
                raise
        call.hooked = bool(self.hooks)

    async def abefore(self, call: Call) -> None:
        if self.reserves:
            await sync_to_async(self.reserve)(call)
        for done, hook in enumerate(self.hooks):
            try:
                await hook.abefore(call)
            except BaseException:
                await sync_to_async(self.release)(call)
                await self._arefused(call, self.hooks[:done])
                raise
        call.hooked = bool(self.hooks)

    def reserve(self, call: Call) -> None:
        """Under a blocking budget, set the call's estimate aside; ``BudgetExceeded``
        when it does not fit."""
        if self.reserves:
            held = hold(
                self.user,
                self.service,
                estimate(call),
                environment=self.key.environment,
                team=self.key.team_id,
            )
            call.notes[HOLD] = held.hold

    def release(self, call: Call) -> None:
        """Give back what the call reserved (nothing once its usage settled it)."""
        held = call.notes.pop(HOLD, None)
        if isinstance(held, Hold):
            held.release()

    def _refused(self, call: Call, hooks: Sequence[CallHook]) -> None:
        record = CallRecord(call.model or "", NO_TOKENS, Decimal(0), None, Outcome.REFUSED, 0.0)
        for hook in reversed(hooks):
            self._after(hook, call, record)

    async def _arefused(self, call: Call, hooks: Sequence[CallHook]) -> None:
        record = CallRecord(call.model or "", NO_TOKENS, Decimal(0), None, Outcome.REFUSED, 0.0)
        for hook in reversed(hooks):
            await self._aafter(hook, call, record)

    # -- Once it ended ----------------------------------------------------------------

    def finish(
        self, call: Call, started: float, status: int | None, outcome: str, usage: Usage | None
    ) -> CallRecord:
        """Record the call, how it ended and how long it took since ``started`` (a
        :func:`time.perf_counter` reading: a monotonic clock), and run the hooks'
        ``after``. ``usage`` is what the answer said; ``None`` for an answer that was
        not read, priced at the service's estimate per call."""
        latency = (time.perf_counter() - started) * 1000
        model, tokens, cost = self._priced(call, outcome, usage)
        recorded = self._record(call, model, tokens, cost, outcome, latency)
        record = CallRecord(model or "", tokens, recorded, status, outcome, latency)
        if call.hooked:
            for hook in reversed(self.hooks):
                self._after(hook, call, record)
        return record

    async def afinish(
        self, call: Call, started: float, status: int | None, outcome: str, usage: Usage | None
    ) -> CallRecord:
        latency = (time.perf_counter() - started) * 1000
        model, tokens, cost = self._priced(call, outcome, usage)
        recorded = await sync_to_async(self._record)(call, model, tokens, cost, outcome, latency)
        record = CallRecord(model or "", tokens, recorded, status, outcome, latency)
        if call.hooked:
            for hook in reversed(self.hooks):
                await self._aafter(hook, call, record)
        return record

    @staticmethod
    def _priced(
        call: Call, outcome: str, usage: Usage | None
    ) -> tuple[str | None, Tokens, Decimal | None]:
        """The model, tokens and cost to record (``None``: priced by ``track_api_usage``).

        A failed call used nothing and costs nothing; an answer that reports no
        tokens and names no model (a list of models, a file) was no model's work.
        """
        if usage is None:
            return None, NO_TOKENS, Decimal(0) if outcome != Outcome.OK else None
        model = usage.model or call.model
        if outcome != Outcome.OK:
            return model, NO_TOKENS, Decimal(0)
        if usage.tokens is None and model is None:
            return None, NO_TOKENS, Decimal(0)
        return model, usage.tokens or NO_TOKENS, None

    def _record(
        self,
        call: Call,
        model: str | None,
        tokens: Tokens,
        cost: Decimal | None,
        outcome: str,
        latency: float,
    ) -> Decimal | None:
        held = call.notes.get(HOLD)
        try:
            return track_api_usage(
                self.user,
                self.service,
                key=self.key if held is None else replace(self.key, hold=held),
                model=model,
                input_tokens=tokens.input,
                output_tokens=tokens.output,
                cached_input_tokens=tokens.cached,
                cache_write_tokens=tokens.cache_write,
                cost=cost,
                outcome=outcome,
                latency_ms=round(latency),
            )
        except Exception as error:
            logger.warning(
                "Could not record a %s call (model %s): %s; the call itself went on.",
                self.service,
                model or "none",
                type(error).__name__,
            )
            return None
        finally:
            self.release(call)

    def _after(self, hook: CallHook, call: Call, record: CallRecord) -> None:
        try:
            hook.after(call, record)
        except Exception as error:
            self._hook_failed(hook, error)

    async def _aafter(self, hook: CallHook, call: Call, record: CallRecord) -> None:
        try:
            await hook.aafter(call, record)
        except Exception as error:
            self._hook_failed(hook, error)

    def _hook_failed(self, hook: CallHook, error: Exception) -> None:
        logger.warning(
            "The client hook %s failed after a %s call: %s.",
            type(hook).__qualname__,
            self.service,
            type(error).__name__,
        )
