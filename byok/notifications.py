"""Telling a key's owner what they should know: a key stopped working, expires soon,
is older than the rotation policy or has not been used for a long time.

A notification is first written down (:func:`make_due`), then delivered
(:func:`deliver`), by a task: the row says it is due before anything is sent, so a
mail server that fails loses nothing, and the unique (user, kind, occasion) lets
each one happen once, however many workers notice it at the same time. Delivery
sends the ``notification`` signal and an e-mail from overridable templates
(``byok/email/<kind>_subject.txt``, ``<kind>.txt`` and, if present, ``<kind>.html``).
Nothing here ever holds a secret: the messages name a key by its service, nickname
and masked value.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, router, transaction
from django.db.models import Q
from django.template.exceptions import TemplateDoesNotExist
from django.template.loader import render_to_string, select_template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from byok import teams
from byok.conf import conf
from byok.models import (
    Budget,
    Environment,
    KeyStatus,
    Notification,
    NotificationKind,
    NotificationOptOut,
    UserAPIKey,
)
from byok.signals import notification
from byok.teams import MANAGERS

logger = logging.getLogger("byok.notifications")

#: A claim older than this is taken to be a worker that died while sending.
CLAIM_TIMEOUT = timedelta(minutes=10)


def is_wanted(user_id: Any, kind: str) -> bool:
    """Whether the user still wants this kind of notification."""
    return not NotificationOptOut.objects.filter(user_id=user_id, kind=kind).exists()


def set_wanted(user: Any, kinds: Iterable[str]) -> None:
    """Keep exactly ``kinds`` on for ``user``; turn the others off."""
    wanted = set(kinds)
    unknown = wanted - set(NotificationKind.values)
    if unknown:
        raise ValueError(f"Unknown notification kinds: {', '.join(sorted(unknown))}.")
    with transaction.atomic(using=router.db_for_write(NotificationOptOut)):
        NotificationOptOut.objects.filter(user=user, kind__in=wanted).delete()
        NotificationOptOut.objects.bulk_create(
            [
                NotificationOptOut(user=user, kind=kind)
                for kind in NotificationKind.values
                if kind not in wanted
            ],
            ignore_conflicts=True,
        )


def wanted_kinds(user: Any) -> list[str]:
    """The kinds the user gets, in :class:`~byok.models.NotificationKind`'s order."""
    off = set(NotificationOptOut.objects.filter(user=user).values_list("kind", flat=True))
    return [kind for kind in NotificationKind.values if kind not in off]


def make_due(
    user_id: Any,
    kind: str,
    occasion: str,
    *,
    key: UserAPIKey | None = None,
    context: dict[str, Any] | None = None,
) -> Notification | None:
    """Write down that a notification is due; ``None`` if the user turned the kind off
    or this occasion was already written down (by this worker or another)."""
    if kind not in NotificationKind.values:
        raise ValueError(f"Unknown notification kind {kind!r}.")
    if not is_wanted(user_id, kind):
        return None
    try:
        with transaction.atomic(using=router.db_for_write(Notification)):
            return Notification.objects.create(
                user_id=user_id,
                key=key,
                kind=kind,
                occasion=occasion[:128],
                context=context or {},
            )
    except IntegrityError:
        return None


def key_context(key: UserAPIKey) -> dict[str, Any]:
    """What a message says about a key: never its secret."""
    return {
        "key_id": str(key.pk),
        "service": key.service,
        "service_name": key.service_name,
        "nickname": key.nickname,
        "masked_key": key.masked_key,
        "environment": key.environment,
    }


def recipients(key: UserAPIKey) -> list[Any]:
    """Who is told about a key: its owner, or a team's owners and admins."""
    if key.user_id is not None:
        return [key.user_id]
    return managers_of(key.team)


def budget_recipients(budget: Budget) -> list[Any]:
    """Who is told about a budget: its user (a member's, on a team's keys, included),
    or, for a whole team's budget, the team's owners and admins."""
    if budget.user_id is not None:
        return [budget.user_id]
    return managers_of(budget.team)


def managers_of(team: Any) -> list[Any]:
    """The ids of a team's owners and admins."""
    return [user.pk for user, role in teams.adapter().members_of(team) if role in MANAGERS]


def key_turned_invalid(key: UserAPIKey, old_status: str) -> list[Notification]:
    """A re-check found ``key`` invalid and it was not before: once per such change."""
    if old_status == KeyStatus.INVALID or key.status != KeyStatus.INVALID:
        return []
    when = key.last_tested_at or timezone.now()
    return list(
        _due(
            key,
            NotificationKind.KEY_INVALID,
            f"{key.pk}:{when.isoformat()}",
            message=key.last_test_message,
        )
    )


