import base64

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from byok.crypto import (
    ENCRYPTION_KEY_ID_LENGTH,
    TOKEN_PREFIX_V2,
    EncryptionKey,
    Keyring,
    KeyTooShort,
    MalformedKey,
    _derive,
    _keyring_for,
    encryption_key_id_of,
    format_of,
    generate_key,
    get_keyring,
    parse_key,
)
from byok.exceptions import DecryptionError

from support import OTHER_ENCRYPTION_KEY, frames_from_byok

PLAINTEXT = b'{"api_key":"sk-proj-plaintext-under-test"}'
#: The associated data a format 2 token is bound to (a row's, as byok.crypto.binding makes it).
ROW = b"byok:v2:5b0f4d1e-8a4b-4c55-9a66-1c1f3b8e2a10:user:1:openai"


def keyring(*keys):
    return Keyring([EncryptionKey(parse_key(key)) for key in keys])


def test_generated_keys_are_32_random_bytes():
    first, second = generate_key(), generate_key()
    assert first != second
    assert len(parse_key(first)) == 32


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (None, MalformedKey, "a key must be a string, not NoneType"),
        (b"bytes are not accepted", MalformedKey, "a key must be a string, not bytes"),
        ("not base64 at all!", MalformedKey, "a key must be URL-safe base64"),
        ("c2hvcnQ", KeyTooShort, "a key must decode to at least 32 bytes, not 5"),
        (
            base64.urlsafe_b64encode(b"x" * 31).decode(),
            KeyTooShort,
            "a key must decode to at least 32 bytes, not 31",
        ),
    ],
)
def test_parse_key_refuses_unusable_keys(value, error, message):
    with pytest.raises(error) as excinfo:
        parse_key(value)
    assert str(excinfo.value) == message


@pytest.mark.parametrize("length", [32, 33, 34, 35, 37, 40, 41, 52, 64, 65])
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
def test_keys_of_any_length_from_32_bytes_are_accepted(length, padded):
    """Every remainder of the base64 length: 0, 1 or 2 padding characters restored."""
    raw = bytes((7 * i + length) % 256 for i in range(length))
    text = base64.urlsafe_b64encode(raw).decode()
    assert parse_key(text if padded else text.rstrip("=")) == raw


@pytest.mark.parametrize("last", list("AEIMQUYcgkosw048"))
def test_keys_ending_in_any_canonical_character_are_accepted(last):
    """A 32-byte key's last character carries 2 bits: 16 characters can end it."""
    text = "k" * 42 + last
    assert base64.urlsafe_b64encode(parse_key(text)).decode().rstrip("=") == text


@pytest.mark.parametrize("last", list("BCDXZ-_9"))
def test_a_key_whose_last_character_carries_stray_bits_is_refused(last):
    """Two texts must never be the same key: base64 that does not round-trip is refused."""
    with pytest.raises(MalformedKey, match="URL-safe base64"):
        parse_key("k" * 42 + last)


@pytest.mark.parametrize("text", ["k" * 43 + "X", "k" * 42 + "XX", "X" * 44, "k" * 42 + "Q="])
def test_keys_ending_in_padding_like_characters_are_accepted(text):
    """Only ``=`` is padding: a trailing ``X`` (or any other letter) is part of the key."""
    assert base64.urlsafe_b64encode(parse_key(text)).decode() == text.ljust(44, "=")


def test_surrounding_whitespace_is_not_part_of_a_key():
    key = generate_key()
    assert parse_key(f"  {key}\n") == parse_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "é" * 43,
        "\ud800" * 43,  # a lone surrogate cannot even be encoded
        "\uff4b" * 43,  # fullwidth letters
        "\u0661" * 43,  # Arabic-Indic digits
        "k" * 42 + "é",
        "k" * 40 + "\x00kk",
    ],
    ids=["accents", "surrogates", "fullwidth", "digits", "last", "nul"],
)
def test_non_ascii_keys_are_malformed_keys(key):
    with pytest.raises(MalformedKey, match="URL-safe base64") as excinfo:
        parse_key(key)
    assert key not in str(excinfo.value)


