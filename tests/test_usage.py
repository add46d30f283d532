import threading
from contextlib import nullcontext
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import OperationalError, connection, connections, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import byok
from byok import metering, usage
from byok.keys import remove_user_api_key
from byok.models import KeyUsage, PlatformUsage, UserAPIKey

from factories import KeyUsageFactory, UserAPIKeyFactory, UserFactory
from support import with_row_locks

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE", "WITH")


def writes(queries):
    """The statements that change data (PostgreSQL's start with a CTE)."""
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]


@pytest.fixture
def platform():
    from django.conf import settings

    with override_settings(
        BYOK={**settings.BYOK, "PLATFORM_KEYS": {"openai": "sk-platform-" + "x" * 40}}
    ):
        yield


def test_usage_of_the_users_key_counts_on_the_key(user):
    key = UserAPIKeyFactory(user=user)
    byok.track_api_usage(user, "openai", calls=2, units=1500, cost="0.0125")
    byok.track_api_usage(user, "openai", units=500, cost=Decimal("0.0025"))
    key.refresh_from_db()
    assert key.usage_count == 3
    assert key.estimated_cost == Decimal("0.015")
    assert key.last_used_at is not None
    day = KeyUsage.objects.get()
    assert (day.key, day.date, day.calls, day.units, day.cost) == (
        key,
        timezone.localdate(),
        3,
        2000,
        Decimal("0.015"),
    )
    assert not PlatformUsage.objects.exists()


def test_usage_on_the_platform_key_is_recorded_apart(user, platform):
    byok.track_api_usage(user, "openai", calls=4, units=10)
    day = PlatformUsage.objects.get()
    assert (day.user_id, day.service, day.environment, day.calls, day.units) == (
        user.pk,
        "openai",
        "production",
        4,
        10,
    )
    assert not KeyUsage.objects.exists()


def test_a_resolved_key_is_charged_even_if_the_default_changes(user):
    first = UserAPIKeyFactory(user=user)
    resolved = byok.resolve_api_key(user, "openai")
    second = UserAPIKeyFactory(user=user, is_default=True)
    byok.track_api_usage(user, "openai", key=resolved)
    assert KeyUsage.objects.get().key == first
    byok.track_api_usage(user, "openai", key=second)
    assert set(KeyUsage.objects.values_list("key", flat=True)) == {first.pk, second.pk}


#: Statements (no SELECT) of a call on a key: the day's first call, then the others.
#: MySQL tries one multi-table UPDATE first, which finds no row of the day on its first.
KEY_CALL_STATEMENTS = {"postgresql": (1, 1), "mysql": (3, 1), "sqlite": (2, 2)}


def test_at_most_two_writes(user, platform):
    """Two rows at most (the key's, the day's), in as few statements as the database
    allows, and no read when the caller passes what resolve_api_key returned."""
    key = UserAPIKeyFactory(user=user)
    resolved = byok.resolve_api_key(user, "openai")
    counts = []
    for _ in range(2):  # the first call of the day inserts, the next adds
        with CaptureQueriesContext(connection) as queries:
            byok.track_api_usage(user, "openai", key=resolved)
        counts.append(len(writes(queries)))
        assert not any(q["sql"].lstrip().upper().startswith("SELECT") for q in queries)
    assert tuple(counts) == KEY_CALL_STATEMENTS[connection.vendor]
    with CaptureQueriesContext(connection) as queries:
        byok.track_api_usage(user, "openai", key=key)  # a key row: its budgets are read
    assert len(writes(queries)) == KEY_CALL_STATEMENTS[connection.vendor][1]
    assert sum(q["sql"].lstrip().upper().startswith("SELECT") for q in queries) == 1
    assert UserAPIKey.objects.get().usage_count == KeyUsage.objects.get().calls == 3
    remove_user_api_key(key)
    with CaptureQueriesContext(connection) as queries:
        byok.track_api_usage(user, "openai")
    assert len(writes(queries)) == 1


def test_cost_defaults_to_the_services_estimate(user, monkeypatch):
    key = UserAPIKeyFactory(user=user)
    monkeypatch.setattr(type(key.get_service()), "default_cost_per_call", Decimal("0.002"))
    byok.track_api_usage(user, "openai", calls=5)
    assert KeyUsage.objects.get().cost == Decimal("0.01")


@pytest.mark.parametrize(
    "kwargs",
    [{"calls": -1}, {"units": -5}, {"calls": 1.5}, {"cost": "-0.01"}, {"environment": "x"}],
)
def test_bad_arguments_are_refused_and_change_nothing(user, kwargs):
    UserAPIKeyFactory(user=user)
    with pytest.raises(ValueError, match=r"must|Unknown environment"):
        byok.track_api_usage(user, "openai", **kwargs)
    assert not KeyUsage.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"calls": -1}, "calls, units and token counts must be non-negative integers."),
        ({"units": "5"}, "calls, units and token counts must be non-negative integers."),
        ({"cost": -1}, "cost must not be negative."),
    ],
)
def test_bad_arguments_say_what_is_wrong(user, kwargs, message):
    with pytest.raises(ValueError, match="must") as excinfo:
        byok.track_api_usage(user, "openai", **kwargs)
    assert str(excinfo.value) == message


