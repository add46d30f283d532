"""Signed webhooks: delivered to a real HTTP server on 127.0.0.1, verified with the code
docs/budgets.md shows, retried with back-off, given up on, checked at start-up."""

import json
import logging
import re
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import TestCase, override_settings
from django.utils import timezone

import byok
from byok import checks, tasks, webhooks
from byok.models import AuditAction, AuditEvent
from byok.task_framework import task_backends

from factories import UserAPIKeyFactory
from fake_provider import FakeProvider, refused_url
from support import with_byok

pytestmark = pytest.mark.django_db

SECRET = "whsec-test-0123456789-abcdef"
PATH = "/hooks/byok"
DUMMY = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
OK = {"status": 200, "json": {"ok": True}}


def documented_verifier():
    """The receiver's code from docs/budgets.md, run as a receiver would run it."""
    text = (Path(__file__).parents[1] / "docs" / "budgets.md").read_text()
    (code,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", text, re.DOTALL)
        if "def verify_byok_signature" in block
    ]
    namespace = {}
    exec(code, namespace)  # noqa: S102 - the documented snippet, verbatim
    return namespace["verify_byok_signature"]


verify_byok_signature = documented_verifier()


@pytest.fixture
def receiver():
    with FakeProvider() as server:
        yield server


def hooked(receiver, events=("budget.threshold_reached",), **values):
    """Settings with one webhook to ``receiver`` (plain http on 127.0.0.1, allowed)."""
    hook = {"url": receiver.url + PATH, "secret": SECRET, "events": list(events)}
    return with_byok(WEBHOOKS=[hook], WEBHOOK_ALLOWED_HOSTS=["127.0.0.1"], **values)


