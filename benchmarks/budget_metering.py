"""track_api_usage on a key one budget covers against the same call with no budget.

Budget: ratio <= 1.5. With a budget the call also adds to the budget's spend (and
checks its alert thresholds) in the usage's transaction; both sides pass what
resolve_api_key returned, so neither reads anything first. Both run in the same
process, interleaved; the ratio is the median of the rounds, with their spread.

    python benchmarks/budget_metering.py                          # SQLite and PostgreSQL
    python benchmarks/budget_metering.py sqlite postgres mariadb  # any of these
"""

import sys

from _setup import compare, main

BUDGET = 1.5
NUMBER, REPEAT = 200, 15


def measure() -> float:
    from django.contrib.auth.models import User

    import byok
    from byok.models import Budget

    plain, budgeted = User.objects.create_user("plain"), User.objects.create_user("budgeted")
    for user, body in ((plain, "a1B2c3D4e5F6g7H8i9J0"), (budgeted, "k1L2m3N4o5P6q7R8s9T0")):
        byok.add_user_api_key(user, "openai", f"sk-proj-{body}{body}T3BlbkFJ{body}{body}")
    byok.set_budget(budgeted, limit="1000000", service="openai", action="block")
    plain_key = byok.resolve_api_key(plain, "openai")
    budgeted_key = byok.resolve_api_key(budgeted, "openai")

    def ours() -> object:
        return byok.track_api_usage(budgeted, "openai", cost="0.001", key=budgeted_key)

    def baseline() -> object:
        return byok.track_api_usage(plain, "openai", cost="0.001", key=plain_key)

    ours(), baseline()
    assert Budget.objects.get().spent == Budget.objects.get().spent.__class__("0.001")
    return compare(
        ("metering, 1 budget", ours),
        ("metering, no budget", baseline),
        repeat=REPEAT,
        number=NUMBER,
    )


if __name__ == "__main__":
    sys.exit(main(__file__, measure, BUDGET))
