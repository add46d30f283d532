"""get_user_api_key against reading an encrypted field with two peer libraries.

The same secret for the same user, on the same database: byok's lookup (one query,
one decryption, the platform fallback and the ``key_used`` signal included) against
``Model.objects.get(user=…, service=…).secret`` where ``secret`` is
django-fernet-encrypted-fields' ``EncryptedCharField`` or django-cryptography's
``encrypt(CharField())``. Ratios below 1 mean byok is faster. Informational: no
budget; the figures and versions go into docs/performance.md.

Needs the benchmark extras: ``pip install -e ".[benchmarks]"``.

    python benchmarks/peers.py                          # SQLite and PostgreSQL
    python benchmarks/peers.py sqlite postgres mariadb  # any of these
"""

import sys
from importlib.metadata import version

from _setup import compare, main

NUMBER, REPEAT = 500, 15
NO_BUDGET = float("inf")


def measure() -> float:
    from django.contrib.auth.models import User
    from peers_app.models import CryptographyFieldSecret, FernetFieldSecret

    import byok

    secret = "sk-proj-" + "a1B2c3D4" * 9 + "T3BlbkFJ" + "e5F6g7H8" * 9
    user = User.objects.create_user("bench")
    other = User.objects.create_user("other")
    byok.add_user_api_key(user, "openai", secret)
    byok.add_user_api_key(other, "openai", secret)
    for model in (FernetFieldSecret, CryptographyFieldSecret):
        for person in (user, other):
            model.objects.create(user=person, service="openai", secret=secret)

    def ours() -> object:
        return byok.get_user_api_key(user, "openai")

    def peer(model: type) -> object:
        return lambda: model.objects.get(user=user, service="openai").secret

    for read in (ours, peer(FernetFieldSecret), peer(CryptographyFieldSecret)):
        assert read() == secret
    print(
        "  versions: django-fernet-encrypted-fields "
        f"{version('django-fernet-encrypted-fields')}, django-cryptography-5 "
        f"{version('django-cryptography-5')}, Django {version('Django')}"
    )
    compare(
        ("get_user_api_key", ours),
        ("fernet-encrypted-fields get()", peer(FernetFieldSecret)),
        repeat=REPEAT,
        number=NUMBER,
    )
    return compare(
        ("get_user_api_key", ours),
        ("django-cryptography get()", peer(CryptographyFieldSecret)),
        repeat=REPEAT,
        number=NUMBER,
    )


if __name__ == "__main__":
    sys.exit(main(__file__, measure, NO_BUDGET, apps=("peers_app",)))
