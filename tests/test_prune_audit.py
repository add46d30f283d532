"""manage.py byok_prune_audit: deleting old audit events, a batch at a time."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from byok.management.commands import byok_prune_audit
from byok.models import AuditEvent

from factories import UserAPIKeyFactory

pytestmark = pytest.mark.django_db


def events(*ages_in_days, key=None):
    now = timezone.now()
    return [
        AuditEvent.objects.create(action="tested", key=key, created_at=now - timedelta(days=age))
        for age in ages_in_days
    ]


def prune(*args):
    out = StringIO()
    call_command("byok_prune_audit", *args, stdout=out)
    return out.getvalue()


def test_events_older_than_the_cutoff_are_deleted_and_the_rest_kept(user):
    key = UserAPIKeyFactory(user=user)  # writes a "created" event now
    old = events(400, 91, key=key)
    recent = events(89, 1, key=key)
    output = prune("--older-than", "90")
    assert "Deleted 2 audit events from before" in output
    remaining = set(AuditEvent.objects.values_list("pk", flat=True))
    assert not remaining & {e.pk for e in old}
    assert remaining >= {e.pk for e in recent}
    assert AuditEvent.objects.filter(action="created", key=key).exists()


def test_dry_run_counts_and_deletes_nothing():
    events(100, 100, 100, 5)
    output = prune("--older-than", "30", "--dry-run")
    assert "Dry run: 3 audit events from before" in output
    assert AuditEvent.objects.count() == 4


def test_nothing_to_delete():
    events(5)
    assert "Deleted 0 audit events" in prune("--older-than", "30")
    assert AuditEvent.objects.count() == 1


def test_deletes_in_batches(monkeypatch):
    monkeypatch.setattr(byok_prune_audit, "BATCH_SIZE", 2)
    events(100, 100, 100, 100, 100, 1)
    with CaptureQueriesContext(connection) as queries:
        output = prune("--older-than", "30")
    deletes = [q["sql"] for q in queries if q["sql"].upper().startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert "Deleted 5 audit events" in output
    assert AuditEvent.objects.count() == 1


def test_batch_size_option():
    events(100, 100, 100)
    with CaptureQueriesContext(connection) as queries:
        prune("--older-than", "30", "--batch-size", "1")
    assert sum(q["sql"].upper().startswith("DELETE") for q in queries) == 3
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--older-than", "0"],
        ["--older-than", "-5"],
        ["--older-than", "90d"],
        ["--older-than", "ninety"],
        ["--older-than", "99999999999"],
        ["--older-than", "30", "--batch-size", "0"],
    ],
)
def test_bad_values_are_command_errors_and_delete_nothing(args):
    events(100)
    with pytest.raises(CommandError):
        prune(*args)
    assert AuditEvent.objects.count() == 1
