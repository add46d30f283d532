"""byok_check_keys --enqueue: a run split into batches of tasks that workers share."""

from io import StringIO

import pytest
import responses
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext

from byok.models import RecheckBackoff, RecheckBatch, RecheckRun, UserAPIKey
from byok.recheck import plan_run, progress_of, run_batch, run_options
from byok.task_framework import task_backends

from factories import UserAPIKeyFactory, UserFactory
from fakes import secret_values

pytestmark = pytest.mark.django_db

OPENAI = "https://api.openai.com/v1/models"
ANTHROPIC = "https://api.anthropic.com/v1/models"
DUMMY = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def run(*args):
    """The command's output; the tasks it enqueues run as the test's transaction
    "commits" (byok enqueues on commit)."""
    out = StringIO()
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("byok_check_keys", *args, stdout=out, stderr=out)
    return out.getvalue()


def probed_keys(mocked):
    """The Authorization header of every provider call: one per key tested."""
    return [
        call.request.headers.get("Authorization") or call.request.headers.get("x-api-key")
        for call in mocked.calls
    ]


def test_every_key_is_tested_once_in_batches(user, other_user, mocked):
    mocked.get(OPENAI, json={"data": []})
    keys = [UserAPIKeyFactory(user=user) for _ in range(5)] + [
        UserAPIKeyFactory(user=other_user) for _ in range(2)
    ]

    output = run("--enqueue", "--batch-size", "3")

    run_row = RecheckRun.objects.get()
    assert (run_row.key_count, run_row.batch_count) == (7, 3)
    assert f"Run {run_row.pk}: 7 keys in 3 batches enqueued." in output
    assert len(probed_keys(mocked)) == 7
    assert len(set(probed_keys(mocked))) == 7
    assert {k.status for k in UserAPIKey.objects.filter(pk__in=[k.pk for k in keys])} == {"valid"}
    assert run_row.batches.filter(finished_at__isnull=True).count() == 0
    run_row.refresh_from_db()
    assert run_row.finished_at is not None


def test_a_batch_delivered_twice_is_tested_once(user, mocked):
    mocked.get(OPENAI, json={"data": []})
    UserAPIKeyFactory(user=user)
    UserAPIKeyFactory(user=user)
    run_row = plan_run(run_options(), batch_size=10)
    batch = run_row.batches.get()

    first = run_batch(batch.pk)
    second = run_batch(batch.pk)

    assert first is not None
    assert first.total == 2
    assert second is None
    assert len(mocked.calls) == 2


def test_the_batches_cover_every_selected_key_exactly_once(user):
    keys = sorted(str(UserAPIKeyFactory(user=user).pk) for _ in range(11))
    run_row = plan_run(run_options(), batch_size=4)

    covered = []
    for batch in run_row.batches.order_by("number"):
        selected = UserAPIKey.objects.filter(pk__lte=batch.last_key)
        if batch.after_key is not None:
            selected = selected.filter(pk__gt=batch.after_key)
        covered += [str(pk) for pk in selected.values_list("pk", flat=True)]
    assert sorted(covered) == keys
    assert [b.number for b in run_row.batches.all()] == [0, 1, 2]


def test_planning_costs_queries_per_batch_not_per_key(user):
    for _ in range(12):
        UserAPIKeyFactory(user=user)
    with CaptureQueriesContext(connection) as small:
        plan_run(run_options(), batch_size=6)
    with CaptureQueriesContext(connection) as large:
        plan_run(run_options(), batch_size=3)
    # One query per batch, plus a fixed few (the savepoint, the run, the last batch, the
    # batches, the totals).
    assert len(small) <= 10
    assert len(large) - len(small) == 2


def test_an_empty_selection_makes_an_empty_run(user):
    UserAPIKeyFactory(user=user, service="anthropic")
    run_row = plan_run(run_options(services=["openai"]), batch_size=5)
    assert (run_row.key_count, run_row.batch_count) == (0, 0)


def test_a_service_answering_429_is_left_alone_for_the_rest_of_the_run(user, mocked):
    mocked.get(OPENAI, status=429, json={"error": {"message": "Rate limit reached"}})
    mocked.get(ANTHROPIC, json={"data": []})
    for _ in range(4):
        UserAPIKeyFactory(user=user)
    anthropic = UserAPIKeyFactory(user=user, service="anthropic")

    run("--enqueue", "--batch-size", "1", "--concurrency", "1")

    run_row = RecheckRun.objects.get()
    assert list(RecheckBackoff.objects.filter(run=run_row).values_list("service", flat=True)) == [
        "openai"
    ]
    assert sum(call.request.url == OPENAI for call in mocked.calls) == 1
    progress = progress_of(run_row)
    assert progress.counts["rate_limited"] == 1
    assert progress.counts["skipped_rate_limited"] == 3
    assert progress.rate_limited_services == ["openai"]
    assert UserAPIKey.objects.get(pk=anthropic.pk).status == "valid"


