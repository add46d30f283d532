"""Changing stored keys: settings, environment moves, secret replacement, defaults."""

import pytest
import responses
from django.core.exceptions import ValidationError

import byok
from byok.keys import remove_user_api_key, update_user_api_key
from byok.models import AuditEvent, UserAPIKey
from byok.signals import key_updated

from factories import UserAPIKeyFactory
from fakes import fake_credentials
from support import signal_calls

pytestmark = pytest.mark.django_db


def codes(excinfo, field):
    return [e.code for e in excinfo.value.error_dict[field]]


def test_nickname_change_is_audited_and_signalled(user):
    key = UserAPIKeyFactory(user=user)
    with signal_calls(key_updated) as received:
        update_user_api_key(key, nickname=" Work ", actor=user)
    assert UserAPIKey.objects.get(pk=key.pk).nickname == "Work"
    assert received[0]["fields"] == ["nickname"]
    assert AuditEvent.objects.get(action="updated").metadata == {
        "fields": ["nickname"],
        "via": "python",
    }


def test_an_update_that_changes_nothing_records_nothing(user):
    key = UserAPIKeyFactory(user=user, nickname="Same")
    update_user_api_key(key, nickname="Same", is_active=True, is_default=True)
    assert not AuditEvent.objects.filter(action="updated").exists()


def test_replacing_the_secret(user):
    key = UserAPIKeyFactory(user=user)
    key.status = "valid"
    key.save(update_fields=["status"])
    secret = fake_credentials("openai")
    update_user_api_key(key, credentials=secret)
    stored = UserAPIKey.objects.get(pk=key.pk)
    assert stored.get_secret() == secret
    assert stored.masked_key.endswith(secret[-4:])
    assert (stored.status, stored.last_tested_at) == ("untested", None)
    assert byok.get_user_api_key(user, "openai") == secret


def test_an_update_without_credentials_keeps_the_secret(user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    update_user_api_key(key, nickname="renamed", environment="test")
    assert UserAPIKey.objects.get(pk=key.pk).get_secret() == secret


@pytest.mark.parametrize("echo", ["hint", "ascii"])
def test_the_masked_value_echoed_back_is_refused(user, echo):
    key = UserAPIKeyFactory(user=user)
    value = key.masked_key if echo == "hint" else key.masked_key.replace("…", "...")
    with pytest.raises(ValidationError) as excinfo:
        update_user_api_key(key, credentials=value)
    assert codes(excinfo, "api_key")[0] in ("invalid", "masked")
    assert UserAPIKey.objects.get(pk=key.pk).credentials == key.credentials


def test_replacing_with_another_keys_secret_is_a_duplicate(user):
    first_secret = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=first_secret)
    second = UserAPIKeyFactory(user=user)
    with pytest.raises(ValidationError) as excinfo:
        update_user_api_key(second, credentials=first_secret)
    assert codes(excinfo, "credentials") == ["duplicate"]


def test_replacing_with_the_same_secret_is_fine(user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    update_user_api_key(key, credentials=secret)
    assert UserAPIKey.objects.get(pk=key.pk).get_secret() == secret


@responses.activate
def test_a_replacement_the_provider_rejects_changes_nothing(user):
    key = UserAPIKeyFactory(user=user)
    responses.get(
        "https://api.openai.com/v1/models", status=401, json={"error": {"code": "invalid_api_key"}}
    )
    with pytest.raises(ValidationError) as excinfo:
        update_user_api_key(key, credentials=fake_credentials("openai"), nickname="x", test=True)
    assert codes(excinfo, "credentials") == ["invalid_key"]
    stored = UserAPIKey.objects.get(pk=key.pk)
    assert (stored.credentials, stored.nickname) == (key.credentials, key.nickname)


def test_moving_environment_moves_the_slot(user):
    first = UserAPIKeyFactory(user=user)
    second = UserAPIKeyFactory(user=user)
    update_user_api_key(first, environment="test")
    assert byok.resolve_api_key(user, "openai").key_id == second.pk
    assert byok.resolve_api_key(user, "openai", environment="test").key_id == first.pk


def test_unsetting_the_default_hands_over(user):
    first = UserAPIKeyFactory(user=user)
    second = UserAPIKeyFactory(user=user)
    update_user_api_key(first, is_default=False)
    assert byok.resolve_api_key(user, "openai").key_id == second.pk


def test_the_only_active_key_stays_the_default(user):
    key = UserAPIKeyFactory(user=user)
    with pytest.raises(ValidationError) as excinfo:
        update_user_api_key(key, is_default=False)
    assert codes(excinfo, "is_default") == ["only_key"]


def test_an_inactive_key_cannot_be_made_default(user):
    UserAPIKeyFactory(user=user)
    second = UserAPIKeyFactory(user=user)
    update_user_api_key(second, is_active=False)
    with pytest.raises(ValidationError) as excinfo:
        update_user_api_key(second, is_default=True)
    assert codes(excinfo, "is_default") == ["inactive"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"nickname": "x" * 101}, "nickname"), ({"environment": "staging"}, "environment")],
)
def test_bad_values_change_nothing(user, kwargs, field):
    key = UserAPIKeyFactory(user=user, nickname="kept")
    with pytest.raises(ValidationError) as excinfo:
        update_user_api_key(key, **kwargs)
    assert field in excinfo.value.error_dict
    assert UserAPIKey.objects.get(pk=key.pk).nickname == "kept"


def test_a_deleted_key_cannot_be_changed(user):
    key = UserAPIKeyFactory(user=user)
    remove_user_api_key(key)
    with pytest.raises(ValidationError, match="deleted"):
        update_user_api_key(key, nickname="back")
