"""What the metered SDK clients share: the key and the base URL they are made with,
the HTTP client they send through, and their two hooks into the SDK.

Where the SDK is hooked, and why:

* ``_build_request`` (once per attempt) attaches the :class:`~byok.clients.hooks.Call`,
  with the request's body as the SDK has it (not parsed back from bytes), to the
  request; the transport finds it there.
* ``_prepare_request`` (once per attempt, after the request is built) runs the
  hooks' ``before``. The SDKs call it outside the ``try`` around sending, so an
  exception raised there reaches the caller unchanged and is not retried; raised
  inside the transport, the Anthropic SDK would wrap it in ``APIConnectionError``
  and retry it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx2

from byok.clients.answers import UsageReader
from byok.clients.hooks import Call
from byok.clients.meter import Meter
from byok.clients.transport import (
    ACCEPT_ENCODING,
    CALL,
    AsyncMeteredTransport,
    MeteredTransport,
)

Client = TypeVar("Client")

#: What the factory sets itself; a caller passing one gets a ``TypeError``.
RESERVED_ARGUMENTS = ("api_key", "base_url", "http_client")


class MeteredHTTPClient(httpx2.Client):
    """An HTTPX2 client whose every request goes through a :class:`MeteredTransport`.

    Like byok's probes it follows no redirect (a credential header such as
    ``x-api-key`` would follow one to another host) and reads no proxy or
    certificate settings from the environment.
    """

    def __init__(self, meter: Meter, usage_reader: Callable[[], UsageReader]) -> None:
        super().__init__(
            transport=MeteredTransport(meter, usage_reader),
            follow_redirects=False,
            trust_env=False,
            headers={"Accept-Encoding": ACCEPT_ENCODING},
        )
        self.byok_meter = meter

    def __del__(self) -> None:
        # As the SDK's own client does: a client made per request is closed with it.
        if not self.is_closed:
            with contextlib.suppress(Exception):
                self.close()


class AsyncMeteredHTTPClient(httpx2.AsyncClient):
    """The async twin of :class:`MeteredHTTPClient`."""

    def __init__(self, meter: Meter, usage_reader: Callable[[], UsageReader]) -> None:
        super().__init__(
            transport=AsyncMeteredTransport(meter, usage_reader),
            follow_redirects=False,
            trust_env=False,
            headers={"Accept-Encoding": ACCEPT_ENCODING},
        )
        self.byok_meter = meter

    def __del__(self) -> None:
        if not self.is_closed:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().create_task(self.aclose())


def make(
    client_class: type[Client],
    meter: Meter,
    url: str,
    kwargs: Mapping[str, Any],
    usage_reader: Callable[[], UsageReader],
    *,
    asynchronous: bool = False,
) -> Client:
    """An SDK client of ``client_class`` with the meter's key, sending through a
    metered HTTP client (an async one for an async SDK client)."""
    http_client = (AsyncMeteredHTTPClient if asynchronous else MeteredHTTPClient)(
        meter, usage_reader
    )
    return client_class(  # type: ignore[call-arg]
        api_key=str(meter.key.value), base_url=url, http_client=http_client, **kwargs
    )


def check_arguments(kwargs: Mapping[str, Any]) -> None:
    given = [name for name in RESERVED_ARGUMENTS if name in kwargs]
    if given:
        raise TypeError(
            f"A metered client sets {', '.join(given)} itself: the key is the one "
            "resolve_api_key() gives, the base URL comes from BYOK['BASE_URLS']."
        )


def meter_of(client: Any) -> Meter | None:
    """The meter behind an SDK client (``None`` once given another HTTP client)."""
    meter = getattr(getattr(client, "_client", None), "byok_meter", None)
    return meter if isinstance(meter, Meter) else None


def request_body(options: Any) -> Mapping[str, Any]:
    """The JSON body the SDK is about to send (``extra_body`` included)."""
    body = options.json_data if isinstance(options.json_data, Mapping) else {}
    if isinstance(options.extra_json, Mapping):
        body = {**body, **options.extra_json}
    return body


def attach_call(
    client: Any, request: httpx2.Request, options: Any, retries_taken: int
) -> httpx2.Request:
    meter = meter_of(client)
    if meter is not None:
        call = meter.call(request.method, request.url.path, request_body(options), retries_taken)
        request.extensions[CALL] = call
    return request


def before(client: Any, request: httpx2.Request) -> None:
    meter, call = meter_of(client), request.extensions.get(CALL)
    if meter is not None and (meter.hooks or meter.reserves) and isinstance(call, Call):
        meter.before(call)


async def abefore(client: Any, request: httpx2.Request) -> None:
    meter, call = meter_of(client), request.extensions.get(CALL)
    if meter is not None and (meter.hooks or meter.reserves) and isinstance(call, Call):
        await meter.abefore(call)
