"""The metered Anthropic clients: ``anthropic.Anthropic`` and ``anthropic.AsyncAnthropic``,
hooked where :mod:`byok.clients.sdk` says."""

from __future__ import annotations

try:
    import anthropic
    from anthropic._models import FinalRequestOptions
except ImportError as error:
    raise ImportError(
        "byok.clients.anthropic needs the Anthropic SDK: pip install 'django-byok[anthropic]'"
    ) from error

import httpx2
from typing_extensions import override

from byok.clients.sdk import (
    abefore,
    attach_call,
    before,
)


class MeteredAnthropic(anthropic.Anthropic):
    """``anthropic.Anthropic`` whose calls byok records; made by
    :func:`byok.clients.anthropic`."""

    @override
    def _build_request(
        self, options: FinalRequestOptions, *, retries_taken: int = 0
    ) -> httpx2.Request:
        request = super()._build_request(options, retries_taken=retries_taken)
        return attach_call(self, request, options, retries_taken)

    @override
    def _prepare_request(self, request: httpx2.Request) -> None:
        super()._prepare_request(request)
        before(self, request)


class AsyncMeteredAnthropic(anthropic.AsyncAnthropic):
    """``anthropic.AsyncAnthropic`` whose calls byok records."""

    @override
    def _build_request(
        self, options: FinalRequestOptions, *, retries_taken: int = 0
    ) -> httpx2.Request:
        request = super()._build_request(options, retries_taken=retries_taken)
        return attach_call(self, request, options, retries_taken)

    @override
    async def _prepare_request(self, request: httpx2.Request) -> None:
        await super()._prepare_request(request)
        await abefore(self, request)
