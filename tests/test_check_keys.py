"""manage.py byok_check_keys: re-testing stored keys from cron."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
import requests
import responses
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from byok.keys import remove_user_api_key, set_key_active
from byok.models import AuditEvent, Notification, UserAPIKey
from byok.services.registry import registry

from factories import TeamAPIKeyFactory, TeamFactory, UserAPIKeyFactory, UserFactory
from fakes import fake_credentials, secret_values
from support import OTHER_ENCRYPTION_KEY

pytestmark = pytest.mark.django_db

OPENAI = "https://api.openai.com/v1/models"
ANTHROPIC = "https://api.anthropic.com/v1/models"
GITHUB = "https://api.github.com/user"
REJECTED = {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}
ANTHROPIC_REJECTED = {
    "type": "error",
    "error": {"type": "authentication_error", "message": "invalid x-api-key"},
}
VIA = "command:byok_check_keys"


def run(*args):
    """The command's stdout and stderr together, and the CommandError it raised, if any."""
    out, err = StringIO(), StringIO()
    try:
        call_command("byok_check_keys", *args, stdout=out, stderr=err)
    except CommandError as error:
        return out.getvalue() + err.getvalue(), error
    return out.getvalue() + err.getvalue(), None


def calls_to(mocked, url):
    return sum(call.request.url == url for call in mocked.calls)


def status_of(key):
    return UserAPIKey.objects.get(pk=key.pk).status


def audit_of_tests():
    return AuditEvent.objects.filter(action="tested")