def spend(user, amount):
    """Record a call on the user's key and run what its commit enqueues."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        byok.track_api_usage(user, "openai", cost=str(amount))


def run_queued():
    """Run the tasks the dummy backend holds, and those they enqueue, in order: the
    ``run_after`` delay (seconds after the run that enqueued it) of each."""
    backend = task_backends["default"]
    done, delays = 0, []
    while done < len(backend.results):
        result = backend.results[done]
        if result.task.run_after is not None:
            delays.append(round((result.task.run_after - timezone.now()).total_seconds()))
        with TestCase.captureOnCommitCallbacks(execute=True):
            result.task.call(*result.args, **result.kwargs)
        done += 1
    return delays


def posts(receiver):
    return [request for request in receiver.requests if request.path == PATH]


# -- A delivery, verified --------------------------------------------------------------------


def test_a_threshold_posts_one_signed_event_the_documented_code_verifies(user, receiver):
    UserAPIKeyFactory(user=user)
    budget = byok.set_budget(user, limit="10", service="openai", action="block")
    receiver.answer(PATH, **OK)
    with hooked(receiver):
        spend(user, "6")
        spend(user, "1")  # 70 %: no new threshold

    (request,) = posts(receiver)
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-byok-event"] == "budget.threshold_reached"
    assert abs(int(headers["x-byok-timestamp"]) - time.time()) < 60
    assert headers["x-byok-signature"].startswith("sha256=")
    assert verify_byok_signature(
        SECRET, request.body, headers["x-byok-timestamp"], headers["x-byok-signature"]
    )
    assert webhooks.verify_signature(
        SECRET, request.body, headers["x-byok-timestamp"], headers["x-byok-signature"]
    )
    # A changed body, another secret, a replayed old timestamp: all refused.
    assert not verify_byok_signature(
        SECRET, request.body + b" ", headers["x-byok-timestamp"], headers["x-byok-signature"]
    )
    assert not verify_byok_signature(
        "another-secret-0123456789",
        request.body,
        headers["x-byok-timestamp"],
        headers["x-byok-signature"],
    )
    old = str(int(time.time()) - 3600)
    resigned = webhooks.signature(SECRET, old, request.body)
    assert not verify_byok_signature(SECRET, request.body, old, resigned)
    assert not webhooks.verify_signature(SECRET, request.body, old, resigned)
    assert not webhooks.verify_signature(SECRET, request.body, "soon", resigned)
    now = headers["x-byok-timestamp"]
    assert not verify_byok_signature(SECRET, request.body, now, "sha256=\u00e9")
    assert not webhooks.verify_signature(SECRET, request.body, now, "sha256=\u00e9")

    event = json.loads(request.body)
    start = timezone.localdate().replace(day=1).isoformat()
    assert (
        event["id"]
        == headers["x-byok-delivery"]
        == f"budget.threshold_reached:{budget.pk}:{start}:50"
    )
    assert event["event"] == "budget.threshold_reached"
    data = event["data"]
    assert data["threshold"] == 50
    assert (data["spent"], data["limit"], data["currency"]) == ("6.000000", "10.00", "USD")
    assert data["period_start"] == start
    assert data["resets_at"].startswith(
        (timezone.localdate().replace(day=28) + timedelta(days=4)).replace(day=1).isoformat()
    )
    assert data["budget"] == {
        "id": budget.pk,
        "name": f"budget {budget.pk}",
        "service": "openai",
        "applies_to": "own",
        "period": "month",
        "action": "block",
        "set_by": "user",
    }
    assert (data["user"], data["team"]) == (str(user.pk), None)
    assert SECRET not in request.body.decode() + json.dumps(headers)


def test_a_webhook_gets_only_the_events_it_wants(user, receiver):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai")
    with hooked(receiver, events=["budget.blocked"]):
        spend(user, "9")
    assert posts(receiver) == []


def test_the_first_refusal_of_a_blocking_budget_posts_blocked_once(user, receiver):
    UserAPIKeyFactory(user=user)
    budget = byok.set_budget(user, limit="1", service="openai", action="block")
    receiver.answer(PATH, **OK)
    with hooked(receiver, events=["budget.blocked"]):
        spend(user, "1.5")
        for _ in range(3):
            with (
                TestCase.captureOnCommitCallbacks(execute=True),
                pytest.raises(byok.BudgetExceeded),
            ):
                byok.get_user_api_key(user, "openai")
    (request,) = posts(receiver)
    event = json.loads(request.body)
    assert event["event"] == request.headers["x-byok-event"] == "budget.blocked"
    assert event["data"]["budget"]["id"] == budget.pk
    assert (event["data"]["spent"], event["data"]["limit"]) == ("1.500000", "1.00")
    assert "threshold" not in event["data"]


@pytest.mark.parametrize("estimate", ["0", "0.60"])
def test_a_refusal_by_reserve_posts_blocked_and_is_audited_once(user, receiver, estimate):
    """Refused by the lookup inside reserve() (spent) or by the estimate (no room)."""
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1", service="openai", action="block")
    receiver.answer(PATH, **OK)
    with hooked(receiver, events=["budget.blocked"]):
        spend(user, "1" if estimate == "0" else "0.5")
        for _ in range(2):
            with (
                TestCase.captureOnCommitCallbacks(execute=True),
                pytest.raises(byok.BudgetExceeded),
                byok.reserve(user, "openai", estimate),
            ):
                pass  # pragma: no cover
    assert [json.loads(r.body)["event"] for r in posts(receiver)] == ["budget.blocked"]
    assert AuditEvent.objects.filter(action=AuditAction.BUDGET_BLOCKED).count() == 1


# -- Failures ----------------------------------------------------------------------------------


@override_settings(TASKS=DUMMY)
def test_a_500_is_retried_after_the_delay_then_delivered(user, receiver, caplog):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai")
    receiver.answer(PATH, status=500)
    receiver.answer(PATH, **OK)
    with hooked(receiver, WEBHOOK_RETRY_DELAY=30), caplog.at_level(logging.INFO):
        spend(user, "5")
        delays = run_queued()

    first, second = posts(receiver)
    assert delays == [30]
    assert first.body == second.body
    assert first.headers["x-byok-delivery"] == second.headers["x-byok-delivery"]
    for request in (first, second):
        assert verify_byok_signature(
            SECRET,
            request.body,
            request.headers["x-byok-timestamp"],
            request.headers["x-byok-signature"],
        )
    results = task_backends["default"].results
    assert [r.task.name for r in results] == ["send_budget_alert", "send_notification"] + [
        "send_webhook"
    ] * 2
    assert SECRET not in json.dumps([(r.args, r.kwargs) for r in results])
    assert [r.args[2:] for r in results[2:]] == [[], [2]]
    assert "retrying in 30 s" in caplog.text
    assert SECRET not in caplog.text


@override_settings(TASKS=DUMMY)
def test_it_gives_up_after_the_last_attempt_and_logs_it_without_the_secret(user, receiver, caplog):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai")
    for _ in range(3):
        receiver.answer(PATH, status=500)
    with hooked(receiver, WEBHOOK_MAX_ATTEMPTS=3, WEBHOOK_RETRY_DELAY=10):
        spend(user, "5")
        with caplog.at_level(logging.INFO, logger="byok"):
            delays = run_queued()

    assert len(posts(receiver)) == 3
    assert delays == [10, 20]  # doubling
    (gave_up,) = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert gave_up.levelno == logging.WARNING
    assert gave_up.name == "byok.webhooks"
    assert gave_up.getMessage().endswith("after 3 attempts: HTTP 500")
    assert f"{receiver.url}{PATH}" in gave_up.getMessage()
    assert SECRET not in caplog.text


def test_the_immediate_backend_makes_one_attempt(user, receiver, caplog):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai")
    receiver.answer(PATH, status=503)
    with hooked(receiver), caplog.at_level(logging.WARNING, logger="byok"):
        spend(user, "5")
    assert len(posts(receiver)) == 1
    assert "after 1 attempts: HTTP 503" in caplog.text


def test_an_unreachable_receiver_never_fails_the_metered_call(user, caplog):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai")
    hook = {"url": refused_url() + PATH, "secret": SECRET, "events": [webhooks.THRESHOLD_REACHED]}
    with (
        with_byok(WEBHOOKS=[hook], WEBHOOK_ALLOWED_HOSTS=["127.0.0.1"]),
        caplog.at_level(logging.WARNING, logger="byok"),
        TestCase.captureOnCommitCallbacks(execute=True),
    ):
        assert byok.track_api_usage(user, "openai", cost="6") == 6
    assert "connection failed" in caplog.text
    assert SECRET not in caplog.text


def test_a_redirect_is_a_failed_attempt_never_followed(user, receiver, caplog):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai")
    receiver.answer(PATH, status=302, headers={"Location": receiver.url + "/elsewhere"})
    with hooked(receiver), caplog.at_level(logging.WARNING, logger="byok"):
        spend(user, "6")
    assert [request.path for request in receiver.requests] == [PATH]
    assert "after 1 attempts: HTTP 302" in caplog.text


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_private_address_not_allowed_is_never_posted_to(user, receiver, caplog, host):
    """An https URL to a loopback address, by IP or by a name that resolves to one."""
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai")
    port = receiver.url.rsplit(":", 1)[1]
    hook = {
        "url": f"https://{host}:{port}{PATH}",
        "secret": SECRET,
        "events": [webhooks.THRESHOLD_REACHED],
    }
    with with_byok(WEBHOOKS=[hook]), caplog.at_level(logging.WARNING, logger="byok"):
        spend(user, "6")
    assert receiver.requests == []
    assert "refused: a private, loopback or link-local address" in caplog.text


def test_a_webhook_taken_out_of_the_settings_is_not_retried(receiver):
    payload = webhooks.event(webhooks.THRESHOLD_REACHED, "1:2026-11-01:50", {})
    with hooked(receiver):
        assert tasks.send_webhook.call(receiver.url + "/elsewhere", payload) is False
    assert receiver.requests == []


def test_the_signature_is_the_documented_hmac():
    body = b'{"a":1}'
    expected = (
        "sha256=" + __import__("hmac").new(b"k" * 16, b"1700000000." + body, "sha256").hexdigest()
    )
    assert webhooks.signature("k" * 16, "1700000000", body) == expected
    assert webhooks.verify_signature("k" * 16, body, "1700000000", expected, now=1700000100)
    assert not webhooks.verify_signature("k" * 16, body, "1700000000", expected, now=1700000301)


def test_a_webhook_never_shows_its_secret_in_a_repr():
    (hook,) = [webhooks.Webhook("https://example.com/", SECRET, ("budget.blocked",))]
    assert SECRET not in repr(hook)


# -- System checks -----------------------------------------------------------------------------


def ids(**values):
    with with_byok(**values):
        messages = checks.check_settings()
    assert all(SECRET not in f"{m.msg} {m.hint}" for m in messages)
    return [m.id for m in messages]


GOOD = {"url": "https://ops.example.com/hooks", "secret": SECRET, "events": ["budget.blocked"]}


def test_a_good_webhook_passes_the_checks():
    assert ids(WEBHOOKS=[GOOD]) == []


@pytest.mark.parametrize(
    "webhooks_setting",
    [
        "https://ops.example.com/hooks",
        ["https://ops.example.com/hooks"],
        [{**GOOD, "secret": "short"}],
        [{key: value for key, value in GOOD.items() if key != "secret"}],
        [{**GOOD, "events": []}],
        [{**GOOD, "events": ["budget.spent"]}],
        [{**GOOD, "events": "budget.blocked"}],
        [{**GOOD, "url": "ops.example.com/hooks"}],
        [{**GOOD, "url": "ftp://ops.example.com/hooks"}],
        [{**GOOD, "url": "https://me:pw@ops.example.com/hooks"}],
        [{**GOOD, "retries": 3}],
        [GOOD, GOOD],
    ],
)
def test_e026_a_malformed_webhook(webhooks_setting):
    assert ids(WEBHOOKS=webhooks_setting) == ["byok.E026"]


def test_e027_plain_http_to_a_host_not_allowed():
    hook = {**GOOD, "url": "http://ops.example.com/hooks"}
    assert ids(WEBHOOKS=[hook]) == ["byok.E027"]
    assert ids(WEBHOOKS=[hook], WEBHOOK_ALLOWED_HOSTS=["ops.example.com"]) == []


@pytest.mark.parametrize(
    "url", ["https://10.1.2.3/hooks", "https://127.0.0.1:8443/hooks", "https://[::1]/hooks"]
)
def test_e028_a_private_address_not_allowed(url):
    assert ids(WEBHOOKS=[{**GOOD, "url": url}]) == ["byok.E028"]
    host = urlsplit(url).hostname
    assert ids(WEBHOOKS=[{**GOOD, "url": url}], WEBHOOK_ALLOWED_HOSTS=[host]) == []


@pytest.mark.parametrize(
    "values",
    [
        {"WEBHOOK_MAX_ATTEMPTS": 0},
        {"WEBHOOK_MAX_ATTEMPTS": "5"},
        {"WEBHOOK_MAX_ATTEMPTS": True},
        {"WEBHOOK_RETRY_DELAY": 0},
        {"WEBHOOK_RETRY_DELAY": "30"},
        {"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"},
    ],
)
def test_e029_bad_delivery_settings(values):
    assert ids(**values) == ["byok.E029"]


def test_a_malformed_webhook_is_left_out_at_run_time(user, receiver):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai")
    bad = {"url": receiver.url + PATH, "secret": "short", "events": ["budget.threshold_reached"]}
    with with_byok(WEBHOOKS=[bad], WEBHOOK_ALLOWED_HOSTS=["127.0.0.1"]):
        spend(user, "6")
    assert receiver.requests == []
