import json

import pytest
from django.core import serializers

from byok.crypto import get_keyring
from byok.exceptions import DecryptionError
from byok.fields import SealedCredentials, canonical_bytes
from byok.models import UserAPIKey

from factories import UserAPIKeyFactory
from fakes import fake_credentials

pytestmark = pytest.mark.django_db


def test_loaded_credentials_stay_sealed_until_opened(user):
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=secret)
    key = UserAPIKey.objects.get()
    assert isinstance(key.credentials, SealedCredentials)
    assert secret not in repr(key.credentials)
    assert secret not in str(key.credentials)
    assert key.credentials.encryption_key_id == get_keyring().primary.id
    assert key.credentials.open() == {"api_key": secret}


def test_a_model_instance_never_prints_its_secret(user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    for text in (repr(key), str(key), repr(key.__dict__)):
        assert secret not in text


def test_plain_mappings_cannot_be_assigned(user):
    key = UserAPIKeyFactory(user=user)
    key.credentials = {"api_key": "sk-proj-assigned-directly"}
    with pytest.raises(TypeError, match="set_credentials"):
        key.save()


def test_a_plain_string_is_not_mistaken_for_ciphertext():
    with pytest.raises(ValueError, match="not a byok ciphertext"):
        SealedCredentials("sk-proj-looks-like-a-key")


def test_key_id_is_the_deprecated_name_of_the_encryption_key_id_lookup(user):
    key = UserAPIKeyFactory(user=user)
    primary = get_keyring().primary.id
    assert UserAPIKey.objects.filter(credentials__key_id=primary).get() == key
    assert not UserAPIKey.objects.filter(credentials__key_id="00000000").exists()


def test_decryption_error_key_id_is_deprecated():
    error = DecryptionError("a0730809", reason="gone")
    with pytest.warns(DeprecationWarning, match="encryption_key_id"):
        assert error.key_id == "a0730809"


def test_only_isnull_and_encryption_key_id_can_be_queried(user):
    key = UserAPIKeyFactory(user=user)
    assert UserAPIKey.objects.filter(credentials__isnull=False).get() == key
    assert (
        UserAPIKey.objects.filter(credentials__encryption_key_id=get_keyring().primary.id).get()
        == key
    )
    with pytest.raises(Exception, match="Unsupported lookup"):
        list(UserAPIKey.objects.filter(credentials__contains="sk-"))


def test_serialized_fixtures_hold_ciphertext_and_load_back(user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    data = serializers.serialize("json", UserAPIKey.objects.all())
    assert secret not in data
    stored = json.loads(data)[0]["fields"]["credentials"]
    assert stored == key.credentials.token
    UserAPIKey.objects.all().delete()
    for obj in serializers.deserialize("json", data):
        obj.save()
    assert UserAPIKey.objects.get().get_secret() == secret


def test_canonical_bytes_ignore_field_order():
    assert canonical_bytes({"a": "1", "b": "2"}) == canonical_bytes({"b": "2", "a": "1"})