def test_anonymous_users_are_not_metered_but_get_the_cost(platform):
    assert byok.track_api_usage(AnonymousUser(), "openai", cost="0.02") == Decimal("0.02")
    assert not PlatformUsage.objects.exists()


def test_what_a_call_does_not_say_it_used_is_recorded_as_none(user):
    UserAPIKeyFactory(user=user)
    byok.track_api_usage(user, "openai", cost="0.01")
    day = KeyUsage.objects.get()
    counts = (day.calls, day.units, day.input_tokens, day.output_tokens, day.cached_input_tokens)
    assert counts == (1, 0, 0, 0, 0)
    assert day.model == ""  # no model named


def test_a_model_name_is_kept_up_to_its_length_limit(user):
    UserAPIKeyFactory(user=user)
    longest = "m" * 100  # the documented limit
    byok.track_api_usage(user, "openai", model=longest, cost="0.01")
    assert KeyUsage.objects.get().model == longest
    with pytest.raises(ValueError, match=r"^model must be a name of at most 100 characters\.$"):
        byok.track_api_usage(user, "openai", model=longest + "m", cost="0.01")
    assert KeyUsage.objects.get().calls == 1


def test_the_portable_upsert_adds_the_same_way(user, monkeypatch):
    key = UserAPIKeyFactory(user=user)
    monkeypatch.setattr(metering, "UPSERT_VENDORS", frozenset())
    byok.track_api_usage(user, "openai", key=key, calls=2)
    byok.track_api_usage(user, "openai", key=key, calls=3)
    assert KeyUsage.objects.get().calls == 5


def test_the_portable_upsert_recovers_from_a_concurrent_insert(user, monkeypatch):
    key = UserAPIKeyFactory(user=user)
    today = timezone.localdate()
    real_update = type(KeyUsage.objects.all()).update
    calls = []

    def update_after_a_racing_insert(queryset, **kwargs):
        calls.append(kwargs)
        if len(calls) == 1:  # another request creates the row between our update and insert
            KeyUsageFactory(key=key, user=user, date=today, calls=10)
            return 0
        return real_update(queryset, **kwargs)

    monkeypatch.setattr(type(KeyUsage.objects.all()), "update", update_after_a_racing_insert)
    metering._upsert_portably(
        KeyUsage,
        {"key": key.pk, "user": user.pk, "date": today},
        {"calls": 1, "units": 0, "cost": 0},
    )
    assert KeyUsage.objects.get().calls == 11


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_victim_is_retried(monkeypatch):
    user = UserFactory()
    key = UserAPIKeyFactory(user=user)
    real_record = usage._record
    attempts = []

    def deadlock_once(*args, **kwargs):
        attempts.append(args)
        if len(attempts) == 1:
            raise OperationalError(1213, "Deadlock found when trying to get lock")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(usage, "_record", deadlock_once)
    byok.track_api_usage(user, "openai", key=key)
    assert len(attempts) == 2
    assert KeyUsage.objects.get().calls == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("error", "nested"),
    [((1205, "Lock wait timeout exceeded"), False), ((1213, "Deadlock found"), True)],
)
def test_other_errors_and_nested_transactions_are_not_retried(monkeypatch, error, nested):
    user = UserFactory()
    key = UserAPIKeyFactory(user=user)
    attempts = []

    def fail(*args, **kwargs):
        attempts.append(args)
        raise OperationalError(*error)

    monkeypatch.setattr(usage, "_record", fail)
    with pytest.raises(OperationalError), transaction.atomic() if nested else nullcontext():
        byok.track_api_usage(user, "openai", key=key)
    assert len(attempts) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deadlocks", [1, 2])
def test_a_deadlock_victim_is_retried_until_the_last_attempt(monkeypatch, deadlocks):
    user = UserFactory()
    key = UserAPIKeyFactory(user=user)
    real_record = usage._record
    attempts = []

    def deadlock_first(*args, **kwargs):
        attempts.append(args)
        if len(attempts) <= deadlocks:
            raise OperationalError(1213, "Deadlock found when trying to get lock")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(usage, "_record", deadlock_first)
    byok.track_api_usage(user, "openai", key=key, calls=2)
    assert len(attempts) == deadlocks + 1
    assert KeyUsage.objects.get().calls == 2
    assert UserAPIKey.objects.get().usage_count == 2


