"""Metered clients: the official SDK clients, or a ``requests`` session, configured with
the key that serves a user, recording every call they make.

    client = byok.clients.openai(request.user)
    client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    # recorded: the model, its tokens and their cost, against the key that served

The SDKs are optional: ``pip install 'django-byok[openai]'`` or ``[anthropic]``.
This module imports without them; calling a factory without its SDK raises an
``ImportError`` naming the extra to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.views.decorators.debug import sensitive_variables

from byok.clients.hooks import Call, CallHook, CallRecord, Outcome
from byok.clients.resolution import resolve
from byok.clients.session import MeteredSession
from byok.services.registry import registry

if TYPE_CHECKING:
    import anthropic as anthropic_sdk
    import openai as openai_sdk

__all__ = [
    "Call",
    "CallHook",
    "CallRecord",
    "MeteredSession",
    "Outcome",
    "anthropic",
    "async_anthropic",
    "async_openai",
    "openai",
    "session",
]


@sensitive_variables()
def openai(
    user: Any,
    *,
    service: str = "openai",
    environment: str | None = None,
    team: Any = None,
    **kwargs: Any,
) -> openai_sdk.OpenAI:
    """An ``openai.OpenAI`` client with the key that serves ``user`` (theirs, or the
    platform's), recording each call's model and tokens against that key.

    ``kwargs`` go to ``openai.OpenAI`` (``timeout``, ``max_retries``…), except the
    key, the base URL (``BYOK["BASE_URLS"]``) and the HTTP client, which byok sets.
    ``service`` names another service that speaks OpenAI's API (a gateway);
    ``team``, the team the calls are made for (see :func:`byok.resolve_api_key`).
    Raises :class:`~byok.NoAPIKey` when no key serves the user. Under a blocking
    budget each call reserves its estimate first and is refused with
    :class:`~byok.BudgetExceeded` when it does not fit.
    """
    from byok.clients import openai_client, sdk
    from byok.clients.answers import OpenAIUsage

    sdk.check_arguments(kwargs)
    meter, url = resolve(user, service, environment, team)
    return sdk.make(openai_client.MeteredOpenAI, meter, url, kwargs, OpenAIUsage)


@sensitive_variables()
async def async_openai(
    user: Any,
    *,
    service: str = "openai",
    environment: str | None = None,
    team: Any = None,
    **kwargs: Any,
) -> openai_sdk.AsyncOpenAI:
    """The async twin of :func:`openai`: an ``openai.AsyncOpenAI`` (await it)."""
    from byok.clients import openai_client, sdk
    from byok.clients.answers import OpenAIUsage

    sdk.check_arguments(kwargs)
    meter, url = await sync_to_async(resolve)(user, service, environment)
    client = openai_client.AsyncMeteredOpenAI
    return sdk.make(client, meter, url, kwargs, OpenAIUsage, asynchronous=True)


@sensitive_variables()
def anthropic(
    user: Any,
    *,
    service: str = "anthropic",
    environment: str | None = None,
    team: Any = None,
    **kwargs: Any,
) -> anthropic_sdk.Anthropic:
    """An ``anthropic.Anthropic`` client with the key that serves ``user``, recording
    each call's model and tokens (cache reads and writes included) against that key.
    ``kwargs`` go to ``anthropic.Anthropic``, as for :func:`openai`."""
    from byok.clients import anthropic_client, sdk
    from byok.clients.answers import AnthropicUsage

    sdk.check_arguments(kwargs)
    meter, url = resolve(user, service, environment, team)
    return sdk.make(anthropic_client.MeteredAnthropic, meter, url, kwargs, AnthropicUsage)


@sensitive_variables()
async def async_anthropic(
    user: Any,
    *,
    service: str = "anthropic",
    environment: str | None = None,
    team: Any = None,
    **kwargs: Any,
) -> anthropic_sdk.AsyncAnthropic:
    """The async twin of :func:`anthropic`: an ``anthropic.AsyncAnthropic`` (await it)."""
    from byok.clients import anthropic_client, sdk
    from byok.clients.answers import AnthropicUsage

    sdk.check_arguments(kwargs)
    meter, url = await sync_to_async(resolve)(user, service, environment)
    client = anthropic_client.AsyncMeteredAnthropic
    return sdk.make(client, meter, url, kwargs, AnthropicUsage, asynchronous=True)


@sensitive_variables()
def session(
    user: Any, service: str, *, environment: str | None = None, team: Any = None
) -> MeteredSession:
    """A ``requests`` session for ``service``'s API with the key that serves ``user``:
    its requests take paths relative to the service's base URL, carry the credential
    as the service declares (:attr:`~byok.services.base.Service.authentication`),
    and are each recorded as one call, at the service's estimate per call.

    Raises :class:`~byok.NoAPIKey` when no key serves the user, ``ValueError`` when
    the credential lacks a field its authentication needs.
    """
    definition = registry.get(service)
    meter, url = resolve(user, service, environment, team)
    return MeteredSession(meter, url, definition.authenticate(meter.key.value))
