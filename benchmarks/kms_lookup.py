"""get_user_api_key on a secret under a KMS's data key (envelope encryption, the data
key cached) against the same lookup with the local keyring.

Budget: ratio <= 1.1, still one query and no KMS call. The KMS is AWS KMS as moto
serves it on 127.0.0.1 (what the test extra installs: ``moto[kms]``, Flask,
flask-cors, boto3). Two users hold one OpenAI key each, the same length: one stored
under the local key, one under the KMS's data key. Each side sets its own keyring (a
plain assignment on both), then looks up; rounds are interleaved, and the ratio is
their median, with the spread.

    python benchmarks/kms_lookup.py                          # SQLite and PostgreSQL
    python benchmarks/kms_lookup.py sqlite postgres mariadb  # any of these
"""

import sys

from _setup import compare, main

BUDGET = 1.1
NUMBER, REPEAT = 500, 21


def measure() -> float:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import byok
    from byok import crypto
    from byok.conf import conf
    from byok.kms import EnvelopeKeyring

    from kms_server import kms_options

    local_settings = settings.BYOK
    on_kms, on_local = User.objects.create_user("kms"), User.objects.create_user("local")
    body, other = "a1B2c3D4e5F6g7H8i9J0", "k1L2m3N4o5P6q7R8s9T0"
    byok.add_user_api_key(on_local, "openai", f"sk-proj-{other}{other}T3BlbkFJ{other}{other}")
    local = crypto.get_keyring()
    settings.BYOK = {**local_settings, "KEYRING": "kms", "KMS": kms_options()}
    conf.forget(setting="BYOK")
    crypto.reset_keyring()
    byok.add_user_api_key(on_kms, "openai", f"sk-proj-{body}{body}T3BlbkFJ{body}{body}")
    enveloped = crypto.get_keyring()
    assert isinstance(enveloped, EnvelopeKeyring)
    calls: list[str] = []
    enveloped.kms._client.meta.events.register(
        "before-call.kms", lambda model, **kwargs: calls.append(model.name)
    )

    def ours() -> object:
        crypto._current = enveloped
        return byok.get_user_api_key(on_kms, "openai")

    def baseline() -> object:
        crypto._current = local
        return byok.get_user_api_key(on_local, "openai")

    assert baseline() == f"sk-proj-{other}{other}T3BlbkFJ{other}{other}"
    with CaptureQueriesContext(connection) as queries:
        assert ours() == f"sk-proj-{body}{body}T3BlbkFJ{body}{body}"
    assert len(queries) == 1, queries.captured_queries
    ratio = compare(
        ("lookup, KMS data key", ours),
        ("lookup, local key", baseline),
        repeat=REPEAT,
        number=NUMBER,
    )
    assert calls == [], calls  # the data key stayed cached: no KMS call while timing
    return ratio


if __name__ == "__main__":
    sys.exit(main(__file__, measure, BUDGET))
