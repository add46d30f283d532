"""The dashboard's "Import from .env" page: an upload form and the result per entry."""

import pytest
import responses as responses_lib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from byok.importing import MAX_BYTES
from byok.models import AuditEvent, UserAPIKey

from factories import UserAPIKeyFactory
from fakes import fake_credentials

pytestmark = pytest.mark.django_db

URL = "/dashboard/api-keys/import/"


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def upload(content, name=".env"):
    return SimpleUploadedFile(name, content if isinstance(content, bytes) else content.encode())


def post(browser, content, **options):
    return browser.post(URL, {"file": upload(content), "environment": "production", **options})


def test_the_page_needs_a_signed_in_user():
    response = Client().get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_dashboard_links_to_the_import_page(browser):
    assert f'href="{URL}"' in browser.get("/dashboard/api-keys/").content.decode()


def test_the_form_takes_a_file_with_csrf(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(URL).content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert 'type="file"' in page
    assert "csrfmiddlewaretoken" in page
    response = client.post(URL, {"file": upload(f"GITHUB_TOKEN={fake_credentials('github')}")})
    assert response.status_code == 403
    assert not UserAPIKey.objects.exists()


def test_an_env_file_is_imported_and_each_entry_reported_without_a_secret(browser, user):
    openai, twilio = fake_credentials("openai"), fake_credentials("twilio")
    text = (
        f"OPENAI_API_KEY={openai}\n"
        f"TWILIO_ACCOUNT_SID={twilio['account_sid']}\n"
        f"TWILIO_AUTH_TOKEN={twilio['auth_token']}\n"
        "DJANGO_SECRET_KEY=not-a-provider-secret\n"
        "this line is not an assignment\n"
    )
    response = post(browser, text)
    assert response.status_code == 200
    page = response.content.decode()
    assert '<tr data-byok-outcome="imported"><th scope="row">OPENAI_API_KEY (line 1)</th>' in page
    assert "TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN (lines 2, 3)" in page
    assert 'data-byok-outcome="unknown variable"' in page
    assert 'data-byok-outcome="malformed"' in page
    assert "2 keys were imported." in page
    for secret in (openai, twilio["auth_token"], "not-a-provider-secret"):
        assert secret not in page
    assert sorted(UserAPIKey.objects.filter(user=user).values_list("service", flat=True)) == [
        "openai",
        "twilio",
    ]
    assert set(AuditEvent.objects.values_list("action", "metadata__via")) == {("imported", "page")}


def test_an_atomic_import_with_a_failure_stores_nothing_and_says_so(browser):
    text = f"OPENAI_API_KEY={fake_credentials('openai')}\nSTRIPE_SECRET_KEY=pk_live_wrongkind\n"
    response = post(browser, text, atomic="on")
    assert response.status_code == 400
    page = response.content.decode()
    assert "1 entry could not be imported; nothing was imported." in page
    assert 'data-byok-outcome="not imported"' in page
    assert 'data-byok-outcome="format error"' in page
    assert not UserAPIKey.objects.exists()


def test_without_atomic_the_good_keys_are_kept(browser):
    text = f"OPENAI_API_KEY={fake_credentials('openai')}\nSTRIPE_SECRET_KEY=pk_live_wrongkind\n"
    response = post(browser, text)
    assert response.status_code == 200
    assert "1 key was imported." in response.content.decode()
    assert list(UserAPIKey.objects.values_list("service", flat=True)) == ["openai"]


def test_a_dry_run_stores_nothing(browser):
    response = post(browser, f"GITHUB_TOKEN={fake_credentials('github')}\n", dry_run="on")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Dry run: nothing was stored." in page
    assert 'data-byok-outcome="would import"' in page
    assert not UserAPIKey.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_key_already_stored_is_a_duplicate(browser, user):
    secret = fake_credentials("github")
    UserAPIKeyFactory(user=user, service="github", credentials=secret)
    response = post(browser, f"GH_TOKEN={secret}\n")
    assert 'data-byok-outcome="duplicate"' in response.content.decode()
    assert UserAPIKey.objects.count() == 1


def test_environment_and_test_options_apply(browser):
    with responses_lib.RequestsMock() as provider:
        provider.get("https://api.openai.com/v1/models", json={"data": []})
        response = post(
            browser, f"OPENAI_API_KEY={fake_credentials('openai')}", environment="test", test="on"
        )
    assert response.status_code == 200
    key = UserAPIKey.objects.get()
    assert (key.environment, key.status) == ("test", "valid")


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", "The submitted file is empty."),
        (b"\x00\x01\x02binary", "This is not a text file."),
        (b"\xff\xfe\xfd", "This is not a UTF-8 text file."),
        (b"# only a comment\n", "The file holds no keys."),
        (b"[1, 2", "This is not valid JSON."),
        (b"A=1\n" * (10 * 1024 * 1024 // 4), f"The file is larger than {MAX_BYTES // 1024} KB."),
    ],
    ids=["empty", "nul", "not-utf8", "no-keys", "bad-json", "10-mb"],
)
def test_files_that_hold_no_keys_get_a_clear_error(browser, content, error):
    response = browser.post(URL, {"file": upload(content), "environment": "production"})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not UserAPIKey.objects.exists()


def test_no_file_and_a_bad_environment_are_form_errors(browser):
    response = browser.post(URL, {"environment": "staging"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "This field is required." in page
    assert "Select a valid choice." in page


def test_importing_with_test_counts_against_the_users_test_budget(browser, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"byok_test": "1/minute"},
    }
    with responses_lib.RequestsMock() as provider:
        provider.get("https://api.openai.com/v1/models", json={"data": []})
        first = post(browser, f"OPENAI_API_KEY={fake_credentials('openai')}", test="on")
    second = post(browser, f"OPENAI_API_KEY={fake_credentials('openai')}", test="on")
    assert first.status_code == 200
    assert second.status_code == 429
    assert "Too many keys tested in a short time" in second.content.decode()
    assert UserAPIKey.objects.count() == 1
    assert post(browser, f"OPENAI_API_KEY={fake_credentials('openai')}").status_code == 200
