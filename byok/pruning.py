"""Deleting what byok no longer needs, a batch at a time so that a large table is
never locked for long: old audit events (only when the host asks), delivered
notifications and finished re-check runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from byok.models import AuditEvent, Notification, NotificationKind, RecheckRun

BATCH_SIZE = 1000


def delete_in_batches(rows: QuerySet[Any], batch_size: int = BATCH_SIZE) -> int:
    """Delete ``rows`` by batches of primary keys, each in its own short statement."""
    model: type[Model] = rows.model
    deleted = 0
    while True:
        ids = list(rows.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += model._default_manager.filter(pk__in=ids).delete()[0]


def old_audit_events(days: int) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(created_at__lt=timezone.now() - timedelta(days=days))


def old_notifications(days: int) -> QuerySet[Notification]:
    """Notifications about deleted keys, and budget alerts, delivered more than
    ``days`` ago.

    The others are kept: the row of a notification is what stops it being sent again
    while its occasion lasts (a key still expiring, still unrotated). A budget alert is
    stopped by its budget's row (the threshold it reached in the period).
    """
    return Notification.objects.filter(
        Q(key__deleted_at__isnull=False) | Q(kind=NotificationKind.BUDGET_THRESHOLD),
        sent_at__lt=timezone.now() - timedelta(days=days),
    )


def old_recheck_runs(days: int) -> QuerySet[RecheckRun]:
    """Finished re-check runs older than ``days``, with their batches and back-offs."""
    return RecheckRun.objects.filter(finished_at__lt=timezone.now() - timedelta(days=days))
