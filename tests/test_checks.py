import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

from byok import NoAPIKey, checks, get_user_api_key
from byok.conf import conf
from byok.crypto import generate_key
from byok.forms import AddKeyForm
from byok.services import Caution, CredentialField, Format, Refusal, Service, registry
from byok.services.base import RESERVED_FIELD_NAMES

KEY = settings.BYOK["ENCRYPTION_KEYS"][0]


def byok(**values):
    return override_settings(BYOK={"ENCRYPTION_KEYS": [KEY], **values})


def ids(messages):
    return [message.id for message in messages]


def everything():
    return (
        checks.check_encryption_keys()
        + checks.check_encryption_keys_for_deploy()
        + checks.check_settings()
    )


@pytest.mark.django_db
def test_the_test_settings_pass_every_check():
    assert [
        m for m in run_checks(include_deployment_checks=False) if m.id.startswith("byok.")
    ] == []


# No setting, or the setting read from an unset variable: no key, not a malformed one.
NO_KEY = [{}, {"ENCRYPTION_KEYS": ""}]


@pytest.mark.parametrize("setting", NO_KEY)
def test_e001_no_key_is_an_error(setting):
    with override_settings(BYOK=setting, DEBUG=False):
        assert ids(checks.check_encryption_keys()) == ["byok.E001"]


@pytest.mark.parametrize("setting", NO_KEY)
def test_w001_no_key_is_a_warning_in_debug(setting):
    with override_settings(BYOK=setting, DEBUG=True):
        assert ids(checks.check_encryption_keys()) == ["byok.W001"]


@pytest.mark.django_db
@override_settings(BYOK={}, DEBUG=True)
def test_e001_no_key_is_an_error_under_deploy_even_in_debug():
    assert ids(checks.check_encryption_keys_for_deploy()) == ["byok.E001"]
    assert "byok.E001" in ids(run_checks(include_deployment_checks=True))


@override_settings(DEBUG=True)
def test_deploy_check_passes_with_a_key():
    assert checks.check_encryption_keys_for_deploy() == []


@pytest.mark.parametrize("bad", ["not base64!", 12345, b"bytes"])
def test_e002_malformed_key(bad):
    with override_settings(BYOK={"ENCRYPTION_KEYS": [KEY, bad]}):
        messages = checks.check_encryption_keys()
    assert ids(messages) == ["byok.E002"]
    assert "entry 2" in messages[0].msg


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad",
    ["é" * 43, "\ud800" * 43, "\uff4b" * 43, "k" * 42 + "é"],
    ids=["accents", "surrogates", "fullwidth", "last"],
)
def test_e002_non_ascii_key_is_reported_not_raised(bad):
    """Through Django's own check runner: a report, never a crash."""
    with override_settings(BYOK={"ENCRYPTION_KEYS": [bad]}):
        messages = [m for m in run_checks() if m.id.startswith("byok.")]
    assert ids(messages) == ["byok.E002"]
    assert messages[0].msg == (
        "BYOK['ENCRYPTION_KEYS'] entry 1 is malformed: a key must be URL-safe base64."
    )


def test_e003_short_key():
    with override_settings(BYOK={"ENCRYPTION_KEYS": ["c2hvcnQta2V5"]}):
        messages = checks.check_encryption_keys()
    assert ids(messages) == ["byok.E003"]
    assert "c2hvcnQta2V5" not in messages[0].msg + str(messages[0].hint)


def test_e004_key_equal_to_secret_key():
    key = generate_key()
    with override_settings(SECRET_KEY=key, BYOK={"ENCRYPTION_KEYS": [key]}):
        assert ids(checks.check_encryption_keys()) == ["byok.E004"]
    with override_settings(SECRET_KEY_FALLBACKS=[key], BYOK={"ENCRYPTION_KEYS": [key]}):
        assert ids(checks.check_encryption_keys()) == ["byok.E004"]


def test_w002_repeated_key():
    with override_settings(BYOK={"ENCRYPTION_KEYS": [KEY, KEY + "="]}):
        assert ids(checks.check_encryption_keys()) == ["byok.W002"]


def test_w003_unknown_setting_name():
    with byok(ENCRYPTON_KEYS=["typo"]):
        messages = checks.check_settings()
    assert ids(messages) == ["byok.W003"]
    assert "ENCRYPTON_KEYS" in messages[0].msg


@pytest.mark.parametrize("setting", ["PLATFORM_KEYS", "DISABLED_SERVICES"])
def test_e005_unknown_service_in_settings(setting):
    value = {"nope": "x"} if setting == "PLATFORM_KEYS" else ["nope"]
    with byok(**{setting: value}):
        assert ids(checks.check_settings()) == ["byok.E005"]


def test_a_service_registered_in_code_may_be_disabled(monkeypatch):
    class InHouse(Service):
        id = "in_house"
        name = "In-house"
        category = "ai"

    monkeypatch.setattr(registry, "_registered", [*registry.registered, InHouse])
    with byok(DISABLED_SERVICES=["in_house"]):
        assert checks.check_settings() == []
    registry.reset()


