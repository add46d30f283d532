"""Measuring calls: each call's outcome and latency bucket, added to the day's usage
row in the same statement as the usage (byok.measurement), by track_api_usage, the
metered SDK clients and byok.clients.session."""

import pytest
import requests
import responses as responses_lib
from django.db import connection
from django.test.utils import CaptureQueriesContext
from test_usage import KEY_CALL_STATEMENTS, run_sixteen_threads, writes

import byok
import byok.clients
from byok import measurement
from byok.clients import Outcome
from byok.measurement import (
    LATENCY_COLUMNS,
    MEASUREMENT_COLUMNS,
    OUTCOME_COLUMNS,
    Measured,
    Percentile,
    bucket_of,
    percentile,
)
from byok.models import KeyUsage, PlatformUsage, UserAPIKey

from factories import UserAPIKeyFactory, UserFactory
from fake_provider import FakeProvider, refused_url
from fakes import fake_credentials
from support import with_row_locks

pytestmark = pytest.mark.django_db

CHAT = [{"role": "user", "content": "Say hello."}]


def measured(row):
    """The row's non-zero measurement columns."""
    return {name: getattr(row, name) for name in MEASUREMENT_COLUMNS if getattr(row, name)}


# -- Buckets and percentiles ----------------------------------------------------------


@pytest.mark.parametrize(
    ("latency", "column"),
    [
        (0, "latency_le_50"),
        (50, "latency_le_50"),
        (51, "latency_le_100"),
        (250, "latency_le_250"),
        (251, "latency_le_500"),
        (1000, "latency_le_1000"),
        (10000, "latency_le_10000"),
        (10001, "latency_gt_10000"),
        (10**9, "latency_gt_10000"),
    ],
)
def test_a_latency_falls_in_the_bucket_its_bound_includes(latency, column):
    assert bucket_of(latency) == column


def buckets(**counts):
    return [counts.get(column, 0) for column in LATENCY_COLUMNS]


def test_no_measured_call_has_no_percentile():
    assert percentile(buckets(), 0.5) is None
    assert Measured.of({}).p95() is None
    assert Measured.of({}).error_rate() is None


def test_one_call_is_every_percentile():
    one = buckets(latency_le_250=1)
    assert percentile(one, 0.5) == percentile(one, 0.95) == Percentile(100, 250)
    assert str(percentile(one, 0.5)) == "≤ 250 ms"


def test_the_median_is_the_bucket_that_holds_half_the_calls():
    # 10 calls: the 5th (nearest rank) is the last of the fast half.
    counts = buckets(latency_le_50=5, latency_le_1000=5)
    assert percentile(counts, 0.5) == Percentile(0, 50)
    counts = buckets(latency_le_50=4, latency_le_1000=6)
    assert percentile(counts, 0.5) == Percentile(500, 1000)


def test_p95_needs_95_percent_of_the_calls_at_or_below():
    counts = buckets(latency_le_100=95, latency_le_5000=5)
    assert percentile(counts, 0.95) == Percentile(50, 100)
    counts = buckets(latency_le_100=94, latency_le_5000=6)
    assert percentile(counts, 0.95) == Percentile(2500, 5000)


def test_the_open_bucket_reads_as_more_than_its_bound():
    slow = percentile(buckets(latency_gt_10000=3), 0.5)
    assert slow == Percentile(10000, None)
    assert str(slow) == "> 10,000 ms"
    assert slow.sort_key > Percentile(5000, 10000).sort_key


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5])
def test_a_percentile_outside_0_to_1_is_refused(fraction):
    with pytest.raises(ValueError, match="fraction"):
        percentile(buckets(latency_le_50=1), fraction)


def test_a_wrong_number_of_buckets_is_refused():
    with pytest.raises(ValueError, match="bucket counts"):
        percentile([1, 2], 0.5)


def test_rates_count_429_apart_from_errors():
    row = {"ok_calls": 6, "client_errors": 1, "rate_limited": 2, "timeouts": 1}
    figures = Measured.of(row)
    assert (figures.calls, figures.errors, figures.rate_limited) == (10, 2, 2)
    assert figures.error_rate() == pytest.approx(0.2)
    assert figures.rate_limit_rate() == pytest.approx(0.2)
    both = figures + figures
    assert (both.calls, both.errors) == (20, 4)


def test_the_outcomes_are_those_the_clients_report():
    reported = {v for k, v in vars(Outcome).items() if k.isupper()} - {Outcome.REFUSED}
    assert set(OUTCOME_COLUMNS) == reported


