"""get_user_api_key served by a team's key against the same lookup of a user's own key.

Budget: ratio <= 1.1, and still one query and no write. One user holds a key of
their own; another, without one, is a member of a team (of three) whose key serves
them, asked for with ``team=``. Both sides run in the same process, interleaved; the
ratio is the median of the rounds, with their spread.

    python benchmarks/team_lookup.py                          # SQLite and PostgreSQL
    python benchmarks/team_lookup.py sqlite postgres mariadb  # any of these
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
    from byok.models import Team, TeamRole

    alone, member = User.objects.create_user("alone"), User.objects.create_user("member")
    admin = User.objects.create_user("admin")
    team = Team.objects.create(name="Research")
    team.add_member(admin, TeamRole.OWNER)
    team.add_member(member)
    team.add_member(User.objects.create_user("other"))
    body, other = "a1B2c3D4e5F6g7H8i9J0", "k1L2m3N4o5P6q7R8s9T0"
    byok.add_user_api_key(alone, "openai", f"sk-proj-{body}{body}T3BlbkFJ{body}{body}")
    byok.add_team_api_key(
        team, "openai", f"sk-proj-{other}{other}T3BlbkFJ{other}{other}", actor=admin
    )

    def ours() -> object:
        return byok.get_user_api_key(member, "openai", team=team)

    def baseline() -> object:
        return byok.get_user_api_key(alone, "openai")

    with CaptureQueriesContext(connection) as queries:
        assert byok.resolve_api_key(member, "openai", team=team).source == "team"
    assert len(queries) == 1, queries.captured_queries
    return compare(
        ("lookup, team's key", ours), ("lookup, own key", baseline), repeat=REPEAT, number=NUMBER
    )


if __name__ == "__main__":
    sys.exit(main(__file__, measure, BUDGET))