def test_e005_platform_key_for_a_disabled_service():
    with byok(DISABLED_SERVICES=["openai"], PLATFORM_KEYS={"openai": "sk-" + "x" * 40}):
        assert ids(checks.check_settings()) == ["byok.E005"]


@pytest.mark.parametrize("path", ["byok.services.nothing.Here", "byok.conf.ByokSettings"])
def test_e006_service_class_that_cannot_be_loaded(path):
    with byok(SERVICES=[path]):
        assert ids(checks.check_settings()) == ["byok.E006"]


@pytest.mark.parametrize(
    "value", ["one string for a two-field service", {"account_sid": "AC" + "0" * 32}, 42]
)
def test_e007_platform_key_that_does_not_fit(value):
    with byok(PLATFORM_KEYS={"twilio": value}):
        messages = checks.check_settings()
    assert ids(messages) == ["byok.E007"]
    if isinstance(value, str):
        assert value not in messages[0].msg


def test_e008_unknown_default_environment():
    with byok(DEFAULT_ENVIRONMENT="staging"):
        assert ids(checks.check_settings()) == ["byok.E008"]


def test_every_check_id_is_documented():
    from pathlib import Path

    source = Path(checks.__file__).read_text()
    documented = (Path(__file__).parents[1] / "docs" / "settings.md").read_text()
    import re

    for check_id in set(re.findall(r"byok\.[EW]\d{3}", source)):
        assert check_id in documented, check_id


def test_e005_unknown_service_in_base_urls():
    with byok(BASE_URLS={"nope": "https://example.com"}):
        assert ids(checks.check_settings()) == ["byok.E005"]


@pytest.mark.parametrize(
    "url",
    [
        "api.example.com",
        "ftp://example.com",
        42,
        "https://user:pw@example.com",
        "https://x.com/?a=1",
    ],
)
def test_e009_base_url_that_is_not_a_clean_absolute_url(url):
    with byok(BASE_URLS={"sentry": url}):
        assert ids(checks.check_settings()) == ["byok.E009"]


def test_e010_plain_http_base_url_needs_the_private_switch():
    with byok(BASE_URLS={"sentry": "http://sentry.internal/api/0"}):
        assert ids(checks.check_settings()) == ["byok.E010"]
    with byok(BASE_URLS={"sentry": "http://sentry.internal/api/0"}, ALLOW_PRIVATE_BASE_URLS=True):
        assert checks.check_settings() == []
    with byok(BASE_URLS={"github": "https://github.example.com/api/v3"}):
        assert checks.check_settings() == []


@pytest.mark.parametrize("timeout", [0, -1, "10", (1, 2, 3), True, 500, (5, "x")])
def test_e011_bad_probe_timeout(timeout):
    with byok(PROBE_TIMEOUT=timeout):
        assert ids(checks.check_settings()) == ["byok.E011"]


@pytest.mark.parametrize("timeout", [3, 2.5, (2, 10), [1, 1]])
def test_good_probe_timeouts(timeout):
    with byok(PROBE_TIMEOUT=timeout):
        assert checks.check_settings() == []


@pytest.mark.parametrize("value", ["yes", "Auto", 1, 0, None, ["auto"]])
def test_e016_bad_render_messages(value):
    with byok(RENDER_MESSAGES=value):
        assert ids(checks.check_settings()) == ["byok.E016"]


@pytest.mark.parametrize("value", [True, False, "auto"])
def test_good_render_messages(value):
    with byok(RENDER_MESSAGES=value):
        assert checks.check_settings() == []


@pytest.mark.parametrize("value", ["", "  ", {"account_sid": "", "auth_token": ""}])
def test_an_empty_platform_key_means_none_not_an_error(value, user):
    with byok(PLATFORM_KEYS={"twilio": value, "openai": ""}):
        assert checks.check_settings() == []
        assert conf.PLATFORM_KEYS == {}
        with pytest.raises(NoAPIKey):
            get_user_api_key(user, "twilio")


# Each registered service's declaration (byok.E012 to byok.E015) ---------------------


@pytest.fixture
def declared(monkeypatch):
    """Register service classes for one test."""

    def register(*classes):
        monkeypatch.setattr(registry, "_registered", [*registry.registered, *classes])
        registry.reset()

    yield register
    registry.reset()


def declaration(**attributes):
    attributes = {"id": "inhouse", "name": "In-house", "category": "ai", **attributes}
    return type("InHouse", (Service,), attributes)


def test_the_built_in_services_pass_their_declaration_checks():
    assert checks.check_service_declarations() == []


@pytest.mark.parametrize(
    ("attributes", "wrong"),
    [({"category": "crypto"}, "category 'crypto'"), ({"difficulty": "hard"}, "'hard'")],
)
def test_e012_unknown_category_or_difficulty(declared, attributes, wrong):
    declared(declaration(**attributes))
    messages = checks.check_service_declarations()
    assert ids(messages) == ["byok.E012"]
    assert wrong in messages[0].msg


