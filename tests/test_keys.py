import io
import threading
import uuid

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

import byok
from byok.exceptions import DecryptionError, NoAPIKey, UnknownService
from byok.keys import (
    remove_user_api_key,
    set_default_key,
    set_key_active,
    set_platform_fallback,
)
from byok.models import AuditEvent, Owner, ServicePreference, UserAPIKey
from byok.signals import key_added, key_removed, key_updated, key_used

from factories import UserAPIKeyFactory, UserFactory
from fakes import fake_credentials
from support import OTHER_ENCRYPTION_KEY, client_for, signal_calls, with_row_locks

pytestmark = pytest.mark.django_db

PLATFORM = "sk-platform-key-for-the-whole-site-0123456789abcdef"


def platform_keys(**keys):
    return override_settings(BYOK={**_current_byok(), "PLATFORM_KEYS": keys})


def _current_byok():
    from django.conf import settings

    return dict(settings.BYOK)


# get_user_api_key and resolve_api_key ----------------------------------------


def test_returns_the_users_key(user):
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=secret)
    assert byok.get_user_api_key(user, "openai") == secret


def test_lookup_is_one_select_and_no_write(user):
    UserAPIKeyFactory(user=user)
    with CaptureQueriesContext(connection) as queries:
        byok.get_user_api_key(user, "openai")
    assert len(queries) == 1
    assert queries[0]["sql"].lstrip().upper().startswith("SELECT")


@platform_keys(openai=PLATFORM)
def test_fallback_lookup_is_also_one_query(user, other_user):
    UserAPIKeyFactory(user=other_user)
    with CaptureQueriesContext(connection) as queries:
        assert byok.get_user_api_key(user, "openai") == PLATFORM
    assert len(queries) == 1
    key = UserAPIKeyFactory(user=user)
    remove_user_api_key(key)
    with CaptureQueriesContext(connection) as queries:
        assert byok.get_user_api_key(user, "openai") == PLATFORM
    assert len(queries) == 1


@platform_keys(openai=PLATFORM)
def test_resolve_says_whose_key_serves(user):
    platform = byok.resolve_api_key(user, "openai")
    assert (platform.source, platform.key_id, platform.key) == ("platform", None, None)
    key = UserAPIKeyFactory(user=user)
    mine = byok.resolve_api_key(user, "openai")
    assert (mine.source, mine.key_id) == ("user", key.pk)
    assert mine.key == key
    assert mine.value not in repr(mine)


@platform_keys(openai=PLATFORM)
def test_anonymous_users_get_the_platform_key_without_a_query():
    with CaptureQueriesContext(connection) as queries:
        assert byok.get_user_api_key(AnonymousUser(), "openai") == PLATFORM
        assert byok.get_user_api_key(None, "openai") == PLATFORM
    assert len(queries) == 0


def test_no_key_anywhere_raises_no_api_key(user):
    with pytest.raises(NoAPIKey, match="no platform key is configured"):
        byok.get_user_api_key(user, "openai")


@platform_keys(openai=PLATFORM)
def test_fallback_false_never_uses_the_platform_key(user):
    with pytest.raises(NoAPIKey):
        byok.get_user_api_key(user, "openai", fallback=False)


@platform_keys(openai=PLATFORM)
def test_always_use_my_key_turns_fallback_off(user):
    set_platform_fallback(user, "openai", False)
    with pytest.raises(NoAPIKey, match="chose not to fall back") as excinfo:
        byok.get_user_api_key(user, "openai")
    assert excinfo.value.fallback_refused
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=secret)
    assert byok.get_user_api_key(user, "openai") == secret
    set_platform_fallback(user, "openai", True)
    UserAPIKey.objects.all().delete()
    assert byok.get_user_api_key(user, "openai") == PLATFORM


@platform_keys(openai=PLATFORM)
def test_fallback_preference_per_environment(user):
    set_platform_fallback(user, "openai", False, environment="production")
    with pytest.raises(NoAPIKey):
        byok.get_user_api_key(user, "openai")
    assert byok.get_user_api_key(user, "openai", environment="test") == PLATFORM


def test_multi_field_services_return_a_mapping(user):
    credentials = fake_credentials("twilio")
    UserAPIKeyFactory(user=user, service="twilio", credentials=credentials)
    assert byok.get_user_api_key(user, "twilio") == credentials


@platform_keys(twilio={"account_sid": "AC" + "0" * 32, "auth_token": "f" * 32})
def test_multi_field_platform_keys_are_mappings(user):
    assert byok.get_user_api_key(user, "twilio") == {
        "account_sid": "AC" + "0" * 32,
        "auth_token": "f" * 32,
    }


