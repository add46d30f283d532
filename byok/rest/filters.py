"""Filters for the key list: service, category, environment, status and is_active."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet
from django_filters import rest_framework as filters

from byok.models import Environment, KeyStatus, UserAPIKey
from byok.services.base import CATEGORIES
from byok.services.registry import registry


class ServiceChoices:
    """The registry's services as choices, read again each time they are listed.

    Not a callable, so that the OpenAPI schema lists them too; copied as itself,
    since django-filter deep-copies its filters for every request.
    """

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(registry.as_choices())

    def __len__(self) -> int:
        return len(registry.as_choices())

    def __getitem__(self, index: int) -> tuple[str, str]:
        return registry.as_choices()[index]

    def __deepcopy__(self, memo: dict[int, object]) -> ServiceChoices:
        return self


class APIKeyFilter(filters.FilterSet):  # type: ignore[misc]
    service = filters.ChoiceFilter(choices=ServiceChoices())
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
