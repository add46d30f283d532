"""The admin, as support staff use it (users' keys and teams' keys).

Every page renders without a secret (masked hints only), the secret is a write-only
password input, changes and actions go through byok's helpers and are audited as
``via: admin``, the audit trail cannot be edited, and the list neither decrypts nor
runs more queries as keys are added.
"""

import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
import responses as responses_lib
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.sites import site
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from byok.fields import SealedCredentials
from byok.keys import remove_user_api_key, reveal_user_api_key, update_user_api_key
from byok.models import AuditEvent, KeyUsage, UserAPIKey
from byok.services.registry import registry

from factories import (
    KeyUsageFactory,
    TeamAPIKeyFactory,
    TeamFactory,
    UserAPIKeyFactory,
    UserFactory,
)
from fakes import FAKES, fake_credentials
from support import NO_INLINE_ROWS

pytestmark = pytest.mark.django_db

MODELS = "https://api.openai.com/v1/models"
REJECTED = {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}
CHANGELIST = reverse("admin:byok_userapikey_changelist")
ADD = reverse("admin:byok_userapikey_add")
AUDIT_CHANGELIST = reverse("admin:byok_auditevent_changelist")
AUDIT_ADD = reverse("admin:byok_auditevent_add")


def url(name, key):
    return reverse(f"admin:byok_userapikey_{name}", args=[key.pk])


def secrets_of(service, credentials):
    """The values of a credential's secret fields (an AWS region is not a secret)."""
    if isinstance(credentials, str):
        return [credentials]
    secret = {field.name for field in registry.get(service).fields if field.secret}
    return [value for name, value in credentials.items() if name in secret]


def login_of(user):
    return getattr(user, get_user_model().USERNAME_FIELD)


def html(response):
    return response.content.decode()


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def listed(response):
    """Nicknames of the keys on a changelist page."""
    return {key.nickname for key in response.context["cl"].result_list}


def assert_no_secret(text, secrets):
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, f"{len(leaked)} secret(s) in the output"


def assert_change_log_has_no_secret(secrets):
    entries = LogEntry.objects.all()
    assert entries.exists()
    assert_no_secret(json.dumps([[e.object_repr, e.change_message] for e in entries]), secrets)


def post_action(client, action, keys):
    """Run a changelist action on ``keys``; the page it ends on (redirects followed)."""
    return client.post(
        CHANGELIST,
        {"action": action, "index": "0", "_selected_action": [str(k.pk) for k in keys]},
        follow=True,
    )


def change_data(key, **changes):
    """What the change form posts: the key's fields as they are, then ``changes``."""
    data = {
        "nickname": key.nickname,
        "environment": key.environment,
        "secret": "",
        **NO_INLINE_ROWS,
        **changes,
    }
    if key.is_active:
        data["is_active"] = "on"  # a checkbox is posted only when ticked
    return data


def add_data(user, service, secret, **changes):
    return {
        "user": str(user.pk),
        "service": service,
        "nickname": "",
        "environment": "production",
        "is_active": "on",
        "secret": secret,
        **NO_INLINE_ROWS,
        **changes,
    }


def as_secret_input(credentials):
    """What support types into the secret input: the key, or a JSON object of fields."""
    return credentials if isinstance(credentials, str) else json.dumps(credentials)


# fixtures -------------------------------------------------------------------------


@pytest.fixture
def provider():
    """Provider HTTP, mocked: a request to an unregistered URL fails, none goes out."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def accepts_only(mock, secret):
    """OpenAI's probe accepts ``secret`` and rejects every other key with a 401."""
    header = responses_lib.matchers.header_matcher({"Authorization": f"Bearer {secret}"})
    mock.get(MODELS, json={"data": []}, match=[header])
    mock.get(MODELS, status=401, json=REJECTED)


@pytest.fixture
def admin(superuser):
    client = Client()
    client.force_login(superuser)
    return client


def byok_permissions(*codenames):
    return Permission.objects.filter(content_type__app_label="byok", codename__in=codenames)


