"""The OpenAPI schema of byok's endpoints alone (needs drf-spectacular)."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from byok import __version__
from byok.rest.routers import router
from byok.rest.schema import extend_schema


class SchemaView(SpectacularAPIView):
    """Documents the endpoints this URLconf is mounted with, at the prefix it is mounted at.

    Only the title, description and version are its own. Names come from byok's
    AutoSchema, not from ``ENUM_NAME_OVERRIDES``: drf-spectacular caches those from
    whichever schema is generated first, so overrides patched in here would leak
    into the host's schema, or the host's into this one.
    """

    custom_settings = {
        "TITLE": "django-byok API",
        "DESCRIPTION": "Your API keys for third-party services: stored encrypted, shown masked.",
        "VERSION": __version__,
    }

    def handle_exception(self, exc: Exception) -> Response:
        """Errors in JSON, like the rest of the API (not in the schema's YAML)."""
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return response

    @extend_schema(exclude=True)  # not an operation of the host's schema either
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        route = request.resolver_match.route if request.resolver_match else "schema/"
        prefix = route[: -len("schema/")] if route.endswith("schema/") else ""
        self.patterns: list[URLPattern | URLResolver] = [path(prefix, include(router.urls))]
        return super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call,no-any-return]
