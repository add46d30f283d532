import io
import json
import tempfile

import pytest
import responses
from django.core.management import CommandError, call_command

from byok.importing import MAX_BYTES
from byok.models import AuditEvent, UserAPIKey
from byok.services.registry import registry

from factories import TeamFactory, UserAPIKeyFactory, UserFactory
from fakes import fake_credentials, rand, secret_values

pytestmark = pytest.mark.django_db


def env_lines(service, credentials):
    """``NAME=value`` lines for a credential, with the first name each field declares."""
    if isinstance(credentials, str):
        credentials = {registry.get(service).fields[0].name: credentials}
    names = {spec.name: spec.env[0] for spec in registry.get(service).fields}
    return [f"{names[name]}={value}" for name, value in credentials.items()]


def run(user, content, *args):
    """The command's output and its error (``None`` if it succeeded); ``None`` reads stdin."""
    out = io.StringIO()
    path = "-" if content is None else _file(content)
    try:
        call_command("byok_import", path, "--user", user.get_username(), *args, stdout=out)
    except CommandError as error:
        return out.getvalue(), str(error)
    return out.getvalue(), None


def _file(content):
    data = content if isinstance(content, bytes) else content.encode()
    with tempfile.NamedTemporaryFile(suffix=".env", delete=False) as file:
        file.write(data)
    return file.name


def test_a_env_file_with_every_service_imports_each_once_and_prints_no_secret(user):
    credentials = {service.id: fake_credentials(service.id) for service in registry}
    lines = ["# keys", "DEBUG=1"]
    for service, value in credentials.items():
        lines += env_lines(service, value)
    output, error = run(user, "\n".join(lines) + "\n")

    assert error is None
    assert UserAPIKey.objects.filter(user=user).count() == 12
    for service, value in credentials.items():
        key = UserAPIKey.objects.get(user=user, service=service)
        stored = key.get_credentials()
        expected = value if isinstance(value, dict) else {"api_key": value}
        assert stored == expected
    assert "DEBUG (line 2): unknown variable" in output
    assert "TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN" in output
    assert "imported: 12, unknown variable: 1." in output
    for value in credentials.values():
        for secret in secret_values(value):
            if len(secret) > 12:
                assert secret not in output
    events = AuditEvent.objects.filter(action="imported")
    assert events.count() == 12
    assert {event.metadata["via"] for event in events} == {"command:byok_import"}


def test_the_usual_env_syntax_is_understood(user):
    openai, github, stripe = (fake_credentials(s) for s in ("openai", "github", "stripe"))
    text = (
        "\ufeff# comment\r\n"
        f'export OPENAI_API_KEY="{openai}"\r\n'
        f"GITHUB_TOKEN='{github}'\r\n"
        f"STRIPE_SECRET_KEY = {stripe}  # the test key\r\n"
        "\r\n"
    )
    output, error = run(user, text)
    assert error is None, output
    assert UserAPIKey.objects.get(service="openai").get_secret() == openai
    assert UserAPIKey.objects.get(service="github").get_secret() == github
    assert UserAPIKey.objects.get(service="stripe").get_secret() == stripe


def test_a_malformed_line_fails_the_import_without_echoing_the_line(user):
    stray = fake_credentials("openai")
    good = fake_credentials("anthropic")
    output, error = run(user, f"{stray}\nANTHROPIC_API_KEY={good}\n")
    assert "line 1: malformed: Expected NAME=value." in output
    assert error == "1 entry could not be imported."
    assert stray not in output + error
    # Without --atomic the good entries are kept.
    assert UserAPIKey.objects.filter(user=user, service="anthropic").exists()


def test_atomic_imports_nothing_when_anything_fails(user):
    text = "\n".join(
        [
            *env_lines("openai", fake_credentials("openai")),
            *env_lines("twilio", fake_credentials("twilio")),
            "SENDGRID_API_KEY=not-a-sendgrid-key",
        ]
    )
    output, error = run(user, text, "--atomic")
    assert error == "1 entry could not be imported."
    assert "SENDGRID_API_KEY (line 4) SendGrid: format error" in output
    assert output.count("not imported: The import failed.") == 2
    assert not UserAPIKey.objects.exists()
    assert not AuditEvent.objects.exists()