@pytest.fixture
def view_only_staff():
    """A staff member who may only view keys and audit events."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*byok_permissions("view_userapikey", "view_auditevent"))
    return user


@pytest.fixture
def viewer(view_only_staff):
    client = Client()
    client.force_login(view_only_staff)
    return client


@pytest.fixture
def alice():
    return UserFactory()


@pytest.fixture
def bob():
    return UserFactory()


@dataclass
class Stored:
    keys: dict[str, UserAPIKey]
    credentials: dict[str, object]

    @property
    def secrets(self):
        return [
            secret
            for service, credentials in self.credentials.items()
            for secret in secrets_of(service, credentials)
        ]


@pytest.fixture
def stored(alice, bob):
    """Alice's OpenAI key (tested valid) and Twilio test key; Bob's AWS key, switched off."""
    credentials = {name: fake_credentials(name) for name in ("openai", "twilio", "aws_s3")}
    keys = {
        "openai": UserAPIKeyFactory(
            user=alice,
            service="openai",
            credentials=credentials["openai"],
            nickname="Research bot",
        ),
        "twilio": UserAPIKeyFactory(
            user=alice,
            service="twilio",
            credentials=credentials["twilio"],
            nickname="SMS alerts",
            environment="test",
        ),
        "aws_s3": UserAPIKeyFactory(
            user=bob, service="aws_s3", credentials=credentials["aws_s3"], nickname="Backups"
        ),
    }
    UserAPIKey.objects.filter(pk=keys["openai"].pk).update(status="valid")
    update_user_api_key(keys["aws_s3"], is_active=False)
    for key in keys.values():
        key.refresh_from_db()
    return Stored(keys, credentials)


# every page, without a secret ------------------------------------------------------


PAGES = {
    "changelist": lambda keys: CHANGELIST,
    "changelist filtered": lambda keys: (
        f"{CHANGELIST}?service=openai&category=ai"
        "&environment__exact=production&status__exact=valid&is_active__exact=1"
    ),
    "changelist searched": lambda keys: f"{CHANGELIST}?q=Backups",
    "add form": lambda keys: ADD,
    **{
        f"{page} of {service}": lambda keys, page=page, service=service: url(page, keys[service])
        for page in ("change", "history", "delete")
        for service in ("openai", "twilio", "aws_s3")
    },
}


@pytest.mark.parametrize("page", PAGES)
def test_every_key_page_renders_without_a_secret(admin, stored, page):
    response = admin.get(PAGES[page](stored.keys))
    assert response.status_code == 200
    assert_no_secret(html(response), stored.secrets)


def test_the_bulk_delete_confirmation_renders_without_a_secret(admin, stored):
    response = post_action(admin, "delete_selected", stored.keys.values())
    assert response.status_code == 200
    assert "Are you sure" in html(response)
    assert_no_secret(html(response), stored.secrets)
    assert UserAPIKey.objects.filter(deleted_at__isnull=True).count() == 3


def test_the_changelist_shows_every_key_masked(admin, stored):
    page = html(admin.get(CHANGELIST))
    for key in stored.keys.values():
        assert key.masked_key in page
        assert key.nickname in page
    assert_no_secret(page, stored.secrets)


def row_of(page, key):
    """The changelist row of ``key``, its cells' text without tags."""
    row = re.search(rf'<tr>(?:(?!</tr>).)*?value="{key.pk}"(?:(?!</tr>).)*</tr>', page, re.S)
    assert row, key
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row.group(0), flags=re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells[1:]]


def test_the_changelist_columns(admin, stored):
    KeyUsageFactory(key=stored.keys["openai"], date=date(2026, 1, 2), calls=1234)
    UserAPIKey.objects.filter(pk=stored.keys["openai"].pk).update(usage_count=1234567)
    remove_user_api_key(stored.keys["twilio"])
    page = html(admin.get(CHANGELIST))
    openai, twilio, aws = (stored.keys[name] for name in ("openai", "twilio", "aws_s3"))
    assert row_of(page, openai) == [
        f"Research bot {openai.masked_key}",
        str(openai.user),
        "OpenAI Production",
        "Valid",
        "1,234,567",
        site.empty_value_display,
    ]
    assert row_of(page, twilio)[2:4] == ["Twilio Test", "Untested Deleted"]
    assert row_of(page, aws)[2:4] == ["AWS S3 Production", "Untested Switched off"]


