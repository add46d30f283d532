"""byok.clients.session(): a requests session carrying each service's credential as the
service declares it, metering every request, and sending the credential nowhere but
the service's base URL."""

import base64
import hashlib
import json
import sys
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses as responses_lib
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

import byok.clients
from byok.models import KeyUsage, PlatformUsage
from byok.services.auth import UNSIGNED_PAYLOAD
from byok.services.registry import registry

from factories import UserAPIKeyFactory
from fake_provider import refused_url
from fakes import fake_credentials

pytestmark = pytest.mark.django_db


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer(credentials):
    return {"Authorization": f"Bearer {credentials}"}


#: Service -> (the URL ``session.get("/ping")`` reaches, what it must carry).
EXPECTED = {
    "openai": ("https://api.openai.com/v1/ping", bearer),
    "anthropic": (
        "https://api.anthropic.com/ping",
        lambda c: {"x-api-key": c, "anthropic-version": "2023-06-01"},
    ),
    "resend": ("https://api.resend.com/ping", bearer),
    "sendgrid": ("https://api.sendgrid.com/ping", bearer),
    "stripe": ("https://api.stripe.com/ping", bearer),
    "github": ("https://api.github.com/ping", bearer),
    "sentry": ("https://sentry.io/api/0/ping", bearer),
    "twilio": (
        "https://api.twilio.com/ping",
        lambda c: {"Authorization": basic(c["account_sid"], c["auth_token"])},
    ),
    "cloudinary": (
        "https://api.cloudinary.com/ping",
        lambda c: {"Authorization": basic(c["api_key"], c["api_secret"])},
    ),
    "mixpanel": (
        "https://mixpanel.com/ping",
        lambda c: {
            "Authorization": basic(c["service_account_username"], c["service_account_secret"])
        },
    ),
    "google_analytics": ("https://www.google-analytics.com/ping", lambda c: {}),
    "aws_s3": ("https://s3.eu-west-1.amazonaws.com/ping", lambda c: {}),
}


@pytest.fixture
def mock():
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def test_every_built_in_service_declares_how_it_authenticates():
    assert set(EXPECTED) == {service.id for service in registry.all()}
    for service in registry.all():
        assert service.authentication is not None, service.id


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_a_session_carries_the_credential_as_the_service_declares(user, mock, service):
    credentials = fake_credentials(service)
    UserAPIKeyFactory(user=user, service=service, credentials=credentials)
    url, headers = EXPECTED[service]
    mock.get(url, json={})
    session = byok.clients.session(user, service)
    assert session.get("/ping").status_code == 200
    [call] = mock.calls
    sent = call.request.headers
    for name, value in headers(credentials).items():
        assert sent[name] == value
    if service == "google_analytics":
        query = parse_qs(urlsplit(call.request.url).query)
        assert query == {
            "measurement_id": [credentials["measurement_id"]],
            "api_secret": [credentials["api_secret"]],
        }
    if service == "aws_s3":
        assert sent["Authorization"].startswith(
            f"AWS4-HMAC-SHA256 Credential={credentials['access_key_id']}/"
        )
        assert "/eu-west-1/s3/aws4_request" in sent["Authorization"]
        assert sent["x-amz-content-sha256"] == hashlib.sha256(b"").hexdigest()
        assert credentials["secret_access_key"] not in str(sent)


