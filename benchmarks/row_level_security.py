"""get_user_api_key with PostgreSQL row-level security on against off.

Budget: ratio <= 1.25, still one query. "On": byok's policies on its tables, the
lookup run as a role they hold (not a superuser, no BYPASSRLS) with the user set, as
inside a request. "Off": the same statement as the superuser, whom PostgreSQL never
applies row-level security to, so the planner sees no policy at all. One connection
switches role between the two sides of each round (``SET ROLE``, outside the timing);
the ratio is the median of the rounds, with their spread. Measured for a user's own
key and for a team's key (the policies look up the user's teams), and once for what
the middleware adds to a request (setting the user, then clearing it).

    python benchmarks/row_level_security.py           # PostgreSQL (the only database)
"""

import os
import statistics
import sys
import timeit
from io import StringIO

from _setup import run_per_database, summary

BUDGET = 1.25
NUMBER, REPEAT = 300, 21
ROLE = f"byok_rls_bench_{os.getpid()}"


def measure() -> float:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings

    import byok
    from byok.models import Team, TeamRole

    with override_settings(BYOK={**settings.BYOK, "POSTGRES_ROW_LEVEL_SECURITY": True}):
        alone, member = User.objects.create_user("alone"), User.objects.create_user("member")
        team = Team.objects.create(name="Research")
        team.add_member(member, TeamRole.OWNER)
        body = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
        for index in range(40):  # other users' rows, which the policies must skip
            other = User.objects.create_user(f"other{index}")
            filler = (body * 3)[index : index + 74]
            byok.add_user_api_key(other, "openai", f"sk-proj-{filler}T3BlbkFJ{filler}")
        byok.add_user_api_key(alone, "openai", f"sk-proj-{body[:74]}T3BlbkFJ{body[:74]}")
        byok.add_team_api_key(
            team, "openai", f"sk-proj-{body[1:75]}T3BlbkFJ{body[1:75]}", actor=member
        )
        call_command("byok_row_level_security", "enable", stdout=StringIO())
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS")
            cursor.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
            cursor.execute(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}"
            )
            cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")
        try:
            team_ratio = side_by_side(
                "team's key", lambda: byok.get_user_api_key(member, "openai", team=team), member
            )
            own_ratio = side_by_side(
                "own key", lambda: byok.get_user_api_key(alone, "openai"), alone
            )
            request_overhead(alone)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET ROLE")
                cursor.execute(f"DROP OWNED BY {ROLE}")
                cursor.execute(f"DROP ROLE {ROLE}")
        ratio = max(team_ratio, own_ratio)
        print(f"  lookup with row-level security on against off, the worse   ratio {ratio:.2f}")
        return ratio


def as_role(on: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {ROLE}" if on else "RESET ROLE")


def side_by_side(name: str, lookup, user) -> float:
    """Time ``lookup`` as the role (row-level security on, ``user`` set) and as the
    superuser (off), interleaved round by round; print and return the median ratio."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from byok import rls

    rounds = []
    with rls.acting_for(user):
        as_role(True)
        with CaptureQueriesContext(connection) as queries:
            assert lookup() is not None  # the policies let the user's own row through
        assert len(queries) == 1, queries.captured_queries
        for _ in range(REPEAT):
            as_role(True)
            on = timeit.timeit(lookup, number=NUMBER) / NUMBER
            as_role(False)
            off = timeit.timeit(lookup, number=NUMBER) / NUMBER
            rounds.append((on, off))
    ratio, spread = summary(rounds)
    print(
        f"  lookup, {name}: RLS on {statistics.median(a for a, _ in rounds) * 1e6:7.1f} us   "
        f"off {statistics.median(b for _, b in rounds) * 1e6:7.1f} us   ({spread})   "
        f"ratio {ratio:.2f}"
    )
    return ratio


def request_overhead(user) -> None:
    """What the middleware adds to each request: one statement to set the user, one
    to clear it."""
    from byok import rls

    as_role(True)

    def set_and_clear() -> None:
        rls.leave(rls.enter(rls.Scope(rls.user_id(user))))

    seconds = min(timeit.repeat(set_and_clear, number=NUMBER, repeat=5)) / NUMBER
    print(f"  the middleware's two statements per request: {seconds * 1e6:.1f} us")
    as_role(False)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        from _setup import configure, teardown

        configure(sys.argv[2])
        try:
            measure()
        finally:
            teardown()
        sys.exit(0)
    sys.exit(run_per_database(__file__, ["postgres"], BUDGET))