def test_the_last_use_is_a_day_with_the_time_in_a_tooltip(admin, stored):
    from datetime import datetime, timezone

    used = datetime(2026, 3, 4, 15, 6, tzinfo=timezone.utc)
    UserAPIKey.objects.filter(pk=stored.keys["openai"].pk).update(last_used_at=used)
    page = html(admin.get(CHANGELIST))
    assert '<time datetime="2026-03-04T15:06:00+00:00" title="' in page
    assert row_of(page, stored.keys["openai"])[5] == "03/04/2026"


@pytest.mark.parametrize("order", ["1", "-2", "3", "4", "-5", "6"])
def test_every_column_sorts(admin, stored, order):
    response = admin.get(CHANGELIST, {"o": order})
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"Research bot", "SMS alerts", "Backups"}),
        ("service=openai", {"Research bot"}),
        ("service=aws_s3", {"Backups"}),
        ("category=sms", {"SMS alerts"}),
        ("category=storage", {"Backups"}),
        ("category=payment", set()),
        ("environment__exact=test", {"SMS alerts"}),
        ("environment__exact=production", {"Research bot", "Backups"}),
        ("status__exact=valid", {"Research bot"}),
        ("status__exact=untested", {"SMS alerts", "Backups"}),
        ("is_active__exact=1", {"Research bot", "SMS alerts"}),
        ("is_active__exact=0", {"Backups"}),
    ],
)
def test_each_filter_lists_exactly_the_matching_keys(admin, stored, query, expected):
    response = admin.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    assert listed(response) == expected
    assert_no_secret(html(response), stored.secrets)


def test_search_finds_keys_by_their_owners_login(admin, stored, alice, bob):
    assert listed(admin.get(CHANGELIST, {"q": login_of(alice)})) == {"Research bot", "SMS alerts"}
    assert listed(admin.get(CHANGELIST, {"q": login_of(bob)})) == {"Backups"}


def test_search_finds_keys_by_nickname(admin, stored):
    assert listed(admin.get(CHANGELIST, {"q": "sms alerts"})) == {"SMS alerts"}
    assert listed(admin.get(CHANGELIST, {"q": "nobody has this"})) == set()


@pytest.mark.parametrize("page", ["add form", "change of openai"])
def test_every_label_of_the_key_form_is_capitalised(admin, stored, page):
    labels = re.findall(
        r'<label[^>]*for="id_(\w+)"[^>]*>([^<]*)</label>',
        html(admin.get(PAGES[page](stored.keys))),
    )
    fields = dict(labels)
    assert fields["service"] == "Service:"
    assert {"nickname", "environment", "is_active", "secret"} <= set(fields)
    assert [name for name, text in labels if not text[:1].isupper()] == []


# the secret is write-only ----------------------------------------------------------


def assert_empty_password_input(page):
    """The page has one secret input: a password input with no value."""
    inputs = re.findall(r"<input[^>]*\bname=\"secret\"[^>]*>", page)
    assert len(inputs) == 1
    assert 'type="password"' in inputs[0]
    assert not re.search(r"\bvalue=\"[^\"]", inputs[0])


@pytest.mark.parametrize("service", ["openai", "twilio"])
def test_the_secret_input_is_a_password_input_never_filled_in(admin, stored, service):
    for page in (ADD, url("change", stored.keys[service])):
        assert_empty_password_input(html(admin.get(page)))


