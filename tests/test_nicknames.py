"""One rule for a key's nickname, wherever a nickname comes in: the REST API, the
pages, the admin, imports and the Python helpers. An import checks every entry's
nickname before it stores anything."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

import byok
from byok.importing import Outcome, import_file
from byok.models import UserAPIKey
from byok.validation import clean_nickname

from factories import UserAPIKeyFactory
from fakes import fake_credentials
from support import NO_INLINE_ROWS

pytestmark = pytest.mark.django_db

API = "/api/user/api-keys/"
LONE_SURROGATE = "x\ud800"
BAD = {
    "lone surrogate": LONE_SURROGATE,
    "control character": "Work\x07",
    "newline inside": "Work\nProd",
    "NUL": "a\x00b",
    "101 characters": "n" * 101,
}


@pytest.mark.parametrize("nickname", BAD.values(), ids=BAD.keys())
def test_the_rule_refuses_what_no_page_could_show_or_database_store(nickname):
    with pytest.raises(ValidationError) as refused:
        clean_nickname(nickname)
    assert refused.value.code == "invalid"


def test_the_rule_strips_and_accepts_any_printable_text():
    assert clean_nickname("  Café: prod ☕ ") == "Café: prod ☕"
    assert clean_nickname(" " + "n" * 100 + " ") == "n" * 100
    assert clean_nickname("") == ""


@pytest.mark.parametrize("nickname", BAD.values(), ids=BAD.keys())
def test_every_way_in_refuses_the_same_nicknames(nickname, user, api, superuser):
    # The Python helper.
    with pytest.raises(ValidationError) as refused:
        byok.add_user_api_key(user, "openai", fake_credentials("openai"), nickname=nickname)
    assert "nickname" in refused.value.message_dict
    # The REST API: create and update.
    body = {"service": "openai", "key": fake_credentials("openai"), "nickname": nickname}
    # Sent as ASCII JSON: "\ud800" is an escape, as a hostile client would send it.
    response = api.post(API, json.dumps({**body, "test": False}), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["nickname"][0]["code"] == "invalid"
    key = UserAPIKeyFactory(user=user, nickname="kept")
    response = api.patch(
        f"{API}{key.pk}/", json.dumps({"nickname": nickname}), content_type="application/json"
    )
    assert response.status_code == 400
    assert "nickname" in response.json()
    # The page's add form (a lone surrogate cannot come through a real form post).
    browser = Client()
    browser.force_login(user)
    if "\ud800" not in nickname:
        form = {"api_key": fake_credentials("openai"), "nickname": nickname}
        response = browser.post(reverse("byok:add", args=["openai"]), form)
        assert response.status_code == 400
        assert "nickname" in response.context["form"].errors
        # The admin's add form.
        admin = Client()
        admin.force_login(superuser)
        form = {
            "user": str(user.pk),
            "service": "openai",
            "nickname": nickname,
            "environment": "production",
            "is_active": "on",
            "secret": fake_credentials("openai"),
            **NO_INLINE_ROWS,
        }
        response = admin.post(reverse("admin:byok_userapikey_add"), form)
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["nickname"]
    assert list(UserAPIKey.objects.values_list("nickname", flat=True)) == ["kept"]


def entries(second_nickname):
    """A good first entry, then one with ``second_nickname``."""
    return [
        {"service": "github", "credentials": fake_credentials("github"), "nickname": "CI"},
        {
            "service": "openai",
            "credentials": fake_credentials("openai"),
            "nickname": second_nickname,
        },
    ]


def test_an_import_reports_a_bad_nickname_as_that_entrys_format_error(api):
    text = json.dumps(entries(LONE_SURROGATE))  # ensure_ascii: the text says \ud800
    response = api.post(f"{API}import/", {"text": text}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["counts"] == {"imported": 1, "format error": 1}
    assert body["entries"][1]["outcome"] == "format error"
    assert "nickname" in body["entries"][1]["message"]
    assert list(UserAPIKey.objects.values_list("nickname", flat=True)) == ["CI"]


def test_an_atomic_import_with_a_bad_nickname_stores_nothing(api):
    text = json.dumps(entries(LONE_SURROGATE))
    response = api.post(f"{API}import/", {"text": text, "atomic": True}, format="json")
    assert response.status_code == 400
    assert response.json()["file"][0]["code"] == "import_failed"
    assert not UserAPIKey.objects.exists()


@pytest.mark.parametrize("nickname", [*BAD.values(), ["a list"], 7], ids=[*BAD, "list", "int"])
def test_the_importer_checks_every_nickname_before_storing(user, nickname):
    data = json.dumps(entries(nickname)).encode()
    report = import_file(user, data, atomic=True)
    assert report.refused
    assert [entry.outcome for entry in report.entries] == [
        Outcome.NOT_IMPORTED,
        Outcome.FORMAT_ERROR,
    ]
    assert not UserAPIKey.objects.exists()
    report = import_file(user, data)
    assert [entry.outcome for entry in report.entries] == [
        Outcome.IMPORTED,
        Outcome.FORMAT_ERROR,
    ]
    assert list(UserAPIKey.objects.values_list("nickname", flat=True)) == ["CI"]