def test_environments_are_separate(user):
    test_secret = fake_credentials("stripe")
    UserAPIKeyFactory(user=user, service="stripe", credentials=test_secret, environment="test")
    with pytest.raises(NoAPIKey):
        byok.get_user_api_key(user, "stripe")
    assert byok.get_user_api_key(user, "stripe", environment="test") == test_secret
    with override_settings(BYOK={**_current_byok(), "DEFAULT_ENVIRONMENT": "test"}):
        assert byok.get_user_api_key(user, "stripe") == test_secret


def test_unknown_environment_is_refused(user):
    with pytest.raises(ValueError, match="Unknown environment"):
        byok.get_user_api_key(user, "openai", environment="staging")


def test_unknown_service_is_refused(user):
    with pytest.raises(UnknownService, match="nope"):
        byok.get_user_api_key(user, "nope")


def test_an_undecryptable_row_raises_a_clear_error(user):
    key = UserAPIKeyFactory(user=user)
    stored_with = key.credentials.encryption_key_id
    with override_settings(BYOK={"ENCRYPTION_KEYS": [OTHER_ENCRYPTION_KEY]}):
        with pytest.raises(DecryptionError) as excinfo:
            byok.get_user_api_key(user, "openai")
        with pytest.raises(DecryptionError):
            UserAPIKey.objects.get().get_secret()
    assert excinfo.value.encryption_key_id == stored_with
    assert str(key.pk) in str(excinfo.value)
    assert stored_with in str(excinfo.value)


def test_changing_secret_key_loses_nothing(user):
    secret = fake_credentials("anthropic")
    UserAPIKeyFactory(user=user, service="anthropic", credentials=secret)
    with override_settings(SECRET_KEY="an-entirely-new-secret-key-after-a-leak"):
        assert byok.get_user_api_key(user, "anthropic") == secret
        with pytest.raises(ValidationError):
            UserAPIKeyFactory(user=user, service="anthropic", credentials=secret)


def test_key_used_signal_carries_no_secret(user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    with signal_calls(key_used) as received:
        byok.get_user_api_key(user, "openai")
    (call,) = received
    assert (call["source"], call["key_id"], call["service"]) == ("user", key.pk, "openai")
    assert secret not in repr(call)


def test_async_twins(user):
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=secret)
    assert async_to_sync(byok.aget_user_api_key)(user, "openai") == secret
    assert async_to_sync(byok.aresolve_api_key)(user, "openai").source == "user"


# add_user_api_key -------------------------------------------------------------


def test_add_stores_a_masked_encrypted_key(user):
    secret = fake_credentials("openai")
    key = byok.add_user_api_key(user, "openai", secret, nickname="  laptop ")
    assert key.nickname == "laptop"
    assert key.masked_key == f"sk-proj-…{secret[-4:]}"
    assert key.status == "untested"
    assert key.environment == "production"
    assert key.get_credentials() == {"api_key": secret}


def test_add_accepts_a_mapping_and_trims_whitespace(user):
    secret = fake_credentials("openai")
    key = byok.add_user_api_key(user, "openai", {"api_key": f"  {secret}\n"})
    assert key.get_secret() == secret


@pytest.mark.parametrize(
    ("service", "credentials", "field", "code"),
    [
        ("openai", "", "api_key", "required"),
        ("openai", {"api_key": 42}, "api_key", "invalid"),
        ("openai", {"api_key": "sk-a\x00b" + "c" * 40}, "api_key", "invalid"),
        ("openai", {"api_key": "sk-" + "é" * 40}, "api_key", "invalid"),
        ("openai", {"api_key": "sk-…AbCd"}, "api_key", "masked"),
        ("openai", {"api_key": "sk-" + "a" * 5000}, "api_key", "max_length"),
        ("openai", {"api_key": "sk-" + "a" * 40, "extra": "x"}, "extra", "unknown_field"),
        ("twilio", {"account_sid": "AC" + "0" * 32}, "auth_token", "required"),
    ],
)
def test_add_refuses_malformed_credentials_keyed_by_field(user, service, credentials, field, code):
    with pytest.raises(ValidationError) as excinfo:
        byok.add_user_api_key(user, service, credentials)
    assert [e.code for e in excinfo.value.error_dict[field]] == [code]
    assert not UserAPIKey.objects.exists()