def test_another_workers_back_off_is_respected(user, mocked):
    mocked.get(OPENAI, json={"data": []})
    UserAPIKeyFactory(user=user)
    run_row = plan_run(run_options(), batch_size=5)
    RecheckBackoff.objects.create(run=run_row, service="openai")

    report = run_batch(run_row.batches.get().pk)

    assert report.counts == {"skipped_rate_limited": 1}
    assert len(mocked.calls) == 0


@override_settings(TASKS=DUMMY)
def test_tasks_are_enqueued_with_ids_only_and_nothing_runs_in_the_command(user, mocked):
    secrets = [secret_values(UserAPIKeyFactory(user=user).get_credentials()) for _ in range(1)]
    UserAPIKeyFactory(user=user)

    output = run("--enqueue", "--batch-size", "1")

    results = task_backends["default"].results
    assert [r.task.name for r in results] == ["recheck_batch", "recheck_batch"]
    assert all(r.args == [batch] for r, batch in zip(results, _batch_ids(), strict=True))
    assert all(r.kwargs == {} for r in results)
    for values in secrets:
        for value in values:
            assert value not in repr([(r.args, r.kwargs) for r in results])
            assert value not in output
    assert len(mocked.calls) == 0
    assert RecheckBatch.objects.filter(claimed_at__isnull=False).count() == 0


def _batch_ids():
    return list(RecheckBatch.objects.order_by("number").values_list("pk", flat=True))


@override_settings(TASKS=DUMMY)
def test_status_shows_progress_and_the_summary(user, mocked):
    mocked.get(OPENAI, json={"data": []})
    for _ in range(3):
        UserAPIKeyFactory(user=user)
    run("--enqueue", "--batch-size", "2")
    run_row = RecheckRun.objects.get()

    before = run("--status")
    run_batch(_batch_ids()[0])
    middle = run("--status", str(run_row.pk))
    run_batch(_batch_ids()[1])
    after = run("--status")

    assert "batches: 0 of 2 done" in before
    assert "Not finished yet." in before
    assert "keys:    2 of 3 tested" in middle
    assert "keys:    3 of 3 tested" in after
    assert "valid" in after
    assert "Finished" in after


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "12345"], r"No such run\."),
        (["--status", "x"], r"--status takes a run number\."),
        (["--enqueue", "--batch-size", "0"], r"--batch-size must be between 1 and 10000\."),
    ],
)
def test_bad_run_options_are_command_errors(user, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_status_without_any_run_says_so(db):
    with pytest.raises(CommandError, match=r"No run was enqueued yet\."):
        run("--status")


def test_a_run_keeps_its_selection(user, other_user, mocked):
    mocked.get(OPENAI, json={"data": []})
    mine = UserAPIKeyFactory(user=user)
    UserAPIKeyFactory(user=other_user)
    UserAPIKeyFactory(user=user, service="anthropic")

    run("--enqueue", "--user", str(user.pk), "--service", "openai")

    run_row = RecheckRun.objects.get()
    assert run_row.key_count == 1
    assert run_row.options["services"] == ["openai"]
    assert UserAPIKey.objects.get(pk=mine.pk).status == "valid"
    assert UserAPIKey.objects.exclude(pk=mine.pk).filter(status="valid").count() == 0


def test_a_run_of_many_users_keys_needs_constant_queries_per_key(mocked):
    mocked.get(OPENAI, json={"data": []})
    users = [UserFactory() for _ in range(2)]
    for owner in users:
        UserAPIKeyFactory(user=owner)
    plan = plan_run(run_options(), batch_size=10)
    with CaptureQueriesContext(connection) as two:
        run_batch(plan.batches.get().pk)
    for owner in users:
        UserAPIKeyFactory(user=owner)
    plan = plan_run(run_options(), batch_size=10)
    with CaptureQueriesContext(connection) as four:
        run_batch(plan.batches.get().pk)
    per_key = (len(four) - len(two)) / 2
    assert per_key == (len(two) - (len(four) - 4 * per_key)) / 2
    assert per_key <= 6
