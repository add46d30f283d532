"""What the team endpoints answer. A team's and a user's id are strings, whatever the
type of the model's primary key (a host's team model may have its own)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from byok.models import TeamRole
from byok.rest.serializers import NamedChoiceField, UsageSerializer


def role_field(**kwargs: Any) -> NamedChoiceField:
    return NamedChoiceField(choices=TeamRole.choices, enum_name="TeamRole", **kwargs)


class TeamSerializer(serializers.Serializer[Any]):
    """One of the signed-in user's teams, with their role in it (from ``(team, role)``)."""

    id = serializers.SerializerMethodField(help_text=_("The team's id, for the team's routes."))
    name = serializers.SerializerMethodField()
    role = role_field(help_text=_("Your role: owners and admins manage the team's keys."))
    can_manage = serializers.SerializerMethodField(
        help_text=_("Whether you add, change, test, reveal and remove the team's keys.")
    )

    def to_representation(self, instance: tuple[Any, str]) -> dict[str, Any]:
        team, role = instance
        return super().to_representation({"team": team, "role": role})

    def get_id(self, row: dict[str, Any]) -> str:
        return str(row["team"].pk)

    def get_name(self, row: dict[str, Any]) -> str:
        return str(row["team"])

    def get_can_manage(self, row: dict[str, Any]) -> bool:
        return row["role"] in (TeamRole.OWNER, TeamRole.ADMIN)


class MemberSerializer(serializers.Serializer[Any]):
    """A member of a team, with their role (from ``(user, role)``)."""

    id = serializers.SerializerMethodField(help_text=_("The user's id."))
    username = serializers.SerializerMethodField(
        help_text=_("What the user signs in with (the user model's USERNAME_FIELD).")
    )
    role = role_field()

    def to_representation(self, instance: tuple[Any, str]) -> dict[str, Any]:
        user, role = instance
        return super().to_representation({"user": user, "role": role})

    def get_id(self, row: dict[str, Any]) -> str:
        return str(row["user"].pk)

    def get_username(self, row: dict[str, Any]) -> str:
        return str(row["user"].get_username())


class MemberUsageRowSerializer(serializers.Serializer[Any]):
    date = serializers.DateField()
    service = serializers.CharField()
    user = serializers.CharField(
        allow_null=True, help_text=_("Who made the calls: a user's id (null: account deleted).")
    )
    calls = serializers.IntegerField()
    units = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=6)


class TeamUsageSerializer(UsageSerializer):
    """Daily usage of a team's keys, per member (one's own rows only, for a member)."""

    rows = MemberUsageRowSerializer(many=True)  # type: ignore[assignment]
