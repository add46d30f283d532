"""Everything byok does outside a request, as tasks on Django's tasks framework.

They run on whatever backend ``BYOK["TASK_BACKEND"]`` names in the host's ``TASKS``
(default ``"default"``): Django's default runs each task at once in the process that
enqueued it; a database worker (django-tasks-db), RQ or Celery run them on workers.
Task arguments are stored by the backend, so they are ids and numbers only: never a
credential, never anything a secret could be read from.

Each task is safe to run twice: a re-check batch is claimed once, and a notification
is claimed before it is sent and marked when it is.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from django.db import router, transaction

from byok import audit
from byok.conf import conf
from byok.models import Notification, RecheckRun, UserAPIKey
from byok.notifications import deliver, key_turned_invalid, make_due, reminders_due, unsent
from byok.pruning import (
    delete_in_batches,
    old_audit_events,
    old_notifications,
    old_recheck_runs,
)
from byok.recheck import BATCH_SIZE, WRITE_BATCHES, KeyCheck, plan_run, run_batch
from byok.task_framework import Task, TaskResult, task

logger = logging.getLogger("byok.tasks")

P = ParamSpec("P")
T = TypeVar("T")


def enqueue(job: Task[P, T], *args: P.args, **kwargs: P.kwargs) -> None:
    """Enqueue ``job`` on byok's backend once the current transaction commits (at
    once outside one), so that a worker never looks for a row not yet committed."""
    using = router.db_for_write(Notification)

    def send() -> TaskResult[T]:
        return job.using(backend=conf.TASK_BACKEND).enqueue(*args, **kwargs)

    transaction.on_commit(send, using=using)


# -- Notifications -----------------------------------------------------------------------


def notify(
    user_id: Any,
    kind: str,
    occasion: str,
    *,
    key: UserAPIKey | None = None,
    context: dict[str, Any] | None = None,
) -> Notification | None:
    """Write down a notification and enqueue its delivery; ``None`` if the user turned
    this kind off or it was already due for this occasion. For byok's own kinds and
    any later ones (budget alerts, webhooks): the row, then a task."""
    due = make_due(user_id, kind, occasion, key=key, context=context)
    if due is not None:
        enqueue(send_notification, due.pk)
    return due


@task()
def send_notification(notification_id: int) -> bool:
    """Deliver one notification (the signal, then the e-mail); whether it was sent now."""
    return deliver(notification_id)


@task()
def send_reminders() -> int:
    """Write down the expiry, rotation and unused-key reminders that came due, and
    enqueue their delivery. Run it daily (cron, or the backend's scheduler)."""
    count = 0
    for due in reminders_due():
        enqueue(send_notification, due.pk)
        count += 1
    return count


@task()
def resend_unsent(minutes: int = 5) -> int:
    """Enqueue again the notifications due for more than ``minutes`` and still unsent
    (a mail server was down, a worker died while sending)."""
    ids = list(unsent(older_than=timedelta(minutes=minutes)).values_list("pk", flat=True))
    for notification_id in ids:
        enqueue(send_notification, notification_id)
    return len(ids)


# -- Re-checking keys ----------------------------------------------------------------------


def start_recheck(
    options: dict[str, Any], *, batch_size: int = BATCH_SIZE, concurrency: int = 4
) -> RecheckRun:
    """Plan a run over the keys ``options`` select (:func:`byok.recheck.run_options`)
    and enqueue one :func:`recheck_batch` per batch."""
    run = plan_run(options, batch_size=batch_size, concurrency=concurrency)
    batch_ids = run.batches.order_by("number").values_list("pk", flat=True)
    for batch_id in batch_ids.iterator(chunk_size=WRITE_BATCHES):
        enqueue(recheck_batch, batch_id)
    return run


def notify_if_turned_invalid(check: KeyCheck) -> None:
    """The ``on_check`` of a re-check: tell the owner of a key that stopped working
    (a team's owners and admins, for a team's key)."""
    if check.outcome != "invalid" or check.old_status == "invalid":
        return
    key = UserAPIKey.objects.filter(pk=check.key_id).first()
    if key is None:
        return
    for due in key_turned_invalid(key, check.old_status):
        enqueue(send_notification, due.pk)


@task()
def recheck_batch(batch_id: int) -> dict[str, int] | None:
    """Test one batch of a run's keys, unless another worker already claimed it; the
    number of keys per outcome."""
    with audit.source("task:recheck_batch"):
        report = run_batch(batch_id, on_check=notify_if_turned_invalid)
    return None if report is None else dict(report.counts)


# -- Pruning -------------------------------------------------------------------------------


@task()
def prune(
    *, audit_days: int | None = None, notification_days: int = 365, run_days: int = 90
) -> dict[str, int]:
    """Delete finished re-check runs and notifications of deleted keys past their age,
    and audit events only when ``audit_days`` is given (the trail is the host's to keep).
    """
    deleted = {
        "recheck_runs": delete_in_batches(old_recheck_runs(run_days)),
        "notifications": delete_in_batches(old_notifications(notification_days)),
    }
    if audit_days is not None:
        deleted["audit_events"] = delete_in_batches(old_audit_events(audit_days))
    return deleted


__all__ = [
    "enqueue",
    "notify",
    "notify_if_turned_invalid",
    "prune",
    "recheck_batch",
    "resend_unsent",
    "send_notification",
    "send_reminders",
    "start_recheck",
]
