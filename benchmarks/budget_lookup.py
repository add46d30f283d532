"""get_user_api_key with three budgets configured against the same lookup without.

Budget: ratio <= 1.1, and still one query and no write. Two users hold a key each;
one of them has three budgets covering the service (a day's, a week's on the
service, a month's on every service), with some spend. Both sides run in the same
process, interleaved; the ratio is the median of the rounds, with their spread.

    python benchmarks/budget_lookup.py                          # SQLite and PostgreSQL
    python benchmarks/budget_lookup.py sqlite postgres mariadb  # any of these
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

    plain, budgeted = User.objects.create_user("plain"), User.objects.create_user("budgeted")
    for user, body in ((plain, "a1B2c3D4e5F6g7H8i9J0"), (budgeted, "k1L2m3N4o5P6q7R8s9T0")):
        byok.add_user_api_key(user, "openai", f"sk-proj-{body}{body}T3BlbkFJ{body}{body}")
    byok.set_budget(budgeted, limit="100", service="openai", period="day", action="block")
    byok.set_budget(budgeted, limit="500", service="openai", period="week", action="block")
    byok.set_budget(budgeted, limit="1000", period="month", action="alert")
    byok.track_api_usage(budgeted, "openai", cost="1.25")

    def ours() -> object:
        return byok.get_user_api_key(budgeted, "openai")

    def baseline() -> object:
        return byok.get_user_api_key(plain, "openai")

    with CaptureQueriesContext(connection) as queries:
        assert len(byok.resolve_api_key(budgeted, "openai").budgets) == 3
    assert len(queries) == 1, queries.captured_queries
    return compare(
        ("lookup, 3 budgets", ours), ("lookup, no budget", baseline), repeat=REPEAT, number=NUMBER
    )


if __name__ == "__main__":
    sys.exit(main(__file__, measure, BUDGET))
