"""What a user's keys (or a team's) add up to: the figures the dashboard and the REST
API's ``stats/`` and ``services/`` show."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from byok.models import KeyUsage, PlatformUsage, UserAPIKey
from byok.services.registry import registry


@dataclass(frozen=True)
class Stats:
    connected_services: int
    available_services: int
    #: This calendar month, on the user's own keys (a team's: on its keys).
    estimated_monthly_cost: Decimal
    #: This calendar month, on the user's keys and the platform's (a team's: on its keys).
    total_api_calls: int
    month: str


def stats_for(user: Any) -> Stats:
    """Three queries, whatever the number of keys."""
    first_day = timezone.localdate().replace(day=1)
    connected = (
        UserAPIKey.objects.for_user(user)
        .active()
        .filter(service__in=[service.id for service in registry])
        .values("service")
        .distinct()
        .count()
    )
    own = KeyUsage.objects.filter(key__user=user, date__gte=first_day).aggregate(
        cost=Sum("cost"), calls=Sum("calls")
    )
    platform = PlatformUsage.objects.filter(user=user, date__gte=first_day).aggregate(
        calls=Sum("calls")
    )
    return Stats(
        connected_services=connected,
        available_services=len(registry.all()),
        estimated_monthly_cost=own["cost"] or Decimal("0"),
        total_api_calls=(own["calls"] or 0) + (platform["calls"] or 0),
        month=first_day.strftime("%Y-%m"),
    )


def team_stats_for(team: Any, *, member: Any = None) -> Stats:
    """The team's figures: its connected services, and this month's cost and calls on
    its keys, every member's or ``member``'s alone. Two queries."""
    first_day = timezone.localdate().replace(day=1)
    connected = (
        UserAPIKey.objects.for_team(team)
        .active()
        .filter(service__in=[service.id for service in registry])
        .values("service")
        .distinct()
        .count()
    )
    usage = KeyUsage.objects.filter(key__team=team, date__gte=first_day)
    if member is not None:
        usage = usage.filter(user=member)
    totals = usage.aggregate(cost=Sum("cost"), calls=Sum("calls"))
    return Stats(
        connected_services=connected,
        available_services=len(registry.all()),
        estimated_monthly_cost=totals["cost"] or Decimal("0"),
        total_api_calls=totals["calls"] or 0,
        month=first_day.strftime("%Y-%m"),
    )


def keys_per_service(user: Any) -> dict[str, dict[str, int]]:
    """Service id to ``{"keys": stored, "active": active}``, in one query."""
    rows = (
        UserAPIKey.objects.for_user(user)
        .values("service")
        .annotate(keys=Count("pk"), active=Count("pk", filter=Q(is_active=True)))
        .order_by()
    )
    return {row["service"]: {"keys": row["keys"], "active": row["active"]} for row in rows}
