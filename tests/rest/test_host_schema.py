"""byok in a host's own OpenAPI schema (host_settings: a cookiecutter-django-like site).

Each run is a fresh process, as a host's ``manage.py`` is: drf-spectacular caches
``ENUM_NAME_OVERRIDES`` from the first schema a process generates, so what comes
first (the host's schema, or byok's ``schema/``) is part of what is tested.
"""

import json

import pytest

from support import run_in_test_project

# The same on every database: run by the SQLite environments and the full one.
pytestmark = pytest.mark.database_agnostic

# Runs the named steps in order; prints what each returned and wrote on stderr.
STEPS = """
import io, json, sys
from contextlib import redirect_stderr

import django

django.setup()

from django.core.checks import run_checks
from django.core.management import call_command
from django.urls import resolve
from drf_spectacular.drainage import reset_generator_stats
from rest_framework.test import APIRequestFactory, force_authenticate


class Staff:
    is_authenticated = is_active = is_staff = True


def host():
    out = io.StringIO()
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out
    )
    return json.loads(out.getvalue())


def byok():
    request = APIRequestFactory().get("/api/user/api-keys/schema/?format=json")
    force_authenticate(request, user=Staff())  # the host's SERVE_PERMISSIONS: staff only
    request.resolver_match = match = resolve(request.path_info)
    response = match.func(request, *match.args, **match.kwargs).render()
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def deploy_check():
    return sorted({message.id for message in run_checks(include_deployment_checks=True)})


report = {}
for step in sys.argv[1:]:
    stderr = io.StringIO()
    with redirect_stderr(stderr):
        try:
            result = globals()[step]()
        except Exception as error:
            result = f"{type(error).__name__}: {error}"
    reset_generator_stats()
    report[step] = {"result": result, "stderr": stderr.getvalue()}
print(json.dumps(report))
"""

HOST_FIRST = ("host", "deploy_check", "byok")
BYOK_FIRST = ("byok", "host", "deploy_check")


def run_host(*steps, split_request=False):
    output = run_in_test_project(
        STEPS,
        *steps,
        settings="host_settings",
        HOST_COMPONENT_SPLIT_REQUEST="1" if split_request else "0",
    ).stdout
    report = json.loads(output)
    for step, outcome in report.items():
        assert outcome["stderr"] == "", f"{step}: {outcome['stderr']}"
    return {step: outcome["result"] for step, outcome in report.items()}


@pytest.fixture(scope="module")
def runs():
    """The host, its schema first and byok's first (one process each), and byok's first
    again with COMPONENT_SPLIT_REQUEST."""
    return {
        HOST_FIRST: run_host(*HOST_FIRST),
        BYOK_FIRST: run_host(*BYOK_FIRST),
        "split_request": run_host(*BYOK_FIRST, split_request=True),
    }


def byok_components(schema):
    return {
        name: component
        for name, component in schema["components"]["schemas"].items()
        if name.startswith(("Byok", "PatchedByok"))
    }


def test_byok_adds_no_warning_to_the_hosts_schema_or_its_deploy_checks(runs):
    for results in runs.values():
        assert isinstance(results["host"], dict), results["host"]
        assert isinstance(results["byok"], dict), results["byok"]
        flagged = [
            message_id
            for message_id in results["deploy_check"]
            if message_id.startswith(("drf_spectacular.", "byok."))
        ]
        # But one: the test project counts the budgets in LocMemCache, per process,
        # which byok.W004 rightly points out under --deploy.
        assert flagged == ["byok.W004"]


def test_names_do_not_depend_on_which_schema_comes_first(runs):
    host_first, byok_first = runs[HOST_FIRST], runs[BYOK_FIRST]
    assert host_first["host"] == byok_first["host"]
    assert host_first["byok"] == byok_first["byok"]


def test_the_host_keeps_its_own_enum_names(runs):
    """Its ENUM_NAME_OVERRIDES holds, and its ``environment`` needs no hash suffix."""
    for results in runs.values():
        components = results["host"]["components"]["schemas"]
        assert components["OrderStatusEnum"]["enum"] == ["open", "shipped"]
        assert components["EnvironmentEnum"]["enum"] == ["staging", "live"]
        names = set(components)
        assert not [name for name in names if name.startswith(("Status", "KeyStatus"))]


def test_byoks_operations_and_components_are_the_same_in_both_schemas(runs):
    for results in runs.values():
        host, byok = results["host"], results["byok"]
        operations = {
            operation["operationId"]: operation
            for path, methods in host["paths"].items()
            if path.startswith("/api/user/api-keys/")
            for operation in methods.values()
        }
        own = {
            operation["operationId"]: operation
            for methods in byok["paths"].values()
            for operation in methods.values()
        }
        assert len(own) == 33
        assert operations == own
        assert byok_components(host) == byok["components"]["schemas"]
        assert {operation["tags"][0] for operation in own.values()} == {"api-keys"}


def test_byoks_schema_view_is_no_operation_of_the_hosts_schema(runs):
    for results in runs.values():
        paths = results["host"]["paths"]
        assert "/api/user/api-keys/schema/" not in paths
        assert "/api/orders/latest/" in paths  # the host's own, for contrast


def test_every_choice_set_of_byok_is_a_named_component(runs):
    """No inline enum left in byok's components for drf-spectacular's hook to name."""
    for results in runs.values():
        components = results["byok"]["components"]["schemas"]
        for name, component in components.items():
            for field, schema in component.get("properties", {}).items():
                assert "enum" not in schema, f"{name}.{field}"
        assert components["ByokKeyStatusEnum"]["enum"][0] == "untested"
        assert "untested" not in components["ByokTestStatusEnum"]["enum"]
