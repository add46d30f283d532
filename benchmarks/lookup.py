"""get_user_api_key against a bare ORM get() plus one raw decryption of the same row.

Budget (DESIGN.md): ratio <= 1.25, one query. Each database runs in its own
process; both sides are timed in the same process, interleaved, and the best of
many repeats is compared so that noise from the machine hits both alike.

    python benchmarks/lookup.py                 # SQLite and PostgreSQL
    python benchmarks/lookup.py sqlite mariadb  # any of sqlite, postgres, mariadb
"""

import sys

from _setup import compare, main

BUDGET = 1.25
NUMBER, REPEAT = 500, 15


def measure() -> float:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import byok
    from byok.crypto import get_keyring
    from byok.models import UserAPIKey

    user = User.objects.create_user("bench")
    other = User.objects.create_user("other")
    body = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
    for index, person in enumerate([user, other] * 3):
        filler = (body * 3)[index : index + 74]
        byok.add_user_api_key(person, "openai", f"sk-proj-{filler}T3BlbkFJ{filler}")
    key = UserAPIKey.objects.filter(user=user).order_by("created_at").first()
    keyring = get_keyring()

    def ours() -> object:
        return byok.get_user_api_key(user, "openai")

    def baseline() -> object:
        row = UserAPIKey.objects.get(pk=key.pk)
        return keyring.decrypt(row.credentials.token, row.binding)

    assert ours() == key.get_secret()
    with CaptureQueriesContext(connection) as queries:
        ours()
    assert len(queries) == 1, queries.captured_queries

    return compare(
        ("get_user_api_key", ours), ("ORM get() + decrypt", baseline), repeat=REPEAT, number=NUMBER
    )


if __name__ == "__main__":
    sys.exit(main(__file__, measure, BUDGET))
