import re
from pathlib import Path

from django.test import override_settings

from byok.conf import DEFAULTS, conf


def test_defaults_without_a_byok_setting():
    with override_settings(BYOK=None):
        assert conf.ENCRYPTION_KEYS == []
        assert conf.PLATFORM_KEYS == {}
        assert conf.DEFAULT_ENVIRONMENT == "production"
        assert conf.SERVICES == []
        assert conf.DISABLED_SERVICES == []
        assert conf.RENDER_MESSAGES == "auto"


def test_every_read_follows_override_settings():
    with override_settings(BYOK={"DEFAULT_ENVIRONMENT": "test", "PLATFORM_KEYS": {"a": "b"}}):
        assert conf.DEFAULT_ENVIRONMENT == "test"
        assert conf.PLATFORM_KEYS == {"a": "b"}
    assert conf.DEFAULT_ENVIRONMENT == "production"


def test_a_single_key_string_is_one_key():
    with override_settings(BYOK={"ENCRYPTION_KEYS": "one-key"}):
        assert conf.ENCRYPTION_KEYS == ["one-key"]


def test_a_key_string_is_split_on_commas_and_blanks_are_no_key():
    """What ``os.environ.get("BYOK_ENCRYPTION_KEYS", "")`` gives, set or not."""
    with override_settings(BYOK={"ENCRYPTION_KEYS": "new-key, old-key"}):
        assert conf.ENCRYPTION_KEYS == ["new-key", "old-key"]
    for unset in ("", " ", ",", ["", " "]):
        with override_settings(BYOK={"ENCRYPTION_KEYS": unset}):
            assert conf.ENCRYPTION_KEYS == []


def test_unknown_names_are_reported():
    with override_settings(BYOK={"ENCRYPTION_KEYS": [], "PLATFORM_KEY": {}}):
        assert conf.unknown_names == ["PLATFORM_KEY"]


def test_nothing_is_written_back_to_settings():
    from django.conf import settings

    before = dict(settings.BYOK)
    _ = conf.ENCRYPTION_KEYS, conf.PLATFORM_KEYS, conf.DEFAULT_ENVIRONMENT
    assert before == settings.BYOK


def test_every_setting_is_documented_with_its_default():
    documented = (Path(__file__).parents[1] / "docs" / "settings.md").read_text()
    headings = re.findall(r"^### `(\w+)`", documented, flags=re.MULTILINE)
    assert sorted(headings) == sorted(DEFAULTS)
    for name in DEFAULTS:
        section = documented.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        assert "Default:" in section, name
