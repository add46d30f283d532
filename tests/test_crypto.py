import base64

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from byok.crypto import (
    ENCRYPTION_KEY_ID_LENGTH,
    TOKEN_PREFIX,
    EncryptionKey,
    Keyring,
    KeyTooShort,
    MalformedKey,
    encryption_key_id_of,
    generate_key,
    get_keyring,
    parse_key,
)
from byok.exceptions import DecryptionError

from support import OTHER_ENCRYPTION_KEY

PLAINTEXT = b'{"api_key":"sk-proj-plaintext-under-test"}'


def keyring(*keys):
    return Keyring([EncryptionKey(parse_key(key)) for key in keys])


def test_generated_keys_are_32_random_bytes():
    first, second = generate_key(), generate_key()
    assert first != second
    assert len(parse_key(first)) == 32


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (None, MalformedKey),
        (b"bytes are not accepted", MalformedKey),
        ("not base64 at all!", MalformedKey),
        ("c2hvcnQ", KeyTooShort),
        (base64.urlsafe_b64encode(b"x" * 31).decode(), KeyTooShort),
    ],
)
def test_parse_key_refuses_unusable_keys(value, error):
    with pytest.raises(error):
        parse_key(value)


def test_parse_key_errors_never_repeat_the_key():
    short = base64.urlsafe_b64encode(b"secret-ish-but-too-short").decode()
    with pytest.raises(KeyTooShort) as excinfo:
        parse_key(short)
    assert short not in str(excinfo.value)


def test_padded_and_unpadded_keys_are_the_same_key():
    key = generate_key()
    padded = key + "=" * (-len(key) % 4)
    assert parse_key(padded) == parse_key(key)


def test_token_names_its_key_and_round_trips():
    ring = keyring(generate_key())
    token = ring.encrypt(PLAINTEXT)
    assert token.startswith(TOKEN_PREFIX)
    assert encryption_key_id_of(token) == ring.primary.id
    assert len(ring.primary.id) == ENCRYPTION_KEY_ID_LENGTH
    assert ring.decrypt(token) == PLAINTEXT


def test_same_plaintext_encrypts_differently_each_time():
    ring = keyring(generate_key())
    assert ring.encrypt(PLAINTEXT) != ring.encrypt(PLAINTEXT)


def test_any_configured_key_decrypts_its_own_tokens():
    old, new = generate_key(), generate_key()
    token = keyring(old).encrypt(PLAINTEXT)
    assert keyring(new, old).decrypt(token) == PLAINTEXT
    assert encryption_key_id_of(keyring(new, old).encrypt(PLAINTEXT)) == keyring(new).primary.id


def test_a_token_from_a_missing_key_names_that_key():
    old = keyring(generate_key())
    token = old.encrypt(PLAINTEXT)
    with pytest.raises(DecryptionError) as excinfo:
        keyring(generate_key()).decrypt(token)
    assert excinfo.value.encryption_key_id == old.primary.id
    assert old.primary.id in str(excinfo.value)
    assert "not in BYOK['ENCRYPTION_KEYS']" in str(excinfo.value)


def test_tampered_ciphertext_is_refused_not_returned():
    ring = keyring(generate_key())
    token = ring.encrypt(PLAINTEXT)
    flipped = token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:]
    with pytest.raises(DecryptionError, match="does not authenticate"):
        ring.decrypt(flipped)


def test_a_token_under_a_forged_key_id_does_not_decrypt():
    real, other = keyring(generate_key()), keyring(generate_key())
    token = other.encrypt(PLAINTEXT)
    forged = token.replace(other.primary.id, real.primary.id, 1)
    with pytest.raises(DecryptionError):
        real.decrypt(forged)


def test_garbage_is_not_a_token():
    with pytest.raises(DecryptionError, match="not a byok ciphertext"):
        keyring(generate_key()).decrypt("sk-proj-this-is-not-ciphertext")


def test_fingerprints_are_keyed():
    one, two = keyring(generate_key()), keyring(generate_key())
    assert one.fingerprint(PLAINTEXT) == one.fingerprint(PLAINTEXT)
    assert one.fingerprint(PLAINTEXT) != two.fingerprint(PLAINTEXT)
    assert one.fingerprint(PLAINTEXT) != one.fingerprint(PLAINTEXT + b" ")


def test_fingerprints_under_every_key_primary_first():
    old, new = generate_key(), generate_key()
    ring = keyring(new, old)
    assert ring.fingerprints(PLAINTEXT) == [
        keyring(new).fingerprint(PLAINTEXT),
        keyring(old).fingerprint(PLAINTEXT),
    ]


def test_subkeys_do_not_depend_on_secret_key():
    key = generate_key()
    with override_settings(SECRET_KEY="first-secret-key-value-for-this-test"):
        token = keyring(key).encrypt(PLAINTEXT)
        fingerprint = keyring(key).fingerprint(PLAINTEXT)
    with override_settings(SECRET_KEY="a-completely-different-secret-key"):
        assert keyring(key).decrypt(token) == PLAINTEXT
        assert keyring(key).fingerprint(PLAINTEXT) == fingerprint


@override_settings(BYOK={})
def test_no_key_configured_says_how_to_make_one():
    with pytest.raises(ImproperlyConfigured, match="byok_generate_key"):
        get_keyring()


@override_settings(BYOK={"ENCRYPTION_KEYS": ["too-short"]})
def test_an_unusable_key_is_an_improper_configuration():
    with pytest.raises(ImproperlyConfigured, match="unusable key") as excinfo:
        get_keyring()
    assert "too-short" not in str(excinfo.value)


def test_get_keyring_follows_override_settings():
    default = get_keyring()
    with override_settings(BYOK={"ENCRYPTION_KEYS": [OTHER_ENCRYPTION_KEY]}):
        assert get_keyring().primary.id != default.primary.id
    assert get_keyring().primary.id == default.primary.id


FIRST_USE_INSIDE_AN_OVERRIDE = """
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "byok"],
    SECRET_KEY="only-for-this-check",
)
django.setup()
from django.test import override_settings
from byok.crypto import generate_key, get_keyring
with override_settings(BYOK={"ENCRYPTION_KEYS": [generate_key()]}):
    token = get_keyring().encrypt(b"first use")
with override_settings(BYOK={"ENCRYPTION_KEYS": [generate_key()]}):
    get_keyring().encrypt(b"later use")
print("ok")
"""


def test_first_use_inside_override_settings_does_not_break_later_use():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", FIRST_USE_INSIDE_AN_OVERRIDE],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.stdout.strip() == "ok", result.stderr