def reminders_due(now: Any = None) -> Iterator[Notification]:
    """Write down every expiry, rotation and unused-key reminder that has come due.

    Each expiry threshold (``BYOK["EXPIRY_REMINDER_DAYS"]``, 14, 3 and 0 days) is
    one occasion per expiry date; a rotation reminder, one per secret (a new secret
    earns a new one); an unused-key reminder, one per last use.
    """
    now = now or timezone.now()
    keys = UserAPIKey.objects.active()
    thresholds = conf.EXPIRY_REMINDER_DAYS
    if thresholds:
        for key in keys.expiring_within(max(thresholds)).iterator():
            if key.expires_at is None:  # pragma: no cover  (the query excludes it)
                continue
            left = max((key.expires_at - now).days, 0)
            # Only the nearest threshold: a key found 2 days before its expiry is not
            # also told "14 days" (its 14 was missed, and is not sent late).
            threshold = nearest_threshold(left)
            yield from _due(
                key,
                NotificationKind.KEY_EXPIRING,
                f"{key.pk}:{key.expires_at.date().isoformat()}:{threshold}",
                expires_at=key.expires_at.isoformat(),
                days_left=left,
            )
    rotation = conf.ROTATION_REMINDER_DAYS
    if rotation is not None:
        for key in keys.secret_older_than(rotation).iterator():
            yield from _due(
                key,
                NotificationKind.ROTATION_DUE,
                f"{key.pk}:{key.secret_changed_at.isoformat()}",
                secret_changed_at=key.secret_changed_at.isoformat(),
                policy_days=rotation,
            )
    unused = conf.UNUSED_REMINDER_DAYS
    if unused is not None:
        for key in keys.unused_for(unused).iterator():
            last = key.last_used_at
            yield from _due(
                key,
                NotificationKind.KEY_UNUSED,
                f"{key.pk}:{(last or key.created_at).isoformat()}",
                last_used_at=None if last is None else last.isoformat(),
                unused_days=(now - (last or key.created_at)).days,
            )


def nearest_threshold(days_left: int) -> int | None:
    """The smallest reminder threshold ``days_left`` is within."""
    within = [days for days in conf.EXPIRY_REMINDER_DAYS if days_left <= days]
    return min(within) if within else None


def _due(key: UserAPIKey, kind: str, occasion: str, **details: Any) -> Iterator[Notification]:
    """The notifications ``kind`` for ``occasion`` to each of the key's recipients."""
    context = {**key_context(key), **details}
    for user_id in recipients(key):
        due = make_due(user_id, kind, occasion, key=key, context=context)
        if due is not None:
            yield due


def unsent(older_than: timedelta = timedelta(0)) -> Any:
    """Notifications still to deliver: never sent, not being sent by a live worker."""
    now = timezone.now()
    return Notification.objects.filter(
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_TIMEOUT),
        sent_at__isnull=True,
        created_at__lte=now - older_than,
    )


def deliver(notification_id: int) -> bool:
    """Send one notification, unless it was sent or is being sent; whether it was.

    The row is claimed first, so two workers never both send it. A failure leaves
    it unsent (the error's kind recorded, the claim released) and is raised again,
    for the task backend to report; :func:`unsent` finds it for the next try.
    """
    claimed = unsent().filter(pk=notification_id).update(claimed_at=timezone.now())
    if not claimed:
        return False
    due = Notification.objects.select_related("user", "key").get(pk=notification_id)
    try:
        _send(due)
    except Exception as error:
        Notification.objects.filter(pk=due.pk).update(
            claimed_at=None, attempts=due.attempts + 1, last_error=type(error).__name__[:255]
        )
        logger.warning(
            "Notification %s (%s) could not be sent: %s",
            due.pk,
            due.kind,
            type(error).__name__,
        )
        raise
    Notification.objects.filter(pk=due.pk).update(
        sent_at=timezone.now(), attempts=due.attempts + 1, last_error=""
    )
    return True


def _send(due: Notification) -> None:
    notification.send(
        sender=Notification,
        user=due.user,
        kind=due.kind,
        key=due.key,
        context=due.context,
        notification=due,
    )
    address = getattr(due.user, get_user_model().get_email_field_name(), "") or ""
    if not address:
        return
    context = {
        "user": due.user,
        "key": due.key,
        "kind": due.kind,
        "details": due.context,
        # details holds the value ("production"); the mail shows the label.
        "environment": _environment_label(due.context.get("environment", "")),
        "dashboard_path": _dashboard_path(),
    }
    base = f"byok/email/{due.kind}"
    subject = " ".join(render_to_string(f"{base}_subject.txt", context).split())
    body = render_to_string(f"{base}.txt", context)
    try:
        html: str | None = select_template([f"{base}.html"]).render(context)
    except TemplateDoesNotExist:
        html = None
    send_mail(subject, body, None, [address], html_message=html)


def _environment_label(value: str) -> str:
    """The environment's name in the active language (the value itself if unknown)."""
    return str(dict(Environment.choices).get(value, value))


def _dashboard_path() -> str:
    try:
        return reverse("byok:dashboard")
    except NoReverseMatch:
        return ""
