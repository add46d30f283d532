"""get_user_api_key against the physical floor: one raw-SQL select of the same row's
ciphertext plus one keyring decryption.

Budget: ratio <= 1.15 on SQLite, PostgreSQL and MariaDB. The floor knows the key's
primary key and skips everything byok adds around the read (the slot's preference
row, the platform fallback, JSON, the value returned, the ``key_used`` signal):
what separates the two is what byok costs. Both sides run in the same process,
interleaved; the ratio is the median of the rounds, with their spread.

    python benchmarks/lookup_floor.py                          # SQLite and PostgreSQL
    python benchmarks/lookup_floor.py sqlite postgres mariadb  # any of these
"""

import json
import sys

from _setup import compare, main

BUDGET = 1.15
NUMBER, REPEAT = 500, 21


def measure() -> float:
    from django.contrib.auth.models import User
    from django.db import connection

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
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {quote('credentials')} FROM {quote(UserAPIKey._meta.db_table)} "  # noqa: S608
        f"WHERE {quote('id')} = %s"
    )
    pk = UserAPIKey._meta.pk.get_db_prep_value(key.pk, connection)
    binding = key.binding

    def ours() -> object:
        return byok.get_user_api_key(user, "openai")

    def floor() -> object:
        with connection.cursor() as cursor:
            cursor.execute(sql, [pk])
            token = cursor.fetchone()[0]
        return keyring.decrypt(token, binding)

    assert ours() == key.get_secret()
    assert json.loads(floor()) == key.credentials.open(keyring, binding=binding)
    return compare(
        ("get_user_api_key", ours), ("raw select + decrypt", floor), repeat=REPEAT, number=NUMBER
    )


if __name__ == "__main__":
    sys.exit(main(__file__, measure, BUDGET))
