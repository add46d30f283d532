"""``budgets/``: the signed-in user's budgets, the site's included (read-only), and their
own, which they set, change and remove through :func:`byok.budgets.set_budget` and
:func:`~byok.budgets.remove_budget`, audited like every other change.

Another user's budget is a 404; a budget the site imposed (or one on a team's keys) is
visible, and changing or removing it is a 403.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from rest_framework import status, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from byok.budgets import (
    Listed,
    budgets_for,
    editable,
    parse_thresholds,
    remove_budget,
    set_budget,
)
from byok.models import MAX_ID, Budget, BudgetSource
from byok.rest.budget_serializers import (
    BudgetChangeSerializer,
    BudgetInputSerializer,
    BudgetSerializer,
)
from byok.rest.schema import (
    OpenApiParameter,
    OpenApiResponse,
    OpenApiTypes,
    extend_schema,
    extend_schema_view,
    schema_class,
)
from byok.rest.serializers import ErrorSerializer
from byok.rest.views import ERRORS, FieldErrors, RowLevelSecurity

BUDGET_ID = [
    OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The budget's id.")
]
NOT_YOURS = {404: OpenApiResponse(ErrorSerializer, description="No such budget of yours.")}
SITE_IMPOSED = {
    403: OpenApiResponse(
        ErrorSerializer,
        description=(
            "Not signed in, no CSRF token, or the budget is the site's (or on a team's "
            "keys): you cannot change or delete it."
        ),
    )
}


@extend_schema_view(
    list=extend_schema(
        operation_id="byok_budgets_list",
        summary="Your budgets, the site's included, with what each spent this period",
        responses={200: BudgetSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(
        operation_id="byok_budgets_retrieve",
        parameters=BUDGET_ID,
        summary="One of your budgets",
        responses={200: BudgetSerializer, **ERRORS, **NOT_YOURS},
    ),
    create=extend_schema(
        operation_id="byok_budgets_create",
        summary="Set a budget of your own (or change the one with this service, "
        "applies_to and period)",
        request=BudgetInputSerializer,
        responses={
            201: BudgetSerializer,
            200: OpenApiResponse(
                BudgetSerializer,
                description="You had a budget of this service, applies_to and period: changed.",
            ),
            **ERRORS,
        },
    ),
    partial_update=extend_schema(
        operation_id="byok_budgets_partial_update",
        parameters=BUDGET_ID,
        summary="Change a budget of yours: its limit, action or alert thresholds",
        request=BudgetInputSerializer,
        responses={200: BudgetSerializer, **ERRORS, **SITE_IMPOSED, **NOT_YOURS},
    ),
    destroy=extend_schema(
        operation_id="byok_budgets_destroy",
        parameters=BUDGET_ID,
        summary="Delete a budget of yours",
        responses={204: None, **ERRORS, **SITE_IMPOSED, **NOT_YOURS},
    ),
)
class BudgetViewSet(RowLevelSecurity, FieldErrors, viewsets.GenericViewSet[Budget]):
    """Spending limits: yours, and the site's. Only yours can be changed."""

    serializer_class = BudgetSerializer
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    filter_backends: list[Any] = []
    pagination_class = None
    lookup_value_regex = "[^/]+"
    schema = schema_class()

    def get_queryset(self) -> QuerySet[Budget]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Budget.objects.none()
        return Budget.objects.for_user(self.request.user)

    def budget_id(self) -> int:
        value = str(self.kwargs[self.lookup_field])
        if not value.isascii() or not value.isdigit() or not 0 < int(value) <= MAX_ID:
            raise NotFound(_("No budget of yours has this id."))
        return int(value)

    def listed(self, budget_id: int) -> Listed:
        for listed in budgets_for(self.request.user):
            if listed.state.id == budget_id:
                return listed
        raise NotFound(_("No budget of yours has this id."))

    def own_budget(self) -> Budget:
        """The budget the URL names, if the user may change it."""
        budget = self.get_queryset().filter(pk=self.budget_id()).first()
        if budget is None:
            raise NotFound(_("No budget of yours has this id."))
        if not editable(budget):
            raise PermissionDenied(
                _("This budget was set by the site: you cannot change or delete it.")
                if budget.source == BudgetSource.SITE or budget.default_name
                else _("This budget is on a team's keys: you cannot change or delete it.")
            )
        return budget

    def list(self, request: Request) -> Response:
        return Response(BudgetSerializer(budgets_for(request.user), many=True).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(BudgetSerializer(self.listed(self.budget_id())).data)

    def create(self, request: Request) -> Response:
        serializer = BudgetInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        identity = {
            "service": data["service"] or "",
            "applies_to": data["applies_to"],
            "period": data["period"],
        }
        mine = self.get_queryset().filter(team=None, source=BudgetSource.USER, default_name="")
        existed = mine.filter(**identity).exists()
        budget = set_budget(
            request.user,
            **{**data, "service": data["service"] or None},
            actor=request.user,
            request=request._request,
        )
        answer = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        return Response(BudgetSerializer(self.listed(budget.pk)).data, status=answer)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        budget = self.own_budget()
        serializer = BudgetChangeSerializer(data=request.data, budget=budget)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        set_budget(
            request.user,
            limit=data.get("limit", budget.limit),
            period=budget.period,
            service=budget.service or None,
            applies_to=budget.applies_to,
            action=data.get("action", budget.action),
            alert_at=data.get("alert_at", parse_thresholds(budget.alert_at or "")),
            actor=request.user,
            request=request._request,
        )
        return Response(BudgetSerializer(self.listed(budget.pk)).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        remove_budget(self.own_budget(), actor=request.user, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