def test_duplicates_in_the_file_and_in_the_database_are_skipped(user):
    stored = UserAPIKeyFactory(user=user, service="openai")
    again = fake_credentials("github")
    text = "\n".join(
        [f"OPENAI_API_KEY={stored.get_secret()}", f"GITHUB_TOKEN={again}", f"GH_TOKEN={again}"]
    )
    # GITHUB_TOKEN and GH_TOKEN name the same field: the first declared name wins.
    output, error = run(user, text)
    assert error is None
    assert "OPENAI_API_KEY (line 1) OpenAI: duplicate" in output
    assert "GITHUB_TOKEN (line 2) GitHub: imported" in output
    assert UserAPIKey.objects.filter(user=user).count() == 2

    json_text = json.dumps(
        [{"service": "sentry", "credentials": (sentry := fake_credentials("sentry"))}] * 2
    )
    output, error = run(user, json_text)
    assert error is None
    assert "item 1 Sentry: imported" in output
    assert "item 2 Sentry: duplicate" in output
    assert sentry not in output


def test_another_users_identical_key_is_not_a_duplicate(user, other_user):
    key = UserAPIKeyFactory(user=other_user, service="openai")
    _output, error = run(user, f"OPENAI_API_KEY={key.get_secret()}")
    assert error is None
    assert UserAPIKey.objects.filter(user=user).count() == 1


def test_variables_without_a_secret_are_ignored_not_failed(user):
    output, error = run(user, "AWS_REGION=eu-west-1\nGA_MEASUREMENT_ID=G-ABCDEF1234\n")
    assert error is None
    assert "AWS_REGION (line 1) AWS S3: ignored: No secret for this service." in output
    assert not UserAPIKey.objects.exists()


def test_a_half_pair_with_its_secret_is_a_format_error(user):
    output, error = run(user, f"TWILIO_AUTH_TOKEN={rand(32, '0123456789abcdef')}\n")
    assert "Twilio: format error" in output
    assert error is not None
    assert not UserAPIKey.objects.exists()


def test_cloudinary_url_is_split_into_its_fields(user):
    secret = rand(27)
    output, error = run(user, f"CLOUDINARY_URL=cloudinary://123456789012345:{secret}@my-cloud")
    assert error is None, output
    assert UserAPIKey.objects.get(service="cloudinary").get_credentials() == {
        "cloud_name": "my-cloud",
        "api_key": "123456789012345",
        "api_secret": secret,
    }
    assert secret not in output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file holds no keys."),
        (b"# only a comment\n\n", "The file holds no keys."),
        (b"[]", "The file holds no keys."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This is not a text file."),
        (b"OPENAI_API_KEY=\xff\xfe\n", "This is not a UTF-8 text file."),
        (b'[{"service": "openai"', "This is not valid JSON."),
        (b'{"service": "openai"}', "Expected a JSON list of keys."),
    ],
)
def test_files_that_hold_no_keys_are_refused_clearly(user, content, message):
    _output, error = run(user, content)
    assert error == message
    assert not UserAPIKey.objects.exists()


