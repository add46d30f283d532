"""The metered OpenAI clients: ``openai.OpenAI`` and ``openai.AsyncOpenAI``, hooked
where :mod:`byok.clients.sdk` says."""

from __future__ import annotations

from collections.abc import Mapping

try:
    import openai
    from openai._models import FinalRequestOptions
except ImportError as error:
    raise ImportError(
        "byok.clients.openai needs the OpenAI SDK: pip install 'django-byok[openai]'"
    ) from error

import httpx2
from typing_extensions import override

from byok.clients.sdk import (
    abefore,
    attach_call,
    before,
    request_body,
)

CHAT_COMPLETIONS = "/chat/completions"


def ask_for_usage(options: FinalRequestOptions) -> FinalRequestOptions:
    """A streamed chat completion reports its usage only when asked to: ask, unless the
    caller said otherwise (``stream_options.include_usage``)."""
    body = options.json_data
    if not (options.url.endswith(CHAT_COMPLETIONS) and isinstance(body, Mapping)):
        return options
    wanted = request_body(options)
    stream_options = wanted.get("stream_options")
    if wanted.get("stream") is not True or (
        isinstance(stream_options, Mapping) and "include_usage" in stream_options
    ):
        return options
    given = stream_options if isinstance(stream_options, Mapping) else {}
    options.json_data = {**body, "stream_options": {**given, "include_usage": True}}
    return options


class MeteredOpenAI(openai.OpenAI):
    """``openai.OpenAI`` whose calls byok records; made by :func:`byok.clients.openai`."""

    @override
    def _build_request(
        self, options: FinalRequestOptions, *, retries_taken: int = 0
    ) -> httpx2.Request:
        options = ask_for_usage(options)
        request = super()._build_request(options, retries_taken=retries_taken)
        return attach_call(self, request, options, retries_taken)

    @override
    def _prepare_request(self, request: httpx2.Request) -> None:
        super()._prepare_request(request)
        before(self, request)


class AsyncMeteredOpenAI(openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` whose calls byok records."""

    @override
    def _build_request(
        self, options: FinalRequestOptions, *, retries_taken: int = 0
    ) -> httpx2.Request:
        options = ask_for_usage(options)
        request = super()._build_request(options, retries_taken=retries_taken)
        return attach_call(self, request, options, retries_taken)

    @override
    async def _prepare_request(self, request: httpx2.Request) -> None:
        await super()._prepare_request(request)
        await abefore(self, request)
