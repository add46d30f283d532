"""The per-user budgets: counted atomically in BYOK["RATE_LIMIT_CACHE"]."""

import os
import threading
import uuid
from contextlib import contextmanager
from unittest import mock

import pytest
from django.core.cache import cache, caches
from django.test import override_settings

from byok.exceptions import TooManyTests
from byok.rate_limits import REVEALS, TEST_CALLS, rate_limit_cache, spend_test_budget

KEY = "dGVzdC1rZXktb25lLWZvci1ieW9rLXRlc3RzLW9ubHkhIQ"
LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
REDIS_URL = "redis://127.0.0.1:6379/0"


def in_parallel(count, function):
    """Call ``function`` from ``count`` threads released at once; their results."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(index):
        barrier.wait()
        results[index] = function()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_calls_fit_until_the_budget_is_spent():
    ident = uuid.uuid4()
    assert [TEST_CALLS.spend(ident) for _ in range(10)] == [None] * 10
    wait = TEST_CALLS.spend(ident)
    assert 59 < wait <= 60


def test_several_calls_are_spent_all_or_none():
    ident = uuid.uuid4()
    assert TEST_CALLS.spend(ident, 7) is None
    assert TEST_CALLS.spend(ident, 4) is not None  # 11: refused whole, given back
    assert TEST_CALLS.spend(ident, 3) is None
    assert TEST_CALLS.spend(ident) is not None
    assert TEST_CALLS.spend(uuid.uuid4(), 11) == 60.0  # never fits


def test_each_scope_and_user_has_its_own_budget():
    first, second = uuid.uuid4(), uuid.uuid4()
    assert TEST_CALLS.spend(first, 10) is None
    assert TEST_CALLS.spend(second) is None
    assert REVEALS.spend(first, 5) is None
    assert REVEALS.spend(first) is not None


def test_the_window_opens_again_after_its_period():
    ident = uuid.uuid4()
    with mock.patch("byok.rate_limits.time.time", return_value=1_000_000.0):
        assert TEST_CALLS.spend(ident, 10) is None
    key = f"byok:rate:byok_test:{ident}"
    cache.delete(key)  # what the cache does when the window's timeout passes
    assert TEST_CALLS.spend(ident) is None


@override_settings(
    CACHES={"default": {"BACKEND": LOCMEM}, "throttles": {"BACKEND": LOCMEM, "LOCATION": "t"}},
    BYOK={"ENCRYPTION_KEYS": [KEY], "RATE_LIMIT_CACHE": "throttles"},
)
def test_the_budgets_live_in_the_cache_the_setting_names(user):
    spend_test_budget(user, 10)
    with pytest.raises(TooManyTests):
        spend_test_budget(user)
    assert caches["throttles"].get(f"byok:rate:byok_test:{user.pk}") == 10
    assert caches["default"].get(f"byok:rate:byok_test:{user.pk}") is None
    assert rate_limit_cache() is caches["throttles"]
    caches["throttles"].clear()


@override_settings(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}},
)
def test_a_cache_that_keeps_nothing_lets_calls_through_and_says_so(caplog):
    assert TEST_CALLS.spend(uuid.uuid4(), 10) is None
    assert TEST_CALLS.spend(uuid.uuid4(), 10) is None
    assert "budgets are not enforced" in caplog.text


def test_threads_racing_for_the_last_calls_get_exactly_the_budget():
    ident = uuid.uuid4()
    results = in_parallel(40, lambda: TEST_CALLS.spend(ident))
    assert results.count(None) == 10


@contextmanager
def redis_cache():
    """Django's RedisCache on the machine's Redis as the budgets' cache, under a prefix
    of this test's own; its connections closed at the end."""
    redis = pytest.importorskip("redis")
    probe = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        probe.ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            raise
        pytest.skip("no Redis at 127.0.0.1:6379")
    finally:
        probe.close()
    shared = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"byok-test-{uuid.uuid4().hex}",
    }
    with override_settings(
        CACHES={"default": {"BACKEND": LOCMEM}, "shared": shared},
        BYOK={"ENCRYPTION_KEYS": [KEY], "RATE_LIMIT_CACHE": "shared"},
    ):
        try:
            yield caches["shared"]
        finally:
            for pool in caches["shared"]._cache._pools.values():
                pool.disconnect()


def test_on_redis_racing_threads_get_exactly_the_budget():
    with redis_cache():
        ident = uuid.uuid4()
        results = in_parallel(40, lambda: REVEALS.spend(ident))
        assert results.count(None) == 5
        shared = caches["shared"]
        key = shared.make_and_validate_key(f"byok:rate:byok_reveal:{ident}")
        ttl = shared._cache.get_client(key).ttl(key)
        assert 0 < ttl <= 60
        shared.delete_many(
            [f"byok:rate:byok_reveal:{ident}", f"byok:rate:byok_reveal:{ident}:opened"]
        )


def test_on_redis_a_window_that_expired_under_incr_gets_its_lifetime_back():
    """Redis' INCR makes a key with no expiry when the old one expired just before it:
    the first calls of a window set the expiry again."""
    with redis_cache():
        ident = uuid.uuid4()
        shared = caches["shared"]
        name = f"byok:rate:byok_test:{ident}"
        key = shared.make_and_validate_key(name)
        client = shared._cache.get_client(key, write=True)
        # add() and incr()'s EXISTS both still saw the old window; it expired just after.
        with (
            mock.patch.object(type(shared), "add", return_value=False),
            mock.patch.object(type(client), "exists", return_value=1),
        ):
            assert TEST_CALLS.spend(ident) is None
        assert client.get(key) == b"1"
        assert 0 < client.ttl(key) <= 60
        shared.delete_many([name])


def test_a_window_closing_while_refused_calls_are_given_back_is_no_error():
    ident = uuid.uuid4()
    assert TEST_CALLS.spend(ident, 10) is None
    with mock.patch.object(type(caches["default"]), "decr", side_effect=ValueError("gone")):
        assert TEST_CALLS.spend(ident) is not None
