"""``byok_rotate_keys --verify``, the dashboard's "needs re-entering" badge and the
admin's "decryptable" filter: finding the stored secrets no configured key opens."""

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from byok import rotation
from byok.crypto import get_keyring
from byok.fields import SealedCredentials
from byok.keys import remove_user_api_key
from byok.models import UserAPIKey

from factories import TeamAPIKeyFactory, UserAPIKeyFactory
from fakes import fake_credentials, secret_values
from support import OTHER_ENCRYPTION_KEY

pytestmark = pytest.mark.django_db

CONFIGURED = settings.BYOK["ENCRYPTION_KEYS"][0]


def keys(*values):
    return override_settings(BYOK={**settings.BYOK, "ENCRYPTION_KEYS": list(values)})


class Stored:
    """Three readable keys, two under a key since removed from the settings (one a
    team's) and one whose ciphertext was tampered with; one more deleted."""

    def __init__(self, user):
        self.secrets = []

        def add(factory, **options):
            credentials = fake_credentials(options.get("service", "openai"))
            self.secrets.extend(secret_values(credentials))
            return factory(credentials=credentials, **options)

        self.readable = [
            add(UserAPIKeyFactory, user=user, service=service)
            for service in ("openai", "twilio", "aws_s3")
        ]
        with keys(OTHER_ENCRYPTION_KEY):
            self.lost_id = get_keyring().primary.id
            self.lost = [
                add(UserAPIKeyFactory, user=user, service="stripe"),
                add(TeamAPIKeyFactory, service="github"),
            ]
        self.tampered = add(UserAPIKeyFactory, user=user, service="anthropic")
        token = self.tampered.credentials.token
        flipped = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
        UserAPIKey.objects.filter(pk=self.tampered.pk).update(
            credentials=SealedCredentials(flipped)
        )
        remove_user_api_key(add(UserAPIKeyFactory, user=user, service="sentry"))
        self.configured_id = get_keyring().primary.id


@pytest.fixture
def stored(user):
    return Stored(user)


def verify(*args):
    out = StringIO()
    try:
        call_command("byok_rotate_keys", "--verify", *args, stdout=out)
    except CommandError as error:
        return out.getvalue(), error
    return out.getvalue(), None


def test_verify_lists_each_row_that_fails_per_key_and_format_and_fails(stored):
    output, error = verify("--batch-size", "1")
    assert error is not None
    assert "3 of 6 stored secrets cannot be decrypted" in str(error)
    lost_user, lost_team = stored.lost
    assert (
        f"  {stored.lost_id}  v2  {lost_user.pk}  user:{lost_user.user_id}  stripe  "
        "(it was encrypted with a key that is not in BYOK['ENCRYPTION_KEYS'])"
    ) in output
    assert f"  {stored.lost_id}  v2  {lost_team.pk}  team:{lost_team.team_id}  github  " in output
    tampered = stored.tampered
    assert (
        f"  {stored.configured_id}  v2  {tampered.pk}  user:{tampered.user_id}  anthropic  "
        "(the ciphertext does not authenticate with this key in this row"
    ) in output
    table = output.split("(checked, failed):")[1]
    assert f"  {stored.configured_id}  v2  primary                  4          1" in table
    assert f"  {stored.lost_id}  v2  NOT CONFIGURED           2          2" in table
    for readable in stored.readable:
        assert str(readable.pk) not in output


def test_verify_prints_no_secret_and_changes_nothing(stored):
    before = list(UserAPIKey.objects.values_list("pk", "credentials").order_by("pk"))
    output, error = verify()
    assert error is not None
    for secret in stored.secrets:
        assert secret not in output
        assert secret not in str(error)
    assert list(UserAPIKey.objects.values_list("pk", "credentials").order_by("pk")) == before


