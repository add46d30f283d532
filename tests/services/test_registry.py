import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from byok.exceptions import UnknownService
from byok.services import CATEGORIES, Service, registry
from byok.services.registry import ServiceRegistry

# The built-in services and their fields, as docs/services.md lists them (secret ones marked).
BUILT_IN_FIELDS = {
    "openai": [("api_key", True)],
    "anthropic": [("api_key", True)],
    "resend": [("api_key", True)],
    "sendgrid": [("api_key", True)],
    "twilio": [("account_sid", False), ("auth_token", True)],
    "stripe": [("api_key", True)],
    "google_analytics": [("measurement_id", False), ("api_secret", True)],
    "mixpanel": [
        ("project_token", False),
        ("service_account_username", False),
        ("service_account_secret", True),
    ],
    "aws_s3": [
        ("access_key_id", False),
        ("secret_access_key", True),
        ("region", False),
        ("bucket", False),
        ("session_token", True),
    ],
    "cloudinary": [("cloud_name", False), ("api_key", False), ("api_secret", True)],
    "github": [("api_key", True)],
    "sentry": [("api_key", True)],
}

OPTIONAL = {
    "service_account_username",
    "service_account_secret",
    "region",
    "bucket",
    "session_token",
}


class Custom(Service):
    id = "custom_ai"
    name = "Custom AI"
    category = "ai"


class ReplacementOpenAI(Service):
    id = "openai"
    name = "OpenAI via our gateway"
    category = "ai"


def test_the_twelve_built_in_services_and_their_fields():
    assert [service.id for service in registry] == list(BUILT_IN_FIELDS)
    for service_id, fields in BUILT_IN_FIELDS.items():
        service = registry.get(service_id)
        assert [(f.name, f.secret) for f in service.fields] == fields
        assert {f.name for f in service.fields if not f.required} == OPTIONAL & {
            f for f, _ in fields
        }
        assert service.category in CATEGORIES


def test_unknown_ids_are_refused_clearly():
    with pytest.raises(UnknownService, match=r"'nope'.*byok_services"):
        registry.get("nope")
    with pytest.raises(UnknownService):
        registry.get(None)
    assert "nope" not in registry
    assert None not in registry


def test_as_choices():
    assert ("openai", "OpenAI") in registry.as_choices()
    assert len(registry.as_choices()) == 12


def test_settings_add_replace_and_disable_services():
    path = f"{__name__}.Custom"
    replacement = f"{__name__}.ReplacementOpenAI"
    with override_settings(
        BYOK={"SERVICES": [path, replacement], "DISABLED_SERVICES": ["sentry"]}
    ):
        assert registry.get("custom_ai").name == "Custom AI"
        assert registry.get("openai").name == "OpenAI via our gateway"
        assert "sentry" not in registry
        assert len(registry.all()) == 12
    assert "custom_ai" not in registry
    assert registry.get("openai").name == "OpenAI"


def test_register_in_code_survives_a_settings_change():
    local = ServiceRegistry()
    local.register(Custom)
    assert "custom_ai" in local
    with override_settings(BYOK={"DISABLED_SERVICES": ["openai"]}):
        local.reset()
        assert "custom_ai" in local
        assert "openai" not in local


def test_a_bad_service_path_is_an_improper_configuration():
    local = ServiceRegistry()
    with (
        override_settings(BYOK={"SERVICES": ["byok.conf.conf"]}),
        pytest.raises(ImproperlyConfigured),
    ):
        local.get("openai")


@pytest.mark.parametrize("service_id", list(BUILT_IN_FIELDS))
def test_the_catalog_entry_is_complete(service_id):
    entry = registry.get(service_id).catalog()
    assert entry["description"]
    assert entry["docs_url"].startswith("https://")
    assert entry["create_key_url"].startswith("https://")
    assert entry["pricing"]
    assert entry["free_tier"]
    assert len(entry["benefits"]) == 4
    assert len(entry["setup_steps"]) == 4
    assert entry["setup_steps"][-1] == "Paste it here and choose “Add & test key”."
    assert entry["difficulty"] in ("easy", "medium", "advanced")
    assert entry["icon"] == f"byok/icons/{service_id}.svg"
    assert all(field["help_text"] for field in entry["fields"])
    assert json.dumps(entry)


@pytest.mark.parametrize(
    ("service_id", "popular"),
    [
        ("anthropic", True),
        ("github", True),
        ("stripe", True),
        ("resend", False),
        ("sendgrid", False),
    ],
)
def test_whether_the_catalog_marks_a_service_popular(service_id, popular):
    assert registry.get(service_id).catalog()["popular"] is popular


@pytest.mark.parametrize(
    ("service_id", "name", "value"),
    [
        ("aws_s3", "difficulty", "advanced"),
        ("aws_s3", "default_cost_per_call", "0.000005"),
        ("github", "default_cost_per_call", "0"),
        ("sentry", "default_cost_per_call", "0"),
        ("stripe", "default_cost_per_call", "0"),
    ],
)
def test_what_the_catalog_says_of_one_service(service_id, name, value):
    assert registry.get(service_id).catalog()[name] == value


def test_every_built_in_service_is_documented():
    from pathlib import Path

    documented = (Path(__file__).parents[2] / "docs" / "services.md").read_text()
    for service in registry:
        assert f"| `{service.id}` |" in documented


def test_every_icon_ships_with_the_package():
    from django.contrib.staticfiles import finders

    for service in registry:
        assert finders.find(service.icon), service.icon
    assert finders.find(Custom().icon)
