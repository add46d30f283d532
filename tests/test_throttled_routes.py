"""Every route and its budget, at a rate of one call a minute.

A route that calls a provider spends the caller's ``byok_test`` budget; one that shows
a secret again spends ``byok_reveal``: its second call is refused (a 429, or for a plain
form the dashboard with the refusal) with nothing stored, audited or sent. Every other
route (reading, settings without a new secret, tests switched off, a member's refused
calls) answers as usual with both budgets spent, and leaves them whole.

The REST API and the pages spend the same budgets (:mod:`byok.rate_limits`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from byok import urls as page_urls
from byok.models import TeamRole
from byok.rate_limits import RateLimit
from byok.rest.routers import router

from factories import TeamAPIKeyFactory, TeamFactory, UserAPIKeyFactory, UserFactory
from fakes import fake_credentials
from support import client_for, raw_byok_tables

pytestmark = pytest.mark.django_db

API = "/api/user/api-keys/"
PAGES = "/dashboard/api-keys/"
TEST, REVEAL = "byok_test", "byok_reveal"
JSON = {"HTTP_ACCEPT": "application/json"}
#: A PUT's settings, all required.
SETTINGS = {"nickname": "", "environment": "production", "is_default": True, "is_active": True}


@pytest.fixture(autouse=True)
def one_call_a_minute(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {TEST: "1/minute", REVEAL: "1/minute"},
    }


@dataclass
class World:
    """A user with a key of their own and a team they own, whose member is ``member``."""

    owner: Any
    member: Any
    key: Any
    team: Any
    team_key: Any

    def api(self, who: str = "owner") -> Any:
        return client_for(getattr(self, who))

    def pages(self, who: str = "owner") -> Client:
        client = Client()
        client.force_login(getattr(self, who))
        return client

    @property
    def team_keys(self) -> str:
        return f"{API}teams/{self.team.pk}/keys/"


@pytest.fixture
def world():
    return make_world()


def make_world() -> World:
    owner, member = UserFactory(), UserFactory()
    team = TeamFactory(owner=owner)
    team.add_member(member, TeamRole.MEMBER)
    return World(
        owner=owner,
        member=member,
        key=UserAPIKeyFactory(user=owner),
        team=team,
        team_key=TeamAPIKeyFactory(team=team, actor=owner),
    )


@dataclass(frozen=True)
class Route:
    """One call of a route; each call sends a fresh secret where it sends one."""

    call: Callable[[World], Any]
    #: The status of a call allowed through.
    ok: int
    #: The budget the call spends, if any.
    spends: str | None = None
    #: Who calls: ``"owner"`` or ``"member"`` (of the team).
    caller: str = "owner"
    #: A plain form's refusal is the dashboard with a message, not a 429.
    refused_with_a_redirect: bool = False


def new_key() -> dict[str, str]:
    return {"key": fake_credentials("openai")}


def new_credentials() -> dict[str, dict[str, str]]:
    return {"credentials": {"api_key": fake_credentials("openai")}}


def env_file() -> str:
    return f"OPENAI_API_KEY={fake_credentials('openai')}"


def upload() -> SimpleUploadedFile:
    return SimpleUploadedFile(".env", env_file().encode())


def add_form(test: bool) -> dict[str, str]:
    form = {"api_key": fake_credentials("openai"), "environment": "production"}
    return {**form, "test": "on"} if test else form


def import_form(**options: str) -> dict[str, Any]:
    return {"file": upload(), "environment": "production", **options}


def keyed(w: World) -> str:
    return f"{API}{w.key.pk}/"


def team_page(w: World) -> str:
    return f"{PAGES}teams/{w.team.pk}/"


def team_keyed(w: World) -> str:
    return f"{w.team_keys}{w.team_key.pk}/"


ROUTES: dict[str, Route] = {
    # REST, the user's keys: what calls a provider.
    "POST / with key": Route(
        lambda w: w.api().post(API, {"service": "openai", **new_key()}), 201, TEST
    ),
    "POST / with credentials": Route(
        lambda w: w.api().post(API, {"service": "openai", **new_credentials()}), 201, TEST
    ),
    "PUT {id}/ with key": Route(
        lambda w: w.api().put(keyed(w), {**SETTINGS, **new_key()}), 200, TEST
    ),
    "PUT {id}/ with credentials": Route(
        lambda w: w.api().put(keyed(w), {**SETTINGS, **new_credentials()}), 200, TEST
    ),
    "PATCH {id}/ with key": Route(lambda w: w.api().patch(keyed(w), new_key()), 200, TEST),
    "PATCH {id}/ with credentials": Route(
        lambda w: w.api().patch(keyed(w), new_credentials()), 200, TEST
    ),
    "POST test/": Route(
        lambda w: w.api().post(f"{API}test/", {"service": "openai", **new_key()}), 200, TEST
    ),
    "POST {id}/test/": Route(lambda w: w.api().post(f"{keyed(w)}test/"), 200, TEST),
    "POST import/ with test (JSON)": Route(
        lambda w: w.api().post(f"{API}import/", {"text": env_file(), "test": True}), 200, TEST
    ),
    "POST import/ with test (upload)": Route(
        lambda w: w.api().post(
            f"{API}import/", {"file": upload(), "test": "true"}, format="multipart"
        ),
        200,
        TEST,
    ),
    # REST, a team's keys.
    "team POST keys/": Route(
        lambda w: w.api().post(w.team_keys, {"service": "openai", **new_key()}), 201, TEST
    ),
    "team PUT keys/{id}/ with credentials": Route(
        lambda w: w.api().put(team_keyed(w), {**SETTINGS, **new_credentials()}), 200, TEST
    ),
    "team PATCH keys/{id}/ with key": Route(
        lambda w: w.api().patch(team_keyed(w), new_key()), 200, TEST
    ),
    "team POST keys/{id}/test/": Route(lambda w: w.api().post(f"{team_keyed(w)}test/"), 200, TEST),
    # Pages.
    "page add/ with test": Route(
        lambda w: w.pages().post(f"{PAGES}add/openai/", add_form(test=True)), 302, TEST
    ),
    "page add/ with test (byok.js)": Route(
        lambda w: w.pages().post(f"{PAGES}add/openai/", add_form(test=True), **JSON), 200, TEST
    ),
    "page keys/{id}/test/": Route(
        lambda w: w.pages().post(f"{PAGES}keys/{w.key.pk}/test/"),
        302,
        TEST,
        refused_with_a_redirect=True,
    ),
    "page keys/{id}/test/ (byok.js)": Route(
        lambda w: w.pages().post(f"{PAGES}keys/{w.key.pk}/test/", **JSON), 200, TEST
    ),
    "page team add/ with test": Route(
        lambda w: w.pages().post(f"{team_page(w)}add/openai/", add_form(test=True)), 302, TEST
    ),
    "page team keys/{id}/test/ (byok.js)": Route(
        lambda w: w.pages().post(f"{team_page(w)}keys/{w.team_key.pk}/test/", **JSON), 200, TEST
    ),
    "page import/ with test": Route(
        lambda w: w.pages().post(f"{PAGES}import/", import_form(test="on")), 200, TEST
    ),
    # Secrets shown again.
    "POST {id}/reveal/": Route(lambda w: w.api().post(f"{keyed(w)}reveal/"), 200, REVEAL),
    "team POST keys/{id}/reveal/": Route(
        lambda w: w.api().post(f"{team_keyed(w)}reveal/"), 200, REVEAL
    ),
    # REST, the user's keys: nothing sent to a provider, no secret shown.
    "GET /": Route(lambda w: w.api().get(API), 200),
    "GET {id}/": Route(lambda w: w.api().get(keyed(w)), 200),
    "PATCH {id}/ nickname": Route(lambda w: w.api().patch(keyed(w), {"nickname": "New"}), 200),
    "PATCH {id}/ is_active": Route(lambda w: w.api().patch(keyed(w), {"is_active": False}), 200),
    "PUT {id}/ settings only": Route(lambda w: w.api().put(keyed(w), SETTINGS), 200),
    "PATCH {id}/ with key, test off": Route(
        lambda w: w.api().patch(keyed(w), {**new_key(), "test": False}), 200
    ),
    "POST / with test off": Route(
        lambda w: w.api().post(API, {"service": "openai", **new_key(), "test": False}), 201
    ),
    "POST / with a format error": Route(
        lambda w: w.api().post(API, {"service": "openai", "key": "sk-short"}), 400
    ),
    "POST test/ with a format error": Route(
        lambda w: w.api().post(f"{API}test/", {"service": "openai", "key": "sk-short"}), 200
    ),
    "POST import/ with test off": Route(
        lambda w: w.api().post(f"{API}import/", {"text": env_file()}), 200
    ),
    "DELETE {id}/": Route(lambda w: w.api().delete(keyed(w)), 204),
    "GET services/": Route(lambda w: w.api().get(f"{API}services/"), 200),
    "GET stats/": Route(lambda w: w.api().get(f"{API}stats/"), 200),
    "GET usage/": Route(lambda w: w.api().get(f"{API}usage/"), 200),
    "GET usage/by-model/": Route(lambda w: w.api().get(f"{API}usage/by-model/"), 200),
    "GET budgets/": Route(lambda w: w.api().get(f"{API}budgets/"), 200),
    "POST budgets/": Route(
        lambda w: w.api().post(f"{API}budgets/", {"limit": 3, "service": None}), 201
    ),
    # REST, teams.
    "GET teams/": Route(lambda w: w.api().get(f"{API}teams/"), 200),
    "GET teams/{pk}/": Route(lambda w: w.api().get(f"{API}teams/{w.team.pk}/"), 200),
    "GET teams/{pk}/members/": Route(
        lambda w: w.api().get(f"{API}teams/{w.team.pk}/members/"), 200
    ),
    "GET teams/{pk}/usage/": Route(lambda w: w.api().get(f"{API}teams/{w.team.pk}/usage/"), 200),
    "GET teams/{pk}/stats/": Route(lambda w: w.api().get(f"{API}teams/{w.team.pk}/stats/"), 200),
    "GET comparison/": Route(lambda w: w.api().get(f"{API}comparison/"), 200),
    "team GET keys/": Route(lambda w: w.api().get(w.team_keys), 200),
    "team GET keys/{id}/": Route(lambda w: w.api().get(team_keyed(w)), 200),
    "team PATCH keys/{id}/ nickname": Route(
        lambda w: w.api().patch(team_keyed(w), {"nickname": "Shared"}), 200
    ),
    "team DELETE keys/{id}/": Route(lambda w: w.api().delete(team_keyed(w)), 204),
    "team POST keys/ with test off": Route(
        lambda w: w.api().post(w.team_keys, {"service": "openai", **new_key(), "test": False}),
        201,
    ),
    "member GET team keys/": Route(
        lambda w: w.api("member").get(w.team_keys), 200, caller="member"
    ),
    "member POST team keys/": Route(
        lambda w: w.api("member").post(w.team_keys, {"service": "openai", **new_key()}),
        403,
        caller="member",
    ),
    "member PATCH team keys/{id}/ with key": Route(
        lambda w: w.api("member").patch(team_keyed(w), new_key()), 403, caller="member"
    ),
    "member POST team keys/{id}/test/": Route(
        lambda w: w.api("member").post(f"{team_keyed(w)}test/"), 403, caller="member"
    ),
    "member POST team keys/{id}/reveal/": Route(
        lambda w: w.api("member").post(f"{team_keyed(w)}reveal/"), 404, caller="member"
    ),
    # Pages.
    "page dashboard": Route(lambda w: w.pages().get(PAGES), 200),
    "page GET add/": Route(lambda w: w.pages().get(f"{PAGES}add/openai/"), 200),
    "page add/ with test off": Route(
        lambda w: w.pages().post(f"{PAGES}add/openai/", add_form(test=False)), 302
    ),
    "page GET import/": Route(lambda w: w.pages().get(f"{PAGES}import/"), 200),
    "page import/ with test off": Route(
        lambda w: w.pages().post(f"{PAGES}import/", import_form()), 200
    ),
    "page usage/": Route(lambda w: w.pages().get(f"{PAGES}usage/"), 200),
    "page budgets/": Route(lambda w: w.pages().get(f"{PAGES}budgets/"), 200),
    "page compare/": Route(lambda w: w.pages().get(f"{PAGES}compare/"), 200),
    "page team add/ with test off": Route(
        lambda w: w.pages().post(f"{team_page(w)}add/openai/", add_form(test=False)), 302
    ),
    "page team keys/{id}/remove/": Route(
        lambda w: w.pages().post(f"{team_page(w)}keys/{w.team_key.pk}/remove/"), 302
    ),
    "page keys/{id}/remove/": Route(
        lambda w: w.pages().post(f"{PAGES}keys/{w.key.pk}/remove/"), 302
    ),
}
SPENDING = {name: route for name, route in ROUTES.items() if route.spends}
FREE = {name: route for name, route in ROUTES.items() if not route.spends}


def spend(scope: str, user: Any) -> bool:
    """Spend one call of ``user``'s ``scope`` budget: whether there was one left."""
    return RateLimit(scope).spend(user.pk) is None