def test_a_form_shown_again_with_errors_does_not_fill_the_typed_secret_back_in(admin, stored):
    key = stored.keys["twilio"]
    new = fake_credentials("twilio")
    too_long = "n" * 101
    response = admin.post(
        url("change", key), change_data(key, nickname=too_long, secret=as_secret_input(new))
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["nickname"]
    assert_empty_password_input(html(response))
    assert_no_secret(html(response), [*stored.secrets, *secrets_of("twilio", new)])
    key.refresh_from_db()
    assert key.get_secret() == stored.credentials["twilio"]


def test_saving_with_the_secret_left_empty_keeps_it_and_changes_the_nickname(admin, stored):
    key = stored.keys["twilio"]
    before = key.get_credentials()
    response = admin.post(url("change", key), change_data(key, nickname="Renamed"))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.nickname == "Renamed"
    assert key.get_credentials() == before
    event = AuditEvent.objects.get(action="updated", key=key)
    assert event.metadata == {"fields": ["nickname"], "via": "admin"}


@pytest.mark.parametrize("service", ["openai", "twilio", "aws_s3"])
def test_a_new_secret_replaces_the_stored_one_and_the_change_log_never_holds_it(
    admin, stored, service
):
    key = stored.keys[service]
    new = fake_credentials(service)
    response = admin.post(url("change", key), change_data(key, secret=as_secret_input(new)))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.get_secret() == new
    assert key.status == "untested"
    assert AuditEvent.objects.get(action="updated", key=key, metadata__via="admin").metadata == {
        "fields": ["credentials"],
        "via": "admin",
    }
    entry = LogEntry.objects.get(object_id=str(key.pk))
    assert entry.is_change()
    assert "Secret" in entry.get_change_message()
    assert_change_log_has_no_secret([*stored.secrets, *secrets_of(service, new)])


def test_the_masked_hint_is_refused_as_a_new_secret(admin, stored):
    key = stored.keys["openai"]
    response = admin.post(url("change", key), change_data(key, secret=key.masked_key))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["secret"]
    key.refresh_from_db()
    assert key.get_secret() == stored.credentials["openai"]


def test_another_keys_secret_of_the_same_owner_is_refused(admin, stored):
    key = stored.keys["openai"]
    other = UserAPIKeyFactory(user=key.user, service="openai")
    response = admin.post(url("change", key), change_data(key, secret=other.get_secret()))
    assert response.status_code == 200
    assert "already stored this key" in html(response)
    key.refresh_from_db()
    assert key.get_secret() == stored.credentials["openai"]


# adding ----------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["openai", "twilio", "aws_s3"])
def test_adding_a_key_stores_it_encrypted_and_audits_it(admin, superuser, alice, service):
    credentials = fake_credentials(service)
    response = admin.post(
        ADD, add_data(alice, service, as_secret_input(credentials), nickname="Added")
    )
    assert response.status_code == 302
    key = UserAPIKey.objects.get()
    assert (key.user, key.service, key.nickname, key.is_active) == (alice, service, "Added", True)
    assert key.get_secret() == credentials
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.owner) == ("created", superuser, alice)
    assert event.metadata["via"] == "admin"
    assert LogEntry.objects.get().is_addition()
    assert_change_log_has_no_secret(secrets_of(service, credentials))


def test_a_key_added_switched_off_is_stored_switched_off(admin, alice):
    data = add_data(alice, "openai", fake_credentials("openai"))
    del data["is_active"]
    assert admin.post(ADD, data).status_code == 302
    assert UserAPIKey.objects.get().is_active is False


@pytest.mark.parametrize(
    ("service", "secret"),
    [
        ("openai", "sk-proj-" + "x" * 10),
        ("openai", ""),
        ("twilio", "a plain string for a service of two fields " + "z" * 20),
        ("twilio", '{"account_sid": "AC' + "0" * 32 + '"'),
        ("twilio", json.dumps({"account_sid": "AC" + "0" * 32})),
        ("aws_s3", json.dumps({"access_key_id": "AKIA", "secret_access_key": "q" * 40})),
        ("twilio", '{"account_sid": ' * 5000 + '"x"' + "}" * 5000),
    ],
    ids=[
        "too short",
        "empty",
        "string for two fields",
        "broken JSON",
        "missing field",
        "malformed field",
        "JSON nested 5000 deep",
    ],
)
def test_a_malformed_secret_gives_form_errors_and_stores_nothing(admin, alice, service, secret):
    response = admin.post(ADD, add_data(alice, service, secret))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["secret"]
    assert not UserAPIKey.objects.exists()
    assert not AuditEvent.objects.exists()
    assert not LogEntry.objects.exists()
    if secret:
        assert secret not in html(response)


def test_a_secret_the_user_already_stored_is_refused(admin, stored, alice):
    response = admin.post(ADD, add_data(alice, "openai", stored.credentials["openai"]))
    assert response.status_code == 200
    assert "already stored this key" in html(response)
    assert UserAPIKey.objects.count() == 3


# deleting --------------------------------------------------------------------------


def test_deleting_a_key_erases_its_secret_and_keeps_the_row_and_its_usage(admin, stored):
    key = stored.keys["openai"]
    KeyUsageFactory(key=key, date=date(2025, 1, 2), calls=3)
    response = admin.post(url("delete", key), {"post": "yes"})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.is_deleted
    assert (key.credentials, key.fingerprint, key.is_active) == (None, None, False)
    assert KeyUsage.objects.filter(key=key).exists()
    assert AuditEvent.objects.get(action="deleted").metadata == {"via": "admin"}
    assert_change_log_has_no_secret(stored.secrets)