def test_add_refuses_a_string_for_a_multi_field_service(user):
    with pytest.raises(ValidationError, match="needs several fields"):
        byok.add_user_api_key(user, "twilio", "just-one-value")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"service": "nope"}, "service"),
        ({"environment": "staging"}, "environment"),
        ({"nickname": "n" * 101}, "nickname"),
        ({"nickname": 7}, "nickname"),
    ],
)
def test_add_refuses_bad_arguments(user, kwargs, field):
    arguments = {"service": "openai", "credentials": fake_credentials("openai"), **kwargs}
    with pytest.raises(ValidationError) as excinfo:
        byok.add_user_api_key(user, **arguments)
    assert field in excinfo.value.error_dict
    assert not UserAPIKey.objects.exists()


def test_error_messages_never_repeat_the_value(user):
    secret = "sk-" + "é" * 40
    with pytest.raises(ValidationError) as excinfo:
        byok.add_user_api_key(user, "openai", secret)
    assert secret not in str(excinfo.value.messages)


def test_the_same_secret_twice_is_refused(user):
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=secret)
    for environment in ("production", "test"):
        with pytest.raises(ValidationError) as excinfo:
            byok.add_user_api_key(user, "openai", secret, environment=environment)
        assert excinfo.value.error_dict["credentials"][0].code == "duplicate"
    assert UserAPIKey.objects.count() == 1


def test_another_user_may_store_the_same_secret(user, other_user):
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=secret)
    UserAPIKeyFactory(user=other_user, credentials=secret)
    assert UserAPIKey.objects.count() == 2


def test_a_deleted_secret_can_be_stored_again(user):
    secret = fake_credentials("openai")
    remove_user_api_key(UserAPIKeyFactory(user=user, credentials=secret))
    assert UserAPIKeyFactory(user=user, credentials=secret).get_secret() == secret


def test_duplicates_are_found_across_a_key_rotation(user):
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=secret)
    from django.conf import settings

    keys = [OTHER_ENCRYPTION_KEY, *settings.BYOK["ENCRYPTION_KEYS"]]
    with (
        override_settings(BYOK={**_current_byok(), "ENCRYPTION_KEYS": keys}),
        pytest.raises(ValidationError),
    ):
        UserAPIKeyFactory(user=user, credentials=secret)


def test_add_sends_key_added_and_audits(user):
    with signal_calls(key_added) as received:
        key = UserAPIKeyFactory(user=user)
    assert received[0]["key"] == key
    event = AuditEvent.objects.get()
    assert (event.action, event.key, event.owner_id, event.actor_id) == (
        "created",
        key,
        user.pk,
        user.pk,
    )


# defaults, deactivation and deletion ------------------------------------------


def test_the_first_key_of_a_slot_is_its_default(user):
    first = UserAPIKeyFactory(user=user)
    second = UserAPIKeyFactory(user=user)
    assert first.is_default
    assert not UserAPIKey.objects.get(pk=second.pk).is_default
    assert UserAPIKey.objects.default_for(Owner.user(user), "openai", "production") == first


def test_adding_as_default_takes_over(user):
    UserAPIKeyFactory(user=user)
    secret = fake_credentials("openai")
    second = UserAPIKeyFactory(user=user, credentials=secret, is_default=True)
    assert UserAPIKey.objects.defaults().get() == second
    assert byok.get_user_api_key(user, "openai") == secret


def test_set_default_key(user):
    UserAPIKeyFactory(user=user)
    second = UserAPIKeyFactory(user=user)
    with signal_calls(key_updated) as received:
        set_default_key(second)
    assert byok.resolve_api_key(user, "openai").key_id == second.pk
    assert received[0]["fields"] == ["is_default"]


def test_only_an_active_key_can_be_default(user):
    UserAPIKeyFactory(user=user)
    second = UserAPIKeyFactory(user=user)
    set_key_active(second, False)
    with pytest.raises(ValidationError):
        set_default_key(second)


def test_deactivating_the_default_hands_over_to_the_newest_active_key(user):
    first = UserAPIKeyFactory(user=user)
    UserAPIKeyFactory(user=user)
    third = UserAPIKeyFactory(user=user)
    set_key_active(first, False)
    assert byok.resolve_api_key(user, "openai").key_id == third.pk
    set_key_active(third, False)
    set_key_active(first, True)
    assert byok.resolve_api_key(user, "openai").key_id != third.pk


def test_deactivating_the_only_key_leaves_no_default(user):
    key = UserAPIKeyFactory(user=user)
    set_key_active(key, False)
    with pytest.raises(NoAPIKey):
        byok.get_user_api_key(user, "openai")
    set_key_active(key, True)
    assert byok.resolve_api_key(user, "openai").key_id == key.pk


