"""drf-spectacular when it is installed, harmless stand-ins when it is not.

drf-spectacular is an optional extra (``django-byok[openapi]``): the API works
without it, and gains an OpenAPI schema with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "SPECTACULAR",
    "OpenApiExample",
    "OpenApiParameter",
    "OpenApiResponse",
    "OpenApiTypes",
    "extend_schema",
    "extend_schema_field",
    "extend_schema_view",
    "inline_serializer",
    "schema_class",
]

try:
    import drf_spectacular  # noqa: F401
except ImportError:  # pragma: no cover - exercised in a subprocess by test_schema
    SPECTACULAR = False
else:
    SPECTACULAR = True

# Only whether drf-spectacular is there decides: an error in what imports it must show.
if SPECTACULAR or TYPE_CHECKING:
    from drf_spectacular import utils as _spectacular
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import (
        OpenApiExample,
        OpenApiParameter,
        OpenApiResponse,
        extend_schema_field,
        extend_schema_view,
        inline_serializer,
    )

    from byok.rest.openapi import ByokAutoSchema

    def extend_schema(*args: Any, **kwargs: Any) -> Callable[[F], F]:
        """drf-spectacular's decorator, based on byok's AutoSchema.

        Its decorator otherwise builds on DRF's DEFAULT_SCHEMA_CLASS, which a host
        that does not use drf-spectacular leaves at DRF's own, incompatible one.
        """
        decorate = _spectacular.extend_schema(*args, **kwargs)

        def decorator(function: F) -> F:
            if getattr(function, "schema", None) is None and not getattr(
                function, "kwargs", {}
            ).get("schema"):
                function.schema = ByokAutoSchema  # type: ignore[attr-defined]
            return decorate(function)

        return decorator
else:  # pragma: no cover - exercised in a subprocess by test_schema
    ByokAutoSchema = None

    def extend_schema(*args: Any, **kwargs: Any) -> Callable[[F], F]:
        return lambda function: function

    def extend_schema_view(**kwargs: Any) -> Callable[[F], F]:
        return lambda view: view

    def extend_schema_field(*args: Any, **kwargs: Any) -> Callable[[F], F]:
        return lambda field: field

    class _AnyAttribute(type):
        """``OpenApiParameter.PATH`` and the like, read on the class itself."""

        def __getattr__(cls, name: str) -> Any:
            return None

    class _Anything(metaclass=_AnyAttribute):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __getattr__(self, name: str) -> Any:
            return None

    OpenApiExample = OpenApiParameter = OpenApiResponse = _Anything
    OpenApiTypes = _Anything()

    def inline_serializer(*args: Any, **kwargs: Any) -> None:
        return None


def schema_class() -> Any:
    """byok's AutoSchema for its views, whatever DEFAULT_SCHEMA_CLASS the host set."""
    return ByokAutoSchema() if SPECTACULAR else None