def summary(output):
    """The summary table, as {outcome: keys}."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("outcome "))
    rows = {}
    for line in lines[start + 1 :]:
        label, _, count = line.rpartition(" ")
        rows[label.strip()] = int(count)
        if label.strip() == "total":
            return rows
    raise AssertionError("no total row")


def test_every_active_key_is_tested_recorded_and_audited(user, other_user, mocked):
    mocked.get(OPENAI, json={"data": []})
    keys = [UserAPIKeyFactory(user=user, nickname="work"), UserAPIKeyFactory(user=other_user)]
    output, error = run()
    assert error is None
    for key in keys:
        stored = UserAPIKey.objects.get(pk=key.pk)
        assert stored.status == "valid"
        assert stored.last_tested_at is not None
        assert stored.last_test_message == "OpenAI accepted the key."
        assert f"{key.pk}  owner {key.user_id}  openai" in output
    assert "openai 'work': untested -> valid" in output
    events = audit_of_tests()
    assert sorted(e.key_id for e in events) == sorted(k.pk for k in keys)
    assert [e.metadata for e in events] == [
        {"status": "valid", "http_status": 200, "via": VIA}
    ] * 2
    assert "No key is invalid." in output


def test_an_invalid_key_makes_the_command_fail(user, mocked):
    mocked.get(OPENAI, status=401, json=REJECTED)
    mocked.get(ANTHROPIC, json={"data": []})
    bad = UserAPIKeyFactory(user=user, service="openai")
    good = UserAPIKeyFactory(user=user, service="anthropic")
    output, error = run()
    assert error is not None
    assert error.returncode == 1
    assert str(error).startswith("1 key is invalid:")
    assert str(bad.pk) in str(error)
    assert str(good.pk) not in str(error)
    assert (status_of(bad), status_of(good)) == ("invalid", "valid")
    assert "untested -> invalid" in output


@pytest.mark.parametrize("status", [429, 503, None])
def test_keys_that_could_not_be_judged_are_not_a_failure(user, mocked, status):
    if status is None:
        mocked.get(OPENAI, body=requests.ConnectionError("down"))
    else:
        mocked.get(OPENAI, status=status, json={"error": {"message": "busy"}})
    key = UserAPIKeyFactory(user=user)
    output, error = run()
    assert error is None
    assert status_of(key) in ("rate_limited", "provider_error", "unreachable")
    assert "could not be judged" in output
    assert "Not a failure." in output


def test_verbosity_0_prints_nothing_unless_a_key_is_invalid(user, mocked):
    mocked.get(OPENAI, json={"data": []})
    key = UserAPIKeyFactory(user=user)
    assert run("--verbosity", "0") == ("", None)
    assert status_of(key) == "valid"
    mocked.replace(responses.GET, OPENAI, status=401, json=REJECTED)
    output, error = run("--verbosity", "0")
    assert output == ""
    assert error is not None
    assert error.returncode == 1


def test_switched_off_keys_only_with_include_inactive_and_deleted_never(user, mocked):
    mocked.get(OPENAI, json={"data": []})
    off, deleted = UserAPIKeyFactory.create_batch(2, user=user)
    set_key_active(off, False)
    remove_user_api_key(deleted)
    run()
    assert calls_to(mocked, OPENAI) == 0
    run("--include-inactive")
    assert calls_to(mocked, OPENAI) == 1
    assert (status_of(off), status_of(deleted)) == ("valid", "untested")


def test_user_by_username_or_pk(user, other_user, mocked):
    mocked.get(OPENAI, json={"data": []})
    mine, theirs = UserAPIKeyFactory(user=user), UserAPIKeyFactory(user=other_user)
    username = getattr(user, user.USERNAME_FIELD)
    run("--user", username)
    assert (status_of(mine), status_of(theirs)) == ("valid", "untested")
    run("--user", str(other_user.pk))
    assert status_of(theirs) == "valid"
    assert calls_to(mocked, OPENAI) == 2


@pytest.mark.parametrize("value", ["nobody@example.com", "not-a-pk", "12345"])
def test_an_unknown_user_is_a_clear_error(user, mocked, value):
    UserAPIKeyFactory(user=user)
    _, error = run("--user", value)
    assert error is not None
    field = get_user_model().USERNAME_FIELD
    assert f"No user has {field} or id {value!r}" in str(error)
    assert len(mocked.calls) == 0


def test_service_filter_is_repeatable(user, mocked):
    mocked.get(OPENAI, json={"data": []})
    mocked.get(ANTHROPIC, json={"data": []})
    openai, anthropic, github = (
        UserAPIKeyFactory(user=user, service=s) for s in ("openai", "anthropic", "github")
    )
    run("--service", "anthropic")
    assert [status_of(k) for k in (openai, anthropic, github)] == ["untested", "valid", "untested"]
    run("--service", "openai", "--service", "anthropic")
    assert status_of(openai) == "valid"
    assert status_of(github) == "untested"
    assert calls_to(mocked, GITHUB) == 0


def test_an_unknown_service_lists_the_valid_ids(user):
    _, error = run("--service", "openai", "--service", "nope")
    assert error is not None
    assert "Unknown service 'nope'" in str(error)
    assert all(service.id in str(error) for service in registry)


def test_stale_days_keeps_keys_never_or_long_ago_tested(user, mocked):
    mocked.get(OPENAI, json={"data": []})
    long_ago, recently, never = UserAPIKeyFactory.create_batch(3, user=user)
    now = timezone.now()
    for key, days in ((long_ago, 10), (recently, 1)):
        UserAPIKey.objects.filter(pk=key.pk).update(
            status="valid", last_tested_at=now - timedelta(days=days)
        )
    run("--stale-days", "7")
    assert calls_to(mocked, OPENAI) == 2
    tested = set(audit_of_tests().values_list("key_id", flat=True))
    assert tested == {long_ago.pk, never.pk}


def test_dry_run_counts_per_service_and_sends_and_writes_nothing(user, other_user):
    UserAPIKeyFactory(user=user, service="openai")
    UserAPIKeyFactory(user=other_user, service="openai")
    key = UserAPIKeyFactory(user=user, service="anthropic")
    events = AuditEvent.objects.count()
    with responses.RequestsMock() as mock:
        output, error = run("--dry-run")
        assert len(mock.calls) == 0
    assert error is None
    assert "Dry run: 3 keys would be tested" in output
    rows = [line.split() for line in output.splitlines()[1:]]
    assert rows == [["anthropic", "1"], ["openai", "2"]]
    assert AuditEvent.objects.count() == events
    assert UserAPIKey.objects.get(pk=key.pk).last_tested_at is None


def test_a_rate_limited_service_is_left_alone_for_the_rest_of_the_run(user, mocked):
    mocked.get(OPENAI, status=429, json={"error": {"message": "Rate limit reached"}})
    mocked.get(ANTHROPIC, json={"data": []})
    openai = UserAPIKeyFactory.create_batch(3, user=user, service="openai")
    anthropic = UserAPIKeyFactory.create_batch(2, user=user, service="anthropic")
    output, error = run("--concurrency", "1")
    assert error is None
    assert calls_to(mocked, OPENAI) == 1
    assert calls_to(mocked, ANTHROPIC) == 2
    assert sorted(status_of(k) for k in openai) == ["rate_limited", "untested", "untested"]
    assert [status_of(k) for k in anthropic] == ["valid", "valid"]
    assert audit_of_tests().count() == 3
    assert summary(output) == {
        "rate_limited": 1,
        "valid": 2,
        "skipped (rate limited)": 2,
        "total": 5,
    }
    assert "Rate limited by openai: 2 keys were not tested" in output


def test_with_concurrency_no_new_probe_starts_after_a_429(user, mocked):
    mocked.get(OPENAI, status=429, json={"error": {"message": "Rate limit reached"}})
    keys = UserAPIKeyFactory.create_batch(8, user=user)
    output, error = run("--concurrency", "3")
    assert error is None
    probed = calls_to(mocked, OPENAI)
    assert 1 <= probed <= 3  # only those already in flight
    statuses = [status_of(k) for k in keys]
    assert statuses.count("rate_limited") == probed
    assert statuses.count("untested") == 8 - probed
    assert summary(output)["skipped (rate limited)"] == 8 - probed


def test_probes_run_concurrently_and_results_are_recorded(user, mocked):
    both_in_flight = threading.Barrier(2, timeout=5)
    threads = set()

    def answer(request):
        threads.add(threading.current_thread().name)
        both_in_flight.wait()  # breaks (and the run fails) unless two probes overlap
        return 200, {}, '{"data": []}'

    mocked.add_callback(responses.GET, OPENAI, callback=answer)
    keys = UserAPIKeyFactory.create_batch(2, user=user)
    _, error = run("--concurrency", "2")
    assert error is None
    assert len(threads) == 2
    assert all(name.startswith("byok-check") for name in threads)
    assert [status_of(k) for k in keys] == ["valid", "valid"]
    assert audit_of_tests().filter(metadata__via=VIA).count() == 2


def test_an_undecryptable_key_is_counted_and_the_run_goes_on(user, mocked):
    mocked.get(OPENAI, json={"data": []})
    with override_settings(BYOK={"ENCRYPTION_KEYS": [OTHER_ENCRYPTION_KEY]}):
        lost = UserAPIKeyFactory(user=user)
    readable = UserAPIKeyFactory(user=user)
    output, error = run()
    assert error is not None
    assert error.returncode == 1
    assert str(error) == "1 key cannot be decrypted."
    assert calls_to(mocked, OPENAI) == 1
    assert (status_of(lost), status_of(readable)) == ("untested", "valid")
    assert f"{lost.pk}  owner {user.pk}  openai: untested -> undecryptable" in output
    assert summary(output) == {"valid": 1, "undecryptable": 1, "total": 2}
    assert "1 key cannot be decrypted with BYOK['ENCRYPTION_KEYS']" in output
    assert list(audit_of_tests().values_list("key_id", flat=True)) == [readable.pk]


def test_keys_of_a_disabled_service_are_counted_not_probed(user, mocked, settings):
    key = UserAPIKeyFactory(user=user, service="github")
    settings.BYOK = {**settings.BYOK, "DISABLED_SERVICES": ["github"]}
    output, error = run()
    assert error is None
    assert len(mocked.calls) == 0
    assert summary(output) == {"unknown_service": 1, "total": 1}
    assert status_of(key) == "untested"


@pytest.mark.parametrize(
    "args",
    [
        ["--concurrency", "0"],
        ["--concurrency", "33"],
        ["--concurrency", "many"],
        ["--stale-days", "-1"],
        ["--stale-days", "7d"],
        ["--stale-days", "99999999999"],
        ["--service"],
    ],
)
def test_bad_option_values_are_command_errors(user, mocked, args):
    UserAPIKeyFactory(user=user)
    _, error = run(*args)
    assert error is not None
    assert len(mocked.calls) == 0
    assert status_of(UserAPIKey.objects.get()) == "untested"


def test_the_output_never_contains_a_secret(user, other_user, mocked):
    mocked.get(OPENAI, json={"data": []})
    mocked.get(ANTHROPIC, status=401, json=ANTHROPIC_REJECTED)
    secrets = []
    for owner, service in ((user, "openai"), (other_user, "anthropic"), (user, "twilio")):
        credentials = fake_credentials(service)
        UserAPIKeyFactory(
            user=owner, service=service, credentials=credentials, nickname=f"{service} key"
        )
        secrets += secret_values(credentials)
    output, error = run("--verbosity", "3")
    assert error is not None
    everything = output + str(error)
    assert "untested -> invalid (Anthropic" in everything
    assert len(secrets) == 4
    for secret in secrets:
        assert secret not in everything
        assert secret[-8:] not in everything


# team keys --------------------------------------------------------------------------


@pytest.fixture
def team():
    """A team named Acme, its owner at ``team.owner``."""
    owner = UserFactory()
    team = TeamFactory(name="Acme", owner=owner)
    team.owner = owner
    return team


class TestCheckKeys:
    def test_team_keys_are_tested_and_an_invalid_one_tells_the_teams_managers(self, team, mocked):
        mocked.get(OPENAI, status=401, json=REJECTED)
        secret = fake_credentials("openai")
        key = TeamAPIKeyFactory(team=team, actor=team.owner, credentials=secret)
        output, error = run()
        assert error is not None
        assert f"{key.pk}  owner team:{team.pk}  openai: untested -> invalid" in output
        assert secret not in output + str(error)
        key.refresh_from_db()
        assert key.status == "invalid"
        tested = AuditEvent.objects.get(action="tested")
        assert (tested.team_id, tested.actor_id) == (team.pk, None)
        assert list(Notification.objects.values_list("user", flat=True)) == [team.owner.pk]

    @pytest.mark.parametrize("which", ["id", "name"])
    def test_team_takes_one_teams_keys(self, team, mocked, which):
        mocked.get(OPENAI, json={"data": []})
        key = TeamAPIKeyFactory(team=team, actor=team.owner)
        others = [TeamAPIKeyFactory(), UserAPIKeyFactory(user=team.owner)]
        output, error = run("--team", str(team.pk) if which == "id" else "Acme")
        assert error is None
        assert str(key.pk) in output
        assert not [other for other in others if str(other.pk) in output]
        assert UserAPIKey.objects.filter(status="valid").get() == key

    def test_a_dry_run_counts_one_teams_keys(self, team):
        TeamAPIKeyFactory(team=team, actor=team.owner)
        TeamAPIKeyFactory()
        output, _error = run("--team", str(team.pk), "--dry-run")
        assert "Dry run: 1 keys would be tested" in output

    @pytest.mark.parametrize("value", ["999999", "nobody", "\x00"])
    def test_an_unknown_team_is_a_clear_error(self, value):
        _output, error = run("--team", value)
        assert "No team has id or name" in str(error)

    def test_two_teams_of_one_name_need_the_id(self, team):
        TeamFactory(name="Acme")
        _output, error = run("--team", "Acme")
        assert "Several teams have name 'Acme'" in str(error)

    def test_user_and_team_together_are_refused(self, team):
        with pytest.raises(CommandError, match="not allowed with argument"):
            call_command("byok_check_keys", "--user", str(team.owner.pk), "--team", str(team.pk))
