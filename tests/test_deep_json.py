"""JSON nested thousands of levels deep: a clear refusal wherever byok parses JSON,
never a ``RecursionError`` (a 500), and nothing stored."""

import base64
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
from django.test import Client
from rest_framework.test import APIClient

from byok import jsonsafe
from byok.importing import parse
from byok.models import AuditEvent, UserAPIKey
from byok.probes import test_credentials
from byok.results import ProbeStatus
from byok.services.sentry import read_org_token

from fakes import fake_credentials

pytestmark = pytest.mark.django_db

API = "/api/user/api-keys/"
DEPTH = 5000


def nested(depth=DEPTH, inner='"x"'):
    """A JSON object ``{"a": {"a": … inner …}}`` nested ``depth`` levels deep."""
    return '{"a":' * depth + inner + "}" * depth


def session_client(user):
    """A browser-like API client: session auth, CSRF enforced (DRF parses the body in
    the CSRF check), with a valid token."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    secret = _get_new_csrf_string()
    client.cookies["csrftoken"] = secret
    client.defaults["HTTP_X_CSRFTOKEN"] = _mask_cipher_secret(secret)
    return client


def assert_nothing_stored():
    assert not UserAPIKey.objects.exists()
    assert not AuditEvent.objects.exists()


# the loader ------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [65, 1000, DEPTH, 100_000])
def test_the_loader_refuses_excessive_depth(depth):
    for document in (nested(depth), "[" * depth + "]" * depth, ("[" * depth).encode()):
        with pytest.raises(jsonsafe.JSONTooDeep, match="more than 64 levels"):
            jsonsafe.loads(document)


def test_the_loader_reads_what_is_deep_enough_and_ignores_brackets_in_strings():
    assert jsonsafe.loads(nested(64)) == json.loads(nested(64))
    text = json.dumps({"key": "[[[{{{" * 1000 + '\\"]]]', "list": [1, [2, [3]]]})
    assert jsonsafe.loads(text) == json.loads(text)
    assert jsonsafe.loads(text.encode("utf-16")) == json.loads(text)


def test_the_loader_refusal_is_a_value_error_and_other_errors_are_unchanged():
    assert issubclass(jsonsafe.JSONTooDeep, ValueError)
    with pytest.raises(json.JSONDecodeError):
        jsonsafe.loads('{"a": ')
    with pytest.raises(jsonsafe.JSONTooDeep):
        jsonsafe.raw_decode('{"usage": ' + nested(), len('{"usage": '))


# the REST API ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "test/", "import/"])
@pytest.mark.parametrize("auth", ["session", "forced"])
def test_a_deeply_nested_body_is_a_400(path, auth, user, api):
    client = session_client(user) if auth == "session" else api
    secret = fake_credentials("openai")
    body = f'{{"service": "openai", "key": "{secret}", "credentials": {nested()}}}'
    response = client.post(API + path, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "The JSON body is nested more than 64 levels deep."}
    assert secret not in response.content.decode()
    assert_nothing_stored()


def test_a_deeply_nested_credential_object_in_a_shallow_body_is_still_refused(api):
    body = json.dumps({"service": "openai", "credentials": {"api_key": "x"}})
    body = body.replace('"x"', nested(70))
    response = api.post(API, body, content_type="application/json")
    assert response.status_code == 400
    assert_nothing_stored()


def test_an_import_of_deeply_nested_json_text_is_a_400(api):
    response = api.post(f"{API}import/", {"text": "[" + nested() + "]"}, format="json")
    assert response.status_code == 400
    assert response.json()["file"] == [
        {"message": "The JSON is nested more than 64 levels deep.", "code": "too_deep"}
    ]
    assert_nothing_stored()


def test_an_uploaded_file_of_deeply_nested_json_is_a_400(api):
    upload = SimpleUploadedFile("keys.json", ("[" * DEPTH + "]" * DEPTH).encode())
    response = api.post(f"{API}import/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json()["file"][0]["code"] == "too_deep"
    assert_nothing_stored()


# pages, admin, tokens, providers ---------------------------------------------------


def test_the_import_page_reports_deeply_nested_json_as_a_form_error(user):
    browser = Client()
    browser.force_login(user)
    upload = SimpleUploadedFile("keys.json", ("[" + nested() + "]").encode())
    response = browser.post(
        "/dashboard/api-keys/import/", {"file": upload, "environment": "production"}
    )
    assert response.status_code == 400
    assert "The JSON is nested more than 64 levels deep." in response.content.decode()
    assert_nothing_stored()


def test_parse_refuses_deeply_nested_json_as_a_file_error():
    with pytest.raises(ValidationError) as refused:
        parse("[" * DEPTH)
    assert refused.value.error_dict["file"][0].code == "too_deep"


def test_a_sentry_token_whose_payload_nests_too_deeply_is_unreadable_not_a_crash():
    payload = base64.b64encode(nested().encode()).decode()
    assert read_org_token(f"sntrys_{payload}_{'a' * 43}") is None
    shallow = base64.b64encode(b'{"org": "acme"}').decode()
    assert read_org_token(f"sntrys_{shallow}_{'a' * 43}") == {"org": "acme"}


def test_a_sentry_token_nested_a_thousand_deep_is_a_clear_answer(api):
    payload = base64.b64encode(("[" * 1000 + "]" * 1000).encode()).decode()
    token = f"sntrys_{payload.rstrip('=')}_{'a' * 43}"
    response = api.post(f"{API}test/", {"service": "sentry", "key": token}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] in ("format_invalid", "unverifiable")
    assert_nothing_stored()


def test_a_provider_answer_nested_too_deeply_is_a_provider_error(mocked):
    mocked.get(
        "https://api.stripe.com/v1/balance",
        body=nested(),
        content_type="application/json",
    )
    result = test_credentials("stripe", fake_credentials("stripe"))
    assert result.status is ProbeStatus.PROVIDER_ERROR
    assert "nested too deeply" in result.message
