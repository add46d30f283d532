"""budgets/: a user's budgets and the site's; only their own can be set, changed, removed."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

import byok
from byok.models import AuditEvent, Budget

from factories import TeamFactory, UserAPIKeyFactory, UserFactory
from fakes import fake_credentials
from support import client_for, raw_byok_tables

pytestmark = pytest.mark.django_db

BASE = "/api/user/api-keys/budgets/"
ALLOWANCE = {"name": "free", "limit": "5.00", "applies_to": "platform", "action": "block"}


def site(**values):
    return override_settings(BYOK={**settings.BYOK, **values})


@pytest.fixture
def allowance():
    """The "use our key up to $5 a month" site."""
    with site(PLATFORM_KEYS={"openai": fake_credentials("openai")}, DEFAULT_BUDGETS=[ALLOWANCE]):
        yield


@pytest.fixture
def own(user):
    return byok.set_budget(user, limit="20", service="openai", action="block")


@pytest.fixture
def imposed(user, superuser):
    """A budget the admin set for ``user``: the site's."""
    return byok.set_budget(user, limit="2", period="day", applies_to="all", site=True)


def changes(user):
    return AuditEvent.objects.filter(owner=user, action="budget_changed")


def month_end():
    return (timezone.localdate().replace(day=28) + timedelta(days=4)).replace(day=1)


# -- Listing -----------------------------------------------------------------------------


def test_the_list_holds_the_users_budgets_and_the_sites(api, user, own, imposed, allowance):
    byok.track_api_usage(user, "openai", cost="1.25")  # on the platform's key
    UserAPIKeyFactory(user=user)
    byok.track_api_usage(user, "openai", cost="0.50")  # on the user's own
    body = {item["id"]: item for item in api.get(BASE).json()}
    default = Budget.objects.get(default_name="free")
    assert set(body) == {own.pk, imposed.pk, default.pk}
    assert body[own.pk] == {
        "id": own.pk,
        "name": None,
        "service": "openai",
        "applies_to": "own",
        "period": "month",
        "limit": "20.00",
        "action": "block",
        "alert_at": [50, 80, 100],
        "spent": "0.500000",
        "reserved": "0.000000",
        "period_start": str(timezone.localdate().replace(day=1)),
        "resets_at": body[own.pk]["resets_at"],
        "source": "user",
        "editable": True,
    }
    assert body[own.pk]["resets_at"].startswith(str(month_end()))
    assert (body[imposed.pk]["source"], body[imposed.pk]["editable"]) == ("site", False)
    assert (body[imposed.pk]["spent"], body[imposed.pk]["service"]) == ("1.750000", None)
    assert body[default.pk] | {"resets_at": None} == {
        "id": default.pk,
        "name": "free",
        "service": None,
        "applies_to": "platform",
        "period": "month",
        "limit": "5.00",
        "action": "block",
        "alert_at": [50, 80, 100],
        "spent": "1.250000",
        "reserved": "0.000000",
        "period_start": str(timezone.localdate().replace(day=1)),
        "resets_at": None,
        "source": "site",
        "editable": False,
    }


def test_a_default_budget_is_listed_before_the_user_spends_under_it(api, allowance):
    [item] = api.get(BASE).json()
    assert (item["id"], item["name"], item["spent"], item["editable"]) == (
        None,
        "free",
        "0.000000",
        False,
    )


def test_what_a_past_period_spent_is_not_this_periods(api, user, own):
    Budget.objects.filter(pk=own.pk).update(
        spent=Decimal(7), period_start=timezone.localdate().replace(day=1) - timedelta(days=31)
    )
    [item] = api.get(BASE).json()
    assert item["spent"] == "0.000000"


def test_the_list_is_one_query_whatever_the_number_of_budgets(
    api, user, allowance, django_assert_num_queries
):
    def count():
        with django_assert_num_queries(1):
            return len(api.get(BASE).json())

    assert count() == 1
    for period in ("day", "week", "month"):
        for service in ("openai", "anthropic", None):
            byok.set_budget(user, limit="3", service=service, period=period, action="block")
    byok.reserve(user, "openai", "0.10").__enter__()
    assert count() == 10


def test_other_users_budgets_are_not_listed(api, other_user):
    byok.set_budget(other_user, limit="1")
    assert api.get(BASE).json() == []


def test_a_members_budget_on_a_teams_keys_is_listed_read_only(api, user):
    team = TeamFactory(owner=user)
    budget = byok.set_budget(user, team=team, limit="25")
    byok.set_budget(None, team=team, limit="200")  # the team's own: not the user's
    [item] = api.get(BASE).json()
    assert (item["id"], item["applies_to"], item["editable"]) == (budget.pk, "team", False)
    assert api.delete(f"{BASE}{budget.pk}/").status_code == 403