def test_verify_passes_once_the_lost_key_is_back_and_the_tampered_row_is_gone(stored):
    remove_user_api_key(stored.tampered)
    with keys(CONFIGURED, OTHER_ENCRYPTION_KEY):
        output, error = verify()
    assert error is None
    assert "All 5 stored secrets decrypt." in output
    assert "cannot be decrypted" not in output


def run_from_argv(monkeypatch, *args):
    """The command as ``manage.py`` runs it: its exit status (0 when it returns)."""
    from django.core.management.base import connections

    from byok.management.commands.byok_rotate_keys import Command

    monkeypatch.setattr(connections, "close_all", lambda: None)  # the test's transaction
    try:
        Command().run_from_argv(["manage.py", "byok_rotate_keys", *args])
    except SystemExit as exit:
        return exit.code
    return 0


def test_the_exit_status_is_1_when_a_row_fails_and_0_when_none_does(stored, monkeypatch, capsys):
    assert run_from_argv(monkeypatch, "--verify") == 1
    assert "cannot be decrypted" in capsys.readouterr().err
    UserAPIKey.objects.filter(pk__in=[key.pk for key in [*stored.lost, stored.tampered]]).delete()
    assert run_from_argv(monkeypatch, "--verify") == 0


def test_verify_reads_a_batch_per_statement(user):
    def statements(rows, batch_size):
        for _ in range(rows):
            UserAPIKeyFactory(user=user)
        with CaptureQueriesContext(connection) as queries:
            report = rotation.verify(batch_size=batch_size)
        UserAPIKey.objects.all().delete()
        assert report.failures == 0
        return len(queries)

    assert statements(8, 4) == statements(16, 8) == statements(2, 1)


def test_verify_and_dry_run_do_not_combine():
    with pytest.raises(CommandError, match="not allowed with"):
        call_command("byok_rotate_keys", "--verify", "--dry-run", stdout=StringIO())


# The dashboard: the stored key id against the keyring's, no decryption.


def badges(response):
    return response.content.decode().count('data-byok-reminder="needs_reentering"')


def test_the_dashboard_shows_keys_under_a_lost_key_as_needing_re_entering(client, stored, user):
    client.force_login(user)
    response = client.get(reverse("byok:dashboard"))
    assert response.status_code == 200
    assert badges(response) == 1  # the user's lost key; the team's is not on this page
    assert "Needs re-entering" in response.content.decode()
    with keys(CONFIGURED, OTHER_ENCRYPTION_KEY):
        assert badges(client.get(reverse("byok:dashboard"))) == 0


def test_the_badge_costs_no_query(client, user, django_assert_num_queries):
    client.force_login(user)
    UserAPIKeyFactory(user=user)
    url = reverse("byok:dashboard")
    client.get(url)  # warm caches
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    with keys(OTHER_ENCRYPTION_KEY):
        for service in ("stripe", "github", "twilio"):
            UserAPIKeyFactory(user=user, service=service)
    with django_assert_num_queries(len(one)):
        response = client.get(url)
    assert badges(response) == 3


# The admin's filter.


@pytest.mark.parametrize(
    ("value", "expected"), [("yes", "readable_and_tampered"), ("no", "lost"), ("", "alive")]
)
def test_the_admin_filters_keys_by_whether_their_key_is_configured(
    admin_client, stored, value, expected
):
    changelist = reverse("admin:byok_userapikey_changelist")
    response = admin_client.get(changelist, {"decryptable": value} if value else {})
    assert response.status_code == 200
    listed = {str(key.pk) for key in response.context["cl"].result_list}
    groups = {
        "readable_and_tampered": {*stored.readable, stored.tampered},
        "lost": set(stored.lost),
    }
    groups["alive"] = groups["readable_and_tampered"] | groups["lost"]
    assert listed >= {str(key.pk) for key in groups[expected]}
    if expected != "alive":
        assert listed == {str(key.pk) for key in groups[expected]}
    for secret in stored.secrets:
        assert secret not in response.content.decode()
