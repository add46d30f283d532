import string

import pytest

import byok

from fakes import URLSAFE, fake_credentials, rand

ID_ALPHABET = string.ascii_uppercase + string.digits


def with_id(measurement_id):
    return {"measurement_id": measurement_id, "api_secret": rand(22, URLSAFE)}


def test_the_secret_is_unverifiable_and_no_event_is_sent(mocked):
    result = byok.test_credentials("google_analytics", fake_credentials("google_analytics"))
    assert result.status == "unverifiable"
    assert "without sending an event" in result.message
    assert result.http_status is None
    assert len(mocked.calls) == 0


def test_a_malformed_credential_is_format_invalid(mocked):
    result = byok.test_credentials("google_analytics", with_id("UA-1234567-1"))
    assert result.status == "format_invalid"
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    ("credentials", "field", "problem", "code"),
    [
        (with_id("UA-1234567-1"), "measurement_id", "Universal Analytics", "wrong_kind"),
        (with_id("ua-98765432-3"), "measurement_id", "start with G-", "wrong_kind"),
        (with_id("G-XXXXXXX"), "measurement_id", "placeholder", "placeholder"),
        (with_id("G-XXXXXXXXXX"), "measurement_id", "placeholder", "placeholder"),
        (with_id("g-" + rand(10, ID_ALPHABET)), "measurement_id", "must be G-", "format"),
        (with_id("G-" + rand(3, ID_ALPHABET)), "measurement_id", "must be G-", "format"),
        (with_id("G-" + rand(17, ID_ALPHABET)), "measurement_id", "must be G-", "format"),
        (with_id("GT-" + rand(8, ID_ALPHABET)), "measurement_id", "must be G-", "format"),
        (
            {"measurement_id": "G-" + rand(10, ID_ALPHABET), "api_secret": rand(15, URLSAFE)},
            "api_secret",
            "must be 16 to 64",
            "format",
        ),
        (
            {"measurement_id": "G-" + rand(10, ID_ALPHABET), "api_secret": rand(21) + "="},
            "api_secret",
            "must be 16 to 64",
            "format",
        ),
    ],
)
def test_format_errors(credentials, field, problem, code):
    result = byok.validate_credentials("google_analytics", credentials)
    assert not result.ok
    assert problem in " ".join(result.field_errors[field])
    assert [p.code for p in result.problems[field]] == [code]
    for value in credentials.values():
        assert value not in " ".join(result.errors)


def test_an_unusual_id_length_is_only_a_warning():
    result = byok.validate_credentials("google_analytics", with_id("G-" + rand(8, ID_ALPHABET)))
    assert result.ok
    assert "usually G- followed by 10" in result.warnings[0]


def test_the_fakes_pass_without_warning():
    result = byok.validate_credentials("google_analytics", fake_credentials("google_analytics"))
    assert (result.ok, result.warnings) == (True, [])
