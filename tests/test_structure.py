"""The package's shape: no import circle, imports only point down a floor, and a
credential is validated once on its way in."""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import byok
from byok import validation
from byok.keys import add_user_api_key, update_user_api_key

from fakes import fake_credentials

PACKAGE = Path(byok.__file__).parent

#: STYLE.md's floors, bottom up: a module imports only from its own floor or below.
FLOORS = [
    {"byok", "byok.version", "byok.conf", "byok.exceptions", "byok.crypto", "byok.http",
     "byok.results", "byok.signals", "byok.rate_limits", "byok.deletion",
     "byok.task_framework", "byok.jsonsafe"},
    {"byok.services", "byok.validation", "byok.redaction", "byok.logging"},
    {"byok.probes"},
    {"byok.fields", "byok.models", "byok.lookup", "byok.receivers", "byok.metering",
     "byok.teams", "byok.measurement", "byok.kms", "byok.rls", "byok.rls_policies"},
    {"byok.keys", "byok.resolution", "byok.budgets", "byok.usage", "byok.stats", "byok.audit",
     "byok.rotation", "byok.key_age", "byok.pruning", "byok.comparison"},
    {"byok.importing", "byok.recheck", "byok.charts", "byok.reservations",
     "byok.clients", "byok.notifications", "byok.tasks", "byok.budget_bars", "byok.webhooks",
     "byok.alerts", "byok.comparison_charts"},
]  # fmt: skip
#: The surfaces, each on the top floor; none imports another.
SURFACES = {
    "pages": {
        "byok.views",
        "byok.budget_views",
        "byok.compare_views",
        "byok.forms",
        "byok.urls",
        "byok.templatetags",
    },
    "rest": {"byok.rest"},
    "admin": {"byok.admin"},
    "commands": {"byok.management"},
    "app": {"byok.apps", "byok.checks"},
    "middleware": {"byok.middleware"},
}


def modules():
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = ("byok", *path.relative_to(PACKAGE).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports():
    """Module name to the byok modules it imports anywhere (TYPE_CHECKING blocks and
    function bodies included)."""
    known = modules()
    graph = defaultdict(set)
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("byok"):
                submodules = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t for t in submodules if t in known] or [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("byok")]
            else:
                continue
            graph[name].update(t for t in targets if t != name)
    return graph


def group(module, groups):
    """The key of the group whose longest name is ``module`` or a package holding it
    (``byok`` itself names the package root only)."""
    matches = [
        (len(prefix), key)
        for key, prefixes in groups
        for prefix in prefixes
        if module == prefix or (prefix != "byok" and module.startswith(f"{prefix}."))
    ]
    return max(matches)[1] if matches else None


def floor_of(module):
    found = group(module, list(enumerate(FLOORS)))
    return len(FLOORS) if found is None else found


def test_byok_has_no_import_circle():
    graph = imports()
    circles = []

    def visit(start, module, path):
        for target in graph[module]:
            if target == start:
                circles.append([*path, start])
            elif target not in path and len(path) < 12:
                visit(start, target, [*path, target])

    for module in list(graph):
        visit(module, module, [module])
    assert circles == []


def test_every_module_is_on_a_floor_or_a_surface():
    for module in modules():
        assert floor_of(module) < len(FLOORS) or group(module, SURFACES.items()), module


def test_imports_only_point_down_a_floor():
    upward = [
        (module, target)
        for module, targets in imports().items()
        for target in targets
        if floor_of(target) > floor_of(module) and module != "byok"  # its lazy public names
    ]
    assert upward == []


def test_no_surface_imports_another():
    crossing = [
        (module, target)
        for module, targets in imports().items()
        for target in targets
        if (mine := group(module, SURFACES.items()))
        and (theirs := group(target, SURFACES.items()))
        and mine != theirs
    ]
    assert crossing == []


def test_a_service_module_imports_only_the_ground_and_the_catalog():
    allowed = FLOORS[0] | {"byok.services"}
    for module, targets in imports().items():
        if module.startswith("byok.services."):
            assert {t for t in targets if group(t, [(0, allowed)]) is None} == set(), module


@pytest.fixture
def validations(monkeypatch):
    calls = []
    original = validation.check_credentials

    def counted(*args, **kwargs):
        calls.append(args[0].id)
        return original(*args, **kwargs)

    monkeypatch.setattr(validation, "check_credentials", counted)
    return calls


@pytest.mark.django_db
def test_a_new_key_is_validated_once(user, validations):
    add_user_api_key(user, "openai", fake_credentials("openai"))
    assert validations == ["openai"]


@pytest.mark.django_db
def test_a_replaced_secret_is_validated_once(user, validations):
    key = add_user_api_key(user, "twilio", fake_credentials("twilio"))
    validations.clear()
    update_user_api_key(key, credentials=fake_credentials("twilio"), actor=user)
    assert validations == ["twilio"]
