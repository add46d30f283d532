"""Error reports hold no secret, whatever fails where.

Each case sends a secret to a view that takes one (or has a stored one decrypted, or
revealed) and makes something fail deep inside, once the secret is in local
variables: the HTTP client that sends the probe, the audit write that stores the key,
a host's signal receiver, the renderer of ``reveal/``'s answer. With ``DEBUG = False``
and ``ADMINS`` set, Django mails its report: neither its text nor its HTML
alternative, nor the 500 page, may hold any part of a secret.

Every case also runs with Django's filter switched off: then the report must show
the secret, which proves that the case put it within the report's reach.
"""

import io
import json
from functools import partial

import pytest
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponse
from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
from django.test import Client, override_settings
from django.urls import include, path, reverse
from rest_framework.renderers import JSONRenderer

import byok
from byok import audit
from byok.http import ProbeClient
from byok.signals import key_revealed, key_used

from error_reports import (
    FAILURE,
    InjectedFailure,
    as_fields,
    check,
    env_file,
    report_of,
    secrets_of,
)
from factories import UserAPIKeyFactory
from fakes import fake_credentials

pytestmark = pytest.mark.django_db

API = "/api/user/api-keys/"
RECEIVER = "failing_receiver"


@login_required
def host_view(request):
    """A host's own view, without any decorator: byok's frames protect themselves."""
    byok.get_user_api_key(request.user, "openai")
    return HttpResponse("ok")


urlpatterns = [path("host/", host_view), path("", include("urls"))]


@pytest.fixture
def client(user):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


# Where the failure is injected. Each fake is named, so the report's traceback shows
# that the failing frame (holding the secret among its variables) was reached.


def fail_in_probe(monkeypatch):
    """The HTTP client's send, whose ``headers`` and ``auth`` carry the credential."""

    def failing_send(self, url, request):
        raise InjectedFailure(FAILURE)

    monkeypatch.setattr(ProbeClient, "_send", failing_send)
    return failing_send.__name__


def fail_in_store(monkeypatch):
    """The audit write of a change, once the key is checked and encrypted."""

    def failing_audit_record(*args, **kwargs):
        raise InjectedFailure(FAILURE)

    monkeypatch.setattr(audit, "record", failing_audit_record)
    return failing_audit_record.__name__


def fail_in_receiver(signal):
    """A host's receiver of a byok signal, called while the secret is decrypted."""

    def failing_receiver(**kwargs):
        raise InjectedFailure(FAILURE)

    signal.connect(failing_receiver, weak=False, dispatch_uid=RECEIVER)
    return lambda: signal.disconnect(dispatch_uid=RECEIVER)


def fail_in_renderer(monkeypatch):
    """DRF's JSON renderer, whose ``data`` is the body of the response."""

    def failing_render(self, data, accepted_media_type=None, renderer_context=None):
        raise InjectedFailure(FAILURE)

    monkeypatch.setattr(JSONRenderer, "render", failing_render)
    return failing_render.__name__


FAILING = {"probe": fail_in_probe, "store": fail_in_store}


# The cases: each makes its request and returns it with the secrets it involved.


def page_add_key(client, user, monkeypatch, service="openai", where="probe"):
    credentials = fake_credentials(service)
    failing = FAILING[where](monkeypatch)
    data = {**as_fields(credentials), "nickname": "mine", "environment": "production"}
    if where == "probe":
        data["test"] = "on"
    response = client.post(reverse("byok:add", args=[service]), data)
    return response, secrets_of(service, credentials), failing


def page_import(client, user, monkeypatch, where="store"):
    text, secrets = env_file()
    failing = FAILING[where](monkeypatch)
    data = {
        "file": SimpleUploadedFile("keys.env", text.encode(), content_type="text/plain"),
        "environment": "production",
    }
    if where == "probe":
        data["test"] = "on"
    response = client.post(reverse("byok:import"), data)
    return response, secrets, failing


def page_test_stored_key(client, user, monkeypatch):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    failing = fail_in_probe(monkeypatch)
    response = client.post(reverse("byok:test", args=[key.pk]))
    return response, [secret], failing


def api_create(client, user, monkeypatch, service="openai", where="probe"):
    credentials = fake_credentials(service)
    failing = FAILING[where](monkeypatch)
    body = {"service": service, "credentials": as_fields(credentials), "test": where == "probe"}
    response = client.post(API, body, content_type="application/json")
    return response, secrets_of(service, credentials), failing


def api_create_parse_fails(client, user, monkeypatch):
    """Session auth with CSRF enforced: DRF parses the body in the CSRF check, before
    any of byok's view code runs."""
    credentials = fake_credentials("openai")
    loads = json.loads

    def failing_json_loads(document, **options):
        if "service" in document:  # the body, not the session
            raise InjectedFailure(FAILURE)
        return loads(document, **options)

    monkeypatch.setattr(json, "loads", failing_json_loads)
    browser = Client(enforce_csrf_checks=True, raise_request_exception=False)
    browser.force_login(user)
    token = _get_new_csrf_string()
    browser.cookies["csrftoken"] = token
    body = f'{{"service": "openai", "key": "{credentials}", "test": false}}'
    response = browser.post(
        API, body, content_type="application/json", HTTP_X_CSRFTOKEN=_mask_cipher_secret(token)
    )
    return response, [credentials], failing_json_loads.__name__


def api_update(client, user, monkeypatch, where="probe"):
    old, new = fake_credentials("twilio"), fake_credentials("twilio")
    key = UserAPIKeyFactory(user=user, service="twilio", credentials=old)
    failing = FAILING[where](monkeypatch)
    body = {"credentials": new, "test": where == "probe"}
    response = client.patch(f"{API}{key.pk}/", body, content_type="application/json")
    return response, [old["auth_token"], new["auth_token"]], failing


