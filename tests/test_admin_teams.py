"""Team keys in the admin: masked and write-only like users' keys, the owner column
naming the team, the add form making one, and staff (not in the team) managing them."""

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from test_admin import (
    ADD,
    AUDIT_CHANGELIST,
    CHANGELIST,
    accepts_only,
    add_data,
    assert_change_log_has_no_secret,
    assert_no_secret,
    change_data,
    html,
    messages_of,
    post_action,
    row_of,
    url,
)

from byok.models import AuditEvent, UserAPIKey

from factories import TeamAPIKeyFactory, TeamFactory, UserAPIKeyFactory, UserFactory
from fakes import fake_credentials

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(superuser):
    client = Client()
    client.force_login(superuser)
    return client


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
