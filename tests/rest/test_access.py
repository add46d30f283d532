"""Who may call what: owner, another user, anonymous, staff, for every endpoint."""

import pytest

from factories import UserAPIKeyFactory, UserFactory
from fakes import fake_credentials
from support import client_for

pytestmark = pytest.mark.django_db

BASE = "/api/user/api-keys/"


def body_for(name):
    bodies = {
        "create": lambda: {"service": "openai", "key": fake_credentials("openai"), "test": False},
        "update": lambda: {
            "nickname": "n",
            "environment": "production",
            "is_default": True,
            "is_active": True,
        },
        "partial_update": lambda: {"nickname": "patched"},
        "test": lambda: {"service": "openai", "key": fake_credentials("openai")},
        "import": lambda: {"text": f"OPENAI_API_KEY={fake_credentials('openai')}"},
    }
    return bodies.get(name, lambda: None)()


ENDPOINTS = [
    ("list", "get", ""),
    ("create", "post", ""),
    ("retrieve", "get", "{id}/"),
    ("update", "put", "{id}/"),
    ("partial_update", "patch", "{id}/"),
    ("destroy", "delete", "{id}/"),
    ("test", "post", "test/"),
    ("retest", "post", "{id}/test/"),
    ("reveal", "post", "{id}/reveal/"),
    ("services", "get", "services/"),
    ("stats", "get", "stats/"),
    ("usage", "get", "usage/"),
    ("comparison", "get", "comparison/"),
    ("import", "post", "import/"),
]

OWNER = {
    "list": 200,
    "create": 201,
    "retrieve": 200,
    "update": 200,
    "partial_update": 200,
    "destroy": 204,
    "test": 200,
    "retest": 200,
    "reveal": 200,
    "services": 200,
    "stats": 200,
    "usage": 200,
    "comparison": 200,
    "import": 200,
}
# Another user, and staff: their own list, their own creations, never this key.
STRANGER = {
    **OWNER,
    "retrieve": 404,
    "update": 404,
    "partial_update": 404,
    "destroy": 404,
    "retest": 404,
    "reveal": 404,
}


@pytest.fixture
def owner_key(db):
    return UserAPIKeyFactory()


def caller(role, owner_key):
    return {
        "owner": lambda: owner_key.user,
        "other": lambda: UserFactory(),
        "staff": lambda: UserFactory(is_staff=True, is_superuser=True),
        "anonymous": lambda: None,
    }[role]()


@pytest.mark.parametrize("role", ["owner", "other", "staff", "anonymous"])
@pytest.mark.parametrize(("name", "method", "path"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_access_matrix(role, name, method, path, owner_key, provider):
    client = client_for(caller(role, owner_key))
    url = BASE + path.format(id=owner_key.pk)
    response = getattr(client, method)(url, body_for(name), format="json")
    if role == "anonymous":
        assert response.status_code in (401, 403), response.content
    else:
        expected = (OWNER if role == "owner" else STRANGER)[name]
        assert response.status_code == expected, response.content
    if role != "owner" and name == "list" and response.status_code == 200:
        assert str(owner_key.pk) not in response.content.decode()