def api_test_candidate(client, user, monkeypatch):
    secret = fake_credentials("anthropic")
    failing = fail_in_probe(monkeypatch)
    body = {"service": "anthropic", "key": secret}
    response = client.post(f"{API}test/", body, content_type="application/json")
    return response, [secret], failing


def api_retest_stored_key(client, user, monkeypatch):
    credentials = fake_credentials("cloudinary")
    key = UserAPIKeyFactory(user=user, service="cloudinary", credentials=credentials)
    failing = fail_in_probe(monkeypatch)
    response = client.post(f"{API}{key.pk}/test/")
    return response, [credentials["api_secret"]], failing


def api_import_text(client, user, monkeypatch, where="store"):
    text, secrets = env_file()
    failing = FAILING[where](monkeypatch)
    body = {"text": text, "test": where == "probe"}
    response = client.post(f"{API}import/", body, content_type="application/json")
    return response, secrets, failing


def api_import_upload(client, user, monkeypatch):
    text, secrets = env_file()
    failing = fail_in_store(monkeypatch)
    upload = io.BytesIO(text.encode())
    upload.name = "keys.env"
    response = client.post(f"{API}import/", {"file": upload, "environment": "production"})
    return response, secrets, failing


def api_reveal_renderer(client, user, monkeypatch):
    secret = fake_credentials("github")
    key = UserAPIKeyFactory(user=user, service="github", credentials=secret)
    failing = fail_in_renderer(monkeypatch)
    response = client.post(f"{API}{key.pk}/reveal/", HTTP_ACCEPT="application/json")
    return response, [secret], failing


def api_reveal_receiver(client, user, monkeypatch, request_cleanup):
    credentials = fake_credentials("aws_s3")
    key = UserAPIKeyFactory(user=user, service="aws_s3", credentials=credentials)
    request_cleanup(fail_in_receiver(key_revealed))
    response = client.post(f"{API}{key.pk}/reveal/")
    return response, [credentials["secret_access_key"]], RECEIVER


def host_view_receiver(client, user, monkeypatch, request_cleanup):
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=secret)
    request_cleanup(fail_in_receiver(key_used))
    with override_settings(ROOT_URLCONF=__name__):
        response = client.get("/host/")
    return response, [secret], RECEIVER


CASES = {
    "page add key, the probe fails": page_add_key,
    "page add key (Twilio), the probe fails": partial(page_add_key, service="twilio"),
    "page add key (AWS), the store fails": partial(page_add_key, service="aws_s3", where="store"),
    "page import, the store fails": page_import,
    "page import, the probe fails": partial(page_import, where="probe"),
    "page test of a stored key, the probe fails": page_test_stored_key,
    "API create, the probe fails": api_create,
    "API create (Mixpanel), the probe fails": partial(api_create, service="mixpanel"),
    "API create (GA4), the store fails": partial(
        api_create, service="google_analytics", where="store"
    ),
    "API create with session auth, parsing the body fails": api_create_parse_fails,
    "API update with a new secret, the probe fails": api_update,
    "API update with a new secret, the store fails": partial(api_update, where="store"),
    "API test of candidate credentials, the probe fails": api_test_candidate,
    "API test of a stored key, the probe fails": api_retest_stored_key,
    "API import of text, the store fails": api_import_text,
    "API import of text, the probe fails": partial(api_import_text, where="probe"),
    "API import of an upload, the store fails": api_import_upload,
    "API reveal, the renderer fails": api_reveal_renderer,
}
RECEIVER_CASES = {
    "API reveal, a key_revealed receiver fails": api_reveal_receiver,
    "a host view's get_user_api_key, a key_used receiver fails": host_view_receiver,
}
#: Cases where no frame the report shows holds the secret readably, protected or not
#: (the resolved key hides its value from ``repr``): the report must not show it either way.
OUT_OF_REACH = {"a host view's get_user_api_key, a key_used receiver fails"}


@pytest.mark.parametrize("case", CASES)
def test_no_secret_in_the_error_report(case, client, user, admin_mails, protected, monkeypatch):
    response, secrets, failing_frame = CASES[case](client, user, monkeypatch)
    check(response, secrets, failing_frame, admin_mails, protected)


@pytest.mark.parametrize("case", RECEIVER_CASES)
def test_no_secret_in_the_error_report_of_a_failing_receiver(
    case, client, user, admin_mails, protected, monkeypatch, request
):
    response, secrets, failing_frame = RECEIVER_CASES[case](
        client, user, monkeypatch, request.addfinalizer
    )
    reachable = case not in OUT_OF_REACH
    check(response, secrets, failing_frame, admin_mails, protected, reachable)


def test_reveal_answers_as_before_though_rendered_early(client, user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    response = client.post(f"{API}{key.pk}/reveal/")
    assert response.status_code == 200
    assert json.loads(response.content)["key"] == secret
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == "application/json"


def test_posted_fields_are_hidden_from_the_report(client, admin_mails, monkeypatch):
    """The request's POST data, shown in every report, is all stars for the pages."""
    secret = fake_credentials("openai")
    fail_in_store(monkeypatch)
    data = {"api_key": secret, "nickname": "n1ck", "environment": "production"}
    client.post(reverse("byok:add", args=["openai"]), data)
    _, text, _ = report_of(admin_mails)
    assert "api_key = '********************'" in text
    assert "n1ck" not in text  # every field, not only the secret ones