def test_a_10_mb_file_is_refused_unread_and_nothing_is_imported(user):
    good = "\n".join(env_lines("openai", fake_credentials("openai")))
    content = (good + "\n" + "# padding " * (10 * 1024 * 1024 // 10)).encode()
    assert len(content) > 10 * 1024 * 1024
    _output, error = run(user, content, "--atomic")
    assert error == f"The file is larger than {MAX_BYTES // 1024} KB."
    assert not UserAPIKey.objects.exists()


def test_dry_run_checks_everything_and_stores_nothing(user):
    UserAPIKeyFactory(
        user=user, service="github", credentials=(github := fake_credentials("github"))
    )
    text = f"OPENAI_API_KEY={fake_credentials('openai')}\nGITHUB_TOKEN={github}\n"
    output, error = run(user, text, "--dry-run")
    assert error is None
    assert "OpenAI: would import" in output
    assert "GitHub: duplicate" in output
    assert output.endswith("Dry run. would import: 1, duplicate: 1.\n")
    assert UserAPIKey.objects.filter(user=user).count() == 1


@responses.activate
def test_with_test_a_rejected_key_is_not_stored_and_a_valid_one_records_its_status(user):
    responses.get("https://api.openai.com/v1/models", json={"data": []})
    responses.get("https://api.anthropic.com/v1/models", status=401, json={"error": {}})
    text = "\n".join(
        [
            *env_lines("openai", fake_credentials("openai")),
            *env_lines("anthropic", fake_credentials("anthropic")),
        ]
    )
    output, error = run(user, text, "--test")
    assert "OpenAI: imported" in output
    assert "Anthropic: rejected by the provider" in output
    assert error == "1 entry could not be imported."
    assert UserAPIKey.objects.get(user=user).status == "valid"


def test_json_lists_name_the_service_and_may_set_nickname_and_environment(user):
    items = [
        {"service": "openai", "credentials": fake_credentials("openai"), "nickname": "Work"},
        {"service": "twilio", "credentials": fake_credentials("twilio"), "environment": "test"},
        {"service": "nope", "credentials": "x"},
        "OPENAI_API_KEY=sk-…",
        {"service": "openai", "credentials": 42},
    ]
    output, error = run(user, json.dumps(items), "--environment", "development")
    assert "item 3: format error: Unknown service." in output
    assert "item 4: malformed" in output
    assert "item 5 OpenAI: format error" in output
    assert error == "3 entries could not be imported."
    openai = UserAPIKey.objects.get(service="openai")
    assert (openai.nickname, openai.environment) == ("Work", "development")
    assert UserAPIKey.objects.get(service="twilio").environment == "test"


def test_standard_input_and_unknown_users_and_files(user, monkeypatch):
    monkeypatch.setattr(
        "sys.stdin",
        io.TextIOWrapper(io.BytesIO(b"GH_TOKEN=" + fake_credentials("github").encode())),
    )
    _output, error = run(user, None)
    assert error is None
    assert UserAPIKey.objects.filter(service="github").exists()

    with pytest.raises(CommandError, match="No user has"):
        call_command("byok_import", "-", "--user", "nobody@example.com")
    with pytest.raises(CommandError, match=r"Cannot read /nonexistent\.env"):
        call_command("byok_import", "/nonexistent.env", "--user", user.get_username())


# team keys --------------------------------------------------------------------------


@pytest.fixture
def team():
    """A team named Acme, its owner at ``team.owner``."""
    owner = UserFactory()
    team = TeamFactory(name="Acme", owner=owner)
    team.owner = owner
    return team


def run_import(content, *args):
    out = io.StringIO()
    call_command("byok_import", _file(content), *args, stdout=out)
    return out.getvalue()


class TestImport:
    def test_a_file_imported_for_a_team_is_the_teams_keys(self, team):
        openai, github = fake_credentials("openai"), fake_credentials("github")
        content = f"OPENAI_API_KEY={openai}\nGH_TOKEN={github}\n"
        output = run_import(content, "--team", "Acme")
        assert "imported: 2" in output
        assert openai not in output
        assert github not in output
        stored = UserAPIKey.objects.filter(team=team)
        assert {key.service: key.get_secret() for key in stored} == {
            "openai": openai,
            "github": github,
        }
        assert not stored.filter(user__isnull=False).exists()
        events = AuditEvent.objects.filter(action="imported")
        assert {(event.team_id, event.owner_id) for event in events} == {(team.pk, None)}

    def test_a_secret_the_team_has_is_a_duplicate_one_a_member_has_is_not(self, team):
        secret = fake_credentials("openai")
        UserAPIKeyFactory(user=team.owner, credentials=secret)
        assert "imported: 1" in run_import(f"OPENAI_API_KEY={secret}\n", "--team", str(team.pk))
        again = run_import(f"OPENAI_API_KEY={secret}\n", "--team", str(team.pk))
        assert "duplicate: 1" in again
        assert UserAPIKey.objects.filter(team=team).count() == 1

    def test_user_or_team_is_required_not_both(self, team):
        path = _file("OPENAI_API_KEY=x\n")
        with pytest.raises(CommandError, match="one of the arguments --user --team is required"):
            call_command("byok_import", path)
        with pytest.raises(CommandError, match="not allowed with argument"):
            call_command("byok_import", path, "--user", str(team.owner.pk), "--team", str(team.pk))
        with pytest.raises(CommandError, match="No team has id or name 'Beta'"):
            call_command("byok_import", path, "--team", "Beta")