def test_soft_delete_erases_the_secret_and_keeps_the_row(user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    with signal_calls(key_removed) as received:
        remove_user_api_key(key, actor=user)
    row = UserAPIKey.objects.get(pk=key.pk)
    assert (row.credentials, row.fingerprint, row.is_active) == (None, None, False)
    assert row.deleted_at is not None
    assert row.masked_key == key.masked_key
    with pytest.raises(ValueError, match="deleted"):
        row.get_credentials()
    assert not UserAPIKey.objects.for_user(user).exists()
    assert received[0]["key"] == key
    assert AuditEvent.objects.filter(action="deleted", key=key).exists()
    with pytest.raises(ValidationError):
        set_key_active(row, True)


def test_deleting_the_default_hands_over(user):
    first = UserAPIKeyFactory(user=user)
    second = UserAPIKeyFactory(user=user)
    remove_user_api_key(first)
    assert byok.resolve_api_key(user, "openai").key_id == second.pk


def test_a_hard_delete_also_hands_over(user):
    first = UserAPIKeyFactory(user=user)
    second = UserAPIKeyFactory(user=user)
    first.delete()
    assert ServicePreference.objects.get().default_key == second


def test_deleting_the_user_deletes_everything(user):
    UserAPIKeyFactory(user=user)
    UserAPIKeyFactory(user=user, service="twilio")
    user.delete()
    assert not UserAPIKey.objects.exists()
    assert not ServicePreference.objects.exists()


def test_querysets(user, other_user):
    mine = UserAPIKeyFactory(user=user)
    inactive = UserAPIKeyFactory(user=user, service="anthropic")
    set_key_active(inactive, False)
    deleted = UserAPIKeyFactory(user=user, service="resend")
    remove_user_api_key(deleted)
    UserAPIKeyFactory(user=other_user)
    assert set(UserAPIKey.objects.for_user(user)) == {mine, inactive}
    assert set(UserAPIKey.objects.for_user(user).active()) == {mine}
    assert set(UserAPIKey.objects.alive().filter(user=user)) == {mine, inactive}


def test_works_with_the_configured_user_model(user):
    key = UserAPIKeyFactory(user=user)
    from django.conf import settings

    if settings.AUTH_USER_MODEL == "accounts.EmailUser":
        assert isinstance(user.pk, uuid.UUID)
    assert byok.resolve_api_key(user, "openai").key_id == key.pk


# concurrency (PostgreSQL and MariaDB: real row locks and isolation) ----------


def run_concurrently(target, count):
    barrier = threading.Barrier(count)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(target())
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_of_one_secret_store_it_once():
    user = UserFactory()
    secret = fake_credentials("openai")
    results, errors = run_concurrently(lambda: byok.add_user_api_key(user, "openai", secret), 2)
    assert len(results) == 1
    assert len(errors) == 1
    assert isinstance(errors[0], ValidationError)
    assert errors[0].error_dict["credentials"][0].code == "duplicate"
    assert UserAPIKey.objects.count() == 1


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_in_different_slots_are_caught_by_the_index():
    user = UserFactory()
    secret = fake_credentials("openai")
    environments = iter(["production", "test"])
    lock = threading.Lock()

    def add():
        with lock:
            environment = next(environments)
        return byok.add_user_api_key(user, "openai", secret, environment=environment)

    results, errors = run_concurrently(add, 2)
    assert len(results) == 1
    assert [type(e) for e in errors] == [ValidationError]
    assert UserAPIKey.objects.count() == 1


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_adds_leave_exactly_one_default():
    user = UserFactory()
    results, errors = run_concurrently(lambda: UserAPIKeyFactory(user=user), 4)
    assert (len(results), errors) == (4, [])
    assert UserAPIKey.objects.defaults().count() == 1
    assert ServicePreference.objects.count() == 1


def test_keys_added_without_an_environment_take_the_default_one(user, settings, tmp_path):
    """``BYOK["DEFAULT_ENVIRONMENT"]`` applies wherever a key is added, not only to lookups."""
    settings.BYOK = {**settings.BYOK, "DEFAULT_ENVIRONMENT": "development"}
    UserAPIKeyFactory(user=user, service="openai")
    api = client_for(user)
    assert (
        api.post(
            "/api/user/api-keys/",
            {"service": "github", "key": fake_credentials("github"), "test": False},
        ).status_code
        == 201
    )
    page = Client()
    page.force_login(user)
    assert (
        'value="development" selected'
        in page.get("/dashboard/api-keys/add/sentry/").content.decode()
    )
    env = tmp_path / ".env"
    env.write_text(f"RESEND_API_KEY={fake_credentials('resend')}\n")
    call_command("byok_import", str(env), user=str(user.pk), stdout=io.StringIO())
    environments = set(UserAPIKey.objects.values_list("environment", flat=True))
    assert environments == {"development"}
    assert UserAPIKey.objects.count() == 3