@pytest.mark.parametrize(
    ("attributes", "where"),
    [
        ({"formats": {"token": Format(loose=r".+")}}, "formats: 'token'"),
        ({"refusals": (Refusal("token", r"x.*", "no"),)}, "refusals: 'token'"),
        ({"cautions": (Caution("token", r"x.*", "hm"),)}, "cautions: 'token'"),
        ({"together": (("api_key", "token"),)}, "together: 'token'"),
        ({"hint_field": "token"}, "hint_field: 'token'"),
    ],
)
def test_e013_a_declaration_names_a_field_the_service_lacks(declared, attributes, where):
    declared(declaration(**attributes))
    messages = checks.check_service_declarations()
    assert ids(messages) == ["byok.E013"]
    assert where in messages[0].msg


def test_e013_swapped_fields_need_a_format_each(declared):
    fields = (CredentialField("key_id", "Key id"), CredentialField("secret", "Secret"))
    declared(declaration(fields=fields, swaps=(("key_id", "secret"),)))
    assert ids(checks.check_service_declarations()) == ["byok.E013"]


@pytest.mark.parametrize(
    "fields",
    [
        (CredentialField("api_key", "Key"), CredentialField("nickname", "Nickname")),
        (CredentialField("environment", "Environment"),),
        (CredentialField("api_key", "Key"), CredentialField("api_key", "Key again")),
    ],
)
def test_e014_reserved_or_repeated_field_names(declared, fields):
    declared(declaration(fields=fields))
    assert ids(checks.check_service_declarations()) == ["byok.E014"]


def test_the_reserved_names_are_the_add_key_forms_own_inputs():
    assert set(AddKeyForm.base_fields) == set(RESERVED_FIELD_NAMES)


def test_e015_two_services_read_one_environment_variable(declared):
    declared(declaration(fields=(CredentialField("api_key", "Key", env=("OPENAI_API_KEY",)),)))
    messages = checks.check_service_declarations()
    assert ids(messages) == ["byok.E015"]
    assert "'openai' and 'inhouse'" in messages[0].msg


def test_a_service_that_cannot_be_loaded_is_only_reported_once():
    with byok(SERVICES=["nowhere.Service"]):
        assert checks.check_service_declarations() == []
        assert ids(checks.check_settings()) == ["byok.E006"]


def test_a_wrong_host_service_fails_manage_py_check(declared):
    declared(declaration(category="crypto"))
    assert "byok.E012" in ids(run_checks(include_deployment_checks=False))


REDIS_CACHE = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://h"}


@pytest.mark.parametrize("backend", ["locmem.LocMemCache", "dummy.DummyCache"])
def test_w004_a_process_local_rate_limit_cache_without_debug(backend):
    caches = {"default": {"BACKEND": f"django.core.cache.backends.{backend}"}}
    with override_settings(CACHES=caches, DEBUG=False):
        assert ids(checks.check_rate_limit_cache()) == ["byok.W004"]
    with override_settings(CACHES=caches, DEBUG=True):
        assert checks.check_rate_limit_cache() == []


def test_w004_looks_at_the_cache_byok_names():
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
              "shared": REDIS_CACHE}  # fmt: skip
    with override_settings(CACHES=caches, DEBUG=False):
        assert ids(checks.check_rate_limit_cache()) == ["byok.W004"]
        with byok(RATE_LIMIT_CACHE="shared"):
            assert checks.check_rate_limit_cache() == []


@pytest.mark.django_db
def test_w004_is_a_deployment_check():
    with override_settings(DEBUG=False):
        assert "byok.W004" in ids(run_checks(include_deployment_checks=True))
        assert "byok.W004" not in ids(run_checks(include_deployment_checks=False))


def test_e021_a_cache_or_task_backend_that_does_not_exist():
    with byok(RATE_LIMIT_CACHE="nowhere", TASK_BACKEND="nobody"):
        messages = checks.check_settings()
    assert ids(messages) == ["byok.E021", "byok.E021"]
    assert "'nowhere'" in messages[0].msg
    assert "'nobody'" in messages[1].msg


@pytest.mark.parametrize(
    "values",
    [
        {"ROTATION_REMINDER_DAYS": 0},
        {"UNUSED_REMINDER_DAYS": "90"},
        {"ROTATION_REMINDER_DAYS": True},
        {"EXPIRY_REMINDER_DAYS": [14, -1]},
        {"EXPIRY_REMINDER_DAYS": 14},
    ],
)
def test_e022_reminder_days_that_are_not_days(values):
    with byok(**values):
        assert ids(checks.check_settings()) == ["byok.E022"]


def test_good_reminder_days_pass():
    with byok(ROTATION_REMINDER_DAYS=365, UNUSED_REMINDER_DAYS=None, EXPIRY_REMINDER_DAYS=[7]):
        assert checks.check_settings() == []


@pytest.mark.parametrize("value", [0, -1, "100", True, 1.5, None])
def test_e023_a_key_cap_that_is_not_a_whole_number_of_keys(value):
    with byok(MAX_KEYS_PER_USER=value):
        assert ids(checks.check_settings()) == ["byok.E023"]


def test_a_key_cap_of_one_or_more_passes():
    with byok(MAX_KEYS_PER_USER=1):
        assert checks.check_settings() == []