def refusals(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("route", SPENDING.values(), ids=SPENDING.keys())
def test_the_second_call_is_refused_and_changes_nothing(world, provider, route):
    first = route.call(world)
    assert first.status_code == route.ok, first.content
    assert len(provider.calls) == (1 if route.spends == TEST else 0)
    before = raw_byok_tables()
    second = route.call(world)
    if route.refused_with_a_redirect:
        assert second.status_code == 302
        (refusal,) = refusals(second)
        assert refusal.startswith("Too many keys tested in a short time")
    else:
        assert second.status_code == 429, second.content
    assert raw_byok_tables() == before
    assert len(provider.calls) == (1 if route.spends == TEST else 0)
    other = REVEAL if route.spends == TEST else TEST
    assert spend(other, world.owner), f"{route.spends} calls spent {other} too"


@pytest.mark.parametrize("route", FREE.values(), ids=FREE.keys())
def test_routes_that_spend_nothing_answer_with_both_budgets_spent(world, provider, route):
    caller = getattr(world, route.caller)
    assert spend(TEST, caller)
    assert spend(REVEAL, caller)
    response = route.call(world)
    assert response.status_code == route.ok, response.content
    assert not provider.calls


@pytest.mark.parametrize("route", FREE.values(), ids=FREE.keys())
def test_routes_that_spend_nothing_leave_both_budgets_whole(world, provider, route):
    assert route.call(world).status_code == route.ok
    caller = getattr(world, route.caller)
    assert spend(TEST, caller)
    assert spend(REVEAL, caller)


def test_the_pages_and_the_api_spend_one_budget(world, provider):
    assert ROUTES["page keys/{id}/test/ (byok.js)"].call(world).status_code == 200
    assert ROUTES["POST {id}/test/"].call(world).status_code == 429
    assert ROUTES["page import/ with test"].call(world).status_code == 429
    assert len(provider.calls) == 1


#: Routes left out of the table, none of which calls a provider or shows a secret.
NOT_IN_THE_TABLE = {
    # A budget of one's own, read, changed, removed: budgets/ (list, create) stands for them.
    "byok_api:budget-detail GET",
    "byok_api:budget-detail PATCH",
    "byok_api:budget-detail DELETE",
    "byok:edit-budget",
    "byok:remove-budget",
    # The dashboard's banner and the notification settings: no key is involved.
    "byok:dismiss-banner",
    "byok:notifications",
}


def every_route() -> set[str]:
    """Each operation of the REST API (URL name and method) and each page (URL name)."""
    operations = {
        f"byok_api:{pattern.name} {method.upper()}"
        for pattern in router.urls
        for method in pattern.callback.actions
        if method != "head"  # GET's view, answered without a body
    }
    return operations | {f"byok:{pattern.name}" for pattern in page_urls.urlpatterns}


def test_every_route_is_in_the_table(provider):
    """A new route (or method) must be added to ROUTES, spending its budget or not."""
    reached = set()
    for route in ROUTES.values():
        response = route.call(make_world())
        match = response.resolver_match
        method = response.request["REQUEST_METHOD"]
        reached.add(
            f"{match.view_name} {method}" if match.namespace == "byok_api" else match.view_name
        )
    assert reached | NOT_IN_THE_TABLE == every_route()
    assert not reached & NOT_IN_THE_TABLE
