"""Notifications: a row per due notification, delivered by a task, once each."""

from datetime import timedelta
from io import StringIO
from smtplib import SMTPException
from unittest import mock

import pytest
import responses
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from byok import tasks
from byok.keys import update_user_api_key
from byok.models import Notification, NotificationKind, NotificationOptOut, UserAPIKey
from byok.notifications import deliver, key_context, make_due, set_wanted, wanted_kinds
from byok.signals import notification

from factories import UserAPIKeyFactory
from fakes import fake_credentials, secret_values
from support import aged, client_for, with_byok

pytestmark = pytest.mark.django_db

OPENAI = "https://api.openai.com/v1/models"
REJECTED = {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock_:
        yield mock_


def committed(function, *args, **kwargs):
    """Run ``function`` and the tasks it enqueues on commit."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return function(*args, **kwargs)


def check_keys(*args):
    """byok_check_keys, which fails (as cron should see) when a key is invalid."""
    try:
        committed(call_command, "byok_check_keys", *args, stdout=StringIO(), stderr=StringIO())
    except CommandError as error:
        if "invalid" not in str(error):
            raise


def reminders():
    out = StringIO()
    committed(call_command, "byok_send_reminders", stdout=out)
    return out.getvalue()


# -- A key that stopped working ------------------------------------------------------------


def test_a_key_that_turns_invalid_on_a_recheck_is_told_once(user, mocked):
    mocked.get(OPENAI, status=401, json=REJECTED)
    key = UserAPIKeyFactory(user=user, nickname="Work")

    check_keys()
    check_keys("--enqueue")

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [user.email]
    assert message.subject == "Your OpenAI key stopped working"
    assert key.masked_key in message.body
    assert "“Work”" in message.body
    for value in secret_values(key.get_credentials()):
        assert value not in message.body + message.subject
    row = Notification.objects.get()
    assert (row.kind, row.key_id, row.attempts) == ("key_invalid", key.pk, 1)
    assert row.sent_at is not None


def test_each_change_to_invalid_is_told(user, mocked):
    mocked.get(OPENAI, status=401, json=REJECTED)
    key = UserAPIKeyFactory(user=user)
    check_keys()
    aged(key, status="valid")
    check_keys()

    assert len(mail.outbox) == 2
    assert Notification.objects.filter(kind="key_invalid").count() == 2


def test_a_key_invalid_since_before_is_not_told(user, mocked):
    mocked.get(OPENAI, status=401, json=REJECTED)
    aged(UserAPIKeyFactory(user=user), status="invalid")

    check_keys()

    assert mail.outbox == []


def test_a_test_by_the_owner_themselves_tells_nothing(user, mocked):
    mocked.get(OPENAI, status=401, json=REJECTED)
    key = UserAPIKeyFactory(user=user)
    client_for(user).post(f"/api/user/api-keys/{key.pk}/test/")
    assert UserAPIKey.objects.get(pk=key.pk).status == "invalid"
    assert mail.outbox == []


# -- Expiry, rotation, unused keys ---------------------------------------------------------


def test_expiry_is_told_once_per_threshold(user):
    expiry = timezone.now() + timedelta(days=20, hours=1)
    aged(UserAPIKeyFactory(user=user), expires_at=expiry)
    sent = []
    for days_left in (20, 13, 12, 2, 1, 0):
        later = expiry - timedelta(days=days_left, hours=1)
        with mock.patch("byok.notifications.timezone.now", return_value=later):
            reminders()
        sent.append(len(mail.outbox))
    assert sent == [0, 1, 1, 2, 2, 3]
    assert [m.subject for m in mail.outbox] == [
        "Your OpenAI key expires in 13 days",
        "Your OpenAI key expires in 2 days",
        "Your OpenAI key expires today or has expired",
    ]


def test_a_new_expiry_date_is_told_again(user):
    key = UserAPIKeyFactory(user=user)
    aged(key, expires_at=timezone.now() + timedelta(days=2))
    reminders()
    aged(key, expires_at=timezone.now() + timedelta(days=3, hours=2))
    reminders()
    assert len(mail.outbox) == 2


def test_rotation_and_unused_reminders_are_off_by_default(user):
    key = UserAPIKeyFactory(user=user)
    aged(key, secret_changed_at=timezone.now() - timedelta(days=900))
    aged(key, created_at=timezone.now() - timedelta(days=900))
    assert "0 reminders came due" in reminders()
    assert mail.outbox == []


@with_byok(ROTATION_REMINDER_DAYS=365)
def test_a_key_older_than_the_rotation_policy_is_reminded_once(user, provider):
    key = UserAPIKeyFactory(user=user)
    fresh = UserAPIKeyFactory(user=user)
    aged(key, secret_changed_at=timezone.now() - timedelta(days=400))

    reminders()
    reminders()

    assert [m.subject for m in mail.outbox] == ["Time to rotate your OpenAI key"]
    assert "365 days" in mail.outbox[0].body
    assert Notification.objects.get().key_id == key.pk != fresh.pk
    update_user_api_key(key, credentials=fake_credentials("openai"))
    aged(key, secret_changed_at=timezone.now() - timedelta(days=400))
    reminders()
    assert len(mail.outbox) == 2  # a new secret, grown old again: a new reminder


@with_byok(UNUSED_REMINDER_DAYS=90)
def test_an_unused_key_is_reminded_once_per_last_use(user):
    never = aged(UserAPIKeyFactory(user=user), created_at=timezone.now() - timedelta(days=100))
    used = aged(UserAPIKeyFactory(user=user), last_used_at=timezone.now() - timedelta(days=95))
    recent = aged(UserAPIKeyFactory(user=user), last_used_at=timezone.now() - timedelta(days=5))

    reminders()
    reminders()

    reminded = set(Notification.objects.values_list("key_id", flat=True))
    assert reminded == {never.pk, used.pk}
    assert recent.pk not in reminded
    assert len(mail.outbox) == 2
    assert any("not been used for 100 days" in m.body for m in mail.outbox)


def test_deleted_and_switched_off_keys_are_not_reminded(user):
    from byok.keys import remove_user_api_key, set_key_active

    gone = UserAPIKeyFactory(user=user)
    off = UserAPIKeyFactory(user=user)
    for key in (gone, off):
        aged(key, expires_at=timezone.now() + timedelta(days=1))
    remove_user_api_key(gone)
    set_key_active(off, False)
    reminders()
    assert mail.outbox == []


# -- Delivery ------------------------------------------------------------------------------


def test_a_failing_mail_server_loses_nothing_and_it_is_sent_once_later(user):
    key = aged(UserAPIKeyFactory(user=user), expires_at=timezone.now() + timedelta(days=1))
    with mock.patch("byok.notifications.send_mail", side_effect=SMTPException("down")):
        reminders()
    row = Notification.objects.get()
    assert (row.sent_at, row.claimed_at, row.attempts, row.last_error) == (
        None,
        None,
        1,
        "SMTPException",
    )
    assert mail.outbox == []

    reminders()  # the search finds nothing new; the unsent one is due 5 minutes later
    assert mail.outbox == []
    Notification.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(hours=1))
    reminders()
    reminders()

    assert len(mail.outbox) == 1
    assert Notification.objects.get().sent_at is not None
    assert key.masked_key in mail.outbox[0].body


def test_a_notification_is_sent_once_however_often_its_task_runs(user):
    due = make_due(user.pk, NotificationKind.KEY_INVALID, "x", context={"service_name": "X"})
    assert deliver(due.pk) is True
    assert deliver(due.pk) is False
    assert len(mail.outbox) == 1


def test_a_notification_being_sent_by_another_worker_is_left_alone(user):
    due = make_due(user.pk, NotificationKind.KEY_INVALID, "x")
    Notification.objects.filter(pk=due.pk).update(claimed_at=timezone.now())
    assert deliver(due.pk) is False
    Notification.objects.filter(pk=due.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert deliver(due.pk) is True  # that worker died long ago


def test_the_same_occasion_is_written_down_once(user):
    first = make_due(user.pk, NotificationKind.KEY_UNUSED, "k:1")
    second = make_due(user.pk, NotificationKind.KEY_UNUSED, "k:1")
    assert first is not None
    assert second is None
    assert Notification.objects.count() == 1


def test_unknown_kinds_are_refused(user):
    with pytest.raises(ValueError, match="Unknown notification kind"):
        make_due(user.pk, "spam", "x")
    with pytest.raises(ValueError, match="Unknown notification kinds"):
        set_wanted(user, ["spam"])


def test_the_signal_carries_no_secret_and_comes_with_the_mail(user):
    key = aged(UserAPIKeyFactory(user=user), expires_at=timezone.now() + timedelta(days=1))
    received = []

    def receiver(**kwargs):
        received.append(kwargs)

    notification.connect(receiver)
    try:
        reminders()
    finally:
        notification.disconnect(receiver)
    (call,) = received
    assert (call["kind"], call["key"], call["user"]) == ("key_expiring", key, user)
    assert call["context"]["masked_key"] == key.masked_key
    for value in secret_values(key.get_credentials()):
        assert value not in repr(call["context"])


def test_a_user_without_an_address_gets_the_signal_only(user):
    type(user).objects.filter(pk=user.pk).update(email="")
    due = make_due(user.pk, NotificationKind.KEY_INVALID, "x")
    assert deliver(due.pk) is True
    assert mail.outbox == []


def test_notify_enqueues_the_delivery_with_the_rows_id_only(user):
    key = UserAPIKeyFactory(user=user)
    dummy = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    with override_settings(TASKS=dummy):
        from byok.task_framework import task_backends

        due = committed(
            tasks.notify, user.pk, NotificationKind.KEY_INVALID, "o", key=key,
            context=key_context(key),
        )  # fmt: skip
        (result,) = task_backends["default"].results
    assert (result.task.name, result.args, result.kwargs) == ("send_notification", [due.pk], {})


@pytest.mark.parametrize(
    "template", ["byok/email/key_expiring_subject.txt", "byok/email/key_expiring.txt"]
)
def test_the_templates_can_be_overridden(user, settings, template):
    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "APP_DIRS": False,
            "OPTIONS": {
                "loaders": [
                    (
                        "django.template.loaders.locmem.Loader",
                        {template: "OURS {{ details.service_name }}"},
                    ),
                    "django.template.loaders.app_directories.Loader",
                ]
            },
        }
    ]
    aged(UserAPIKeyFactory(user=user), expires_at=timezone.now() + timedelta(days=1))
    reminders()
    (message,) = mail.outbox
    assert "OURS OpenAI" in (message.subject if "subject" in template else message.body)


def test_an_html_template_adds_an_html_part(user, settings):
    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "APP_DIRS": False,
            "OPTIONS": {
                "loaders": [
                    (
                        "django.template.loaders.locmem.Loader",
                        {"byok/email/key_invalid.html": "<p>{{ details.masked_key }}</p>"},
                    ),
                    "django.template.loaders.app_directories.Loader",
                ]
            },
        }
    ]
    due = make_due(user.pk, NotificationKind.KEY_INVALID, "x", context={"masked_key": "sk-…a<b"})
    deliver(due.pk)
    (message,) = mail.outbox
    assert message.alternatives[0][0] == "<p>sk-…a&lt;b</p>"


# -- Turning kinds off ---------------------------------------------------------------------


def test_a_user_who_turned_a_kind_off_is_not_told(user, mocked):
    mocked.get(OPENAI, status=401, json=REJECTED)
    set_wanted(user, [k for k in NotificationKind.values if k != "key_invalid"])
    UserAPIKeyFactory(user=user)
    check_keys()
    assert mail.outbox == []
    assert Notification.objects.count() == 0


def test_the_dashboard_turns_kinds_on_and_off(user, client):
    client.force_login(user)
    page = client.get("/dashboard/api-keys/")
    assert page.content.decode().count('name="kinds"') == 5
    assert page.content.decode().count(" checked>") >= 5

    response = client.post("/dashboard/api-keys/notifications/", {"kinds": ["key_invalid"]})

    assert response.status_code == 302
    assert wanted_kinds(user) == ["key_invalid"]
    assert set(NotificationOptOut.objects.values_list("kind", flat=True)) == {
        "key_expiring",
        "rotation_due",
        "key_unused",
        "budget_threshold",
    }
    client.post("/dashboard/api-keys/notifications/", {"kinds": NotificationKind.values})
    assert wanted_kinds(user) == NotificationKind.values


def test_an_unknown_kind_from_the_dashboard_is_a_400(user, client):
    client.force_login(user)
    response = client.post("/dashboard/api-keys/notifications/", {"kinds": ["spam"]})
    json_response = client.post(
        "/dashboard/api-keys/notifications/",
        {"kinds": ["x"]},
        headers={"accept": "application/json"},
    )
    assert (response.status_code, json_response.status_code) == (400, 400)
    assert json_response.json()["ok"] is False
    assert NotificationOptOut.objects.count() == 0


def test_the_notification_settings_need_a_login_and_a_post(user, client):
    assert client.post("/dashboard/api-keys/notifications/").status_code == 302
    client.force_login(user)
    assert client.get("/dashboard/api-keys/notifications/").status_code == 405


def test_the_reminder_search_costs_constant_queries_per_key(user):
    def search(count):
        for _ in range(count):
            aged(UserAPIKeyFactory(user=user), expires_at=timezone.now() + timedelta(days=1))
        with CaptureQueriesContext(connection) as queries:
            reminders()
        Notification.objects.all().delete()
        UserAPIKey.objects.all().delete()
        return len(queries)

    assert search(4) - search(2) == 2 * (search(3) - search(2))
