from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from byok.crypto import parse_key


@override_settings(BYOK={})
def test_generate_key_prints_a_usable_key_even_when_unconfigured():
    first, second = StringIO(), StringIO()
    call_command("byok_generate_key", stdout=first)
    call_command("byok_generate_key", stdout=second)
    key = first.getvalue().strip()
    assert len(parse_key(key)) == 32
    assert key != second.getvalue().strip()


@pytest.mark.django_db
@override_settings(BYOK={})
def test_rotation_without_a_key_says_how_to_configure():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="byok_generate_key"):
        call_command("byok_rotate_keys", stdout=StringIO())


def test_services_lists_every_service_and_no_key():
    import json

    from django.conf import settings

    platform = "sk-platform-secret-" + "z" * 40
    with override_settings(BYOK={**settings.BYOK, "PLATFORM_KEYS": {"openai": platform}}):
        table, data = StringIO(), StringIO()
        call_command("byok_services", stdout=table)
        call_command("byok_services", "--json", stdout=data)
    rows = json.loads(data.getvalue())
    assert len(rows) == 12
    openai = next(row for row in rows if row["id"] == "openai")
    assert openai["platform_key"] is True
    assert openai["fields"] == ["api_key*"]
    assert openai["base_url"] == "https://api.openai.com/v1"
    assert "twilio" in table.getvalue()
    assert "account_sid, auth_token*" in table.getvalue()
    assert platform not in table.getvalue() + data.getvalue()
