import pytest

from byok.crypto import TOKEN_PREFIX_V2
from byok.models import UserAPIKey
from byok.services import registry

from factories import UserAPIKeyFactory
from fakes import FAKES, fake_credentials, secret_values
from support import raw_byok_tables, windows

pytestmark = pytest.mark.django_db


def test_the_raw_tables_hold_no_plaintext_and_no_prefix_of_it(user):
    stored = {service: fake_credentials(service) for service in FAKES}
    for service, credentials in stored.items():
        UserAPIKeyFactory(user=user, service=service, credentials=credentials)
    dump = raw_byok_tables()
    assert dump.count(TOKEN_PREFIX_V2) == len(stored)
    for service, credentials in stored.items():
        public = registry.get(service).key_prefixes
        for value in secret_values(credentials):
            assert value not in dump
            leaked = {
                window
                for window in windows(value)
                if window in dump and not any(window in prefix for prefix in public)
            }
            assert not leaked, f"{service}: a run of the secret is stored in clear"


def test_masked_keys_keep_only_the_public_prefix_and_last_four(user):
    for service in FAKES:
        credentials = fake_credentials(service)
        key = UserAPIKeyFactory(user=user, service=service, credentials=credentials)
        spec = registry.get(service)
        source = (
            credentials
            if isinstance(credentials, str)
            else credentials[spec.hint_field or next(f.name for f in spec.fields if f.secret)]
        )
        assert key.masked_key.endswith(source[-4:])
        assert len(key.masked_key) <= len(max(spec.key_prefixes, key=len, default="")) + 5


def test_every_service_round_trips(user):
    for service in FAKES:
        credentials = fake_credentials(service)
        UserAPIKeyFactory(user=user, service=service, credentials=credentials)
        assert UserAPIKey.objects.get(service=service).get_secret() == credentials


def test_str_shows_the_nickname_or_the_hint(user):
    key = UserAPIKeyFactory(user=user, nickname="Work laptop")
    assert str(key) == "OpenAI: Work laptop"
    unnamed = UserAPIKeyFactory(user=user, service="anthropic")
    assert str(unnamed) == f"Anthropic: {unnamed.masked_key}"
