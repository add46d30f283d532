import json

import pytest
from django import forms
from django.core import serializers

from byok.crypto import EncryptionKey, Keyring, generate_key, get_keyring, parse_key
from byok.exceptions import DecryptionError
from byok.fields import EncryptedCredentialsField, SealedCredentials, canonical_bytes
from byok.keys import remove_user_api_key
from byok.models import UserAPIKey

from factories import UserAPIKeyFactory
from fakes import fake_credentials
from support import frames_from_byok

pytestmark = pytest.mark.django_db

ROW = b"byok:v2:5b0f4d1e-8a4b-4c55-9a66-1c1f3b8e2a10:user:1:openai"


def test_loaded_credentials_stay_sealed_until_opened(user):
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=secret)
    key = UserAPIKey.objects.get()
    assert isinstance(key.credentials, SealedCredentials)
    assert secret not in repr(key.credentials)
    assert secret not in str(key.credentials)
    assert key.credentials.encryption_key_id == get_keyring().primary.id
    assert key.credentials.open(binding=key.binding) == {"api_key": secret}


def test_a_model_instance_never_prints_its_secret(user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    for text in (repr(key), str(key), repr(key.__dict__)):
        assert secret not in text


def test_plain_mappings_cannot_be_assigned(user):
    key = UserAPIKeyFactory(user=user)
    key.credentials = {"api_key": "sk-proj-assigned-directly"}
    with pytest.raises(TypeError) as excinfo:
        key.save()
    assert str(excinfo.value) == (
        "Encrypted credentials must be sealed; use UserAPIKey.set_credentials()."
    )


def test_sealed_credentials_show_only_their_encryption_key_id():
    sealed = SealedCredentials.seal({"api_key": "sk-proj-shown-nowhere"}, binding=ROW)
    expected = f"<SealedCredentials encryption_key_id={get_keyring().primary.id}>"
    assert repr(sealed) == str(sealed) == expected


def test_sealing_uses_the_keyring_it_is_given():
    ring = Keyring([EncryptionKey(parse_key(generate_key()))])
    sealed = SealedCredentials.seal({"api_key": "sk-proj-under-another-key"}, ring, binding=ROW)
    assert sealed.encryption_key_id == ring.primary.id != get_keyring().primary.id
    assert sealed.open(ring, binding=ROW) == {"api_key": "sk-proj-under-another-key"}
    with pytest.raises(DecryptionError):
        sealed.open(binding=ROW)


def test_sealed_credentials_are_equal_only_with_the_same_token():
    credentials = {"api_key": "sk-proj-sealed-twice"}
    first = SealedCredentials.seal(credentials, binding=ROW)
    second = SealedCredentials.seal(credentials, binding=ROW)  # a fresh nonce: another token
    same = SealedCredentials(first.token)
    assert first == same
    assert hash(first) == hash(same)
    assert first != second
    assert hash(first) != hash(second)
    assert first != first.token
    assert len({first, same, second}) == 2


def test_the_credentials_field_is_not_editable():
    field = UserAPIKey._meta.get_field("credentials")
    assert field.editable is False

    class EveryField(forms.ModelForm):
        class Meta:
            model = UserAPIKey
            fields = "__all__"  # noqa: DJ007 - what a careless form would show

    assert "credentials" not in EveryField().fields


@pytest.mark.parametrize("editable", [False, True])
def test_the_field_deconstructs_to_itself(editable):
    field = EncryptedCredentialsField(null=True, editable=editable)
    _name, path, args, kwargs = field.deconstruct()
    assert path == "byok.fields.EncryptedCredentialsField"
    assert kwargs == ({"null": True, "editable": True} if editable else {"null": True})
    assert EncryptedCredentialsField(*args, **kwargs).editable is editable


def test_a_deleted_key_serializes_its_credentials_as_empty(user):
    key = UserAPIKeyFactory(user=user)
    remove_user_api_key(key)
    key.refresh_from_db()
    assert key.credentials is None
    assert UserAPIKey._meta.get_field("credentials").value_to_string(key) == ""
    assert UserAPIKey.objects.filter(credentials=None).get() == key
    assert not UserAPIKey.objects.exclude(credentials=None).exists()


def test_ciphertext_equality_can_be_queried(user):
    key = UserAPIKeyFactory(user=user)
    UserAPIKeyFactory(user=user)
    assert UserAPIKey.objects.filter(credentials=key.credentials).get() == key
    assert UserAPIKey.objects.filter(credentials=key.credentials.token).get() == key


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


def test_canonical_bytes_are_compact_sorted_json():
    assert canonical_bytes({"b": "2", "a": "1"}) == b'{"a":"1","b":"2"}'


SECRET = "sk-proj-this-secret-must-stay-out-of-error-reports"


@pytest.mark.parametrize(
    "call",
    [
        lambda: SealedCredentials.seal({"api_key": SECRET, "extra": object()}, binding=ROW),
        lambda: SealedCredentials(
            get_keyring().encrypt(b"not json: " + SECRET.encode(), ROW)
        ).open(binding=ROW),
    ],
    ids=["seal", "open"],
)
def test_error_reports_show_no_credential(call):
    shown, held = frames_from_byok(call)
    assert SECRET in held
    assert SECRET not in shown
