"""A host with its own team model (``BYOK_TEAM_MODEL``) and membership table
(``BYOK["TEAM_ADAPTER"]``): byok's migrations follow it, its lookup joins the host's
table in its one query, and its permissions ask the host's adapter. Run in a fresh
process, since the team model is fixed when Django starts."""

from support import run_in_test_project

HOST = """
import django
django.setup()
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

connection.creation.create_test_db(verbosity=0)
call_command("makemigrations", "--check", "--dry-run", verbosity=0)

import byok
from byok import keys
from byok.exceptions import NoAPIKey
from byok.models import Budget, UserAPIKey, team_model
from factories import UserFactory
from fakes import fake_credentials
from organizations.models import Organization, Seat

assert team_model() is Organization
tables = connection.introspection.table_names()
assert "byok_team" not in tables and "organizations_organization" in tables, tables

acme = Organization.objects.create(slug="acme")
admin, member, outsider = UserFactory(), UserFactory(), UserFactory()
Seat.objects.create(organization=acme, person=admin, is_admin=True)
seat = Seat.objects.create(organization=acme, person=member)

try:
    keys.add_team_api_key(acme, "openai", fake_credentials("openai"), actor=member)
except PermissionDenied:
    pass
else:
    raise AssertionError("a member added a key")
key = keys.add_team_api_key(acme, "openai", fake_credentials("openai"), actor=admin)
assert key.team_id == acme.pk

byok.set_budget(None, team=acme, limit="5", action="block")
with CaptureQueriesContext(connection) as queries:
    resolved = byok.resolve_api_key(member, "openai", team=acme)
assert len(queries) == 1, [q["sql"] for q in queries]
assert (resolved.source, resolved.key_id) == ("team", key.pk)
assert [row.team_id for row in resolved.budgets] == [acme.pk]

for who in (outsider, member):
    if who is member:
        seat.delete()
    try:
        byok.resolve_api_key(who, "openai", team=acme)
    except NoAPIKey:
        pass
    else:
        raise AssertionError("served someone without a seat")

acme.delete()
assert not UserAPIKey.objects.exists() and not Budget.objects.exists()
connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
print("ok")
"""


def test_a_host_team_model_and_its_own_membership_table():
    result = run_in_test_project(HOST, settings="organizations_settings")
    assert result.stdout.strip() == "ok"


REST = """
import django
django.setup()
from django.db import connection

connection.creation.create_test_db(verbosity=0)

from byok.models import UserAPIKey
from factories import UserFactory
from fakes import fake_credentials
from organizations.models import Organization, Seat
from support import client_for

acme = Organization.objects.create(slug="acme")
admin, member, outsider = UserFactory(), UserFactory(), UserFactory()
Seat.objects.create(organization=acme, person=admin, is_admin=True)
Seat.objects.create(organization=acme, person=member)
base = f"/api/user/api-keys/teams/{acme.pk}/"
body = {"service": "openai", "key": fake_credentials("openai"), "test": False}

assert client_for(member).get("/api/user/api-keys/teams/").json() == [
    {"id": str(acme.pk), "name": "acme", "role": "member", "can_manage": False}
]
assert client_for(member).post(base + "keys/", body, format="json").status_code == 403
assert client_for(outsider).post(base + "keys/", body, format="json").status_code == 404
created = client_for(admin).post(base + "keys/", body, format="json")
assert created.status_code == 201, created.content
assert UserAPIKey.objects.get().team_id == acme.pk
assert len(client_for(member).get(base + "keys/").json()) == 1
assert len(client_for(member).get(base + "members/").json()) == 2
for bad in ("1", "abc", "%00"):
    assert client_for(admin).get(f"/api/user/api-keys/teams/{bad}/keys/").status_code == 404

connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
print("ok")
"""


def test_the_team_routes_with_a_host_team_model():
    """Its ids are UUIDs, its roles come from its adapter."""
    result = run_in_test_project(REST, settings="organizations_settings")
    assert result.stdout.strip() == "ok"


PAGES = """
import django
django.setup()
from django.db import connection
from django.test import Client

connection.creation.create_test_db(verbosity=0)

from byok.models import UserAPIKey
from factories import UserFactory
from fakes import fake_credentials
from organizations.models import Organization, Seat

acme = Organization.objects.create(slug="acme")
admin, member, outsider = UserFactory(), UserFactory(), UserFactory()
Seat.objects.create(organization=acme, person=admin, is_admin=True)
Seat.objects.create(organization=acme, person=member)


def client(user):
    signed_in = Client()
    signed_in.force_login(user)
    return signed_in


base = "/dashboard/api-keys/"
added = client(admin).post(
    f"{base}teams/{acme.pk}/add/openai/",
    {"api_key": fake_credentials("openai"), "environment": "production"},
)
assert added.status_code == 302, added.content
assert added["Location"] == f"{base}?team={acme.pk}"
key = UserAPIKey.objects.get(team_id=acme.pk)
assert f'href="?team={acme.pk}"' in client(member).get(base).content.decode()
page = client(member).get(f"{base}?team={acme.pk}").content.decode()
assert key.masked_key in page and "/remove/" not in page and "reveal" not in page
assert client(admin).get(f"{base}usage/?team={acme.pk}").status_code == 200
assert client(member).post(f"{base}teams/{acme.pk}/keys/{key.pk}/remove/").status_code == 404
for bad in ("1", "abc", "%00", "00000000-0000-0000-0000-000000000000"):
    for who in (outsider, member):
        assert client(who).get(f"{base}?team={bad}").status_code == 404, bad
assert client(outsider).get(f"{base}?team={acme.pk}").status_code == 404

connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
print("ok")
"""


def test_the_team_pages_with_a_host_team_model():
    """Its ids are UUIDs: the switcher, the team's keys and their management."""
    result = run_in_test_project(PAGES, settings="organizations_settings")
    assert result.stdout.strip() == "ok"