def test_parse_key_errors_never_repeat_the_key():
    short = base64.urlsafe_b64encode(b"secret-ish-but-too-short").decode()
    with pytest.raises(KeyTooShort) as excinfo:
        parse_key(short)
    assert short not in str(excinfo.value)


def test_padded_and_unpadded_keys_are_the_same_key():
    key = generate_key()
    padded = key + "=" * (-len(key) % 4)
    assert parse_key(padded) == parse_key(key)


def test_an_encryption_key_shows_its_id_and_nothing_else():
    key = EncryptionKey(parse_key(generate_key()))
    assert repr(key) == f"<EncryptionKey {key.id}>"


def test_a_keyring_needs_a_key():
    with pytest.raises(ImproperlyConfigured, match=r"byok has no encryption key\. Generate one"):
        Keyring([])


def test_the_same_key_twice_is_one_key_id():
    key = generate_key()
    assert keyring(key, key).ids == [keyring(key).primary.id]


def test_the_keyring_is_built_once_per_key_list():
    """Deriving subkeys costs four HKDF runs: not on every lookup."""
    _keyring_for.cache_clear()
    assert get_keyring() is get_keyring()


def test_token_names_its_key_and_round_trips():
    ring = keyring(generate_key())
    token = ring.encrypt(PLAINTEXT, ROW)
    assert token.startswith(TOKEN_PREFIX_V2)
    assert encryption_key_id_of(token) == ring.primary.id
    assert len(ring.primary.id) == ENCRYPTION_KEY_ID_LENGTH
    assert ring.decrypt(token, ROW) == PLAINTEXT


def test_same_plaintext_encrypts_differently_each_time():
    ring = keyring(generate_key())
    assert ring.encrypt(PLAINTEXT, ROW) != ring.encrypt(PLAINTEXT, ROW)


def test_any_configured_key_decrypts_its_own_tokens():
    old, new = generate_key(), generate_key()
    token = keyring(old).encrypt(PLAINTEXT, ROW)
    assert keyring(new, old).decrypt(token, ROW) == PLAINTEXT
    assert (
        encryption_key_id_of(keyring(new, old).encrypt(PLAINTEXT, ROW)) == keyring(new).primary.id
    )


def test_a_token_from_a_missing_key_names_that_key():
    old = keyring(generate_key())
    token = old.encrypt(PLAINTEXT, ROW)
    with pytest.raises(DecryptionError) as excinfo:
        keyring(generate_key()).decrypt(token)
    assert excinfo.value.encryption_key_id == old.primary.id
    assert old.primary.id in str(excinfo.value)
    assert excinfo.value.reason == (
        "it was encrypted with a key that is not in BYOK['ENCRYPTION_KEYS']"
    )


@pytest.mark.parametrize("token_format", ["v1", "v2"])
def test_tampered_ciphertext_is_refused_not_returned(token_format):
    ring = keyring(generate_key())
    if token_format == "v1":
        token = ring.primary.encrypt_v1(PLAINTEXT)
    else:
        token = ring.encrypt(PLAINTEXT, ROW)
    flipped = token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:]
    with pytest.raises(DecryptionError) as excinfo:
        ring.decrypt(flipped, ROW)
    assert excinfo.value.reason.startswith("the ciphertext does not authenticate with this key")


def test_a_token_under_a_forged_key_id_does_not_decrypt():
    real, other = keyring(generate_key()), keyring(generate_key())
    token = other.encrypt(PLAINTEXT, ROW)
    forged = token.replace(other.primary.id, real.primary.id, 1)
    with pytest.raises(DecryptionError):
        real.decrypt(forged, ROW)


