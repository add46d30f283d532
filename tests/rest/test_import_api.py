"""``POST import/``: a .env file or JSON list, uploaded or sent as text."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from byok.importing import MAX_BYTES
from byok.models import AuditEvent, UserAPIKey

from .conftest import OPENAI_MODELS
from factories import UserAPIKeyFactory
from fakes import fake_credentials

pytestmark = pytest.mark.django_db

URL = "/api/user/api-keys/import/"


def upload(content, name=".env"):
    return SimpleUploadedFile(name, content if isinstance(content, bytes) else content.encode())


def test_an_uploaded_env_file_is_imported_and_the_answer_names_no_secret(api, user):
    openai, twilio = fake_credentials("openai"), fake_credentials("twilio")
    text = (
        f"OPENAI_API_KEY={openai}\n"
        f"TWILIO_ACCOUNT_SID={twilio['account_sid']}\nTWILIO_AUTH_TOKEN={twilio['auth_token']}\n"
        "SECRET_KEY=django-insecure-not-a-provider-key\n"
    )
    assert reverse("byok_api:apikey-import") == URL  # the documented name
    response = api.post(URL, {"file": upload(text)}, format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["counts"] == {"imported": 2, "unknown variable": 1}
    first = body["entries"][0]
    assert first["where"] == "OPENAI_API_KEY (line 1)"
    assert (first["service"], first["outcome"]) == ("openai", "imported")
    assert first["key"] == str(UserAPIKey.objects.get(service="openai").pk)
    content = response.content.decode()
    for secret in (openai, twilio["auth_token"], "django-insecure-not-a-provider-key"):
        assert secret not in content
    assert set(AuditEvent.objects.values_list("action", "metadata__via")) == {("imported", "api")}
    assert UserAPIKey.objects.get(service="twilio").user == user


def test_json_clients_send_the_text(api):
    items = [{"service": "github", "credentials": fake_credentials("github"), "nickname": "CI"}]
    response = api.post(URL, {"text": json.dumps(items), "environment": "test"}, format="json")
    assert response.status_code == 200, response.content
    key = UserAPIKey.objects.get()
    assert (key.service, key.nickname, key.environment) == ("github", "CI", "test")


def test_a_partial_import_keeps_the_good_entries_and_reports_the_rest(api):
    text = f"OPENAI_API_KEY={fake_credentials('openai')}\nnot an assignment\n"
    response = api.post(URL, {"text": text}, format="json")
    assert response.status_code == 200
    assert response.json()["counts"] == {"imported": 1, "malformed": 1}
    assert UserAPIKey.objects.count() == 1


def test_an_atomic_import_with_a_failure_is_a_400_and_stores_nothing(api):
    text = f"OPENAI_API_KEY={fake_credentials('openai')}\nRESEND_API_KEY=nope\n"
    response = api.post(URL, {"text": text, "atomic": True}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["file"] == [
        {
            "message": "1 entry could not be imported; nothing was imported.",
            "code": "import_failed",
        }
    ]
    assert [entry["outcome"] for entry in body["entries"]] == ["not imported", "format error"]
    assert not UserAPIKey.objects.exists()
    assert not AuditEvent.objects.exists()


def test_dry_run_stores_nothing(api, user):
    stored = UserAPIKeyFactory(user=user, service="openai")
    text = f"OPENAI_API_KEY={stored.get_secret()}\nGH_TOKEN={fake_credentials('github')}\n"
    response = api.post(URL, {"text": text, "dry_run": True}, format="json")
    assert response.status_code == 200
    assert response.json()["counts"] == {"would import": 1, "duplicate": 1}
    assert UserAPIKey.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "format", "code"),
    [
        ({"file": upload(b"\x00\x01binary")}, "multipart", "binary"),
        ({"file": upload(b"\xff\xfe\xfd")}, "multipart", "binary"),
        ({"file": upload(b"")}, "multipart", "empty"),
        ({"text": ""}, "json", "empty"),
        ({"text": "# nothing\n"}, "json", "empty"),
        ({"text": "[1, 2"}, "json", "invalid_json"),
        ({"file": upload(b"A=1\n" * (MAX_BYTES // 4 + 1))}, "multipart", "too_large"),
        ({"text": "\n".join(f"VAR{n}=1" for n in range(201))}, "json", "too_many"),
    ],
    ids=[
        "nul",
        "not-utf8",
        "empty-file",
        "empty-text",
        "comments",
        "bad-json",
        "too-large",
        "too-many",
    ],
)
def test_files_that_are_not_a_small_text_of_keys_get_a_clear_400(api, data, format, code):
    response = api.post(URL, data, format=format)
    assert response.status_code == 400, response.content
    assert [error["code"] for error in response.json()["file"]] == [code]
    assert not UserAPIKey.objects.exists()


@pytest.mark.parametrize(
    ("data", "format", "field", "code"),
    [
        ({}, "json", "text", "required"),
        ({}, "multipart", "file", "required"),
        ({"file": "A=1"}, "json", "file", "unknown_field"),
        ({"text": "A=1", "file": upload("A=1")}, "multipart", "text", "unknown_field"),
    ],
    ids=["json-without-text", "upload-without-file", "file-in-json", "text-in-upload"],
)
def test_a_file_is_uploaded_and_text_is_sent_as_json(api, data, format, field, code):
    response = api.post(URL, data, format=format)
    assert response.status_code == 400
    assert [error["code"] for error in response.json()[field]] == [code]
    assert not UserAPIKey.objects.exists()


def test_unknown_fields_and_bad_options_are_refused(api):
    response = api.post(URL, {"text": "A=1", "envionment": "test"}, format="json")
    assert response.status_code == 400
    assert response.json()["envionment"][0]["code"] == "unknown_field"
    response = api.post(URL, {"text": "A=1", "environment": "mars"}, format="json")
    assert response.json()["environment"][0]["code"] == "invalid_choice"


def test_testing_on_import_uses_the_test_throttle(api, provider, settings):
    rest = settings.REST_FRAMEWORK
    rates = {**rest.get("DEFAULT_THROTTLE_RATES", {}), "byok_test": "1/min"}
    text = {"text": f"OPENAI_API_KEY={fake_credentials('openai')}", "test": True}
    with override_settings(REST_FRAMEWORK={**rest, "DEFAULT_THROTTLE_RATES": rates}):
        assert api.post(URL, text, format="json").status_code == 200
        assert api.post(URL, {**text, "test": True}, format="json").status_code == 429
        # Without testing, no provider is called and the throttle does not apply.
        untested = {"text": f"GH_TOKEN={fake_credentials('github')}"}
        assert api.post(URL, untested, format="json").status_code == 200
    assert [call.request.url for call in provider.calls] == [OPENAI_MODELS]
    assert UserAPIKey.objects.get(service="openai").status == "valid"
