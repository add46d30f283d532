"""The team endpoints: the signed-in user's teams, a team's members, usage and keys.

A team the user is not in is a 404 on every route, as a team that does not exist is:
outsiders learn nothing of it. Members read (the keys masked, the members, their
own usage); owners and admins also add, change, test, reveal and remove the team's
keys and see every member's usage. What a member may not do is a 403, except
``reveal/``, a 404 for a member as for an outsider: no secret is there for them.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.debug import sensitive_variables
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from byok import teams
from byok.keys import add_team_api_key
from byok.models import UserAPIKey
from byok.rest import serializers as s
from byok.rest import team_serializers as ts
from byok.rest.schema import (
    OpenApiParameter,
    OpenApiResponse,
    OpenApiTypes,
    extend_schema,
    extend_schema_view,
    schema_class,
)
from byok.rest.views import (
    ERRORS,
    SERVICE_GONE,
    TEST_STATUS,
    THROTTLED,
    APIKeyViewSet,
    RowLevelSecurity,
)
from byok.stats import team_stats_for
from byok.usage import team_usage_for

TEAM_ID = [
    OpenApiParameter(
        "team_pk", OpenApiTypes.STR, OpenApiParameter.PATH, description="The team's id."
    )
]
NO_TEAM = {
    404: OpenApiResponse(s.ErrorSerializer, description="No team of yours has this id."),
}
NO_KEY = {
    404: OpenApiResponse(
        s.ErrorSerializer,
        description="No team of yours has this id, or the team has no key with this id.",
    ),
}
MANAGERS_ONLY = {
    403: OpenApiResponse(
        s.ErrorSerializer,
        description=(
            "Not signed in, no CSRF token, or you are a member of the team but not one of "
            "its owners or admins."
        ),
    ),
}
#: Where a member of the team gets a 403.
MANAGE = {**ERRORS, **MANAGERS_ONLY}
UNREADABLE = {
    409: OpenApiResponse(
        s.ErrorSerializer, description="The key cannot be decrypted, or its service is gone."
    )
}
UPDATED = {
    200: s.TestedKeySerializer,
    **MANAGE,
    **TEST_STATUS,
    **NO_KEY,
    **SERVICE_GONE,
    **THROTTLED,
}

#: The actions of a team key that members may call too.
MEMBERS_READ = frozenset({"list", "retrieve"})


def find_team(user: Any, team_pk: str) -> tuple[Any, str]:
    """The team with this id and ``user``'s role in it; a 404 if they are not in it
    (or there is no such team, or the id is not one)."""
    found = teams.find_team(user, team_pk)
    if found is None:
        raise NotFound(_("No team of yours has this id."))
    return found


class TeamScoped:
    """A view under ``teams/{team_pk}/``: the team in the URL, and the caller's role."""

    request: Any
    kwargs: dict[str, Any]
    team_url_kwarg = "team_pk"

    @property
    def team_and_role(self) -> tuple[Any, str]:
        found: tuple[Any, str] | None = getattr(self, "_team_and_role", None)
        if found is None:
            found = find_team(self.request.user, str(self.kwargs[self.team_url_kwarg]))
            self._team_and_role = found
        return found

    @property
    def team(self) -> Any:
        return self.team_and_role[0]

    @property
    def manages(self) -> bool:
        return self.team_and_role[1] in teams.MANAGERS


