"""The budget admin: budgets per user and team, the site's defaults changed for one user,
every change audited through byok.budgets, never a secret on a page."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

import byok
from byok.models import AuditEvent, Budget

from factories import TeamFactory, UserAPIKeyFactory, UserFactory
from fakes import fake_credentials
from support import raw_byok_tables

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:byok_budget_changelist")
ADD = reverse("admin:byok_budget_add")
PLATFORM_KEY = fake_credentials("openai")
ALLOWANCE = {"name": "free", "limit": "5.00", "applies_to": "platform", "action": "block"}


def url(name, budget):
    return reverse(f"admin:byok_budget_{name}", args=[budget.pk])


@pytest.fixture
def admin(superuser):
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def allowance():
    values = {"PLATFORM_KEYS": {"openai": PLATFORM_KEY}, "DEFAULT_BUDGETS": [ALLOWANCE]}
    with override_settings(BYOK={**settings.BYOK, **values}):
        yield


def form(**values):
    data = {
        "user": "",
        "team": "",
        "default_name": "",
        "service": "",
        "applies_to": "own",
        "period": "month",
        "limit": "",
        "action": "alert",
        "alert_at": "",
    }
    return {**data, **{name: str(value) for name, value in values.items()}}


def changes():
    return AuditEvent.objects.filter(action="budget_changed")


def test_a_budget_the_admin_adds_is_the_sites_and_audited(admin, superuser, user):
    response = admin.post(
        ADD, form(user=user.pk, service="openai", limit="3", action="block", alert_at="90,50")
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    budget = Budget.objects.get()
    assert (budget.user, budget.source, budget.limit, budget.alert_at) == (
        user,
        "site",
        Decimal("3.00"),
        "50,90",
    )
    [event] = changes()
    assert (event.owner, event.actor, event.metadata["via"]) == (user, superuser, "admin")
    assert (event.metadata["created"], event.metadata["source"]) == (True, "site")
    # Its user sees it and cannot change it.
    [item] = byok.budgets.budgets_for(user)
    assert (item.state.id, item.editable) == (budget.pk, False)


def test_overriding_a_default_budget_for_one_user(admin, user, allowance):
    response = admin.post(ADD, form(user=user.pk, default_name="free", limit="20"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    budget = Budget.objects.get()
    assert (budget.default_name, budget.source, budget.limit, budget.alert_at) == (
        "free",
        "site",
        Decimal("20.00"),
        None,
    )
    # The setting's service, applies_to, period and action, whatever the form said.
    assert (budget.applies_to, budget.action, budget.service) == ("platform", "block", "")
    byok.track_api_usage(user, "openai", cost="6")  # past the setting's 5, within 20
    assert byok.get_user_api_key(user, "openai") == PLATFORM_KEY
    assert Budget.objects.get().spent == Decimal("6")
    assert changes().get().metadata["default_name"] == "free"


def test_changing_a_users_default_row_keeps_the_settings_thresholds(admin, user, allowance):
    byok.track_api_usage(user, "openai", cost="1")
    budget = Budget.objects.get()
    page = admin.get(url("change", budget))
    assert page.status_code == 200
    response = admin.post(
        url("change", budget),
        form(default_name="free", applies_to="platform", action="block", limit="8"),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    budget.refresh_from_db()
    assert (budget.limit, budget.alert_at, budget.spent) == (Decimal("8.00"), None, Decimal(1))
    assert changes().get().metadata["created"] is False


def test_a_users_own_budget_changed_by_the_admin_stays_theirs(admin, superuser, user):
    budget = byok.set_budget(user, limit="10", service="openai")
    response = admin.post(url("change", budget), form(service="openai", limit="4"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    budget.refresh_from_db()
    assert (budget.limit, budget.source) == (Decimal("4.00"), "user")
    event = changes().first()
    assert (event.actor, event.metadata["via"]) == (superuser, "admin")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"limit": ""}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "10000000000"}, "limit"),
        ({"limit": "NaN"}, "limit"),
        ({"limit": "1", "alert_at": "0"}, "alert_at"),
        ({"limit": "1", "alert_at": "lots"}, "alert_at"),
        ({"limit": "1", "alert_at": ",".join(map(str, range(1, 20)))}, "alert_at"),
        ({"limit": "1", "service": "nope"}, "service"),
        ({"limit": "1", "period": "year"}, "period"),
        ({"limit": "1", "user": ""}, None),  # neither a user nor a team
    ],
)
def test_bad_values_are_form_errors_and_change_nothing(admin, user, values, field):
    before = raw_byok_tables()
    response = admin.post(ADD, form(**{"user": user.pk, **values}))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors
    if field:
        assert field in errors
    assert raw_byok_tables() == before


@pytest.mark.parametrize("applies_to", ["own", "platform", "all"])
def test_a_teams_budget_applies_to_the_teams_keys_only(admin, user, applies_to):
    team = TeamFactory(owner=user)
    before = raw_byok_tables()
    response = admin.post(ADD, form(team=team.pk, applies_to=applies_to, limit="5"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["applies_to"] == ["A budget on a team's keys applies to the team's keys."]
    assert raw_byok_tables() == before
    response = admin.post(ADD, form(team=team.pk, applies_to="team", limit="5"))
    assert response.status_code == 302
    assert Budget.objects.get(team=team).applies_to == "team"


def test_a_second_site_budget_of_the_same_kind_is_refused(admin, user):
    byok.set_budget(user, limit="1", service="openai", site=True)
    response = admin.post(ADD, form(user=user.pk, service="openai", limit="2"))
    assert response.status_code == 200
    assert "has a budget of this service" in str(response.context["adminform"].form.errors)
    assert Budget.objects.count() == 1


def test_deleting_a_budget_is_audited(admin, superuser, user):
    budget = byok.set_budget(user, limit="1", site=True)
    response = admin.post(url("delete", budget), {"post": "yes"})
    assert response.status_code == 302
    assert not Budget.objects.exists()
    event = changes().first()
    assert (event.metadata["removed"], event.actor, event.metadata["via"]) == (
        True,
        superuser,
        "admin",
    )


def test_deleting_selected_budgets_audits_each(admin, user, other_user):
    budgets = [byok.set_budget(owner, limit="1", site=True) for owner in (user, other_user)]
    response = admin.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [b.pk for b in budgets], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Budget.objects.exists()
    assert changes().filter(metadata__removed=True).count() == 2


def test_the_list_per_user_and_team_with_filters_and_search(admin, user, allowance):
    team = TeamFactory(owner=user)
    byok.set_budget(user, limit="20", service="openai")
    byok.set_budget(user, limit="2", site=True, action="block")
    byok.set_budget(None, team=team, limit="200")
    byok.set_budget(user, team=team, limit="25")
    byok.track_api_usage(user, "openai", cost="1.5")  # on the platform's key: the default
    page = admin.get(CHANGELIST)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 5

    def count(query):
        return admin.get(CHANGELIST + query).context["cl"].result_count

    assert count("?source__exact=site") == 2
    assert count("?whose=team") == 1
    assert count("?whose=member") == 1
    assert count("?whose=user") == 3
    assert count("?action__exact=block") == 2
    assert count("?service=openai") == 1
    assert count("?q=free") == 1
    assert count(f"?q={user.email}") == 4
    # The default budget's row shows the setting's limit.
    text = page.content.decode()
    assert "5.00" in text
    assert "the setting" in text


def test_the_list_is_a_constant_number_of_queries(admin, django_assert_max_num_queries):
    for _ in range(3):
        byok.set_budget(UserFactory(), limit="1", site=True)
    with django_assert_max_num_queries(12) as few:
        admin.get(CHANGELIST)
    for _ in range(10):
        byok.set_budget(UserFactory(), limit="1", site=True)
        byok.set_budget(None, team=TeamFactory(), limit="1")
    with django_assert_max_num_queries(len(few.captured_queries)):
        admin.get(CHANGELIST)


def test_no_secret_on_any_budget_page(admin, user):
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=secret)
    budget = byok.set_budget(user, limit="1", service="openai", site=True)
    for page in (CHANGELIST, ADD, url("change", budget), url("delete", budget)):
        response = admin.get(page)
        assert response.status_code == 200
        assert secret not in response.content.decode()
        assert secret[-8:] not in response.content.decode()