def test_deleting_selected_keys_erases_each_secret_and_keeps_the_rows(admin, stored):
    pks = [str(key.pk) for key in stored.keys.values()]
    response = admin.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": pks, "post": "yes"}
    )
    assert response.status_code == 302
    assert UserAPIKey.objects.count() == 3
    assert not UserAPIKey.objects.filter(deleted_at__isnull=True).exists()
    assert not UserAPIKey.objects.filter(credentials__isnull=False).exists()
    assert AuditEvent.objects.filter(action="deleted", metadata__via="admin").count() == 3
    assert_change_log_has_no_secret(stored.secrets)


def test_a_deleted_key_can_be_viewed_but_not_changed(admin, stored):
    key = stored.keys["openai"]
    admin.post(url("delete", key), {"post": "yes"})
    page = admin.get(url("change", key))
    assert page.status_code == 200
    assert 'name="secret"' not in html(page)
    response = admin.post(url("change", key), change_data(key, nickname="Back from the dead"))
    assert response.status_code == 403
    key.refresh_from_db()
    assert key.nickname == "Research bot"


def test_a_deleted_key_offers_no_delete_and_refuses_a_second_one(admin, stored):
    key = stored.keys["openai"]
    admin.post(url("delete", key), {"post": "yes"})
    logged = LogEntry.objects.count()
    assert url("delete", key) not in html(admin.get(url("change", key)))
    assert admin.post(url("delete", key), {"post": "yes"}).status_code == 403
    assert LogEntry.objects.count() == logged


# actions ---------------------------------------------------------------------------


def test_testing_selected_keys_records_each_outcome_and_reports_it(
    admin, superuser, alice, provider
):
    valid = UserAPIKeyFactory(user=alice, service="openai", nickname="valid")
    invalid = UserAPIKeyFactory(user=alice, service="openai", nickname="invalid")
    accepts_only(provider, valid.get_secret())
    response = post_action(admin, "test_keys", [valid, invalid])
    assert response.redirect_chain == [(CHANGELIST, 302)]
    assert messages_of(response) == ["Tested: invalid: 1, valid: 1."]
    valid.refresh_from_db()
    invalid.refresh_from_db()
    assert (valid.status, invalid.status) == ("valid", "invalid")
    assert invalid.last_tested_at is not None
    assert invalid.last_test_message == "OpenAI rejected the key (HTTP 401)."
    events = AuditEvent.objects.filter(action="tested")
    assert {(e.key_id, e.metadata["status"]) for e in events} == {
        (valid.pk, "valid"),
        (invalid.pk, "invalid"),
    }
    assert {(e.metadata["via"], e.actor_id) for e in events} == {("admin", superuser.pk)}


def test_testing_skips_deleted_keys(admin, alice, provider):
    key = UserAPIKeyFactory(user=alice, service="openai")
    remove_user_api_key(key)
    response = post_action(admin, "test_keys", [key])
    assert messages_of(response) == ["Tested: 0."]
    assert not AuditEvent.objects.filter(action="tested").exists()


def test_testing_more_keys_than_the_action_allows_tests_none(admin, alice, provider):
    provider.get(MODELS, json={"data": []})
    keys = [UserAPIKeyFactory(user=alice, service="openai") for _ in range(11)]
    response = post_action(admin, "test_keys", keys)
    assert messages_of(response) == ["Select at most 10 keys to test at once; nothing was tested."]
    assert not provider.calls
    assert not AuditEvent.objects.filter(action="tested").exists()
    assert set(UserAPIKey.objects.values_list("status", flat=True)) == {"untested"}
    response = post_action(admin, "test_keys", keys[:10])
    assert messages_of(response) == ["Tested: valid: 10."]
    assert len(provider.calls) == 10


def test_the_test_action_spends_the_test_budget_all_or_nothing(admin, alice, provider, settings):
    settings.REST_FRAMEWORK = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DEFAULT_THROTTLE_RATES": {"byok_test": "5/minute"},
    }
    provider.get(MODELS, json={"data": []})
    keys = [UserAPIKeyFactory(user=alice, service="openai") for _ in range(4)]
    assert messages_of(post_action(admin, "test_keys", keys)) == ["Tested: valid: 4."]
    response = post_action(admin, "test_keys", keys[:2])
    (message,) = messages_of(response)
    assert message.startswith("Too many keys tested in a short time: try again in ")
    assert message.endswith("Nothing was tested.")
    assert len(provider.calls) == 4
    assert messages_of(post_action(admin, "test_keys", keys[:1])) == ["Tested: valid: 1."]


