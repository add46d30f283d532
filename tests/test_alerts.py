"""Budget alerts: one e-mail (and one webhook post) per budget, period and threshold,
to the right people, saying the budget, spend, limit and period, never a secret."""

import json
import threading
from decimal import Decimal
from smtplib import SMTPException
from unittest import mock

import pytest
from django.core import mail
from django.db import connections
from django.test import TestCase

import byok
from byok.models import AuditAction, AuditEvent, Budget, Notification, TeamRole
from byok.notifications import set_wanted
from byok.signals import budget_threshold_reached

from factories import TeamAPIKeyFactory, TeamFactory, UserAPIKeyFactory, UserFactory
from fake_provider import FakeProvider
from fakes import secret_values
from support import signal_calls, with_byok, with_row_locks

pytestmark = pytest.mark.django_db

SECRET = "whsec-test-0123456789-abcdef"
PATH = "/hooks/byok"
EMAIL = "byok/email/budget_threshold"


def spend(user, amount, **kwargs):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return byok.track_api_usage(user, "openai", cost=str(amount), **kwargs)


def test_a_threshold_mails_the_user_once_with_the_budgets_figures(user):
    key = UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai", action="block")
    spend(user, "6.004")
    spend(user, "1")  # 70 %: nothing new

    (message,) = mail.outbox
    assert message.to == [user.email]
    assert message.subject == "Your OpenAI budget has reached 50%"
    body = message.body
    assert "One of your budgets has reached 50% of its limit" in body
    assert "Budget: OpenAI, the user's own keys, per month" in body
    assert "Spent: $6.00 of $10.00" in body
    budget = Budget.objects.get()
    resets = budget.period_start.replace(day=28)
    assert f"Period: from {budget.period_start.isoformat()}; resets on " in body
    assert body.split("resets on ")[1][:7] > resets.isoformat()[:7]  # the next month
    assert "will be refused once it reaches its limit" in body
    assert "/dashboard/api-keys/" in body
    for value in secret_values(key.get_credentials()):
        assert value not in body + message.subject
    row = Notification.objects.get()
    assert (row.kind, row.key_id, row.sent_at is not None) == ("budget_threshold", None, True)


def test_reaching_the_limit_of_a_blocking_budget_says_calls_are_refused(user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1", service="openai", action="block", alert_at=[100])
    spend(user, "1")
    (message,) = mail.outbox
    assert message.subject == "Your OpenAI budget has reached 100%"
    assert "refused until it resets" in message.body


def test_a_budget_on_every_service_that_only_alerts(user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="4", alert_at=[80])
    spend(user, "3.5")
    (message,) = mail.outbox
    assert message.subject == "Your API budget has reached 80%"
    assert "Budget: all services," in message.body
    assert "only alerts: nothing is stopped" in message.body


def test_a_teams_budget_mails_its_owners_and_admins(user):
    team = TeamFactory(owner=user)
    TeamAPIKeyFactory(team=team, actor=user)
    admin, member = UserFactory(), UserFactory()
    team.add_member(admin, TeamRole.ADMIN)
    team.add_member(member)
    byok.set_budget(None, team=team, limit="1", service="openai", action="block")
    served = byok.resolve_api_key(member, "openai", team=team)
    spend(member, "0.6", key=served)

    assert sorted(m.to[0] for m in mail.outbox) == sorted([user.email, admin.email])
    assert f"A budget on the keys of {team} has reached 50%" in mail.outbox[0].body


def test_a_members_budget_on_a_teams_keys_mails_the_member(user):
    team = TeamFactory(owner=user)
    TeamAPIKeyFactory(team=team, actor=user)
    member = UserFactory()
    team.add_member(member)
    byok.set_budget(member, team=team, limit="1", service="openai")
    spend(member, "0.6", key=byok.resolve_api_key(member, "openai", team=team))
    assert [m.to for m in mail.outbox] == [[member.email]]


def test_a_user_who_turned_budget_alerts_off_gets_no_mail_but_the_signal_goes(user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai")
    set_wanted(user, ["key_invalid", "key_expiring"])
    with signal_calls(budget_threshold_reached) as sent:
        spend(user, "6")
    assert mail.outbox == []
    assert [call["threshold"] for call in sent] == [50]


def test_the_templates_can_be_overridden(user, settings):
    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "APP_DIRS": False,
            "OPTIONS": {
                "loaders": [
                    (
                        "django.template.loaders.locmem.Loader",
                        {
                            f"{EMAIL}_subject.txt": "OURS {{ details.threshold }}",
                            f"{EMAIL}.html": "<p>{{ details.spent_display }}</p>",
                        },
                    ),
                    "django.template.loaders.app_directories.Loader",
                ]
            },
        }
    ]
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai", alert_at=[80])
    spend(user, "8")
    (message,) = mail.outbox
    assert message.subject == "OURS 80"
    assert "Spent: $8.00 of $10.00" in message.body
    assert message.alternatives[0][0] == "<p>8.00</p>"


