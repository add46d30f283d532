"""What a user's keys add up to: the figures the dashboard, the usage page and the
REST API's ``stats/``, ``usage/`` and ``services/`` all show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from byok.models import KeyUsage, PlatformUsage, UserAPIKey
from byok.services.registry import registry


@dataclass(frozen=True)
class Stats:
    connected_services: int
    available_services: int
    #: This calendar month, on the user's own keys.
    estimated_monthly_cost: Decimal
    #: This calendar month, on the user's keys and the platform's.
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


def keys_per_service(user: Any) -> dict[str, dict[str, int]]:
    """Service id to ``{"keys": stored, "active": active}``, in one query."""
    rows = (
        UserAPIKey.objects.for_user(user)
        .values("service")
        .annotate(keys=Count("pk"), active=Count("pk", filter=Q(is_active=True)))
        .order_by()
    )
    return {row["service"]: {"keys": row["keys"], "active": row["active"]} for row in rows}


@dataclass(frozen=True)
class UsageWindow:
    start: date
    end: date
    days: int
    service: str | None
    #: One per (date, service, source): ``calls``, ``units``, ``cost``, sorted.
    rows: list[dict[str, Any]]


def usage_for(user: Any, *, days: int = 30, service: str | None = None) -> UsageWindow:
    """Daily usage over the last ``days`` days (today included), by whose key served it."""
    end = timezone.localdate()
    start = end - timedelta(days=days - 1)
    own = KeyUsage.objects.filter(key__user=user, date__gte=start)
    platform = PlatformUsage.objects.filter(user=user, date__gte=start)
    if service:
        own, platform = own.filter(key__service=service), platform.filter(service=service)
    totals = {"calls": Sum("calls"), "units": Sum("units"), "cost": Sum("cost")}
    rows = [
        {**row, "source": "user"}
        for row in own.values("date", service=F("key__service")).annotate(**totals).order_by()
    ] + [
        {**row, "source": "platform"}
        for row in platform.values("date", "service").annotate(**totals).order_by()
    ]
    rows.sort(key=lambda row: (row["date"], row["service"], row["source"]))
    return UsageWindow(start, end, days, service or None, rows)
