"""The OpenAPI schema, and a schemathesis run over it: no 5xx, every response as documented."""

import base64
import io
import os
from contextlib import contextmanager, redirect_stderr

import pytest
import responses
import schemathesis
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient
from schemathesis.checks import positive_data_acceptance

from factories import TeamAPIKeyFactory, TeamFactory, UserAPIKeyFactory
from support import run_in_test_project

SCHEMA_URL = "/api/user/api-keys/schema/?format=json"
USERNAME = "schemathesis@example.com"
PASSWORD = "schemathesis password"

schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, get_wsgi_application())

# The schema says what a credential is (a string per field), not the format each
# provider gives its keys (nor what a .env file holds), so a schema-valid request
# may rightly get a 400. Nor does it list the services a budget may name (any string
# is schema-valid), nor that a budget's service, period and applies_to cannot change.
CHECKS_FORMATS = {
    "byok_budgets_create",
    "byok_budgets_partial_update",
    "byok_keys_import",
    "byok_keys_create",
    "byok_keys_update",
    "byok_keys_partial_update",
    "byok_keys_test",
    "byok_team_keys_create",
    "byok_team_keys_update",
    "byok_team_keys_partial_update",
}


@schema.auth()
class BasicAuth:
    def get(self, case, context):
        return base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Basic {data}"}


def sign_up_the_caller():
    """The caller, one key of theirs and a team of theirs with a key (once per test:
    examples share the database)."""
    user_model = get_user_model()
    identity = {user_model.USERNAME_FIELD: USERNAME}
    user = user_model._default_manager.filter(**identity).first()
    if user is None:
        user = user_model._default_manager.create_user(**identity, password=PASSWORD)
        UserAPIKeyFactory(user=user)
        TeamAPIKeyFactory(team=TeamFactory(owner=user), actor=user)
    return user


COMMON = ["400", "401", "403", "405", "406"]
DOCUMENTED = {
    "byok_keys_list": ["200", *COMMON],
    "byok_keys_retrieve": ["200", *COMMON, "404"],
    "byok_keys_create": ["201", *COMMON, "429"],
    "byok_keys_update": ["200", *COMMON, "404", "409", "429"],
    "byok_keys_partial_update": ["200", *COMMON, "404", "409", "429"],
    "byok_keys_destroy": ["204", *COMMON, "404"],
    "byok_keys_test": ["200", *COMMON, "429"],
    "byok_keys_retest": ["200", *COMMON, "404", "409", "429"],
    "byok_keys_reveal": ["200", *COMMON, "404", "409", "429"],
    "byok_keys_import": ["200", *COMMON, "429"],
    "byok_keys_services": ["200", *COMMON],
    "byok_keys_stats": ["200", *COMMON],
    "byok_keys_usage": ["200", *COMMON],
    "byok_keys_usage_by_model": ["200", *COMMON],
    "byok_keys_comparison": ["200", *COMMON],
    "byok_budgets_list": ["200", *COMMON],
    "byok_budgets_retrieve": ["200", *COMMON, "404"],
    "byok_budgets_create": ["200", "201", *COMMON],
    "byok_budgets_partial_update": ["200", *COMMON, "404"],
    "byok_budgets_destroy": ["204", *COMMON, "404"],
    "byok_teams_list": ["200", *COMMON],
    "byok_teams_retrieve": ["200", *COMMON, "404"],
    "byok_teams_members": ["200", *COMMON, "404"],
    "byok_teams_usage": ["200", *COMMON, "404"],
    "byok_teams_stats": ["200", *COMMON, "404"],
    "byok_team_keys_list": ["200", *COMMON, "404"],
    "byok_team_keys_retrieve": ["200", *COMMON, "404"],
    "byok_team_keys_create": ["201", *COMMON, "404", "429"],
    "byok_team_keys_update": ["200", *COMMON, "404", "409", "429"],
    "byok_team_keys_partial_update": ["200", *COMMON, "404", "409", "429"],
    "byok_team_keys_destroy": ["204", *COMMON, "404"],
    "byok_team_keys_retest": ["200", *COMMON, "404", "409", "429"],
    "byok_team_keys_reveal": ["200", *COMMON, "404", "409", "429"],
}