def test_s3_signs_the_body_it_can_hash_and_not_one_it_cannot(user, mock):
    UserAPIKeyFactory(user=user, service="aws_s3")
    mock.put("https://s3.eu-west-1.amazonaws.com/bucket/key", body="")
    session = byok.clients.session(user, "aws_s3")
    session.put("/bucket/key", data=b"hello", headers={"Content-Type": "text/plain"})
    session.put("/bucket/key", data=iter([b"hel", b"lo"]))
    hashed, streamed = (call.request.headers for call in mock.calls)
    assert hashed["x-amz-content-sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert "content-type;host;x-amz-content-sha256;x-amz-date" in hashed["Authorization"]
    assert streamed["x-amz-content-sha256"] == UNSIGNED_PAYLOAD


def test_the_probe_sends_the_same_headers_as_the_declaration(user):
    credentials = fake_credentials("anthropic")
    definition = registry.get("anthropic")
    checked = byok.validate_credentials("anthropic", credentials)
    assert definition.probe_request(checked).headers == definition.credential_headers(
        {"api_key": credentials}
    )


def test_each_request_is_one_call_at_the_services_estimate(user, mock):
    key = UserAPIKeyFactory(user=user, service="resend")
    mock.post("https://api.resend.com/emails", json={"id": "1"})
    mock.get("https://api.resend.com/domains", status=500, json={})
    session = byok.clients.session(user, "resend")
    session.post("/emails", json={"to": "a@example.com"})
    session.post("/emails", json={"to": "b@example.com"})
    session.get("/domains")
    [usage] = KeyUsage.objects.all()
    estimate = registry.get("resend").default_cost_per_call
    assert (usage.key, usage.calls, usage.cost) == (key, 3, 2 * estimate)


def test_the_platform_key_serves_a_user_without_one(user, mock, settings):
    platform = fake_credentials("stripe")
    settings.BYOK = {**settings.BYOK, "PLATFORM_KEYS": {"stripe": platform}}
    mock.get("https://api.stripe.com/v1/balance", json={})
    byok.clients.session(user, "stripe").get("/v1/balance")
    assert mock.calls[0].request.headers["Authorization"] == f"Bearer {platform}"
    assert PlatformUsage.objects.get().calls == 1


# -- Where the credential goes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/v1/models",
        "http://api.openai.com/v1/models",
        "https://api.openai.com:8443/v1/models",
        "https://api.openai.com.evil.example.com/v1/models",
        "https://api.openai.com/v2/models",
    ],
)
def test_a_url_outside_the_base_url_is_refused_before_anything_is_sent(user, mock, url):
    UserAPIKeyFactory(user=user, service="openai")
    session = byok.clients.session(user, "openai")
    with pytest.raises(ValueError, match=r"only under https://api\.openai\.com/v1"):
        session.get(url)
    assert len(mock.calls) == 0
    assert not KeyUsage.objects.exists()


def test_an_absolute_url_under_the_base_url_is_fine(user, mock):
    UserAPIKeyFactory(user=user, service="openai")
    mock.get("https://api.openai.com/v1/models", json={})
    response = byok.clients.session(user, "openai").get("https://api.openai.com/v1/models")
    assert response.status_code == 200


def test_a_prepared_request_for_another_host_is_refused(user, mock):
    UserAPIKeyFactory(user=user, service="openai")
    session = byok.clients.session(user, "openai")
    prepared = requests.Request("GET", "https://evil.example.com/").prepare()
    with pytest.raises(ValueError, match="refused a request for another host"):
        session.send(prepared)
    assert len(mock.calls) == 0


def test_a_redirect_to_another_host_is_not_followed(user, mock):
    UserAPIKeyFactory(user=user, service="github")
    mock.get(
        "https://api.github.com/repos/a/b",
        status=302,
        headers={"Location": "https://evil.example.com/steal"},
    )
    response = byok.clients.session(user, "github").get("/repos/a/b")
    assert response.status_code == 302
    assert [call.request.url for call in mock.calls] == ["https://api.github.com/repos/a/b"]


def test_a_redirect_on_the_same_host_is_followed(user, mock):
    UserAPIKeyFactory(user=user, service="github")
    mock.get(
        "https://api.github.com/repos/a/b", status=301, headers={"Location": "/repositories/7"}
    )
    mock.get("https://api.github.com/repositories/7", json={"id": 7})
    assert byok.clients.session(user, "github").get("/repos/a/b").json() == {"id": 7}
    assert KeyUsage.objects.get().calls == 2


def test_a_credential_without_what_its_scheme_needs_is_a_clear_error(user):
    credentials = fake_credentials("mixpanel")
    del credentials["service_account_username"], credentials["service_account_secret"]
    UserAPIKeyFactory(user=user, service="mixpanel", credentials=credentials)
    with pytest.raises(ValueError, match="service_account_username, service_account_secret"):
        byok.clients.session(user, "mixpanel")


