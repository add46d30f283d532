"""The OpenAPI schema of byok's endpoints alone (needs drf-spectacular)."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from byok import __version__
from byok.models import Environment, KeyStatus
from byok.probes import ProbeStatus


def empty_query_values_mean_any(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Document what DRF and django-filter do: ``?service=`` is the same as no ``service``."""
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
    return result


class SchemaView(SpectacularAPIView):
    """Documents the endpoints this URLconf is mounted with, at the prefix it is mounted at."""

    custom_settings = {
        "TITLE": "django-byok API",
        "DESCRIPTION": "Your API keys for third-party services: stored encrypted, shown masked.",
        "VERSION": __version__,
        "POSTPROCESSING_HOOKS": [
            "drf_spectacular.hooks.postprocess_schema_enums",
            "byok.rest.schema_view.empty_query_values_mean_any",
        ],
        "ENUM_NAME_OVERRIDES": {
            "KeyStatusEnum": KeyStatus.choices,
            "TestStatusEnum": [status.value for status in ProbeStatus],
            "EnvironmentEnum": Environment.choices,
        },
    }

    def handle_exception(self, exc: Exception) -> Response:
        """Errors in JSON, like the rest of the API (not in the schema's YAML)."""
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return response

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        from byok.rest.urls import router

        route = request.resolver_match.route if request.resolver_match else "schema/"
        prefix = route[: -len("schema/")] if route.endswith("schema/") else ""
        self.patterns: list[URLPattern | URLResolver] = [path(prefix, include(router.urls))]
        return super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call,no-any-return]