# -- track_api_usage ------------------------------------------------------------------


@pytest.mark.parametrize(("outcome", "column"), sorted(OUTCOME_COLUMNS.items()))
def test_each_outcome_counts_in_its_column(user, outcome, column):
    UserAPIKeyFactory(user=user)
    byok.track_api_usage(user, "openai", outcome=outcome, latency_ms=120)
    byok.track_api_usage(user, "openai", outcome=outcome, latency_ms=7)
    assert measured(KeyUsage.objects.get()) == {
        column: 2,
        "latency_le_50": 1,
        "latency_le_250": 1,
    }


def test_the_platform_keys_row_is_measured_too(user, settings):
    settings.BYOK = {**settings.BYOK, "PLATFORM_KEYS": {"openai": fake_credentials("openai")}}
    byok.track_api_usage(user, "openai", outcome="429", latency_ms=20000)
    byok.track_api_usage(user, "openai", outcome="ok", latency_ms=400)
    assert measured(PlatformUsage.objects.get()) == {
        "rate_limited": 1,
        "ok_calls": 1,
        "latency_gt_10000": 1,
        "latency_le_500": 1,
    }


def test_a_call_without_a_measurement_adds_no_outcome_and_no_bucket(user):
    UserAPIKeyFactory(user=user)
    byok.track_api_usage(user, "openai")
    byok.track_api_usage(user, "openai", outcome="ok")
    byok.track_api_usage(user, "openai", latency_ms=60)
    row = KeyUsage.objects.get()
    assert row.calls == 3
    assert measured(row) == {"ok_calls": 1, "latency_le_100": 1}


def test_several_calls_count_as_many_measurements(user):
    UserAPIKeyFactory(user=user)
    byok.track_api_usage(user, "openai", calls=4, outcome="5xx", latency_ms=3000)
    assert measured(KeyUsage.objects.get()) == {"server_errors": 4, "latency_le_5000": 4}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"outcome": "teapot"},
        {"outcome": 200},
        {"outcome": ""},
        {"latency_ms": -1},
        {"latency_ms": 1.5},
        {"latency_ms": "12"},
        {"latency_ms": True},
    ],
)
def test_a_bad_measurement_is_refused_and_records_nothing(user, kwargs):
    UserAPIKeyFactory(user=user)
    with pytest.raises(ValueError, match=r"latency_ms must|outcome must"):
        byok.track_api_usage(user, "openai", **kwargs)
    assert not KeyUsage.objects.exists()


def test_measuring_adds_no_statement(user):
    """The write budget stays that of the usage alone: the measurement rides on the
    day's row the usage upserts anyway, on every database."""
    UserAPIKeyFactory(user=user)
    resolved = byok.resolve_api_key(user, "openai")
    counts = []
    for latency in (30, 3000):  # the first call of the day inserts, the next adds
        with CaptureQueriesContext(connection) as queries:
            byok.track_api_usage(user, "openai", key=resolved, outcome="ok", latency_ms=latency)
        counts.append(len(writes(queries)))
        assert not any(q["sql"].lstrip().upper().startswith("SELECT") for q in queries)
    assert tuple(counts) == KEY_CALL_STATEMENTS[connection.vendor]
    assert measured(KeyUsage.objects.get()) == {
        "ok_calls": 2,
        "latency_le_50": 1,
        "latency_le_5000": 1,
    }


def test_the_portable_path_measures_the_same_way(user, monkeypatch):
    from byok import metering

    UserAPIKeyFactory(user=user)
    monkeypatch.setattr(metering, "UPSERT_VENDORS", frozenset())
    byok.track_api_usage(user, "openai", outcome="timeout", latency_ms=30000)
    byok.track_api_usage(user, "openai", outcome="timeout", latency_ms=30000)
    assert measured(KeyUsage.objects.get()) == {"timeouts": 2, "latency_gt_10000": 2}


