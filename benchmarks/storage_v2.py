"""get_user_api_key on a format 2 row (AES-256-GCM, bound to its row) against the same
lookup on a format 1 row (Fernet, as byok wrote before).

Budget: ratio <= 1.1, and still one query. Two users hold one OpenAI key each, the
same length; one row is rewritten in format 1. Both sides run in the same process,
interleaved; the ratio is the median of the rounds, with their spread.

    python benchmarks/storage_v2.py                          # SQLite and PostgreSQL
    python benchmarks/storage_v2.py sqlite postgres mariadb  # any of these
"""

import sys

from _setup import compare, main

BUDGET = 1.1
NUMBER, REPEAT = 500, 21


def measure() -> float:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import byok
    from byok.crypto import get_keyring
    from byok.fields import SealedCredentials, canonical_bytes
    from byok.models import UserAPIKey

    on_v2, on_v1 = User.objects.create_user("v2"), User.objects.create_user("v1")
    body, other = "a1B2c3D4e5F6g7H8i9J0", "k1L2m3N4o5P6q7R8s9T0"
    byok.add_user_api_key(on_v2, "openai", f"sk-proj-{body}{body}T3BlbkFJ{body}{body}")
    old = byok.add_user_api_key(on_v1, "openai", f"sk-proj-{other}{other}T3BlbkFJ{other}{other}")
    plaintext = canonical_bytes(old.get_credentials())
    token = SealedCredentials(get_keyring().primary.encrypt_v1(plaintext))
    UserAPIKey.objects.filter(pk=old.pk).update(credentials=token)
    formats = dict(UserAPIKey.objects.values_list("user__username", "credentials"))
    assert (formats["v2"].format, formats["v1"].format) == ("v2", "v1")

    def ours() -> object:
        return byok.get_user_api_key(on_v2, "openai")

    def baseline() -> object:
        return byok.get_user_api_key(on_v1, "openai")

    assert baseline() == f"sk-proj-{other}{other}T3BlbkFJ{other}{other}"
    with CaptureQueriesContext(connection) as queries:
        assert ours() == f"sk-proj-{body}{body}T3BlbkFJ{body}{body}"
    assert len(queries) == 1, queries.captured_queries
    return compare(
        ("lookup, format 2", ours), ("lookup, format 1", baseline), repeat=REPEAT, number=NUMBER
    )


if __name__ == "__main__":
    sys.exit(main(__file__, measure, BUDGET))