@pytest.mark.django_db(transaction=True)
def test_after_three_deadlocks_the_error_propagates(monkeypatch):
    user = UserFactory()
    key = UserAPIKeyFactory(user=user)
    attempts = []

    def always_deadlocked(*args, **kwargs):
        attempts.append(args)
        raise OperationalError(1213, "Deadlock found when trying to get lock")

    monkeypatch.setattr(usage, "_record", always_deadlocked)
    with pytest.raises(OperationalError, match="Deadlock found"):
        byok.track_api_usage(user, "openai", key=key)
    assert len(attempts) == usage.DEADLOCK_RETRIES == 3
    assert not KeyUsage.objects.exists()


class DriverError(Exception):
    """What psycopg raises: Django's OperationalError wraps it as ``__cause__``."""

    def __init__(self, sqlstate):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def operational_error(*args, sqlstate=None):
    error = OperationalError(*args)
    if sqlstate is not None:
        error.__cause__ = DriverError(sqlstate)
    return error


@pytest.mark.parametrize(
    ("error", "deadlock"),
    [
        (operational_error("deadlock detected", sqlstate="40P01"), True),
        (operational_error("could not serialize access", sqlstate="40001"), True),
        (operational_error("lock not available", sqlstate="55P03"), False),
        (operational_error("unique violation", sqlstate="23505"), False),
        (operational_error("canceling statement", sqlstate="57014"), False),
        (operational_error(1213, "Deadlock found when trying to get lock"), True),
        (operational_error(1205, "Lock wait timeout exceeded"), False),
        (operational_error(2006, "MySQL server has gone away"), False),
        (operational_error("1213"), False),
        (operational_error(), False),
        (operational_error("database is locked"), False),
    ],
    ids=[
        "pg-deadlock",
        "pg-serialization",
        "pg-lock-not-available",
        "pg-unique",
        "pg-cancelled",
        "mysql-deadlock",
        "mysql-lock-wait",
        "mysql-gone-away",
        "text-1213",
        "no-arguments",
        "sqlite-locked",
    ],
)
def test_is_deadlock_knows_exactly_the_deadlock_codes(error, deadlock):
    assert usage.is_deadlock(error) is deadlock


def test_units_alone_can_be_recorded(user):
    """``calls=0``: a call already counted, its tokens reported afterwards."""
    key = UserAPIKeyFactory(user=user)
    byok.track_api_usage(user, "openai", key=key, calls=0, units=1200)
    row = KeyUsage.objects.get()
    assert (row.calls, row.units, row.cost) == (0, 1200, 0)
    key.refresh_from_db()
    assert key.usage_count == 0


def test_one_call_and_no_units_by_default(user):
    UserAPIKeyFactory(user=user)
    byok.track_api_usage(user, "openai", cost="0.01")
    row = KeyUsage.objects.get()
    assert (row.calls, row.units) == (1, 0)


def test_a_free_call_costs_nothing_and_counts(user):
    key = UserAPIKeyFactory(user=user)
    byok.track_api_usage(user, "openai", key=key, cost=0)
    byok.track_api_usage(user, "openai", key=key, cost="0.25")
    row = KeyUsage.objects.get()
    assert (row.calls, row.cost) == (2, Decimal("0.25"))


def run_sixteen_threads(target):
    barrier = threading.Barrier(16)
    errors = []

    def worker():
        try:
            barrier.wait()
            for _ in range(50):
                target()
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_count_exactly_on_a_users_key():
    user = UserFactory()
    UserAPIKeyFactory(user=user)
    errors = run_sixteen_threads(
        lambda: byok.track_api_usage(user, "openai", units=3, cost="0.001")
    )
    assert errors == []
    key = UserAPIKey.objects.get()
    day = KeyUsage.objects.get()
    assert (key.usage_count, day.calls, day.units) == (800, 800, 2400)
    assert key.estimated_cost == day.cost == Decimal("0.8")


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_count_exactly_with_the_resolved_key():
    user = UserFactory()
    UserAPIKeyFactory(user=user)
    resolved = byok.resolve_api_key(user, "openai")
    errors = run_sixteen_threads(
        lambda: byok.track_api_usage(user, "openai", units=3, cost="0.001", key=resolved)
    )
    assert errors == []
    key = UserAPIKey.objects.get()
    day = KeyUsage.objects.get()
    assert (key.usage_count, day.calls, day.units) == (800, 800, 2400)
    assert key.estimated_cost == day.cost == Decimal("0.8")
    assert key.last_used_at is not None


def test_the_first_call_of_a_day_creates_its_row_on_every_database(user):
    UserAPIKeyFactory(user=user)
    resolved = byok.resolve_api_key(user, "openai")
    byok.track_api_usage(user, "openai", key=resolved, units=7, cost="0.5")
    key, day = UserAPIKey.objects.get(), KeyUsage.objects.get()
    assert (key.usage_count, key.estimated_cost, day.calls, day.units) == (1, Decimal("0.5"), 1, 7)


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_count_exactly_on_the_platform_key(platform):
    user = UserFactory()
    errors = run_sixteen_threads(lambda: byok.track_api_usage(user, "openai", units=2))
    assert errors == []
    day = PlatformUsage.objects.get()
    assert (day.calls, day.units) == (800, 1600)
