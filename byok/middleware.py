"""The middleware that scopes a request's database connection to its user's rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase

from byok import rls

GetResponse = Callable[[HttpRequest], Any]


class RowLevelSecurityMiddleware:
    """With ``BYOK["POSTGRES_ROW_LEVEL_SECURITY"]`` on, sets ``byok.user_id`` to the
    request's user on byok's connections before the view and always clears it
    afterwards, even when the view raises, so that a persistent connection
    (``CONN_MAX_AGE``) never carries one request's user into the next. A staff user on
    an admin site's page works under the bypass. Add it after
    ``AuthenticationMiddleware``. Sync and async: under ASGI the variables are set in
    the thread that runs the request's queries.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self.__acall__(request)
        if not rls.enabled():
            return self.get_response(request)  # type: ignore[no-any-return]
        enter_request(request)
        try:
            return self.get_response(request)  # type: ignore[no-any-return]
        finally:
            rls.leave(rls.NOBODY)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if not rls.enabled():
            return await self.get_response(request)  # type: ignore[no-any-return]
        await sync_to_async(enter_request)(request)
        try:
            return await self.get_response(request)  # type: ignore[no-any-return]
        finally:
            await sync_to_async(rls.leave)(rls.NOBODY)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> None:
        """The admin lists and changes every user's rows: its staff get the bypass."""
        match = request.resolver_match
        if rls.enabled() and match is not None and "admin" in match.app_names:
            user = getattr(request, "user", None)
            if user is not None and user.is_active and user.is_staff:
                rls.enter(rls.current()._replace(bypass=True))


def enter_request(request: HttpRequest) -> None:
    """The request's user, or nobody, in force on byok's connections."""
    rls.enter(rls.Scope(rls.user_id(getattr(request, "user", None))))