def test_retrieve(api, own, imposed):
    assert api.get(f"{BASE}{own.pk}/").json()["limit"] == "20.00"
    assert api.get(f"{BASE}{imposed.pk}/").json()["editable"] is False


# -- Setting one's own -------------------------------------------------------------------


def test_creating_a_budget_sets_it_and_audits_it(api, user):
    response = api.post(
        BASE,
        {"limit": "12.5", "service": "openai", "period": "week", "alert_at": [90, 25]},
        format="json",
    )
    assert response.status_code == 201, response.content
    budget = Budget.objects.get()
    body = response.json()
    assert body["id"] == budget.pk
    assert (body["limit"], body["alert_at"], body["action"], body["applies_to"]) == (
        "12.50",
        [25, 90],
        "alert",
        "own",
    )
    assert (budget.user, budget.source, budget.period) == (user, "user", "week")
    [event] = changes(user)
    assert (event.actor, event.metadata["via"], event.metadata["created"]) == (user, "api", True)


def test_creating_the_same_budget_again_changes_it(api, user, own):
    response = api.post(
        BASE, {"limit": "30", "service": "openai", "action": "block"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["id"] == own.pk
    own.refresh_from_db()
    assert own.limit == Decimal("30.00")
    assert Budget.objects.count() == 1


def test_a_budget_on_every_service(api):
    response = api.post(BASE, {"limit": 3, "service": None}, format="json")
    assert response.status_code == 201
    assert response.json()["service"] is None
    assert Budget.objects.get().service == ""


def test_changing_a_budget_keeps_what_is_not_sent(api, user, own):
    response = api.patch(f"{BASE}{own.pk}/", {"alert_at": [75]}, format="json")
    assert response.status_code == 200, response.content
    own.refresh_from_db()
    assert (own.limit, own.action, own.alert_at) == (Decimal("20.00"), "block", "75")
    response = api.patch(f"{BASE}{own.pk}/", {"limit": "8", "action": "alert"}, format="json")
    assert (response.json()["limit"], response.json()["action"]) == ("8.00", "alert")
    assert changes(user).count() == 3  # one per change: set_budget's own, not doubled
    event = changes(user).first()
    assert (event.metadata["limit"], event.metadata["via"], event.actor) == ("8.00", "api", user)


def test_its_representation_sent_back_changes_nothing_else(api, own):
    body = api.get(f"{BASE}{own.pk}/").json()
    response = api.patch(f"{BASE}{own.pk}/", {**body, "limit": "21"}, format="json")
    assert response.status_code == 200, response.content
    assert Budget.objects.get().limit == Decimal("21.00")


@pytest.mark.parametrize(
    "change",
    [{"service": "anthropic"}, {"service": None}, {"period": "day"}, {"applies_to": "all"}],
)
def test_which_budget_it_is_cannot_change(api, own, change):
    before = raw_byok_tables()
    response = api.patch(f"{BASE}{own.pk}/", change, format="json")
    assert response.status_code == 400
    [field] = change
    assert response.json()[field][0]["code"] == "immutable"
    assert raw_byok_tables() == before


def test_deleting_a_budget_removes_it_and_audits_it(api, user, own):
    assert api.delete(f"{BASE}{own.pk}/").status_code == 204
    assert not Budget.objects.exists()
    event = changes(user).first()
    assert (event.metadata["removed"], event.metadata["via"], event.actor) == (True, "api", user)


def test_put_is_not_offered(api, own):
    assert api.put(f"{BASE}{own.pk}/", {"limit": "1"}, format="json").status_code == 405


# -- The site's budgets ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_a_budget_the_site_imposed_cannot_be_changed_or_removed(api, imposed, method):
    before = raw_byok_tables()
    response = getattr(api, method)(f"{BASE}{imposed.pk}/", {"limit": "1000"}, format="json")
    assert response.status_code == 403
    assert "set by the site" in response.json()["detail"]
    assert raw_byok_tables() == before


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_a_default_budgets_row_cannot_be_changed_or_removed(api, user, allowance, method):
    byok.track_api_usage(user, "openai", cost="5")
    default = Budget.objects.get()
    before = raw_byok_tables()
    response = getattr(api, method)(f"{BASE}{default.pk}/", {"limit": "1000"}, format="json")
    assert response.status_code == 403
    assert raw_byok_tables() == before


def test_a_budget_of_ones_own_does_not_raise_the_sites(api, user, allowance):
    byok.track_api_usage(user, "openai", cost="5")
    response = api.post(
        BASE, {"limit": "1000", "applies_to": "platform", "action": "block"}, format="json"
    )
    assert response.status_code == 201
    assert Budget.objects.get(default_name="free").limit is None
    with pytest.raises(byok.BudgetExceeded) as refused:
        byok.get_user_api_key(user, "openai")
    assert refused.value.name == "free"


# -- Who may ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "expected"), [("get", 404), ("patch", 404), ("delete", 404)])
def test_another_users_budget_is_a_404(api, other_user, method, expected):
    theirs = byok.set_budget(other_user, limit="1")
    before = raw_byok_tables()
    response = getattr(api, method)(f"{BASE}{theirs.pk}/", {"limit": "99"}, format="json")
    assert response.status_code == expected
    assert raw_byok_tables() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "", None),
        ("post", "", {"limit": "1"}),
        ("get", "{id}/", None),
        ("patch", "{id}/", {"limit": "1"}),
        ("delete", "{id}/", None),
    ],
)
def test_anonymous_callers_are_refused(method, path, body):
    budget = byok.set_budget(UserFactory(), limit="5")
    before = raw_byok_tables()
    response = getattr(client_for(None), method)(
        BASE + path.format(id=budget.pk), body, format="json"
    )
    assert response.status_code in (401, 403)
    assert raw_byok_tables() == before


