"""The test settings of a host with its own team model: ``organizations.Organization``,
whose ``Seat`` rows say who is in it (see tests/test_host_team_model.py)."""

from settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "organizations"]  # noqa: F405
BYOK_TEAM_MODEL = "organizations.Organization"
BYOK = {**BYOK, "TEAM_ADAPTER": "organizations.adapter.SeatAdapter"}  # noqa: F405

# Its own test database beside the suite's (SQLite: in memory anyway).
if "TEST" in DATABASES["default"]:  # noqa: F405
    DATABASES["default"]["TEST"]["NAME"] += "_organizations"  # noqa: F405
