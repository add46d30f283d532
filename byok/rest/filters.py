"""Filters for the key list: service, category, environment, status and is_active."""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters import rest_framework as filters

from byok.models import Environment, KeyStatus, UserAPIKey
from byok.services.base import CATEGORIES
from byok.services.registry import registry


class APIKeyFilter(filters.FilterSet):  # type: ignore[misc]
    # Free text, so that keys of a service the site has since removed can be found.
    service = filters.CharFilter(max_length=64)
    category = filters.ChoiceFilter(choices=list(CATEGORIES.items()), method="in_category")
    environment = filters.ChoiceFilter(choices=Environment.choices)
    status = filters.ChoiceFilter(choices=KeyStatus.choices)
    # A typed choice rather than BooleanFilter, which quietly ignores "is_active=perhaps".
    is_active = filters.TypedChoiceFilter(
        choices=[(value, value) for value in ("true", "false", "True", "False", "1", "0")],
        coerce=lambda value: value in ("true", "True", "1"),
    )

    class Meta:
        model = UserAPIKey
        fields = ["service", "category", "environment", "status", "is_active"]

    def in_category(
        self, queryset: QuerySet[UserAPIKey], name: str, value: str
    ) -> QuerySet[UserAPIKey]:
        return queryset.filter(service__in=[s.id for s in registry if s.category == value])