def test_switching_keys_off_and_on_audits_each_change(admin, stored):
    keys = [stored.keys["openai"], stored.keys["twilio"]]
    response = post_action(admin, "deactivate_keys", keys)
    assert messages_of(response) == ["2 keys switched."]
    assert not UserAPIKey.objects.filter(pk__in=[k.pk for k in keys], is_active=True).exists()
    response = post_action(admin, "activate_keys", [*keys, stored.keys["aws_s3"]])
    assert messages_of(response) == ["3 keys switched."]
    assert UserAPIKey.objects.filter(is_active=True).count() == 3
    events = AuditEvent.objects.filter(action="updated", metadata__via="admin")
    assert events.count() == 5
    assert {tuple(e.metadata["fields"]) for e in events} == {("is_active",)}
    assert LogEntry.objects.filter(action_flag=CHANGE).count() == 5


def test_switching_on_a_key_already_on_changes_and_records_nothing(admin, stored):
    response = post_action(admin, "activate_keys", [stored.keys["openai"]])
    assert messages_of(response) == ["0 keys switched."]
    assert not AuditEvent.objects.filter(action="updated", metadata__via="admin").exists()


# usage -----------------------------------------------------------------------------


def test_the_change_form_shows_the_keys_daily_usage_and_totals(admin, stored):
    key = stored.keys["openai"]
    KeyUsageFactory(
        key=key, date=date(2025, 3, 14), calls=4321, units=98765, cost=Decimal("7.250000")
    )
    UserAPIKey.objects.filter(pk=key.pk).update(
        usage_count=54321, estimated_cost=Decimal("12.340000")
    )
    page = html(admin.get(url("change", key)))
    for number in ("4321", "98765", "7.250000", "54321", "12.340000"):
        assert re.search(rf">\s*{re.escape(number)}\s*<", page), number  # a cell of its own


# the audit trail is read-only ------------------------------------------------------


def audit_url(name, event):
    return reverse(f"admin:byok_auditevent_{name}", args=[event.pk])


def test_the_trail_lists_and_shows_events_without_a_secret(admin, stored, provider):
    accepts_only(provider, stored.credentials["openai"])
    post_action(admin, "test_keys", [stored.keys["openai"]])
    listing = admin.get(AUDIT_CHANGELIST)
    assert listing.status_code == 200
    assert len(listing.context["cl"].result_list) == AuditEvent.objects.count() > 3
    assert_no_secret(html(listing), stored.secrets)
    for event in AuditEvent.objects.all():
        detail = admin.get(audit_url("change", event))
        assert detail.status_code == 200
        assert_no_secret(html(detail), stored.secrets)


def test_the_trail_shows_who_revealed_a_key(admin, stored, alice):
    reveal_user_api_key(stored.keys["openai"], actor=alice)
    response = admin.get(AUDIT_CHANGELIST, {"action__exact": "revealed"})
    [event] = response.context["cl"].result_list
    assert (event.key, event.actor) == (stored.keys["openai"], alice)
    assert login_of(alice) in html(response)
    assert_no_secret(html(response), stored.secrets)


def test_the_trail_is_searched_by_the_owners_login(admin, stored, bob):
    response = admin.get(AUDIT_CHANGELIST, {"q": login_of(bob)})
    events = response.context["cl"].result_list
    assert {(e.action, e.owner) for e in events} == {("created", bob), ("updated", bob)}


def test_the_trail_cannot_be_added_to_changed_or_deleted_even_by_a_superuser(admin, stored):
    event = AuditEvent.objects.get(action="created", key=stored.keys["openai"])
    before = AuditEvent.objects.filter(pk=event.pk).values().get()
    count = AuditEvent.objects.count()
    assert admin.get(AUDIT_ADD).status_code == 403
    assert admin.post(AUDIT_ADD, {"action": "revealed"}).status_code == 403
    assert admin.post(audit_url("change", event), {"action": "revealed"}).status_code == 403
    assert admin.get(audit_url("delete", event)).status_code == 403
    assert admin.post(audit_url("delete", event), {"post": "yes"}).status_code == 403
    admin.post(
        AUDIT_CHANGELIST,
        {"action": "delete_selected", "_selected_action": [str(event.pk)], "post": "yes"},
    )
    assert AuditEvent.objects.filter(pk=event.pk).values().get() == before
    assert AuditEvent.objects.count() == count


