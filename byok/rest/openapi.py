"""How byok's views describe themselves to drf-spectacular (needs drf-spectacular).

The same description serves byok's own ``schema/`` and a host's schema of all its
URLs, so nothing here may depend on settings a host also uses or on which schema is
generated first:

- every component is named ``Byok…``, so none collides with a host's own;
- every choice set is its own named component (``ByokKeyStatusEnum``) instead of an
  inline ``enum``: drf-spectacular's enum hook only names inline enums, from field
  names shared by the whole site (``status``), through ``ENUM_NAME_OVERRIDES``, which
  it caches from the first schema it generates;
- every operation is tagged ``api-keys``, whatever ``SCHEMA_PATH_PREFIX`` is.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.drainage import has_override, warn
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, append_meta, build_choice_field
from drf_spectacular.utils import Direction
from rest_framework import serializers

PREFIX = "Byok"
TAG = "api-keys"


def enum_name(field: serializers.ChoiceField) -> str:
    """``Byok<Name>Enum``, after the field's ``enum_name`` or else its field name."""
    name = getattr(field, "enum_name", None) or "".join(
        part.capitalize() for part in str(field.field_name).split("_")
    )
    return f"{PREFIX}{name}Enum"


class ByokAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema with byok's names, tag and query parameters."""

    def get_tags(self) -> list[str]:
        return [TAG]

    def get_serializer_name(self, serializer: Any, direction: Direction) -> str:
        return PREFIX + str(super().get_serializer_name(serializer, direction))

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """Document what DRF and django-filter do: ``?service=`` is the same as no ``service``."""
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        for parameter in (operation or {}).get("parameters", []):
            if parameter.get("in") == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        return operation

    def _map_serializer_field(
        self, field: Any, direction: Direction, bypass_extensions: bool = False
    ) -> Any:
        if (
            not isinstance(field, serializers.ChoiceField)
            or isinstance(field, serializers.MultipleChoiceField)
            or has_override(field, "field")
            # A query parameter's (django-filter's) choices stay inline: no hook names those.
            or not isinstance(getattr(field, "parent", None), serializers.BaseSerializer)
        ):
            return super()._map_serializer_field(  # type: ignore[no-untyped-call]
                field, direction, bypass_extensions
            )
        enum = build_choice_field(field)
        enum.pop("x-spec-enum-id", None)
        component = ResolvedComponent(  # type: ignore[no-untyped-call]
            name=enum_name(field),
            type=ResolvedComponent.SCHEMA,
            schema=enum,
            object=enum_name(field),
        )
        if component in self.registry and self.registry[component].schema != enum:
            warn(f"byok names two different choice sets {component.name}.")
        self.registry.register_on_missing(component)
        meta = self._get_serializer_field_meta(field, direction)  # type: ignore[no-untyped-call]
        return append_meta(component.ref, meta)