def test_garbage_is_not_a_token():
    with pytest.raises(DecryptionError) as excinfo:
        keyring(generate_key()).decrypt("sk-proj-this-is-not-ciphertext")
    assert excinfo.value.encryption_key_id == "?"
    assert excinfo.value.reason == "the stored value is not a byok ciphertext"


@pytest.mark.parametrize(
    "token",
    [
        "byok:1:62feae5eXgAAAAB",  # no separator after the id
        "byok:1:62feae5",  # cut short
        "byok:1:",
        "byok:3:62feae5e:gAAAAAB",  # a format not known
        "nope:1:62feae5e:gAAAAAB",  # a separator where a token has one, no prefix
        "BYOK:1:62feae5e:gAAAAAB",
        "byok:1:62FEAE5E:gAAAAAB",  # ids are lowercase hex
        "byok:1:62feae5g:gAAAAAB",
        "byok:1:éééééééé:gAAAAAB",
        "byok:1:\ud800\ud800\ud800\ud800\ud800\ud800\ud800\ud800:gAAAAAB",
    ],
)
def test_malformed_tokens_name_no_key(token):
    with pytest.raises(ValueError, match=r"^not a byok ciphertext$"):
        encryption_key_id_of(token)
    with pytest.raises(DecryptionError, match="not a byok ciphertext") as excinfo:
        keyring(generate_key()).decrypt(token)
    assert excinfo.value.encryption_key_id == "?"


def test_the_key_id_is_read_from_its_place_in_the_token():
    assert encryption_key_id_of("byok:1:0123abcd:") == "0123abcd"
    assert encryption_key_id_of("byok:1:0123abcd:gAAAA:with:colons") == "0123abcd"


@pytest.mark.parametrize(
    "change",
    [
        lambda token: token[:20] + "é" + token[21:],
        lambda token: token[:-3] + "\ud800",
        lambda token: token + "é",
        lambda token: token[:16] + "\x00" + token[17:],
        lambda token: token[:16],
        lambda token: token[:16] + "!!!!",
    ],
    ids=["accent", "surrogate", "appended", "nul", "empty", "not-base64"],
)
def test_a_non_ascii_or_broken_ciphertext_is_a_decryption_error(change):
    ring = keyring(generate_key())
    with pytest.raises(DecryptionError, match="does not authenticate") as excinfo:
        ring.decrypt(change(ring.encrypt(PLAINTEXT, ROW)), ROW)
    assert excinfo.value.encryption_key_id == ring.primary.id


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
        token = keyring(key).encrypt(PLAINTEXT, ROW)
        fingerprint = keyring(key).fingerprint(PLAINTEXT)
    with override_settings(SECRET_KEY="a-completely-different-secret-key"):
        assert keyring(key).decrypt(token, ROW) == PLAINTEXT
        assert keyring(key).fingerprint(PLAINTEXT) == fingerprint


HOW_TO_CONFIGURE = (
    "Generate one with 'python manage.py byok_generate_key' and give it to "
    "BYOK['ENCRYPTION_KEYS'] from the environment, not from a committed file: with "
    "the quickstart's settings, set the BYOK_ENCRYPTION_KEYS environment variable."
)


@override_settings(BYOK={})
def test_no_key_configured_says_how_to_make_one():
    with pytest.raises(ImproperlyConfigured) as excinfo:
        get_keyring()
    assert str(excinfo.value) == (
        f"byok cannot store or read secrets: BYOK['ENCRYPTION_KEYS'] is empty. {HOW_TO_CONFIGURE}"
    )


@override_settings(BYOK={"ENCRYPTION_KEYS": ["too-short"]})
def test_an_unusable_key_is_an_improper_configuration():
    with pytest.raises(ImproperlyConfigured, match="unusable key") as excinfo:
        get_keyring()
    assert "too-short" not in str(excinfo.value)
    assert str(excinfo.value) == (
        "BYOK['ENCRYPTION_KEYS'] holds an unusable key: a key must be URL-safe base64. "
        + HOW_TO_CONFIGURE
    )