@extend_schema_view(
    list=extend_schema(
        operation_id="byok_teams_list",
        summary="Your teams, with your role in each",
        responses={200: ts.TeamSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(
        operation_id="byok_teams_retrieve",
        summary="One of your teams, with your role in it",
        parameters=TEAM_ID,
        responses={200: ts.TeamSerializer, **ERRORS, **NO_TEAM},
    ),
)
class TeamViewSet(RowLevelSecurity, TeamScoped, viewsets.GenericViewSet[Any]):
    """The teams you are in: their members, and the usage of their keys."""

    permission_classes = [IsAuthenticated]
    lookup_url_kwarg = "team_pk"
    lookup_value_regex = "[^/]+"
    pagination_class = None
    filter_backends: list[Any] = []
    schema = schema_class()

    def list(self, request: Request) -> Response:
        mine = teams.adapter().teams_of(request.user)
        return Response(ts.TeamSerializer(mine, many=True).data)

    def retrieve(self, request: Request, team_pk: str) -> Response:
        return Response(ts.TeamSerializer(self.team_and_role).data)

    @extend_schema(
        operation_id="byok_teams_members",
        summary="The team's members, with their roles",
        parameters=TEAM_ID,
        responses={200: ts.MemberSerializer(many=True), **ERRORS, **NO_TEAM},
    )
    @action(detail=True, methods=["get"])
    def members(self, request: Request, team_pk: str) -> Response:
        members = teams.adapter().members_of(self.team)
        return Response(ts.MemberSerializer(members, many=True).data)

    @extend_schema(
        operation_id="byok_teams_usage",
        summary=(
            "Daily usage of the team's keys per member: every member's for owners and "
            "admins, your own for a member"
        ),
        parameters=[*TEAM_ID, s.UsageQuerySerializer],
        responses={200: ts.TeamUsageSerializer, **ERRORS, **NO_TEAM},
    )
    @action(detail=True, methods=["get"])
    def usage(self, request: Request, team_pk: str) -> Response:
        query = s.UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = team_usage_for(
            self.team,
            days=query.validated_data["days"],
            service=query.validated_data.get("service"),
            member=None if self.manages else request.user,
        )
        return Response(ts.TeamUsageSerializer(body).data)

    @extend_schema(
        operation_id="byok_teams_stats",
        summary=(
            "This month's figures of the team's keys: every member's calls for owners and "
            "admins, your own for a member"
        ),
        parameters=TEAM_ID,
        responses={200: s.StatsSerializer, **ERRORS, **NO_TEAM},
    )
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, team_pk: str) -> Response:
        body = team_stats_for(self.team, member=None if self.manages else request.user)
        return Response(s.StatsSerializer(body).data)


def _team_key_schema(name: str, summary: str, **kwargs: Any) -> Any:
    return extend_schema(
        operation_id=f"byok_team_keys_{name}", summary=summary, parameters=TEAM_ID, **kwargs
    )


@extend_schema_view(
    list=_team_key_schema(
        "list",
        "The team's keys, masked",
        responses={200: s.APIKeySerializer(many=True), **ERRORS, **NO_TEAM},
    ),
    retrieve=_team_key_schema(
        "retrieve",
        "One of the team's keys, masked",
        responses={200: s.APIKeySerializer, **ERRORS, **NO_KEY},
    ),
    create=_team_key_schema(
        "create",
        "Store a key for the team (tested first, by default)",
        responses={201: s.TestedKeySerializer, **MANAGE, **TEST_STATUS, **NO_TEAM, **THROTTLED},
    ),
    update=_team_key_schema(
        "update", "Change a team key's settings, or replace its secret", responses=UPDATED
    ),
    partial_update=_team_key_schema(
        "partial_update",
        "Change some of a team key's settings, or replace its secret",
        responses=UPDATED,
    ),
    destroy=_team_key_schema(
        "destroy",
        "Delete a team key (its secret is erased)",
        responses={204: None, **MANAGE, **NO_KEY},
    ),
    retest=_team_key_schema(
        "retest",
        "Test a team key again",
        responses={200: s.TestedKeySerializer, **MANAGE, **NO_KEY, **UNREADABLE, **THROTTLED},
    ),
    reveal=_team_key_schema(
        "reveal",
        "Show a team key's plaintext, to the team's owners and admins (audited, throttled)",
        responses={
            200: s.RevealSerializer,
            **ERRORS,
            403: OpenApiResponse(
                s.ErrorSerializer,
                description="Not signed in, no CSRF token, or BYOK['ALLOW_REVEAL'] is off.",
            ),
            404: OpenApiResponse(
                s.ErrorSerializer,
                description=(
                    "No team of yours has this id, the team has no key with this id, or you "
                    "are a member of the team but not one of its owners or admins."
                ),
            ),
            **UNREADABLE,
            **THROTTLED,
        },
    ),
)
class TeamKeyViewSet(TeamScoped, APIKeyViewSet):
    """A team's keys: its members see them masked; its owners and admins manage them."""

    not_found_message = _lazy("This team has no API key with this id.")

    @classmethod
    def get_extra_actions(cls) -> list[Any]:
        """A stored key's ``test/`` and ``reveal/``; the user-wide routes are not a team's."""
        wanted = {"retest", "reveal"}
        return [found for found in super().get_extra_actions() if found.__name__ in wanted]

    def get_queryset(self) -> QuerySet[UserAPIKey]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return UserAPIKey.objects.none()
        keys = UserAPIKey.objects.for_team(self.team).with_default_flag()
        return keys if self.action in ("retest", "reveal") else keys.masked()

    def check_permissions(self, request: Request) -> None:
        """After the route's own permissions: the caller is in the team, and one of its
        owners or admins unless only reading."""
        super().check_permissions(request)
        if self.action in MEMBERS_READ or self.manages:
            return
        if self.action == "reveal":
            raise NotFound(self.not_found_message)
        raise PermissionDenied(_("Only the team's owners and admins manage its keys."))

    @sensitive_variables()
    def add_key(self, data: dict[str, Any]) -> UserAPIKey:
        """Store the key a valid create asks for, owned by the team in the URL."""
        request = self.request
        return add_team_api_key(
            self.team,
            data["service"],
            data["credentials"],
            actor=request.user,
            nickname=data["nickname"],
            environment=data["environment"],
            test=data["test"],
            is_default=data["is_default"],
            expires_at=data["expires_at"],
            request=request._request,
        )