@pytest.mark.parametrize("path", ["abc/", "0/", "-1/", "1.5/", "99999999999999999999/", "%00/"])
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_bad_or_unknown_ids_are_404(api, own, path, method):
    before = raw_byok_tables()
    response = getattr(api, method)(BASE + path, {"limit": "1"}, format="json")
    assert response.status_code == 404
    assert raw_byok_tables() == before


# -- Bad input --------------------------------------------------------------------------

BAD_BUDGETS = [
    ("no-limit", {}),
    ("limit-negative", {"limit": "-1"}),
    ("limit-a-word", {"limit": "lots"}),
    ("limit-nan", {"limit": "NaN"}),
    ("limit-infinite", {"limit": "Infinity"}),
    ("limit-huge", {"limit": "10000000000"}),
    ("limit-huge-number", {"limit": 1e300}),
    ("limit-three-decimals", {"limit": "1.005"}),
    ("limit-a-bool", {"limit": True}),
    ("limit-a-list", {"limit": ["1"]}),
    ("limit-null", {"limit": None}),
    ("unknown-service", {"limit": "1", "service": "nope"}),
    ("service-a-number", {"limit": "1", "service": 5}),
    ("service-too-long", {"limit": "1", "service": "x" * 65}),
    ("bad-period", {"limit": "1", "period": "year"}),
    ("bad-applies-to", {"limit": "1", "applies_to": "everyone"}),
    ("bad-action", {"limit": "1", "action": "shout"}),
    ("threshold-zero", {"limit": "1", "alert_at": [0]}),
    ("threshold-negative", {"limit": "1", "alert_at": [-5]}),
    ("threshold-too-high", {"limit": "1", "alert_at": [1001]}),
    ("threshold-a-word", {"limit": "1", "alert_at": ["x"]}),
    ("threshold-a-fraction", {"limit": "1", "alert_at": [50.5]}),
    ("thresholds-a-string", {"limit": "1", "alert_at": "50,80"}),
    ("too-many-thresholds", {"limit": "1", "alert_at": list(range(1, 30))}),
    ("unknown-field", {"limit": "1", "user": 1}),
    ("a-team", {"limit": "1", "team": 1}),
    ("a-list", ["1"]),
]


@pytest.mark.parametrize(("name", "body"), BAD_BUDGETS, ids=[b[0] for b in BAD_BUDGETS])
def test_bad_budgets_are_400_and_change_nothing(api, own, name, body):
    before = raw_byok_tables()
    response = api.post(BASE, body, format="json")
    assert response.status_code == 400, response.content
    for problems in response.json().values():
        # A list of {message, code}; for one threshold of alert_at, such lists by position.
        for problem in problems if isinstance(problems, list) else problems.values():
            assert (problem if isinstance(problem, dict) else problem[0])["message"]
    assert raw_byok_tables() == before
    if isinstance(body, dict) and body.get("limit") is not None and name != "no-limit":
        response = api.patch(f"{BASE}{own.pk}/", body, format="json")
        assert response.status_code == 400, response.content
        assert raw_byok_tables() == before


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b'{"limit": ', "application/json"),
        (b'{"limit": "\xff"}', "application/json"),
        (b"limit=1", "application/x-www-form-urlencoded"),
        (b'{"limit": NaN}', "application/json"),
    ],
)
def test_malformed_bodies_are_4xx_and_change_nothing(api, raw, content_type):
    before = raw_byok_tables()
    response = api.post(BASE, data=raw, content_type=content_type)
    assert response.status_code in (400, 415)
    assert raw_byok_tables() == before
