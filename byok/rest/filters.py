"""Filters for the key list: service, category, environment, status and is_active."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.db.models import QuerySet
from django_filters import rest_framework as filters
from rest_framework.request import Request

from byok.models import Environment, KeyStatus, UserAPIKey
from byok.rest.serializers import SERVICE_ID_PATTERN
from byok.services.base import CATEGORIES
from byok.services.registry import registry


class APIKeyFilter(filters.FilterSet):  # type: ignore[misc]
    # Any service id, so that keys of a service the site has since removed can be found.
    service = filters.CharFilter(
        max_length=64, strip=False, validators=[RegexValidator(SERVICE_ID_PATTERN)]
    )
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


class QueryFilterBackend(filters.DjangoFilterBackend):  # type: ignore[misc]
    """django-filter, skipped when the query string asks for no filter at all.

    The filterset builds and validates a form on every request, which is most of
    the list's cost; the result without any filter is the queryset as it is.
    """

    #: The browsable API's filter form, from byok's templates: django-filter's own
    #: are found only when ``django_filters`` is in INSTALLED_APPS, which byok does
    #: not ask of its hosts (and their crispy variant needs crispy-forms' tags).
    template = "byok/rest/filter_form.html"

    def filter_queryset(
        self, request: Request, queryset: QuerySet[UserAPIKey], view: Any
    ) -> QuerySet[UserAPIKey]:
        filterset_class = self.get_filterset_class(view, queryset)
        asked = request.query_params.keys()
        if filterset_class is None or not asked & filterset_class.base_filters.keys():
            return queryset
        return super().filter_queryset(request, queryset, view)  # type: ignore[no-any-return]