def test_a_region_that_is_no_region_is_refused(user, settings):
    platform = {**fake_credentials("aws_s3"), "region": "evil.example.com/x"}
    settings.BYOK = {**settings.BYOK, "PLATFORM_KEYS": {"aws_s3": platform}}
    with pytest.raises(ValueError, match="not a region name"):
        byok.clients.session(user, "aws_s3")


# -- No secret shown ------------------------------------------------------------------------


def test_the_session_and_its_auth_show_no_secret(user):
    credentials = fake_credentials("twilio")
    UserAPIKeyFactory(user=user, service="twilio", credentials=credentials)
    session = byok.clients.session(user, "twilio")
    shown = f"{session!r} {session.auth!r} {session.meter!r}"
    assert shown == (
        "<MeteredSession twilio https://api.twilio.com> <CredentialAuth Basic> "
        "<Meter twilio (user's key)>"
    )


def host_code(user, service):
    """A host's view code: no decorator of its own."""
    session = byok.clients.session(user, service)
    return session.get("/mp/collect")


def failure_report(user, service):
    """The message of the error ``host_code`` fails with, and Django's report of it
    (made here, where no frame holds the credential but byok's and the libraries')."""
    try:
        host_code(user, service)
    except requests.ConnectionError as error:
        reporter = ExceptionReporter(None, *sys.exc_info())
        return str(error), reporter.get_traceback_text() + reporter.get_traceback_html()
    pytest.fail("the connection should have been refused")


@pytest.mark.parametrize("protected", [True, False], ids=["protected", "unprotected-control"])
def test_a_failed_request_leaves_no_secret_in_the_error_report(
    user, settings, monkeypatch, protected
):
    credentials = fake_credentials("google_analytics")
    UserAPIKeyFactory(user=user, service="google_analytics", credentials=credentials)
    settings.BYOK = {
        **settings.BYOK,
        "BASE_URLS": {"google_analytics": refused_url()},
        "ALLOW_PRIVATE_BASE_URLS": True,
    }
    if not protected:
        monkeypatch.setattr(SafeExceptionReporterFilter, "is_active", lambda self, req: False)
    message, report = failure_report(user, "google_analytics")
    assert credentials["api_secret"] not in message
    assert "[redacted]" in message
    assert (credentials["api_secret"] not in report) is protected
    # The failed call is still a call, and costs nothing.
    usage = KeyUsage.objects.get()
    assert (usage.calls, usage.cost) == (1, Decimal(0))


def org_token(region_url):
    claims = {"iat": 1, "url": "https://sentry.io", "region_url": region_url, "org": "acme"}
    payload = base64.b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"sntrys_{payload}_{'a' * 43}"


def test_a_sentry_organization_token_is_sent_to_its_own_region():
    sentry = registry.get("sentry")
    assert sentry.api_url({"api_key": org_token("https://us.sentry.io")}) == (
        "https://us.sentry.io/api/0"
    )
    with pytest.raises(ValueError, match=r"not sentry\.io's"):
        sentry.api_url({"api_key": org_token("https://evil.example.com")})


def test_a_configured_base_url_replaces_the_s3_host(settings):
    settings.BYOK = {**settings.BYOK, "BASE_URLS": {"aws_s3": "https://s3.example.net/"}}
    assert registry.get("aws_s3").api_url({"region": "eu-west-1"}) == "https://s3.example.net"


def test_the_hooks_see_a_session_call_and_its_json_body(user, mock, settings):
    from client_hooks import RecordingHook

    RecordingHook.seen = []
    settings.BYOK = {**settings.BYOK, "CLIENT_HOOKS": ["client_hooks.RecordingHook"]}
    UserAPIKeyFactory(user=user, service="resend")
    mock.post("https://api.resend.com/emails", json={"id": "1"}, status=429)
    byok.clients.session(user, "resend").post("/emails", json={"to": "a@example.com"})
    (_, call), (_, _, record) = RecordingHook.seen
    assert (call.path, call.body) == ("/emails", {"to": "a@example.com"})
    assert (record.status, record.outcome, record.cost) == (429, "429", Decimal(0))
