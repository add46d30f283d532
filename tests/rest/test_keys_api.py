"""The key endpoints: create, read, update, delete, test, reveal."""

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from byok.models import AuditEvent, UserAPIKey

from .conftest import OPENAI_MODELS
from factories import UserAPIKeyFactory
from fakes import fake_credentials

pytestmark = pytest.mark.django_db

BASE = "/api/user/api-keys/"


def codes(body, field):
    return [error["code"] for error in body[field]]


# create ---------------------------------------------------------------------------


def test_create_tests_first_and_returns_the_masked_key(api, user, provider):
    secret = fake_credentials("openai")
    response = api.post(BASE, {"service": "openai", "key": secret, "nickname": "Work"})
    assert response.status_code == 201
    body = response.json()
    assert body["masked_key"] == f"sk-proj-…{secret[-4:]}"
    assert (body["status"], body["test"]["status"], body["test"]["ok"]) == ("valid", "valid", True)
    assert (body["nickname"], body["is_default"], body["service_name"]) == ("Work", True, "OpenAI")
    assert secret not in response.content.decode()
    assert UserAPIKey.objects.get().get_secret() == secret
    assert len(provider.calls) == 1


def test_create_with_credentials_object(api, provider):
    credentials = fake_credentials("twilio")
    provider.get(
        f"https://api.twilio.com/2010-04-01/Accounts/{credentials['account_sid']}.json",
        json={"status": "active", "type": "Full"},
    )
    response = api.post(BASE, {"service": "twilio", "credentials": credentials})
    assert response.status_code == 201, response.content
    assert response.json()["test"]["status"] == "valid"


def test_create_without_test_sends_nothing(api, provider):
    response = api.post(
        BASE, {"service": "openai", "key": fake_credentials("openai"), "test": False}
    )
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["test"]) == ("untested", None)
    assert len(provider.calls) == 0


def test_a_key_the_provider_rejects_is_a_400_with_the_result(api, provider):
    provider.replace("GET", OPENAI_MODELS, status=401, json={"error": {"code": "invalid_api_key"}})
    response = api.post(BASE, {"service": "openai", "key": fake_credentials("openai")})
    assert response.status_code == 400
    body = response.json()
    assert codes(body, "credentials") == ["invalid_key"]
    assert (body["test"]["status"], body["test"]["http_status"]) == ("invalid", 401)
    assert not UserAPIKey.objects.exists()


@pytest.mark.parametrize(
    ("status", "stored"), [(429, "rate_limited"), (500, "provider_error"), (503, "provider_error")]
)
def test_a_key_that_cannot_be_judged_is_stored_with_that_status(api, provider, status, stored):
    provider.replace("GET", OPENAI_MODELS, status=status, json={"error": {"message": "busy"}})
    response = api.post(BASE, {"service": "openai", "key": fake_credentials("openai")})
    assert response.status_code == 201
    assert response.json()["status"] == stored


def test_format_errors_are_keyed_by_credential_field(api):
    missing = api.post(
        BASE, {"service": "twilio", "credentials": {"account_sid": "AC" + "0" * 32}}
    )
    assert missing.status_code == 400
    assert codes(missing.json(), "auth_token") == ["required"]
    malformed = api.post(
        BASE,
        {"service": "twilio", "credentials": {**fake_credentials("twilio"), "account_sid": "x"}},
    )
    assert malformed.status_code == 400
    assert codes(malformed.json(), "account_sid") == ["format"]
    assert not UserAPIKey.objects.exists()


def test_a_duplicate_secret_is_a_400_with_code_duplicate(api, user):
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=secret)
    response = api.post(BASE, {"service": "openai", "key": secret, "test": False})
    assert response.status_code == 400
    assert codes(response.json(), "credentials") == ["duplicate"]
    assert UserAPIKey.objects.count() == 1


def test_format_warnings_come_back(api):
    response = api.post(
        BASE, {"service": "stripe", "key": fake_credentials("stripe"), "test": False}
    )
    assert response.status_code == 201
    assert any("test key" in warning for warning in response.json()["warnings"])