def test_the_trail_admin_grants_no_add_change_or_delete_permission(superuser):
    model_admin = site._registry[AuditEvent]
    request = RequestFactory().get("/")
    request.user = superuser
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request) is False
    assert model_admin.has_delete_permission(request) is False
    assert model_admin.has_view_permission(request) is True
    assert "delete_selected" not in model_admin.get_actions(request)


# permissions -----------------------------------------------------------------------


def test_a_view_only_user_sees_keys_masked_but_cannot_change_them(viewer, stored):
    key = stored.keys["openai"]
    listing = viewer.get(CHANGELIST)
    assert listing.status_code == 200
    assert key.masked_key in html(listing)
    detail = viewer.get(url("change", key))
    assert detail.status_code == 200
    assert 'name="secret"' not in html(detail)
    assert_no_secret(html(listing) + html(detail), stored.secrets)
    assert viewer.post(url("change", key), change_data(key, nickname="x")).status_code == 403
    assert viewer.get(ADD).status_code == 403
    assert viewer.get(url("delete", key)).status_code == 403
    key.refresh_from_db()
    assert key.nickname == "Research bot"


@pytest.mark.parametrize("action", ["test_keys", "activate_keys", "deactivate_keys"])
def test_a_view_only_user_is_offered_no_action_and_cannot_run_one(
    viewer, stored, provider, action
):
    listing = viewer.get(CHANGELIST)
    assert listing.status_code == 200
    assert action not in html(listing)
    key = stored.keys["aws_s3" if action == "activate_keys" else "openai"]
    before = UserAPIKey.objects.filter(pk=key.pk).values().get()
    post_action(viewer, action, [key])
    assert UserAPIKey.objects.filter(pk=key.pk).values().get() == before
    assert not AuditEvent.objects.filter(metadata__via="admin").exists()
    assert not provider.calls


def test_the_daily_usage_is_shown_to_staff_who_may_view_daily_key_usage(
    viewer, view_only_staff, stored
):
    key = stored.keys["openai"]
    KeyUsageFactory(key=key, date=date(2025, 3, 14), calls=4321)
    assert "field-calls" not in html(viewer.get(url("change", key)))
    view_only_staff.user_permissions.add(*byok_permissions("view_keyusage"))
    assert re.search(r"field-calls[^>]*>\s*(<p>)?\s*4321", html(viewer.get(url("change", key))))


def test_the_trail_is_readable_with_view_permission(viewer, stored):
    event = AuditEvent.objects.first()
    assert viewer.get(AUDIT_CHANGELIST).status_code == 200
    assert viewer.get(audit_url("change", event)).status_code == 200


# cost of the list ------------------------------------------------------------------


