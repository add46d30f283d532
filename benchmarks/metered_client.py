"""A metered OpenAI client's call against the same call with a bare ``openai.OpenAI``.

Budget: ratio <= 1.10. Both clients call the same local server that answers like
OpenAI (tests/fake_provider.py): a chat completion, read whole and parsed by the
SDK. The metered one also reads the answer's usage, records it (one
``track_api_usage``, priced per model) and runs no hook. Both sides are timed in
the same process, interleaved round by round; the printed ratio is the median of
the rounds' ratios, with their spread. The recorded counts are checked exact.

A second line times the metered client with ``track_api_usage`` replaced by a
no-op: the client's own share (reading the answer, the hooks' plumbing) apart
from the database writes that record the call. Only the first line is judged.

    python benchmarks/metered_client.py                 # SQLite and PostgreSQL
    python benchmarks/metered_client.py sqlite mariadb  # any of sqlite, postgres, mariadb
"""

import sys

from _setup import compare, main

BUDGET = 1.10
NUMBER, REPEAT = 40, 15
KEY = "sk-proj-" + "a1B2" * 12 + "T3BlbkFJ" + "c3D4" * 12
MESSAGES = [{"role": "user", "content": "Say hello."}]


def measure() -> float:
    from decimal import Decimal

    import openai
    from django.conf import settings
    from django.contrib.auth.models import User

    import byok
    import byok.clients
    from byok.clients import meter
    from byok.models import KeyUsage

    from fake_provider import FakeProvider

    with FakeProvider() as server:
        settings.BYOK = {
            **settings.BYOK,
            "BASE_URLS": {"openai": server.openai_url},
            "ALLOW_PRIVATE_BASE_URLS": True,
        }
        user = User.objects.create_user("bench")
        byok.add_user_api_key(user, "openai", KEY)
        metered = byok.clients.openai(user)
        bare = openai.OpenAI(api_key=KEY, base_url=server.openai_url)

        def ours() -> object:
            return metered.chat.completions.create(model="gpt-4o", messages=MESSAGES)

        def baseline() -> object:
            return bare.chat.completions.create(model="gpt-4o", messages=MESSAGES)

        assert ours().usage == baseline().usage  # the same answer; warms both up
        ratio = compare(
            ("metered client", ours),
            ("bare openai.OpenAI", baseline),
            repeat=REPEAT,
            number=NUMBER,
        )
        day = KeyUsage.objects.get()
        calls = 1 + REPEAT * NUMBER
        assert (day.calls, day.input_tokens) == (calls, 1200 * calls), (day.calls, calls)
        recording = meter.track_api_usage
        meter.track_api_usage = lambda *args, **kwargs: Decimal(0)
        try:
            compare(
                ("  not recording", ours),
                ("bare openai.OpenAI", baseline),
                repeat=REPEAT,
                number=NUMBER,
            )
        finally:
            meter.track_api_usage = recording
        # The line judged is the full one: print its ratio last.
        print(f"  judged: the metered client with recording   ratio {ratio:.2f}")
        metered.close()
        bare.close()
        return ratio


if __name__ == "__main__":
    sys.exit(main(__file__, measure, BUDGET))
