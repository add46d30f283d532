"""Recording calls made with one resolved key, and running the hooks around them.

Recording never makes a provider call fail: an error while recording, or in a
hook's ``after``, is logged (the service, the model and the error's type: never a
credential) and swallowed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async

from byok.clients.answers import Usage
from byok.clients.hooks import Call, CallHook, CallRecord, Outcome
from byok.keys import ResolvedKey
from byok.services.prices import Tokens
from byok.usage import track_api_usage

logger = logging.getLogger("byok.clients")

NO_TOKENS = Tokens()


class Meter:
    """Records what one user's calls with one key used: ``track_api_usage`` against
    that key, per call (each retry included), and hands each call to the hooks."""

    def __init__(self, user: Any, key: ResolvedKey, hooks: Sequence[CallHook] = ()) -> None:
        self.user = user
        self.key = key
        self.hooks = tuple(hooks)

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
        """Run each hook's ``before``; if one raises, those that ran see the call as
        refused, and the exception goes on to the caller."""
        for done, hook in enumerate(self.hooks):
            try:
                hook.before(call)
            except BaseException:
                self._refused(call, self.hooks[:done])
                raise
        call.hooked = bool(self.hooks)

    async def abefore(self, call: Call) -> None:
        for done, hook in enumerate(self.hooks):
            try:
                await hook.abefore(call)
            except BaseException:
                await self._arefused(call, self.hooks[:done])
                raise
        call.hooked = bool(self.hooks)

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
        """Record the call and run the hooks' ``after``. ``usage`` is what the answer
        said; ``None`` for an answer that was not read, priced at the service's
        estimate per call."""
        latency = (time.perf_counter() - started) * 1000
        model, tokens, cost = self._priced(call, outcome, usage)
        recorded = self._record(call, model, tokens, cost)
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
        recorded = await sync_to_async(self._record)(call, model, tokens, cost)
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
        self, call: Call, model: str | None, tokens: Tokens, cost: Decimal | None
    ) -> Decimal | None:
        try:
            return track_api_usage(
                self.user,
                self.service,
                key=self.key,
                model=model,
                input_tokens=tokens.input,
                output_tokens=tokens.output,
                cached_input_tokens=tokens.cached,
                cache_write_tokens=tokens.cache_write,
                cost=cost,
            )
        except Exception as error:
            logger.warning(
                "Could not record a %s call (model %s): %s; the call itself went on.",
                self.service,
                model or "none",
                type(error).__name__,
            )
            return None

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
