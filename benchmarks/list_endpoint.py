"""The key list endpoint (12 keys) against a bare ModelViewSet over the same rows.

Budget: ratio <= 1.5. One user holds one key for each of the 12 built-in
services. The bare side is a plain ModelViewSet whose ModelSerializer has the
same visible columns and whose queryset is ``UserAPIKey.objects.filter(user=...)``:
no filters, no pagination, no extras. Both views are called the same way
(APIRequestFactory + force_authenticate, ``as_view({"get": "list"})``, response
rendered to JSON), so no middleware is measured. Before timing it checks, once,
that the byok list returns the 12 keys with no stored secret in the body, and
that it runs as many queries as the bare one (or a number that does not grow
with the rows). Each database runs in its own process; both sides are timed in
the same process, interleaved, and the best of many repeats is compared.

    python benchmarks/list_endpoint.py                         # SQLite and PostgreSQL
    python benchmarks/list_endpoint.py sqlite postgres mariadb  # any of these
"""

import json
import sys

from _setup import compare, main

BUDGET = 1.5
NUMBER, REPEAT = 100, 15
COLUMNS = [
    "id",
    "service",
    "nickname",
    "environment",
    "masked_key",
    "is_active",
    "status",
    "last_tested_at",
    "last_test_message",
    "usage_count",
    "estimated_cost",
    "last_used_at",
    "created_at",
    "updated_at",
]


def _add_keys(user: object) -> list[str]:
    """One key per built-in service for ``user``; returns every stored secret value."""
    import byok
    from byok.services.registry import registry

    from fakes import fake_credentials

    stored_secrets = []
    for spec in registry:
        key = byok.add_user_api_key(user, spec.id, fake_credentials(spec.id))
        stored = key.get_credentials()
        stored_secrets += [
            stored[field.name] for field in spec.fields if field.secret and field.name in stored
        ]
    return stored_secrets


def measure() -> float:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework import serializers, viewsets
    from rest_framework.test import APIRequestFactory, force_authenticate

    import byok
    from byok.models import UserAPIKey
    from byok.rest.views import APIKeyViewSet

    from fakes import fake_credentials

    user = User.objects.create_user("bench")
    few = User.objects.create_user("few")  # fewer rows: the query count must not change
    stored_secrets = _add_keys(user)
    for service in ("openai", "github", "twilio"):
        byok.add_user_api_key(few, service, fake_credentials(service))

    class BareSerializer(serializers.ModelSerializer):
        class Meta:
            model = UserAPIKey
            fields = COLUMNS

    class BareViewSet(viewsets.ModelViewSet):
        serializer_class = BareSerializer
        queryset = UserAPIKey.objects.filter(user=user)

    factory = APIRequestFactory()
    byok_list = APIKeyViewSet.as_view({"get": "list"})
    bare_list = BareViewSet.as_view({"get": "list"})

    def call(view: object, who: object = user) -> object:
        request = factory.get("/api-keys/")
        force_authenticate(request, user=who)
        response = view(request)
        response.render()
        return response

    def ours() -> object:
        return call(byok_list)

    def baseline() -> object:
        return call(bare_list)

    def checked(view: object, who: object = user) -> tuple[int, list[dict[str, object]], str]:
        with CaptureQueriesContext(connection) as queries:
            response = call(view, who)
        assert response.status_code == 200, response.content
        body = response.content.decode()
        return len(queries), json.loads(body), body

    ours_queries, items, body = checked(byok_list)
    bare_queries, bare_items, _ = checked(bare_list)
    few_queries, few_items, _ = checked(byok_list, few)
    assert len(items) == 12, len(items)
    assert {i["id"] for i in items} == {i["id"] for i in bare_items}, "not the same rows"
    assert len(few_items) == 3, len(few_items)
    assert ours_queries in (bare_queries, few_queries), (ours_queries, bare_queries, few_queries)
    leaked = [secret for secret in stored_secrets if secret in body]
    assert not leaked, f"{len(leaked)} stored secret(s) in the list response"

    print(f"  queries: byok list {ours_queries} (with 3 keys {few_queries}), bare {bare_queries}")
    return compare(
        ("byok list (12 keys)", ours),
        ("bare ModelViewSet", baseline),
        repeat=REPEAT,
        number=NUMBER,
    )


if __name__ == "__main__":
    sys.exit(main(__file__, measure, BUDGET))