# read ---------------------------------------------------------------------------


def test_list_and_retrieve_are_masked(api, user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    listed = api.get(BASE)
    assert [item["id"] for item in listed.json()] == [str(key.pk)]
    detail = api.get(f"{BASE}{key.pk}/")
    assert detail.json()["masked_key"] == key.masked_key
    assert secret not in listed.content.decode() + detail.content.decode()


def test_deleted_keys_are_not_listed(api, user):
    key = UserAPIKeyFactory(user=user)
    api.delete(f"{BASE}{key.pk}/")
    assert api.get(BASE).json() == []
    assert api.get(f"{BASE}{key.pk}/").status_code == 404


def test_pagination_follows_the_hosts_settings(api, user):
    for service in ("openai", "anthropic", "resend"):
        UserAPIKeyFactory(user=user, service=service)
    paged = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
        "PAGE_SIZE": 2,
    }
    with override_settings(REST_FRAMEWORK=paged):
        body = api.get(BASE).json()
    assert (body["count"], len(body["results"])) == (3, 2)


# update -------------------------------------------------------------------------


def test_patch_without_credentials_keeps_the_secret(api, user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    response = api.patch(f"{BASE}{key.pk}/", {"nickname": "renamed", "environment": "test"})
    assert response.status_code == 200
    assert (response.json()["nickname"], response.json()["environment"]) == ("renamed", "test")
    assert UserAPIKey.objects.get().get_secret() == secret


def test_put_needs_every_setting(api, user):
    key = UserAPIKeyFactory(user=user)
    response = api.put(f"{BASE}{key.pk}/", {"nickname": "x"})
    assert response.status_code == 400
    assert {"environment", "is_default", "is_active"} <= set(response.json())


def test_put_accepts_the_representation_sent_back(api, user):
    key = UserAPIKeyFactory(user=user)
    representation = api.get(f"{BASE}{key.pk}/").json()
    representation["nickname"] = "from a form"
    response = api.put(f"{BASE}{key.pk}/", representation)
    assert response.status_code == 200
    assert UserAPIKey.objects.get().nickname == "from a form"


@pytest.mark.parametrize("echo", ["hint", "ascii"])
def test_the_masked_value_echoed_back_is_refused(api, user, echo):
    key = UserAPIKeyFactory(user=user)
    value = key.masked_key if echo == "hint" else key.masked_key.replace("…", "...")
    response = api.patch(f"{BASE}{key.pk}/", {"key": value, "test": False})
    assert response.status_code == 400
    assert codes(response.json(), "api_key") == ["masked"]
    assert UserAPIKey.objects.get().credentials == key.credentials


def test_replacing_the_secret_tests_it(api, user, provider):
    key = UserAPIKeyFactory(user=user)
    secret = fake_credentials("openai")
    response = api.patch(f"{BASE}{key.pk}/", {"key": secret})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["test"]["status"]) == ("valid", "valid")
    assert UserAPIKey.objects.get().get_secret() == secret


def test_unsetting_the_only_default_is_refused(api, user):
    key = UserAPIKeyFactory(user=user)
    response = api.patch(f"{BASE}{key.pk}/", {"is_default": False})
    assert response.status_code == 400
    assert codes(response.json(), "is_default") == ["only_key"]


# delete, test, reveal ---------------------------------------------------------------


def test_delete_is_a_soft_delete(api, user):
    key = UserAPIKeyFactory(user=user)
    assert api.delete(f"{BASE}{key.pk}/").status_code == 204
    row = UserAPIKey.objects.get(pk=key.pk)
    assert (row.credentials, row.deleted_at is not None) == (None, True)


def test_testing_candidates_stores_nothing(api, provider):
    response = api.post(f"{BASE}test/", {"service": "openai", "key": fake_credentials("openai")})
    assert response.status_code == 200
    assert response.json()["status"] == "valid"
    assert not UserAPIKey.objects.exists()
    assert not AuditEvent.objects.exists()


