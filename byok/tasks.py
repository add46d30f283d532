"""Everything byok does outside a request, as tasks on Django's tasks framework.

They run on whatever backend ``BYOK["TASK_BACKEND"]`` names in the host's ``TASKS``
(default ``"default"``): Django's default runs each task at once in the process that
enqueued it; a database worker (django-tasks-db), RQ or Celery run them on workers.
Task arguments are stored by the backend, so they are ids and numbers only (and a
webhook's URL and event): never a credential, never a webhook's secret, never
anything a secret could be read from.

Each task is safe to run twice: a re-check batch is claimed once, and a notification
is claimed before it is sent and marked when it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from django.db import router, transaction
from django.utils import timezone

from byok import audit, webhooks
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
from byok.rls import bypassing
from byok.task_framework import Task, TaskResult, task, task_backends

logger = logging.getLogger("byok.tasks")

P = ParamSpec("P")
T = TypeVar("T")


def enqueue(job: Task[P, T], *args: P.args, **kwargs: P.kwargs) -> None:
    """Enqueue ``job`` on byok's backend once the current transaction commits (at
    once outside one), so that a worker never looks for a row not yet committed."""
    transaction.on_commit(_sender(job, args, kwargs), using=router.db_for_write(Notification))


def enqueue_quietly(job: Task[P, T], *args: P.args, **kwargs: P.kwargs) -> None:
    """:func:`enqueue`, but a backend that refuses the task is logged, not raised: for
    what a metered call starts, which must never fail because of it."""
    transaction.on_commit(
        _sender(job, args, kwargs), using=router.db_for_write(Notification), robust=True
    )


def _sender(job: Task[P, T], args: Any, kwargs: Any) -> Callable[[], TaskResult[T]]:
    def send() -> TaskResult[T]:
        return job.using(backend=conf.TASK_BACKEND).enqueue(*args, **kwargs)

    return send


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
    any later ones: the row, then a task. A backend that refuses the task is logged
    (:func:`resend_unsent` finds the row later), never raised."""
    due = make_due(user_id, kind, occasion, key=key, context=context)
    if due is not None:
        enqueue_quietly(send_notification, due.pk)
    return due


@task()
@bypassing
def send_notification(notification_id: int) -> bool:
    """Deliver one notification (the signal, then the e-mail); whether it was sent now."""
    return deliver(notification_id)


@task()
@bypassing
def send_reminders() -> int:
    """Write down the expiry, rotation and unused-key reminders that came due, and
    enqueue their delivery. Run it daily (cron, or the backend's scheduler)."""
    count = 0
    for due in reminders_due():
        enqueue(send_notification, due.pk)
        count += 1
    return count


@task()
@bypassing
def resend_unsent(minutes: int = 5) -> int:
    """Enqueue again the notifications due for more than ``minutes`` and still unsent
    (a mail server was down, a worker died while sending)."""
    ids = list(unsent(older_than=timedelta(minutes=minutes)).values_list("pk", flat=True))
    for notification_id in ids:
        enqueue(send_notification, notification_id)
    return len(ids)


# -- Webhooks ------------------------------------------------------------------------------


def announce(name: str, occasion: str, data: dict[str, Any]) -> None:
    """Post event ``name`` to every webhook that wants it, each by its own task, once
    the current transaction commits. ``occasion`` makes the event's id."""
    hooks = webhooks.subscribed(name)
    if hooks:
        payload = webhooks.event(name, occasion, data)
        for hook in hooks:
            enqueue_quietly(send_webhook, hook.url, payload)


@task()
def send_webhook(url: str, payload: dict[str, Any], attempt: int = 1) -> bool:
    """One attempt at posting ``payload`` to the webhook at ``url``; whether it was
    delivered. A failed attempt enqueues the next, after ``WEBHOOK_RETRY_DELAY``
    seconds doubled at each attempt, up to ``WEBHOOK_MAX_ATTEMPTS``; retrying needs a
    backend that can defer a task (the immediate backend makes one attempt)."""
    hook = webhooks.find(url, payload["event"])
    if hook is None:
        return False  # taken out of the settings since the event
    failure = webhooks.post(hook, payload)
    if failure is None:
        return True
    backend = task_backends[conf.TASK_BACKEND]
    if failure.final or attempt >= conf.WEBHOOK_MAX_ATTEMPTS or not backend.supports_defer:
        webhooks.logger.warning(
            "Webhook %s gave up on %s after %d attempts: %s",
            hook.where,
            payload["id"],
            attempt,
            failure.reason,
        )
        return False
    delay = webhooks.retry_delay(attempt)
    webhooks.logger.info(
        "Webhook %s failed on %s (attempt %d: %s); retrying in %.0f s",
        hook.where,
        payload["id"],
        attempt,
        failure.reason,
        delay,
    )
    run_after = timezone.now() + timedelta(seconds=delay)
    send_webhook.using(backend=conf.TASK_BACKEND, run_after=run_after).enqueue(
        url, payload, attempt + 1
    )
    return False


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
@bypassing
def recheck_batch(batch_id: int) -> dict[str, int] | None:
    """Test one batch of a run's keys, unless another worker already claimed it; the
    number of keys per outcome."""
    with audit.source("task:recheck_batch"):
        report = run_batch(batch_id, on_check=notify_if_turned_invalid)
    return None if report is None else dict(report.counts)


# -- Pruning -------------------------------------------------------------------------------


@task()
@bypassing
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
    "announce",
    "enqueue",
    "enqueue_quietly",
    "notify",
    "notify_if_turned_invalid",
    "prune",
    "recheck_batch",
    "resend_unsent",
    "send_notification",
    "send_reminders",
    "send_webhook",
    "start_recheck",
]
