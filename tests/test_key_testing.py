"""Testing keys when they are added, and re-testing stored keys."""

import pytest
import requests
import responses
from django.core.exceptions import ValidationError

import byok
from byok.models import AuditEvent, UserAPIKey
from byok.signals import key_tested

from factories import UserAPIKeyFactory
from fakes import fake_credentials
from support import signal_calls

pytestmark = pytest.mark.django_db

MODELS = "https://api.openai.com/v1/models"
REJECTED = {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}


@responses.activate
def test_add_with_test_stores_the_outcome(user):
    responses.get(MODELS, json={"data": []})
    key = byok.add_user_api_key(user, "openai", fake_credentials("openai"), test=True)
    key.refresh_from_db()
    assert key.status == "valid"
    assert key.last_tested_at is not None
    assert key.last_test_message == "OpenAI accepted the key."
    assert AuditEvent.objects.get(action="created").metadata == {
        "tested": True,
        "status": "valid",
        "via": "python",
    }


@responses.activate
def test_a_key_the_provider_rejects_is_not_stored(user):
    responses.get(MODELS, status=401, json=REJECTED)
    with pytest.raises(ValidationError) as excinfo:
        byok.add_user_api_key(user, "openai", fake_credentials("openai"), test=True)
    assert excinfo.value.error_dict["credentials"][0].code == "invalid_key"
    assert not UserAPIKey.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("status", "stored"),
    [(429, "rate_limited"), (503, "provider_error"), (None, "unreachable")],
)
@responses.activate
def test_a_key_that_could_not_be_judged_is_stored_with_that_status(user, status, stored):
    if status is None:
        responses.get(MODELS, body=requests.ConnectionError("down"))
    else:
        responses.get(MODELS, status=status, json={"error": {"message": "busy"}})
    key = byok.add_user_api_key(user, "openai", fake_credentials("openai"), test=True)
    assert UserAPIKey.objects.get(pk=key.pk).status == stored
    assert key.probe_result.status == stored


def test_without_test_nothing_is_sent(user):
    with responses.RequestsMock() as mock:
        key = byok.add_user_api_key(user, "openai", fake_credentials("openai"))
        assert len(mock.calls) == 0
    assert (key.status, key.probe_result, key.warnings) == ("untested", None, [])


def test_format_warnings_come_back_on_the_instance(user):
    key = byok.add_user_api_key(user, "openai", "sk-" + "a1B2" * 15)
    assert "usual shape" in key.warnings[0]


@responses.activate
def test_retesting_a_stored_key_updates_it_and_audits(user):
    key = UserAPIKeyFactory(user=user)
    responses.get(MODELS, status=401, json=REJECTED)
    with signal_calls(key_tested) as received:
        result = byok.test_user_api_key(key, actor=user)
    assert result.status == "invalid"
    stored = UserAPIKey.objects.get(pk=key.pk)
    assert (stored.status, stored.last_test_message) == (
        "invalid",
        "OpenAI rejected the key (HTTP 401).",
    )
    event = AuditEvent.objects.get(action="tested")
    assert event.metadata == {"status": "invalid", "http_status": 401, "via": "python"}
    assert received[0]["result"] is result


def test_test_credentials_stores_nothing(user):
    with responses.RequestsMock() as mock:
        mock.get(MODELS, json={"data": []})
        assert byok.test_credentials("openai", fake_credentials("openai")).ok
    assert not UserAPIKey.objects.exists()
    assert not AuditEvent.objects.exists()


def test_validate_credentials_is_public_and_never_echoes():
    secret = "sk-" + "…" * 30
    result = byok.validate_credentials("openai", secret)
    assert not result.ok
    assert secret not in repr(result) + " ".join(result.errors)
    with pytest.raises(ValidationError):
        result.raise_if_invalid()


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("sk-your_api_key_here_0123456789abcdefghijklmnop", "placeholder"),
        ("sk-<paste-your-key-here>-0123456789abcdefghijklmnop", "placeholder"),
        ("sk-proj-...AbCd", "masked"),
        ("sk-proj-****************AbCd", "masked"),
        ("sk-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "placeholder"),
    ],
)
def test_placeholders_and_masked_values_are_refused(value, kind):
    result = byok.validate_credentials("openai", value)
    assert [p.code for p in result.problems["api_key"]] == [kind]