def test_an_empty_keyring_says_how_to_make_a_key():
    with pytest.raises(ImproperlyConfigured) as excinfo:
        Keyring([])
    assert str(excinfo.value) == f"byok has no encryption key. {HOW_TO_CONFIGURE}"


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
    token = get_keyring().encrypt(b"first use", b"a row")
with override_settings(BYOK={"ENCRYPTION_KEYS": [generate_key()]}):
    get_keyring().encrypt(b"later use", b"a row")
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


def failing_key():
    """A key whose cipher fails deep inside, with the plaintext in hand."""
    key = EncryptionKey(parse_key(generate_key()))

    def fail(*args):
        raise RuntimeError("injected failure deep inside")

    key._aead = type("FailingAEAD", (), {"encrypt": staticmethod(fail)})()
    return key


SHORT_SECRET_KEY = base64.urlsafe_b64encode(b"a secret, but too short").decode()
MATERIAL = "key material passed as text"
SECRET = "sk-proj-this-secret-must-stay-out-of-error-reports"


@pytest.mark.parametrize(
    "call",
    [
        lambda: parse_key(SHORT_SECRET_KEY),
        lambda: _derive(MATERIAL, b"byok test"),
        lambda: EncryptionKey(MATERIAL),
        lambda: failing_key().encrypt(SECRET.encode(), ROW),
        lambda: EncryptionKey(parse_key(generate_key())).fingerprint(SECRET),
        lambda: Keyring([failing_key()]).encrypt(SECRET.encode(), ROW),
        lambda: keyring(generate_key()).fingerprint(SECRET),
        lambda: keyring(generate_key()).fingerprints(SECRET),
        lambda: _keyring_for((OTHER_ENCRYPTION_KEY, SHORT_SECRET_KEY)),
    ],
    ids=[
        "parse_key",
        "derive",
        "EncryptionKey",
        "EncryptionKey.encrypt",
        "EncryptionKey.fingerprint",
        "Keyring.encrypt",
        "Keyring.fingerprint",
        "Keyring.fingerprints",
        "keyring_for",
    ],
)
def test_error_reports_show_no_key_material_or_secret(call):
    shown, held = frames_from_byok(call)
    secrets = (SHORT_SECRET_KEY, MATERIAL, SECRET, OTHER_ENCRYPTION_KEY)
    assert any(secret in held for secret in secrets)
    assert not any(secret in shown for secret in secrets)


def failing_decryption(ring):
    """``ring`` with every key's cipher failing deep inside, a token in hand."""
    for key in ring._by_id.values():

        def fail(*args):
            raise RuntimeError("injected failure deep inside")

        key._aead = type("FailingAEAD", (), {"decrypt": staticmethod(fail)})()
    return ring


@pytest.mark.parametrize("through", ["EncryptionKey", "Keyring"])
def test_error_reports_show_no_stored_token(through):
    """A token is as good as its secret to whoever holds a retired key: hidden too."""
    ring = keyring(generate_key())
    token = ring.encrypt(PLAINTEXT, ROW)
    failing_decryption(ring)
    target = ring.primary if through == "EncryptionKey" else ring
    shown, held = frames_from_byok(lambda: target.decrypt(token, ROW))
    payload = token.rsplit(":", 1)[1]
    assert payload[:40] in held
    assert payload[:40] not in shown


def test_an_unusable_key_list_is_hidden_from_error_reports():
    with override_settings(BYOK={"ENCRYPTION_KEYS": [OTHER_ENCRYPTION_KEY, SHORT_SECRET_KEY]}):
        shown, held = frames_from_byok(get_keyring)
    assert OTHER_ENCRYPTION_KEY in held
    assert OTHER_ENCRYPTION_KEY not in shown
    assert SHORT_SECRET_KEY not in shown


def test_a_value_of_no_known_format_is_reported_as_unknown():
    assert format_of("byok:9:0123abcd:xyz") == "unknown"
    assert format_of("plain text") == "unknown"
