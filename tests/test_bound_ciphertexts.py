"""Format 2: a ciphertext is bound to its row (id, owner, service) and decrypts nowhere
else; format 1 still decrypts, and ``byok_rotate_keys`` upgrades it."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

import byok
from byok import rotation
from byok.crypto import get_keyring
from byok.exceptions import DecryptionError
from byok.fields import SealedCredentials, canonical_bytes
from byok.keys import update_user_api_key
from byok.models import ServicePreference, UserAPIKey

from factories import TeamAPIKeyFactory, TeamFactory, UserAPIKeyFactory, UserFactory
from fakes import fake_credentials

pytestmark = pytest.mark.django_db


def token_of(key):
    return UserAPIKey.objects.get(pk=key.pk).credentials


def move(token, key):
    """What a database writer can do: put a ciphertext into another row."""
    UserAPIKey.objects.filter(pk=key.pk).update(credentials=token)


def to_v1(key, credentials):
    """Store ``key``'s secret the way byok wrote it before format 2."""
    plaintext = canonical_bytes(key.get_service().normalize(credentials))
    move(SealedCredentials(get_keyring().primary.encrypt_v1(plaintext)), key)


def assert_refused_without_the_secret(call, secret):
    with pytest.raises(DecryptionError) as excinfo:
        call()
    message = str(excinfo.value)
    assert "moved from another row, or tampered with" in message
    assert secret not in message
    return excinfo.value