def test_a_failing_mail_server_never_fails_the_metered_call(user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai")
    with mock.patch("byok.notifications.send_mail", side_effect=SMTPException("down")):
        assert spend(user, "6") == Decimal("6")
    row = Notification.objects.get()
    assert (row.sent_at, row.attempts) == (None, 1)  # resend_unsent sends it later


# -- Sixteen threads crossing together ------------------------------------------------------


def cross_together(user, call, rounds, events=("budget.threshold_reached",)):
    """Sixteen threads wait at a barrier before each round and make ``call`` at once,
    with a webhook to a local server: the events it received, by name and threshold."""
    threads = 16
    barrier = threading.Barrier(threads)
    errors = []

    def worker():
        try:
            for _ in range(rounds):
                barrier.wait(timeout=60)  # a thread that failed breaks it: no hang
                call()
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    with FakeProvider() as receiver:
        for _ in range(10):
            receiver.answer(PATH, status=200, json={})
        hook = {"url": receiver.url + PATH, "secret": SECRET, "events": list(events)}
        with with_byok(WEBHOOKS=[hook], WEBHOOK_ALLOWED_HOSTS=["127.0.0.1"]):
            workers = [threading.Thread(target=worker) for _ in range(threads)]
            for thread in workers:
                thread.start()
            for thread in workers:
                thread.join()
    assert errors == []
    events = [json.loads(request.body) for request in receiver.requests]
    return sorted((event["event"], event["data"].get("threshold", 0)) for event in events)


def mailed_thresholds(user):
    assert all(message.to == [user.email] for message in mail.outbox)
    assert Notification.objects.filter(kind="budget_threshold").count() == len(mail.outbox)
    return sorted(int(message.subject.rsplit(" ", 1)[1].rstrip("%")) for message in mail.outbox)


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_crossing_together_alert_once_per_threshold():
    """Each round, sixteen calls are recorded at once: many cross a threshold together,
    and it is mailed and posted once."""
    user = UserFactory()
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1.00", service="openai")

    posted = cross_together(
        user, lambda: byok.track_api_usage(user, "openai", cost="0.03"), rounds=3
    )

    assert Budget.objects.get().spent == Decimal("0.03") * 16 * 3  # 1.44
    assert posted == [("budget.threshold_reached", t) for t in (50, 80, 100)]
    assert mailed_thresholds(user) == [50, 80, 100]


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_reserving_up_to_a_cap_alert_once_and_post_one_block():
    """Through reserve(), as the metered clients call: the cap fills exactly, each
    threshold is mailed and posted once, and the first refusal is posted once."""
    user = UserFactory()
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1.00", service="openai", action="block")

    def call():
        try:
            with byok.reserve(user, "openai", "0.05") as resolved:
                byok.track_api_usage(user, "openai", cost="0.05", key=resolved)
        except byok.BudgetExceeded:
            pass

    posted = cross_together(
        user, call, rounds=3, events=("budget.threshold_reached", "budget.blocked")
    )

    assert Budget.objects.get().spent == Decimal("1.00")  # 20 of the 48 calls
    assert posted == [("budget.blocked", 0)] + [
        ("budget.threshold_reached", t) for t in (50, 80, 100)
    ]
    assert mailed_thresholds(user) == [50, 80, 100]
    assert AuditEvent.objects.filter(action=AuditAction.BUDGET_BLOCKED).count() == 1


def test_the_admin_lists_and_shows_a_budget_alert(admin_client, user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai")
    spend(user, "6")
    row = Notification.objects.get()
    listing = admin_client.get("/admin/byok/notification/")
    page = admin_client.get(f"/admin/byok/notification/{row.pk}/change/")
    assert listing.status_code == page.status_code == 200
    assert "A budget reached an alert threshold" in listing.content.decode()
