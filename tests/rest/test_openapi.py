"""byok's AutoSchema: every choice set of its serializers is a named component."""

import pytest
from drf_spectacular.drainage import GENERATOR_STATS, reset_generator_stats
from drf_spectacular.plumbing import ComponentRegistry
from rest_framework import serializers

from byok.rest.openapi import ByokAutoSchema
from byok.rest.serializers import NamedChoiceField


class First(serializers.Serializer):
    dry_run_mode = serializers.ChoiceField(choices=["full", "partial"])
    kind = NamedChoiceField(choices=["a", "b"], enum_name="Letter")


class Second(serializers.Serializer):
    dry_run_mode = serializers.ChoiceField(choices=["none"])


@pytest.fixture
def schema():
    auto = ByokAutoSchema()
    auto.registry = ComponentRegistry()
    reset_generator_stats()
    yield auto
    reset_generator_stats()


def mapped(schema, serializer, name):
    return schema._map_serializer_field(serializer.fields[name], "response")


def test_a_choice_set_is_named_after_its_field_or_its_enum_name(schema):
    assert mapped(schema, First(), "dry_run_mode") == {
        "$ref": "#/components/schemas/ByokDryRunModeEnum"
    }
    assert mapped(schema, First(), "kind") == {"$ref": "#/components/schemas/ByokLetterEnum"}
    components = schema.registry.build({})["schemas"]
    assert components["ByokLetterEnum"] == {
        "enum": ["a", "b"],
        "type": "string",
        "description": "* `a` - a\n* `b` - b",
    }


def test_two_choice_sets_under_one_name_are_reported(schema, capsys):
    mapped(schema, First(), "dry_run_mode")
    mapped(schema, Second(), "dry_run_mode")
    assert GENERATOR_STATS
    assert "byok names two different choice sets ByokDryRunModeEnum" in capsys.readouterr().err


def test_a_choice_field_outside_a_serializer_stays_inline(schema):
    """As django-filter's query parameters are: no component, the enum in place."""
    field = serializers.ChoiceField(choices=["x", "y"])
    field.field_name = "status"
    assert schema._map_serializer_field(field, "request")["enum"] == ["x", "y"]
    assert schema.registry.build({}) == {}