def test_new_and_replaced_secrets_are_written_in_format_2_and_serve(user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    assert token_of(key).token.startswith(f"byok:2:{get_keyring().primary.id}:")
    assert byok.get_user_api_key(user, "openai") == secret
    assert UserAPIKey.objects.get(pk=key.pk).get_secret() == secret
    replaced = fake_credentials("openai")
    update_user_api_key(key, credentials=replaced)
    assert token_of(key).format == "v2"
    assert byok.get_user_api_key(user, "openai") == replaced


def test_a_ciphertext_moved_to_another_users_row_does_not_decrypt(user):
    victim_secret = fake_credentials("openai")
    victim = UserAPIKeyFactory(service="openai", credentials=victim_secret)
    mine = UserAPIKeyFactory(user=user, service="openai")
    move(token_of(victim), mine)
    error = assert_refused_without_the_secret(
        lambda: byok.get_user_api_key(user, "openai"), victim_secret
    )
    assert str(mine.pk) in str(error)
    assert_refused_without_the_secret(UserAPIKey.objects.get(pk=mine.pk).get_secret, victim_secret)


def test_a_ciphertext_moved_to_another_row_of_the_same_owner_does_not_decrypt(user):
    first_secret = fake_credentials("openai")
    first = UserAPIKeyFactory(user=user, credentials=first_secret, environment="test")
    second = UserAPIKeyFactory(user=user)
    move(token_of(first), second)
    assert_refused_without_the_secret(lambda: byok.get_user_api_key(user, "openai"), first_secret)


def test_a_ciphertext_moved_to_a_row_of_another_service_does_not_decrypt(user):
    key = UserAPIKeyFactory(user=user, service="stripe")
    secret = key.get_secret()
    UserAPIKey.objects.filter(pk=key.pk).update(service="github")
    assert_refused_without_the_secret(UserAPIKey.objects.get(pk=key.pk).get_secret, secret)


def test_a_preference_pointed_at_another_users_key_does_not_serve_it(user):
    victim_secret = fake_credentials("openai")
    victim = UserAPIKeyFactory(service="openai", credentials=victim_secret)
    UserAPIKeyFactory(user=user, service="openai")
    ServicePreference.objects.filter(user=user, service="openai").update(default_key=None)
    ServicePreference.objects.filter(user=victim.user, service="openai").update(default_key=None)
    ServicePreference.objects.filter(user=user, service="openai").update(default_key=victim)
    assert_refused_without_the_secret(lambda: byok.get_user_api_key(user, "openai"), victim_secret)


def test_team_keys_are_bound_to_their_team(user):
    team = TeamFactory(owner=user)
    secret = fake_credentials("openai")
    team_key = TeamAPIKeyFactory(team=team, credentials=secret, actor=user)
    assert token_of(team_key).format == "v2"
    assert byok.get_user_api_key(user, "openai", team=team) == secret
    other_team_key = TeamAPIKeyFactory(team=TeamFactory(owner=UserFactory()))
    move(token_of(other_team_key), team_key)
    assert_refused_without_the_secret(
        lambda: byok.get_user_api_key(user, "openai", team=team),
        other_team_key.get_secret(),
    )


def test_format_1_still_decrypts_in_the_lookup_and_on_the_row(user):
    secret = fake_credentials("twilio")
    key = UserAPIKeyFactory(user=user, service="twilio", credentials=secret)
    to_v1(key, secret)
    assert token_of(key).format == "v1"
    assert byok.get_user_api_key(user, "twilio") == secret
    assert UserAPIKey.objects.get(pk=key.pk).get_secret() == secret


def test_the_sql_transforms_read_both_formats(user):
    primary = get_keyring().primary.id
    v1, v2 = UserAPIKeyFactory(user=user), UserAPIKeyFactory(user=user, service="stripe")
    to_v1(v1, v1.get_secret())
    by_key = UserAPIKey.objects.filter(credentials__encryption_key_id=primary)
    assert set(by_key.values_list("pk", flat=True)) == {v1.pk, v2.pk}
    assert list(
        UserAPIKey.objects.filter(credentials__format="1").values_list("pk", flat=True)
    ) == [v1.pk]
    assert rotation.rows_per_key_and_format() == {(primary, "v1"): 1, (primary, "v2"): 1}


@pytest.fixture
def v1_rows(user):
    """Nine rows written in format 1, and their secrets."""
    secrets = {}
    for index in range(9):
        service = ["openai", "twilio", "aws_s3"][index % 3]
        credentials = fake_credentials(service)
        key = UserAPIKeyFactory(user=user, service=service, credentials=credentials)
        to_v1(key, credentials)
        secrets[key.pk] = credentials
    return secrets


def rotate_keys(*args):
    out = StringIO()
    call_command("byok_rotate_keys", *args, stdout=out)
    return out.getvalue()


def test_rotation_upgrades_format_1_rows_batched_with_a_dry_run(v1_rows, user):
    primary = get_keyring().primary.id
    before = list(UserAPIKey.objects.values_list("credentials", flat=True).order_by("pk"))
    dry = rotate_keys("--dry-run")
    assert "9 rows would be re-encrypted (9 of them upgraded from format 1 to format 2)" in dry
    assert f"  {primary}  v1           9" in dry
    assert list(UserAPIKey.objects.values_list("credentials", flat=True).order_by("pk")) == before
    output = rotate_keys("--batch-size", "4")
    assert "Re-encrypted 4 of 9 rows" in output
    assert "Re-encrypted 9 of 9 rows" in output
    assert f"  {primary}  v2           9" in output.split("format after:")[1]
    assert rotation.rows_per_key_and_format() == {(primary, "v2"): 9}
    for key in UserAPIKey.objects.all():
        assert key.get_secret() == v1_rows[key.pk]
    assert "0 rows re-encrypted" in rotate_keys()  # idempotent
    for secret in v1_rows.values():
        for value in [secret] if isinstance(secret, str) else secret.values():
            assert value not in dry + output


def test_an_interrupted_upgrade_resumes(v1_rows, monkeypatch):
    primary = get_keyring().primary.id
    real, calls = rotation._reencrypt, []

    def crash_in_the_second_batch(key, keyring):
        calls.append(key.pk)
        if len(calls) == 6:
            raise KeyboardInterrupt
        real(key, keyring)

    monkeypatch.setattr(rotation, "_reencrypt", crash_in_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        rotate_keys("--batch-size", "5")
    assert rotation.rows_per_key_and_format() == {(primary, "v1"): 4, (primary, "v2"): 5}
    monkeypatch.setattr(rotation, "_reencrypt", real)
    assert "Re-encrypted 4 of 4 rows" in rotate_keys("--batch-size", "5")
    assert rotation.rows_per_key_and_format() == {(primary, "v2"): 9}


def test_an_upgraded_row_is_bound_to_its_row(v1_rows, user):
    rotate_keys()
    first, second = UserAPIKey.objects.filter(service="openai").order_by("pk")[:2]
    move(first.credentials, second)
    assert_refused_without_the_secret(
        UserAPIKey.objects.get(pk=second.pk).get_secret, v1_rows[first.pk]
    )


def test_the_upgrade_walks_the_key_index(v1_rows):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner")
    plan = rotation.next_batch(get_keyring().primary.id, None, 500, v1_only=True).explain()
    assert "Sort" not in plan