@pytest.mark.django_db
def test_each_operation_documents_the_answers_it_gives():
    """Frontends generate clients from these: a 409 or 429 left out is a crash there."""
    paths = APIClient().get(SCHEMA_URL).json()["paths"]
    operations = {op["operationId"]: op for ops in paths.values() for op in ops.values()}
    assert {name: sorted(op["responses"]) for name, op in operations.items()} == {
        name: sorted(codes) for name, codes in DOCUMENTED.items()
    }

    def described(name, code):
        return operations[name]["responses"][code]["description"]

    for name in ("byok_budgets_partial_update", "byok_budgets_destroy"):
        assert "the budget is the site's" in described(name, "403")
    for kind in ("keys", "team_keys"):
        for name in (f"byok_{kind}_create", f"byok_{kind}_update", f"byok_{kind}_partial_update"):
            assert "the provider rejected the key" in described(name, "400")
        for name in (f"byok_{kind}_update", f"byok_{kind}_partial_update"):
            assert "service is gone" in described(name, "409")
        for name in (f"byok_{kind}_retest", f"byok_{kind}_reveal"):
            assert "cannot be decrypted" in described(name, "409")
        assert "ALLOW_REVEAL" in described(f"byok_{kind}_reveal", "403")
    for action in ("create", "update", "partial_update", "destroy", "retest"):
        assert "not one of its owners or admins" in described(f"byok_team_keys_{action}", "403")
    assert "not one of its owners or admins" in described("byok_team_keys_reveal", "404")


@pytest.mark.django_db
def test_the_schema_generates_without_warnings():
    stderr = io.StringIO()
    with redirect_stderr(stderr):
        response = APIClient().get(SCHEMA_URL)
    assert response.status_code == 200
    assert stderr.getvalue() == ""
    paths = response.json()["paths"]
    assert sorted(paths) == [
        "/api/user/api-keys/",
        "/api/user/api-keys/budgets/",
        "/api/user/api-keys/budgets/{id}/",
        "/api/user/api-keys/comparison/",
        "/api/user/api-keys/import/",
        "/api/user/api-keys/services/",
        "/api/user/api-keys/stats/",
        "/api/user/api-keys/teams/",
        "/api/user/api-keys/teams/{team_pk}/",
        "/api/user/api-keys/teams/{team_pk}/keys/",
        "/api/user/api-keys/teams/{team_pk}/keys/{id}/",
        "/api/user/api-keys/teams/{team_pk}/keys/{id}/reveal/",
        "/api/user/api-keys/teams/{team_pk}/keys/{id}/test/",
        "/api/user/api-keys/teams/{team_pk}/members/",
        "/api/user/api-keys/teams/{team_pk}/stats/",
        "/api/user/api-keys/teams/{team_pk}/usage/",
        "/api/user/api-keys/test/",
        "/api/user/api-keys/usage/",
        "/api/user/api-keys/usage/by-model/",
        "/api/user/api-keys/{id}/",
        "/api/user/api-keys/{id}/reveal/",
        "/api/user/api-keys/{id}/test/",
    ]


@pytest.mark.django_db
def test_every_operation_has_a_stable_id_and_summary():
    operations = [
        operation
        for methods in APIClient().get(SCHEMA_URL).json()["paths"].values()
        for operation in methods.values()
    ]
    assert len(operations) == 33
    assert all(
        op["operationId"].startswith(
            ("byok_keys_", "byok_budgets_", "byok_teams_", "byok_team_keys_")
        )
        and op["summary"]
        for op in operations
    )


@schema.parametrize()
@hypothesis_settings(
    max_examples=int(os.environ.get("BYOK_SCHEMATHESIS_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    # The same examples on every run: CI stays stable; raise the count to explore.
    derandomize=not os.environ.get("BYOK_SCHEMATHESIS_EXAMPLES"),
)
@pytest.mark.django_db
def test_api_conforms_to_its_schema(case):
    sign_up_the_caller()
    excluded = (
        [positive_data_acceptance]
        if case.operation.definition.raw.get("operationId") in CHECKS_FORMATS
        else []
    )
    # Providers are never called for real: anything the API sends is refused offline.
    with responses.RequestsMock(assert_all_requests_are_fired=False), connections_kept_open():
        case.call_and_validate(excluded_checks=excluded)


@contextmanager
def connections_kept_open():
    """What Django's test client does: a real WSGI request would otherwise close the
    test's database connection when it finishes, and its transaction with it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


WITHOUT_SPECTACULAR = """
import sys

sys.modules["drf_spectacular"] = None  # as if not installed

import settings

settings.INSTALLED_APPS.remove("drf_spectacular")

import django

django.setup()

from django.test import Client

from byok.rest.urls import urlpatterns

assert "schema" not in [pattern.name for pattern in urlpatterns]
assert Client().get("/api/user/api-keys/").status_code == 403
print("ok")
"""


def test_the_api_works_without_drf_spectacular():
    """drf-spectacular is an optional extra: without it, no schema/, the rest works."""
    assert run_in_test_project(WITHOUT_SPECTACULAR).stdout.split() == ["ok"]