def changelist_queries(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    return len(queries), response


def test_the_changelist_runs_the_same_queries_for_1_and_10_keys_and_decrypts_nothing(
    admin, monkeypatch
):
    services = list(FAKES)[:10]
    UserAPIKeyFactory(service=services[0])  # each key with an owner of its own
    one, _ = changelist_queries(admin)
    for service in services[1:]:
        UserAPIKeyFactory(service=service)

    def no_decryption(*args, **kwargs):
        raise AssertionError("the changelist decrypted a key")

    monkeypatch.setattr(SealedCredentials, "open", no_decryption)
    ten, response = changelist_queries(admin)
    assert len(response.context["cl"].result_list) == 10
    assert one == ten


# team keys --------------------------------------------------------------------------


@pytest.fixture
def team():
    return TeamFactory(name="Acme", owner=UserFactory())


@pytest.fixture
def secret():
    return fake_credentials("openai")


@pytest.fixture
def team_key(team, secret):
    return TeamAPIKeyFactory(team=team, credentials=secret, nickname="Shared")


def team_add_data(team, secret, **changes):
    data = add_data(UserFactory(), "openai", secret, team=str(team.pk), **changes)
    return {**data, "user": ""}


@pytest.mark.parametrize("page", ["change", "history", "delete"])
def test_every_team_key_page_renders_without_the_secret(admin, team_key, secret, page):
    response = admin.get(url(page, team_key))
    assert response.status_code == 200
    assert_no_secret(html(response), [secret])
    assert "Shared" in html(response)


def test_the_changelist_names_the_team_as_owner_and_shows_the_key_masked(admin, team_key, secret):
    user_key = UserAPIKeyFactory()
    page = html(admin.get(CHANGELIST))
    assert row_of(page, team_key)[:2] == [f"Shared {team_key.masked_key}", "Acme (team)"]
    assert row_of(page, user_key)[1] == str(user_key.user)
    assert_no_secret(page, [secret])


def test_keys_filter_by_owner_kind_and_search_by_team_name(admin, team_key):
    user_key = UserAPIKeyFactory(nickname="mine")

    def listed(query):
        return {key.pk for key in admin.get(f"{CHANGELIST}?{query}").context["cl"].result_list}

    assert listed("owned_by=team") == {team_key.pk}
    assert listed("owned_by=user") == {user_key.pk}
    assert listed("q=Acme") == {team_key.pk}


def test_the_add_form_stores_a_team_key_and_audits_the_staff_member(
    admin, superuser, team, secret
):
    response = admin.post(ADD, team_add_data(team, secret, nickname="Added"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    key = UserAPIKey.objects.get()
    assert (key.team, key.user, key.nickname) == (team, None, "Added")
    assert key.get_secret() == secret
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.team, event.owner) == (
        "created",
        superuser,
        team,
        None,
    )
    assert event.metadata["via"] == "admin"
    assert_change_log_has_no_secret([secret])


@pytest.mark.parametrize("owners", ["both", "neither"])
def test_a_key_needs_a_user_or_a_team_not_both(admin, team, secret, owners):
    data = team_add_data(team, secret)
    data["user"] = str(UserFactory().pk) if owners == "both" else ""
    if owners == "neither":
        data["team"] = ""
    response = admin.post(ADD, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert errors == ["A key belongs to a user or to a team: choose one."]
    assert_no_secret(html(response), [secret])
    assert not UserAPIKey.objects.exists()


def test_a_secret_the_team_already_stored_is_refused(admin, team, team_key, secret):
    response = admin.post(ADD, team_add_data(team, secret))
    assert "This team has already stored this key." in html(response)
    assert_no_secret(html(response), [secret])
    assert UserAPIKey.objects.count() == 1
    # Another team, or a user, may store the same secret.
    assert admin.post(ADD, team_add_data(TeamFactory(), secret)).status_code == 302


def test_staff_outside_the_team_change_its_key_and_replace_its_secret(
    admin, superuser, team_key, secret
):
    new = fake_credentials("openai")
    response = admin.post(
        url("change", team_key), change_data(team_key, nickname="Renamed", secret=new)
    )
    assert response.status_code == 302
    team_key.refresh_from_db()
    assert (team_key.nickname, team_key.get_secret()) == ("Renamed", new)
    updated = AuditEvent.objects.get(action="updated")
    assert (updated.actor, updated.team_id) == (superuser, team_key.team_id)
    assert_change_log_has_no_secret([secret, new])


def test_the_actions_test_and_switch_team_keys(admin, superuser, team_key, provider):
    accepts_only(provider, team_key.get_secret())
    assert messages_of(post_action(admin, "test_keys", [team_key])) == ["Tested: valid: 1."]
    assert messages_of(post_action(admin, "deactivate_keys", [team_key])) == ["1 key switched."]
    team_key.refresh_from_db()
    assert (team_key.status, team_key.is_active) == ("valid", False)
    actors = AuditEvent.objects.filter(action__in=["tested", "updated"]).values_list(
        "actor", flat=True
    )
    assert set(actors) == {superuser.pk}


def test_deleting_a_team_key_erases_its_secret(admin, team_key):
    response = admin.post(url("delete", team_key), {"post": "yes"})
    assert response.status_code == 302
    team_key.refresh_from_db()
    assert team_key.is_deleted
    assert team_key.credentials is None
    assert LogEntry.objects.exists()


def test_the_trail_names_the_team(admin, team_key, secret):
    page = html(admin.get(AUDIT_CHANGELIST))
    assert "Acme" in page
    assert_no_secret(page, [secret])
