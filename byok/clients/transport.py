"""The HTTP transport under a metered SDK client: every request the SDK sends (each
retry included) goes through it, and each answer's body is read for usage as the
SDK reads it, then recorded when the SDK closes it.

The SDKs (``openai`` 3+, ``anthropic`` 1+) speak HTTPX2; this wraps its default
transport. A compressed answer (gzip or deflate: the only codings the client asks
for) is inflated here, once, and handed on plain.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx2
from django.views.decorators.debug import sensitive_variables

from byok.clients.answers import BodyReader, Usage, UsageReader
from byok.clients.hooks import Call, Outcome, outcome_of
from byok.clients.meter import Meter, logger

#: Where the SDK client leaves the :class:`~byok.clients.hooks.Call` on its request.
CALL = "byok.call"
#: The content codings a metered client accepts: those :class:`Inflater` reads.
ACCEPT_ENCODING = "gzip, deflate"
#: What an answer that reported nothing (an error, a body not JSON) says.
NOTHING = Usage()


def call_for(meter: Meter, request: httpx2.Request) -> Call:
    """The call the SDK client attached to ``request``, or a bare one for a request
    sent some other way (the hooks then do not see it)."""
    call = request.extensions.get(CALL)
    if isinstance(call, Call):
        return call
    return meter.call(request.method, request.url.path)


class Inflater:
    """Inflates a gzip or deflate body as it streams, like HTTPX2 itself would."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        wbits = zlib.MAX_WBITS | 16 if coding == "gzip" else zlib.MAX_WBITS
        self._inflate = zlib.decompressobj(wbits)
        self._first = True

    @classmethod
    def for_answer(cls, headers: httpx2.Headers) -> Inflater | None:
        coding = headers.get("content-encoding", "").strip().lower()
        return cls(coding) if coding in ("gzip", "deflate") else None

    def inflate(self, chunk: bytes) -> bytes:
        try:
            return self._inflate.decompress(chunk)
        except zlib.error as error:
            if self.coding == "deflate" and self._first:
                # Some servers send raw deflate, without zlib's header.
                self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                self._first = False
                return self.inflate(chunk)
            raise httpx2.DecodingError(str(error)) from None
        finally:
            self._first = False

    def flush(self) -> bytes:
        return self._inflate.flush()


class Reading:
    """One answer's body on its way to the SDK: inflated, read for usage, and
    recorded once, when it closes."""

    def __init__(
        self,
        reader: BodyReader | None,
        inflater: Inflater | None,
        finish: Callable[[BodyReader | None], Any],
    ) -> None:
        self.reader = reader
        self.inflater = inflater
        self.finish = finish
        self.closed = False

    def pass_on(self, chunk: bytes) -> bytes:
        if self.inflater is not None:
            chunk = self.inflater.inflate(chunk)
        return self._read(chunk)

    def rest(self) -> bytes:
        """What an inflater still held once the body ended."""
        return self._read(self.inflater.flush()) if self.inflater is not None else b""

    def _read(self, chunk: bytes) -> bytes:
        if self.reader is not None and chunk:
            try:
                self.reader.feed(chunk)
            except Exception as error:  # never let reading break the answer
                logger.warning("Could not read usage from an answer: %s.", type(error).__name__)
                self.reader = None
        return chunk


class MeteredStream(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, reading: Reading) -> None:
        self.inner = inner
        self.reading = reading

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            passed = self.reading.pass_on(chunk)
            if passed:
                yield passed
        rest = self.reading.rest()
        if rest:
            yield rest

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            if not self.reading.closed:
                self.reading.closed = True
                try:
                    self.reading.finish(self.reading.reader)
                except Exception as error:
                    logger.warning("Could not record a call: %s.", type(error).__name__)


class AsyncMeteredStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, reading: Reading) -> None:
        self.inner = inner
        self.reading = reading

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            passed = self.reading.pass_on(chunk)
            if passed:
                yield passed
        rest = self.reading.rest()
        if rest:
            yield rest

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            if not self.reading.closed:
                self.reading.closed = True
                try:
                    await self.reading.finish(self.reading.reader)
                except Exception as error:
                    logger.warning("Could not record a call: %s.", type(error).__name__)


def prepare_answer(
    response: httpx2.Response, usage_reader: UsageReader
) -> tuple[BodyReader | None, Inflater | None]:
    """How to read ``response``: only a 2xx answer reports usage; a compressed one is
    inflated here and handed on without its ``Content-Encoding``."""
    inflater = Inflater.for_answer(response.headers)
    if inflater is not None:
        del response.headers["content-encoding"]
        response.headers.pop("content-length", None)
    reader = None
    coding = response.headers.get("content-encoding", "identity").strip().lower()
    if response.is_success and coding == "identity":
        reader = BodyReader.for_answer(usage_reader, response.headers.get("content-type", ""))
    return reader, inflater


class MeteredTransport(httpx2.BaseTransport):
    """Sends each request through ``inner`` and records it once its answer closes."""

    def __init__(
        self,
        meter: Meter,
        usage_reader: Callable[[], UsageReader],
        inner: httpx2.BaseTransport | None = None,
    ) -> None:
        self.meter = meter
        self.usage_reader = usage_reader
        self.inner = inner or httpx2.HTTPTransport()

    @sensitive_variables()
    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        call = call_for(self.meter, request)
        started = time.perf_counter()
        try:
            response = self.inner.handle_request(request)
        except httpx2.TimeoutException:
            self.meter.finish(call, started, None, Outcome.TIMEOUT, NOTHING)
            raise
        except Exception:
            self.meter.finish(call, started, None, Outcome.ERROR, NOTHING)
            raise
        status = response.status_code
        reader, inflater = prepare_answer(response, self.usage_reader())

        def finish(reader: BodyReader | None) -> object:
            usage = reader.finish() if reader is not None else NOTHING
            return self.meter.finish(call, started, status, outcome_of(status), usage)

        assert isinstance(response.stream, httpx2.SyncByteStream)
        response.stream = MeteredStream(response.stream, Reading(reader, inflater, finish))
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncMeteredTransport(httpx2.AsyncBaseTransport):
    """The async twin of :class:`MeteredTransport`."""

    def __init__(
        self,
        meter: Meter,
        usage_reader: Callable[[], UsageReader],
        inner: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.meter = meter
        self.usage_reader = usage_reader
        self.inner = inner or httpx2.AsyncHTTPTransport()

    @sensitive_variables()
    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        call = call_for(self.meter, request)
        started = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
        except httpx2.TimeoutException:
            await self.meter.afinish(call, started, None, Outcome.TIMEOUT, NOTHING)
            raise
        except Exception:
            await self.meter.afinish(call, started, None, Outcome.ERROR, NOTHING)
            raise
        status = response.status_code
        reader, inflater = prepare_answer(response, self.usage_reader())

        async def finish(reader: BodyReader | None) -> object:
            usage = reader.finish() if reader is not None else NOTHING
            return await self.meter.afinish(call, started, status, outcome_of(status), usage)

        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = AsyncMeteredStream(response.stream, Reading(reader, inflater, finish))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