OUTCOME_CYCLE = ("ok", "4xx", "429", "5xx", "timeout", "error", "ok", "ok")
LATENCY_CYCLE = (10, 80, 200, 400, 900, 2000, 4000, 20000)


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("on_platform", [False, True])
def test_sixteen_threads_measure_exactly(settings, on_platform):
    settings.BYOK = {**settings.BYOK, "PLATFORM_KEYS": {"openai": fake_credentials("openai")}}
    user = UserFactory()
    if not on_platform:
        UserAPIKeyFactory(user=user)
    resolved = byok.resolve_api_key(user, "openai")
    counter = iter(range(10**6))

    def call():
        n = next(counter)  # next() on a range iterator is atomic under the GIL
        byok.track_api_usage(
            user,
            "openai",
            key=resolved,
            outcome=OUTCOME_CYCLE[n % 8],
            latency_ms=LATENCY_CYCLE[n % 8],
        )

    assert run_sixteen_threads(call) == []
    row = (PlatformUsage if on_platform else KeyUsage).objects.get()
    assert row.calls == 800
    assert measured(row) == {
        "ok_calls": 300,
        "client_errors": 100,
        "rate_limited": 100,
        "server_errors": 100,
        "timeouts": 100,
        "other_errors": 100,
        **{bucket_of(latency): 100 for latency in LATENCY_CYCLE},
    }
    if not on_platform:
        assert UserAPIKey.objects.get().usage_count == 800


# -- The metered clients --------------------------------------------------------------


@pytest.fixture
def fake(settings):
    with FakeProvider() as server:
        settings.BYOK = {
            **settings.BYOK,
            "BASE_URLS": {"openai": server.openai_url, "anthropic": server.url},
            "ALLOW_PRIVATE_BASE_URLS": True,
        }
        yield server


def test_the_sdk_client_measures_each_try(user, fake):
    UserAPIKeyFactory(user=user, service="anthropic")
    fake.answer("/v1/messages", status=429, headers={"retry-after-ms": "1"})
    fake.answer("/v1/messages", status=500, headers={"retry-after-ms": "1"})
    fake.answer("/v1/messages", status=400)
    client = byok.clients.anthropic(user, max_retries=2)
    with pytest.raises(Exception, match="400"):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=CHAT)
    client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=CHAT)
    row = KeyUsage.objects.get()
    assert row.calls == 4
    found = measured(row)
    assert {k: v for k, v in found.items() if not k.startswith("latency")} == {
        "rate_limited": 1,
        "server_errors": 1,
        "client_errors": 1,
        "ok_calls": 1,
    }
    # A local server answers within a second.
    assert sum(found.get(c, 0) for c in LATENCY_COLUMNS[:5]) == 4


def test_the_sdk_client_measures_a_timeout_in_its_bucket(user, fake):
    import openai

    UserAPIKeyFactory(user=user, service="openai")
    fake.answer("/v1/chat/completions", delay=0.6)
    client = byok.clients.openai(user, max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert measured(KeyUsage.objects.get()) == {"timeouts": 1, "latency_le_500": 1}


def test_the_sdk_client_measures_a_refused_connection(user, settings):
    import openai

    UserAPIKeyFactory(user=user, service="openai")
    settings.BYOK = {
        **settings.BYOK,
        "BASE_URLS": {"openai": refused_url()},
        "ALLOW_PRIVATE_BASE_URLS": True,
    }
    client = byok.clients.openai(user, max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        client.with_options(timeout=2).chat.completions.create(model="gpt-4o", messages=CHAT)
    row = KeyUsage.objects.get()
    assert row.other_errors == 1
    assert sum(getattr(row, c) for c in LATENCY_COLUMNS) == 1


@pytest.mark.parametrize(
    ("answer", "column"),
    [
        ({"status": 200}, "ok_calls"),
        ({"status": 404}, "client_errors"),
        ({"status": 429}, "rate_limited"),
        ({"status": 503}, "server_errors"),
        ({"body": requests.ConnectTimeout("slow")}, "timeouts"),
        ({"body": requests.ReadTimeout("slow")}, "timeouts"),
        ({"body": requests.ConnectionError("refused")}, "other_errors"),
    ],
)
def test_the_session_measures_each_outcome(user, answer, column):
    UserAPIKeyFactory(user=user, service="resend")
    with responses_lib.RequestsMock() as mock:
        mock.get("https://api.resend.com/domains", **answer)
        session = byok.clients.session(user, "resend")
        try:
            session.get("/domains")
        except requests.RequestException:
            assert column in ("timeouts", "other_errors")
    row = KeyUsage.objects.get()
    assert getattr(row, column) == 1
    assert sum(getattr(row, c) for c in OUTCOME_COLUMNS.values()) == 1
    assert row.latency_le_50 + row.latency_le_100 + row.latency_le_250 == 1


def test_measurement_columns_are_declared_once():
    assert len(set(MEASUREMENT_COLUMNS)) == len(MEASUREMENT_COLUMNS) == 15
    assert measurement.counters(2, None, None) == dict.fromkeys(MEASUREMENT_COLUMNS, 0)