def test_testing_a_malformed_candidate_reports_the_fields(api, provider):
    response = api.post(f"{BASE}test/", {"service": "openai", "key": "sk-nope"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "format_invalid"
    assert "api_key" in body["field_errors"]
    assert len(provider.calls) == 0


STRIPE_BALANCE = "https://api.stripe.com/v1/balance"
TEST_KEY_FOR_PRODUCTION = "This is a Stripe test key, but it is stored for production"


@pytest.mark.parametrize(("environment", "warned"), [("production", True), ("test", False)])
def test_a_candidate_is_judged_for_the_environment_it_names(api, mocked, environment, warned):
    mocked.get(STRIPE_BALANCE, json={"object": "balance", "livemode": False})
    candidate = {"service": "stripe", "key": fake_credentials("stripe")}
    response = api.post(f"{BASE}test/", {**candidate, "environment": environment})
    assert response.json()["status"] == "valid"
    warnings = response.json()["warnings"]
    assert any(w.startswith(TEST_KEY_FOR_PRODUCTION) for w in warnings) is warned


def test_retesting_answers_with_the_tests_warnings(api, user, mocked):
    mocked.get(STRIPE_BALANCE, json={"object": "balance", "livemode": False})
    key = UserAPIKeyFactory(user=user, service="stripe", environment="production")
    body = api.post(f"{BASE}{key.pk}/test/").json()
    assert body["test"]["status"] == "valid"
    assert body["warnings"] == body["test"]["warnings"]
    assert any(w.startswith(TEST_KEY_FOR_PRODUCTION) for w in body["warnings"])


def test_retesting_updates_the_key(api, user, provider):
    key = UserAPIKeyFactory(user=user)
    url = reverse("byok_api:apikey-retest", args=[key.pk])  # the documented name
    assert url == f"{BASE}{key.pk}/test/"
    response = api.post(url)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["test"]["status"]) == ("valid", "valid")
    stored = UserAPIKey.objects.get()
    assert stored.status == "valid"
    assert stored.last_tested_at is not None


def test_reveal_returns_the_plaintext_once_audited_and_uncached(api, user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    response = api.post(f"{BASE}{key.pk}/reveal/")
    assert response.status_code == 200
    assert response.json() == {"credentials": {"api_key": secret}, "key": secret}
    assert (response["Cache-Control"], response["Pragma"]) == ("no-store", "no-cache")
    assert AuditEvent.objects.filter(action="revealed", key=key, actor=user).exists()


def test_reveal_of_a_multi_field_key_has_no_key_shorthand(api, user):
    credentials = fake_credentials("twilio")
    key = UserAPIKeyFactory(user=user, service="twilio", credentials=credentials)
    assert api.post(f"{BASE}{key.pk}/reveal/").json() == {"credentials": credentials}


def test_reveal_can_be_turned_off(api, user):
    key = UserAPIKeyFactory(user=user)
    with override_settings(BYOK={**settings.BYOK, "ALLOW_REVEAL": False}):
        response = api.post(f"{BASE}{key.pk}/reveal/")
    assert response.status_code == 403
    assert response.json() == {"detail": "Showing stored keys again is turned off on this site."}
    assert not AuditEvent.objects.filter(action="revealed").exists()


def test_reveal_is_throttled(api, user):
    key = UserAPIKeyFactory(user=user)
    statuses = [api.post(f"{BASE}{key.pk}/reveal/").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


def test_testing_a_stored_key_again_counts_against_the_test_budget(api, user, provider):
    key = UserAPIKeyFactory(user=user)
    rates = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DEFAULT_THROTTLE_RATES": {"byok_test": "2/minute"},
    }
    with override_settings(REST_FRAMEWORK=rates):
        statuses = [api.post(f"{BASE}{key.pk}/test/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def one_test_a_minute():
    rates = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DEFAULT_THROTTLE_RATES": {"byok_test": "1/minute"},
    }
    return override_settings(REST_FRAMEWORK=rates)


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize("shape", ["key", "credentials"])
def test_replacing_a_secret_with_a_test_counts_against_the_test_budget(
    api, user, provider, method, shape
):
    key = UserAPIKeyFactory(user=user)
    body = {"nickname": "", "environment": "production", "is_default": True, "is_active": True}

    def new_secret():
        secret = fake_credentials("openai")
        return {"key": secret} if shape == "key" else {"credentials": {"api_key": secret}}

    with one_test_a_minute():
        first = getattr(api, method)(f"{BASE}{key.pk}/", {**body, **new_secret()})
        second = getattr(api, method)(f"{BASE}{key.pk}/", {**body, **new_secret()})
    assert (first.status_code, second.status_code) == (200, 429)


BAD_INPUT = {
    "unreadable test flag": {"service": "openai", "key": "sk-proj-" + "a" * 60, "test": "maybe"},
    "format error": {"service": "openai", "key": "sk-short"},
    "unknown service": {"service": "nope", "key": "x" * 40},
    "unknown field": {"service": "openai", "key": "sk-proj-" + "a" * 60, "owner": 1},
    "a list": [{"service": "openai"}],
}


def test_requests_refused_for_bad_input_spend_no_test(api, user, provider):
    """The budget is spent when a probe is about to call the provider, not before."""
    key = UserAPIKeyFactory(user=user)
    with one_test_a_minute():
        refused = [api.post(BASE, body, format="json") for body in BAD_INPUT.values()]
        refused += [  # a format error is test/'s 200 "format_invalid", below
            api.post(f"{BASE}test/", body, format="json")
            for name, body in BAD_INPUT.items()
            if name != "format error"
        ]
        refused.append(api.patch(f"{BASE}{key.pk}/", {"key": "sk-short"}, format="json"))
        refused.append(
            api.post(BASE, b'{"service": "openai", "key": ', content_type="application/json")
        )
        missing = api.post(f"{BASE}00000000-0000-0000-0000-000000000000/test/")
        format_invalid = api.post(f"{BASE}test/", {"service": "openai", "key": "sk-short"})
        tested = api.post(f"{BASE}test/", {"service": "openai", "key": fake_credentials("openai")})
        over = api.post(f"{BASE}test/", {"service": "openai", "key": fake_credentials("openai")})
    assert {response.status_code for response in refused} == {400}
    assert missing.status_code == 404
    assert format_invalid.json()["status"] == "format_invalid"
    assert (tested.status_code, over.status_code) == (200, 429)
    assert "Retry-After" in over
    assert len(provider.calls) == 1
    assert UserAPIKey.objects.count() == 1


def test_a_probe_counts_once_however_many_requests_it_sends(api, user, mocked):
    """A 5xx is retried once: still one call of the budget."""
    mocked.get(OPENAI_MODELS, status=503)
    rates = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DEFAULT_THROTTLE_RATES": {"byok_test": "2/minute"},
    }
    body = {"service": "openai", "key": fake_credentials("openai")}
    with override_settings(REST_FRAMEWORK=rates):
        statuses = [api.post(f"{BASE}test/", body).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert len(mocked.calls) == 4


def test_a_body_that_is_not_an_object_spends_no_test(api, user, provider):
    with one_test_a_minute():
        refused = api.post(BASE, [{"service": "openai"}], format="json")
        tested = api.post(f"{BASE}test/", {"service": "openai", "key": fake_credentials("openai")})
    assert refused.status_code == 400
    assert tested.status_code == 200


@pytest.mark.parametrize("key_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_id_that_is_not_one_of_your_keys_says_so(api, user, key_id):
    UserAPIKeyFactory(user=user)
    response = api.get(f"{BASE}{key_id}/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No API key of yours has this id."}


def test_throttle_rates_can_be_overridden(api, user, provider):
    rates = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DEFAULT_THROTTLE_RATES": {"byok_test": "2/minute"},
    }
    with override_settings(REST_FRAMEWORK=rates):
        statuses = [
            api.post(
                f"{BASE}test/", {"service": "openai", "key": fake_credentials("openai")}
            ).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 429]


def test_an_undecryptable_key_is_a_409_and_the_list_still_works(api, user):
    from support import OTHER_ENCRYPTION_KEY

    key = UserAPIKeyFactory(user=user)
    with override_settings(BYOK={**settings.BYOK, "ENCRYPTION_KEYS": [OTHER_ENCRYPTION_KEY]}):
        assert api.post(f"{BASE}{key.pk}/reveal/").status_code == 409
        assert api.post(f"{BASE}{key.pk}/test/").status_code == 409
        assert api.get(BASE).status_code == 200


UNDECRYPTABLE = {
    "detail": "This key cannot be decrypted with the site's encryption keys; "
    "the site's administrators have been told."
}
SERVICE_GONE = {"detail": "This key's service is no longer available on this site."}


@pytest.mark.parametrize("action", ["reveal", "test"])
def test_an_undecryptable_key_says_so_and_tells_the_administrators(api, user, action, caplog):
    from support import OTHER_ENCRYPTION_KEY

    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    stored_under = key.credentials.encryption_key_id
    with override_settings(BYOK={**settings.BYOK, "ENCRYPTION_KEYS": [OTHER_ENCRYPTION_KEY]}):
        response = api.post(f"{BASE}{key.pk}/{action}/")
    assert response.status_code == 409
    assert response.json() == UNDECRYPTABLE
    [record] = [r for r in caplog.records if r.name == "byok.rest"]
    assert record.levelname == "ERROR"
    assert record.getMessage() == (
        f"API key {key.pk} cannot be decrypted (encryption key id {stored_under})"
    )
    assert secret not in caplog.text


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_new_secret_for_a_service_gone_from_the_site_is_a_409(api, user, method):
    key = UserAPIKeyFactory(user=user)
    body = {"key": fake_credentials("openai"), "test": False}
    if method == "put":
        body |= {"nickname": "", "environment": "production", "is_default": True}
        body |= {"is_active": True}
    with override_settings(BYOK={**settings.BYOK, "DISABLED_SERVICES": ["openai"]}):
        response = getattr(api, method)(f"{BASE}{key.pk}/", body)
    assert response.status_code == 409
    assert response.json() == SERVICE_GONE
    key.refresh_from_db()
    assert key.credentials.open(binding=key.binding) != {"api_key": body["key"]}


def test_session_auth_needs_a_csrf_token(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    body = {"service": "openai", "key": fake_credentials("openai"), "test": False}
    refused = client.post(BASE, body, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    client.get(BASE)  # sets nothing: fetch a token the way a page would
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret

    secret = _get_new_csrf_string()
    client.cookies["csrftoken"] = secret
    accepted = client.post(BASE, body, format="json", HTTP_X_CSRFTOKEN=_mask_cipher_secret(secret))
    assert accepted.status_code == 201


# behaviour pinned down after review ------------------------------------------------


def test_every_missing_key_gets_the_same_404(api, user):

    theirs = UserAPIKeyFactory()
    gone = UserAPIKeyFactory(user=user)
    api.delete(f"{BASE}{gone.pk}/")
    messages = {
        api.get(f"{BASE}{path}/").json()["detail"]
        for path in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", theirs.pk, gone.pk)
    }
    assert messages == {"No API key of yours has this id."}


def test_replacing_a_secret_is_throttled_like_a_test(api, user, provider):
    key = UserAPIKeyFactory(user=user)
    rates = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DEFAULT_THROTTLE_RATES": {"byok_test": "1/minute"},
    }
    with override_settings(REST_FRAMEWORK=rates):
        assert (
            api.post(
                f"{BASE}test/", {"service": "openai", "key": fake_credentials("openai")}
            ).status_code
            == 200
        )
        refused = api.patch(f"{BASE}{key.pk}/", {"key": fake_credentials("openai")})
        untested = api.patch(
            f"{BASE}{key.pk}/", {"key": fake_credentials("openai"), "test": "False"}
        )
        settings_only = api.patch(f"{BASE}{key.pk}/", {"nickname": "x"})
    assert (refused.status_code, untested.status_code, settings_only.status_code) == (
        429,
        200,
        200,
    )
    assert len(provider.calls) == 1


def test_switching_the_default_off_and_default_on_at_once_is_refused(api, user):
    key = UserAPIKeyFactory(user=user)
    response = api.patch(f"{BASE}{key.pk}/", {"is_active": False, "is_default": True})
    assert response.status_code == 400
    assert codes(response.json(), "is_default") == ["inactive"]
    assert UserAPIKey.objects.get().is_active


def test_the_only_key_can_be_switched_off_with_put(api, user):
    key = UserAPIKeyFactory(user=user)
    representation = api.get(f"{BASE}{key.pk}/").json()
    response = api.put(
        f"{BASE}{key.pk}/", {**representation, "is_active": False, "is_default": False}
    )
    assert response.status_code == 200
    assert (response.json()["is_active"], response.json()["is_default"]) == (False, False)


def test_format_problems_of_candidates_carry_codes(api, provider):
    body = api.post(f"{BASE}test/", {"service": "openai", "key": "sk-…AbCd"}).json()
    [problem] = body["field_errors"]["api_key"]
    assert sorted(problem) == ["code", "message"]
    assert problem["code"] == "masked"
    assert problem["message"]


@pytest.mark.parametrize(
    ("name", "needs_id", "path"),
    [
        ("apikey-list", False, ""),
        ("apikey-detail", True, ""),
        ("apikey-test", False, "test/"),
        ("apikey-retest", True, "test/"),
        ("apikey-reveal", True, "reveal/"),
        ("apikey-import", False, "import/"),
        ("apikey-services", False, "services/"),
        ("apikey-stats", False, "stats/"),
        ("apikey-usage", False, "usage/"),
        ("apikey-usage-by-model", False, "usage/by-model/"),
        ("budget-list", False, "budgets/"),
        ("budget-detail", True, "budgets/"),
    ],
)
def test_the_documented_url_names_reverse(name, needs_id, path):
    """byok/rest/urls.py promises these names to host templates and code."""
    if name.startswith("budget-"):  # budgets/{id}/
        url = reverse(f"byok_api:{name}", kwargs={"pk": 42} if needs_id else None)
        assert url == BASE + path + ("42/" if needs_id else "")
        return
    key_id = "00000000-0000-0000-0000-000000000000"
    url = reverse(f"byok_api:{name}", kwargs={"pk": key_id} if needs_id else None)
    assert url == BASE + (f"{key_id}/" if needs_id else "") + path


def test_reveal_turned_off_spends_no_throttle_and_hides_existence(api, user):
    key = UserAPIKeyFactory(user=user)
    with override_settings(BYOK={**settings.BYOK, "ALLOW_REVEAL": False}):
        statuses = {
            api.post(f"{BASE}{key_id}/reveal/").status_code
            for key_id in [key.pk] * 7 + ["00000000-0000-0000-0000-000000000000"]
        }
    assert statuses == {403}
    assert api.post(f"{BASE}{key.pk}/reveal/").status_code == 200


def test_keys_of_a_removed_service_can_still_be_found_and_revealed(api, user):
    secret = fake_credentials("sentry")
    key = UserAPIKeyFactory(user=user, service="sentry", credentials=secret)
    with override_settings(BYOK={**settings.BYOK, "DISABLED_SERVICES": ["sentry"]}):
        listed = api.get(f"{BASE}?service=sentry").json()
        revealed = api.post(f"{BASE}{key.pk}/reveal/").json()
    assert [item["id"] for item in listed] == [str(key.pk)]
    assert revealed == {"credentials": {"api_key": secret}, "key": secret}


def test_retesting_counts_as_an_update(api, user, provider):
    key = UserAPIKeyFactory(user=user)
    before = UserAPIKey.objects.get().updated_at
    api.post(f"{BASE}{key.pk}/test/")
    assert UserAPIKey.objects.get().updated_at > before


def test_a_null_credential_value_is_an_error_on_that_field(api):
    response = api.post(BASE, {"service": "openai", "credentials": {"api_key": None}})
    assert response.status_code == 400
    assert codes(response.json(), "api_key") == ["required"]
