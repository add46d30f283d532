"""byok's tasks: the reminder command's modes, pruning, and the admin of what they write."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import TestCase, override_settings
from django.utils import timezone

from byok import tasks
from byok.keys import remove_user_api_key
from byok.models import AuditEvent, Notification, RecheckRun
from byok.notifications import make_due
from byok.recheck import plan_run, run_options
from byok.task_framework import task_backends

from factories import UserAPIKeyFactory
from support import aged, with_byok

pytestmark = pytest.mark.django_db

DUMMY = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


@override_settings(TASKS=DUMMY)
def test_reminders_can_be_left_to_a_worker(user):
    aged(UserAPIKeyFactory(user=user), expires_at=timezone.now() + timedelta(days=1))
    out = StringIO()
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("byok_send_reminders", "--enqueue", stdout=out)
    results = task_backends["default"].results
    assert [(r.task.name, r.args, r.kwargs) for r in results] == [
        ("send_reminders", [], {}),
        ("resend_unsent", [], {}),
    ]
    assert "Reminders enqueued." in out.getvalue()
    assert Notification.objects.count() == 0  # the search is the worker's


IMMEDIATE = {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}


@override_settings(TASKS={"default": IMMEDIATE, "queue": DUMMY["default"]})
@with_byok(TASK_BACKEND="queue")
def test_tasks_go_to_the_backend_byok_names(user):
    with TestCase.captureOnCommitCallbacks(execute=True):
        tasks.enqueue(tasks.resend_unsent)
    assert [r.task.name for r in task_backends["queue"].results] == ["resend_unsent"]
    assert [r.backend for r in task_backends["queue"].results] == ["queue"]


def test_prune_deletes_old_runs_and_old_notifications_of_deleted_keys(user):
    long_ago = timezone.now() - timedelta(days=400)
    old_run = plan_run(run_options())
    RecheckRun.objects.filter(pk=old_run.pk).update(finished_at=long_ago)
    running = plan_run(run_options())
    gone = UserAPIKeyFactory(user=user)
    kept = UserAPIKeyFactory(user=user)
    sent = {}
    for key in (gone, kept):
        due = make_due(user.pk, "key_unused", str(key.pk), key=key)
        Notification.objects.filter(pk=due.pk).update(sent_at=long_ago)
        sent[key] = due
    unsent = make_due(user.pk, "key_invalid", "x", key=gone)
    alert = make_due(user.pk, "budget_threshold", "1:2025-01-01:50")
    Notification.objects.filter(pk=alert.pk).update(sent_at=long_ago)
    remove_user_api_key(gone)
    AuditEvent.objects.update(created_at=long_ago)
    events = AuditEvent.objects.count()

    deleted = tasks.prune.call()

    assert deleted == {"recheck_runs": 1, "notifications": 2}
    assert list(RecheckRun.objects.values_list("pk", flat=True)) == [running.pk]
    assert set(Notification.objects.values_list("pk", flat=True)) == {sent[kept].pk, unsent.pk}
    assert AuditEvent.objects.count() == events  # the trail is the host's to prune
    assert tasks.prune.call(audit_days=30)["audit_events"] == events


def test_the_admin_shows_runs_and_notifications_read_only(admin_client, user):
    UserAPIKeyFactory(user=user)
    run = plan_run(run_options())
    due = make_due(user.pk, "key_invalid", "x", key=UserAPIKeyFactory(user=user))
    runs = admin_client.get("/admin/byok/recheckrun/")
    run_page = admin_client.get(f"/admin/byok/recheckrun/{run.pk}/change/")
    notifications = admin_client.get("/admin/byok/notification/?sent_at__isnull=True")
    notification_page = admin_client.get(f"/admin/byok/notification/{due.pk}/change/")
    assert runs.status_code == run_page.status_code == 200
    assert "0 of 1 batches done; 0 keys tested (-)." in run_page.content.decode()
    assert notifications.status_code == notification_page.status_code == 200
    assert admin_client.get("/admin/byok/notification/add/").status_code == 403
    assert admin_client.post(f"/admin/byok/recheckrun/{run.pk}/change/", {}).status_code == 403
