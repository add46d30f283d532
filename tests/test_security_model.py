"""The security model, claim by claim: each test proves one sentence of docs/security.md.

The page names the test beside each claim. Some tests prove a limit rather than a
protection (a database writer can move a ciphertext, the throttles count only as far
as the default cache is shared, ...): the page states those limits, and the test keeps
the page honest if the code changes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import json
import logging
import re
import socket
import struct
import sys
import time
import tracemalloc
import uuid
from contextlib import ExitStack
from urllib.parse import unquote, urlsplit

import pytest
import requests
import responses as responses_lib
from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import got_request_exception
from django.db import connection
from django.test import Client, TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.views.debug import ExceptionReporter

import byok
from byok import keys as byok_keys
from byok import reservations as reserve
from byok.checks import check_encryption_keys
from byok.crypto import EncryptionKey, Keyring, binding, get_keyring, parse_key, reset_keyring
from byok.exceptions import DecryptionError
from byok.fields import SealedCredentials, canonical_bytes
from byok.http import MAX_RESPONSE_BYTES, ProbeRequest
from byok.importing import MAX_BYTES, MAX_ENTRIES, Entry
from byok.models import AuditEvent, KeyUsage, Team, TeamRole, UserAPIKey
from byok.notifications import key_context, set_wanted
from byok.probes import probe_client
from byok.recheck import run_options
from byok.resolution import resolve_api_key
from byok.results import ProbeStatus
from byok.rotation import rotate
from byok.services.base import MAX_VALUE_LENGTH, mask_value
from byok.services.registry import registry
from byok.tasks import notify, start_recheck
from byok.validation import validate_credentials

from factories import UserAPIKeyFactory, UserFactory
from fakes import FAKES, fake_credentials, rand
from kms_server import data_keys_in_the_clear, kms_options
from support import (
    OTHER_ENCRYPTION_KEY,
    admin_url,
    change_form,
    client_for,
    with_byok,
)

pytestmark = pytest.mark.django_db

API = "/api/user/api-keys/"
PAGES = "/dashboard/api-keys/"
OPENAI_MODELS = "https://api.openai.com/v1/models"
GATEWAY = "https://llm-gateway.example.com/v1"
#: Every host a built-in probe may call: the providers' own domains.
PROVIDER_DOMAINS = (
    "api.openai.com",
    "api.anthropic.com",
    "api.resend.com",
    "api.sendgrid.com",
    "api.twilio.com",
    "api.stripe.com",
    "mixpanel.com",
    "amazonaws.com",
    "api.cloudinary.com",
    "api.github.com",
    "sentry.io",
)
#: Shortest run of a secret's characters the leak checks look for.
RUN = 12


# helpers ---------------------------------------------------------------------------


def as_mapping(service, credentials):
    """A credential as byok stores it: a mapping of field names to values."""
    if isinstance(credentials, str):
        return {registry.get(service).fields[0].name: credentials}
    return dict(credentials)


def secret_fields(service, credentials):
    """The values of the secret fields (a Twilio account SID is not a secret)."""
    secret = {f.name for f in registry.get(service).fields if f.secret}
    return [v for name, v in as_mapping(service, credentials).items() if name in secret]


def every_value(service, credentials):
    return list(as_mapping(service, credentials).values())


def public_prefix(value):
    prefixes = [p for s in registry for p in s.key_prefixes if value.startswith(p)]
    return max(prefixes, key=len, default="")


def traces_of(value):
    """What would betray ``value``: itself, runs of it, its hex and its base64 at any offset."""
    found = {value}
    start = len(public_prefix(value))
    found |= {value[i : i + RUN] for i in range(len(value) - RUN + 1) if i + RUN > start}
    raw = value.encode()
    found |= {raw.hex(), raw.hex().upper()}
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * offset + raw).decode()
            found.add(text[(offset * 4 + 2) // 3 : -3])
    return {trace for trace in found if len(trace) >= min(RUN, len(value))}


def assert_absent(values, text, where="the output"):
    leaked = [value for value in values if any(trace in text for trace in traces_of(value))]
    assert not leaked, f"{len(leaked)} credential value(s) found in {where}"


def raw_dump():
    """Every cell of every byok table, read with plain SQL (table names from the models)."""
    cells, tables = [], {}
    with connection.cursor() as cursor:
        for model in apps.get_app_config("byok").get_models():
            table = model._meta.db_table
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            rows = cursor.fetchall()
            tables[table] = len(rows)
            for row in rows:
                for value in row:
                    if isinstance(value, memoryview | bytes):
                        value = bytes(value).decode("latin-1")
                    cells.append(str(value))
    return "\n".join(cells), tables


def db_pk(key):
    return UserAPIKey._meta.pk.get_db_prep_value(key.pk, connection)


def column(name):
    return connection.ops.quote_name(UserAPIKey._meta.get_field(name).column)


def key_table():
    return connection.ops.quote_name(UserAPIKey._meta.db_table)


def raw_key_row(key, *names):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(column(n) for n in names)} FROM {key_table()} "  # noqa: S608
            f"WHERE {column('id')} = %s",
            [db_pk(key)],
        )
        return cursor.fetchone()


def set_raw_token(key, token):
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {key_table()} SET {column('credentials')} = %s "  # noqa: S608
            f"WHERE {column('id')} = %s",
            [token, db_pk(key)],
        )


def page_client(user):
    client = Client()
    client.force_login(user)
    return client


def hosts_called(mock):
    return {urlsplit(call.request.url).hostname for call in mock.calls}


def is_provider_host(host):
    return any(host == domain or host.endswith(f".{domain}") for domain in PROVIDER_DOMAINS)


def resolving_to(*addresses):
    """A ``getaddrinfo`` under which every name resolves to ``addresses``."""

    def getaddrinfo(host, port, *args, **kwargs):
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, port),
            )
            for address in addresses
        ]

    return getaddrinfo


def error_reports():
    """Collect the text and HTML error report Django would mail for each failed request."""
    reports = []

    def report(sender, request, **kwargs):
        reporter = ExceptionReporter(request, *sys.exc_info())
        reports.append(reporter.get_traceback_text() + reporter.get_traceback_html())

    got_request_exception.connect(report, weak=False)
    return reports, lambda: got_request_exception.disconnect(report)


def sentry_org_token(**claims):
    payload = {"iat": 1700000000.5, "url": "https://sentry.io", "org": "acme", **claims}
    encoded = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    return f"sntrys_{encoded}_{rand(43)}"


def boom(*args, **kwargs):
    raise RuntimeError("a bug in the host's code")


def staff_with(*codenames):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="byok", codename__in=codenames)
    )
    return staff


# (a) a copy of the database alone ---------------------------------------------------


def test_a_database_copy_alone_holds_no_plaintext_secret(user, other_user, provider):
    platform_secret = fake_credentials("openai")
    used = []
    for owner in (user, other_user):
        for service in FAKES:
            credentials = fake_credentials(service)
            used.append((service, credentials))
            UserAPIKeyFactory(
                user=owner, service=service, credentials=credentials, nickname=f"{service} key"
            )
    openai_key = UserAPIKey.objects.get(user=user, service="openai")
    byok_keys.test_user_api_key(openai_key, actor=user)
    byok_keys.reveal_user_api_key(openai_key, actor=user)
    byok.track_api_usage(user, "openai", calls=3, units=120)
    byok.set_budget(user, limit="5", service="openai", action="block")
    held = reserve.hold(user, "openai", "0.01")
    byok.track_api_usage(user, "openai", model="gpt-4o", input_tokens=1000, key=held)
    reserve.hold(user, "openai", "0.02")  # left in place: a row to check
    replaced = fake_credentials("anthropic")
    byok_keys.update_user_api_key(
        UserAPIKey.objects.get(user=user, service="anthropic"), credentials=replaced
    )
    used.append(("anthropic", replaced))
    byok_keys.remove_user_api_key(UserAPIKey.objects.get(user=other_user, service="stripe"))
    team = Team.objects.create(name="Research")
    team.add_member(user, TeamRole.OWNER)
    member = UserFactory()
    team.add_member(member)
    team_secret = fake_credentials("openai")
    byok_keys.add_team_api_key(team, "openai", team_secret, actor=user)
    used.append(("openai", team_secret))
    served = byok.resolve_api_key(member, "openai", team=team)
    byok.track_api_usage(member, "openai", key=served)
    with with_byok(PLATFORM_KEYS={"openai": platform_secret}):
        byok.track_api_usage(UserFactory(), "openai")
    used.append(("openai", platform_secret))
    # Background work: a re-check run (anthropic answers 429: a back-off row), a
    # notification, a kind of notification turned off.
    provider.get("https://api.anthropic.com/v1/models", status=429, json={})
    with TestCase.captureOnCommitCallbacks(execute=True):  # byok enqueues on commit
        start_recheck(run_options(user=user))
        notify(user.pk, "key_invalid", "x", key=openai_key, context=key_context(openai_key))
    set_wanted(other_user, [])
    # Envelope encryption: a key stored under a KMS's data key (kept wrapped).
    kms_secret = fake_credentials("github")
    with with_byok(KEYRING="kms", KMS=kms_options()):
        byok_keys.add_user_api_key(other_user, "github", kms_secret, nickname="under the KMS")
        data_keys = data_keys_in_the_clear()
    used.append(("github", kms_secret))

    dump, tables = raw_dump()

    assert all(tables.values()), f"every byok table must hold rows to be checked: {tables}"
    assert_absent([v for s, c in used for v in every_value(s, c)], dump, "the database")
    raw_data_keys = [base64.urlsafe_b64decode(key) for key in data_keys]
    assert_absent(
        [
            *data_keys,
            *(raw.hex() for raw in raw_data_keys),
            *(raw.decode("latin-1") for raw in raw_data_keys),
        ],
        dump,
        "the database",
    )


def test_a_ciphertext_names_its_key_and_reveals_only_its_rough_length(user):
    short = UserAPIKeyFactory(user=user, credentials=f"sk-{rand(40)}")
    long = UserAPIKeyFactory(user=user, credentials=f"sk-{rand(240)}")
    same_length = UserAPIKeyFactory(user=user, credentials=f"sk-{rand(40)}")
    a_bit_longer = UserAPIKeyFactory(user=user, credentials=f"sk-{rand(44)}")
    token, fingerprint = raw_key_row(short, "credentials", "fingerprint")

    key_id = get_keyring().primary.id
    assert re.fullmatch(rf"byok:2:{key_id}:[A-Za-z0-9_=-]+", token)
    assert re.fullmatch(r"[0-9a-f]{8}", key_id)
    assert EncryptionKey(parse_key(OTHER_ENCRYPTION_KEY)).id != key_id
    payload = base64.urlsafe_b64decode(token.split(":", 3)[3])
    plaintext = canonical_bytes({"api_key": "x" * 43})
    # A nonce, the plaintext padded to 16 bytes, a tag: no time, the length only roughly.
    assert len(payload) == 12 + len(plaintext) + (-len(plaintext) % 16) + 16
    assert len(raw_key_row(same_length, "credentials")[0]) == len(token)
    assert len(raw_key_row(a_bit_longer, "credentials")[0]) == len(token)
    assert len(raw_key_row(long, "credentials")[0]) > len(token) + 200
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint)


def test_a_format_1_ciphertext_also_shows_when_it_was_written(user):
    token = get_keyring().primary.encrypt_v1(canonical_bytes({"api_key": f"sk-{rand(40)}"}))
    payload = base64.urlsafe_b64decode(token.split(":", 3)[3])
    version, encrypted_at = struct.unpack(">cQ", payload[:9])
    assert version == b"\x80"
    assert abs(encrypted_at - time.time()) < 120


def test_a_changed_ciphertext_is_refused_never_decrypted_to_garbage(user):
    key = UserAPIKeyFactory(user=user)
    token = raw_key_row(key, "credentials")[0]
    middle = len(token) - 40
    set_raw_token(
        key, token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    )

    with pytest.raises(DecryptionError):
        byok.get_user_api_key(user, "openai")
    assert client_for(user).post(f"{API}{key.pk}/reveal/").status_code == 409


def test_fingerprints_are_keyed_and_cannot_be_checked_without_the_key(user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    (fingerprint,) = raw_key_row(key, "fingerprint")
    material = canonical_bytes({"api_key": secret})

    for data in (secret.encode(), material):
        for algorithm in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_256"):
            assert hashlib.new(algorithm, data).hexdigest() != fingerprint
        assert hmac.new(settings.SECRET_KEY.encode(), data, "sha256").hexdigest() != fingerprint
    assert get_keyring().fingerprint(material) == fingerprint
    assert EncryptionKey(parse_key(OTHER_ENCRYPTION_KEY)).fingerprint(material) != fingerprint


def test_the_same_secret_has_the_same_fingerprint_for_every_user(user, other_user):
    secret = fake_credentials("openai")
    mine = UserAPIKeyFactory(user=user, credentials=secret)
    theirs = UserAPIKeyFactory(user=other_user, credentials=secret)

    assert raw_key_row(mine, "fingerprint") == raw_key_row(theirs, "fingerprint")
    assert raw_key_row(mine, "credentials") != raw_key_row(theirs, "credentials")


@pytest.mark.parametrize("service", list(FAKES))
def test_a_masked_key_shows_a_known_prefix_and_the_last_four_at_most(user, service):
    spec = registry.get(service)
    credentials = as_mapping(service, fake_credentials(service))
    key = UserAPIKeyFactory(user=user, service=service, credentials=credentials)
    source = spec.hint_field or next(f.name for f in spec.fields if f.secret)
    value = credentials[source]
    prefix = max((p for p in spec.key_prefixes if value.startswith(p)), key=len, default="")

    assert raw_key_row(key, "masked_key")[0] == f"{prefix}…{value[-4:]}"
    if service == "aws_s3":  # made from the access key ID, not the secret access key
        assert source == "access_key_id"
    assert mask_value("sk-" + "x" * 15, ("sk-",)) == "sk-••••"


def test_deleting_a_key_erases_its_ciphertext_and_fingerprint(api, user):
    key = UserAPIKeyFactory(user=user)
    assert api.delete(f"{API}{key.pk}/").status_code == 204

    token, fingerprint, deleted_at = raw_key_row(key, "credentials", "fingerprint", "deleted_at")
    assert (token, fingerprint) == (None, None)
    assert deleted_at is not None
    assert set(AuditEvent.objects.filter(key=key).values_list("action", flat=True)) == {
        "created",
        "deleted",
    }


def test_audit_and_usage_rows_reveal_activity_but_no_secret(user):
    secret = fake_credentials("openai")
    client = client_for(user)
    headers = {"HTTP_USER_AGENT": "Reviewer/1.0", "REMOTE_ADDR": "203.0.113.7"}
    created = client.post(API, {"service": "openai", "key": secret, "test": False}, **headers)
    key_id = created.json()["id"]
    client.post(f"{API}{key_id}/reveal/", **headers)
    client.patch(f"{API}{key_id}/", {"nickname": "work"}, **headers)
    byok.track_api_usage(user, "openai", calls=2, units=50)

    events = list(AuditEvent.objects.order_by("created_at", "id"))
    assert [e.action for e in events] == ["created", "revealed", "updated"]
    for event in events:
        assert (event.owner_id, event.actor_id) == (user.pk, user.pk)
        assert (event.ip_address, event.user_agent) == ("203.0.113.7", "Reviewer/1.0")
        assert event.metadata["via"] == "api"
    assert events[2].metadata["fields"] == ["nickname"]
    usage = KeyUsage.objects.get()
    assert (usage.calls, usage.units) == (2, 50)
    assert_absent([secret], raw_dump()[0], "the audit and usage rows")


def test_a_database_writer_cannot_move_a_ciphertext_to_another_row(user, other_user):
    """A format 2 ciphertext is bound to its row's id, owner and service: copied into
    the attacker's own key, it is refused, and the secret appears nowhere."""
    victims = fake_credentials("openai")
    victim_key = UserAPIKeyFactory(user=other_user, credentials=victims)
    attacker_key = UserAPIKeyFactory(user=user)

    set_raw_token(attacker_key, raw_key_row(victim_key, "credentials")[0])

    api = client_for(user)
    revealed = api.post(f"{API}{attacker_key.pk}/reveal/")
    assert revealed.status_code == 409
    with pytest.raises(DecryptionError, match="moved from another row") as used:
        byok.get_user_api_key(user, "openai")
    assert victims not in revealed.content.decode() + str(used.value)


def test_a_format_1_ciphertext_is_not_bound_to_its_row(user, other_user):
    """A limit: a format 1 token (written before format 2, or kept in an old backup)
    still decrypts in any row until byok_rotate_keys has upgraded every row, and is
    accepted afterwards too."""
    victims = fake_credentials("openai")
    UserAPIKeyFactory(user=other_user, credentials=victims)
    attacker_key = UserAPIKeyFactory(user=user)
    old_token = get_keyring().primary.encrypt_v1(canonical_bytes({"api_key": victims}))

    set_raw_token(attacker_key, old_token)

    assert client_for(user).post(f"{API}{attacker_key.pk}/reveal/").json()["key"] == victims


# (b) the database and the encryption keys ------------------------------------------


def test_the_database_and_the_encryption_keys_together_reveal_every_secret(user):
    stored = {}
    for service in FAKES:
        credentials = as_mapping(service, fake_credentials(service))
        key = UserAPIKeyFactory(user=user, service=service, credentials=credentials)
        stored[str(key.pk).replace("-", "")] = credentials
    keyring = Keyring([EncryptionKey(parse_key(k)) for k in settings.BYOK["ENCRYPTION_KEYS"]])

    with connection.cursor() as cursor:
        names = ", ".join(column(name) for name in ("id", "user", "service", "credentials"))
        cursor.execute(f"SELECT {names} FROM {key_table()}")  # noqa: S608
        rows = cursor.fetchall()

    user_pk = get_user_model()._meta.pk
    opened = {
        str(pk).replace("-", ""): json.loads(
            keyring.decrypt(
                token,
                binding(uuid.UUID(str(pk)), f"user:{user_pk.to_python(owner)}", service),
            )
        )
        for pk, owner, service, token in rows
    }
    assert opened == stored
    guess = canonical_bytes(next(iter(stored.values())))
    assert keyring.fingerprint(guess) in {
        raw_key_row(k, "fingerprint")[0] for k in UserAPIKey.objects.all()
    }


def test_platform_keys_live_only_in_settings(user):
    platform_secret = fake_credentials("openai")
    with with_byok(PLATFORM_KEYS={"openai": platform_secret}):
        assert byok.get_user_api_key(user, "openai") == platform_secret
        byok.track_api_usage(user, "openai")

    assert_absent([platform_secret], raw_dump()[0], "the database")


# (c) a log file ---------------------------------------------------------------------


def every_logger_at_debug(stack, caplog):
    for name in (None, "django", "django.db.backends", "django.request", "byok", "urllib3"):
        stack.enter_context(caplog.at_level(logging.DEBUG, logger=name))
    stack.enter_context(CaptureQueriesContext(connection))  # SQL is logged, with parameters


def logged_text(caplog):
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(f"{formatter.format(r)} {r.args!r}" for r in caplog.records)


def test_byok_logs_never_hold_a_secret(user, caplog):
    used = {name: fake_credentials("openai") for name in ("added", "candidate", "replacement")}
    used |= {"rejected": fake_credentials("openai"), "page": fake_credentials("openai")}
    used |= {"imported": fake_credentials("openai"), "malformed": f"sk-{rand(10)}"}
    twilio = fake_credentials("twilio")
    api, pages = client_for(user), page_client(user)
    with ExitStack() as stack, responses_lib.RequestsMock() as mock:
        every_logger_at_debug(stack, caplog)
        rejected = {"error": {"message": f"Incorrect API key provided: {used['rejected']}"}}
        bearer = {"Authorization": f"Bearer {used['rejected']}"}
        mock.get(
            OPENAI_MODELS,
            status=401,
            json=rejected,
            match=[responses_lib.matchers.header_matcher(bearer)],
        )
        mock.get(OPENAI_MODELS, json={"data": []})

        key_id = api.post(API, {"service": "openai", "key": used["added"]}).json()["id"]
        api.post(f"{API}test/", {"service": "openai", "key": used["candidate"]})
        api.post(f"{API}{key_id}/test/")
        api.post(f"{API}{key_id}/reveal/")
        api.patch(f"{API}{key_id}/", {"key": used["replacement"]})
        assert api.post(API, {"service": "openai", "key": used["rejected"]}).status_code == 400
        assert api.post(API, {"service": "openai", "key": used["malformed"]}).status_code == 400
        env_file = (
            f"OPENAI_API_KEY={used['imported']}\n"
            f"TWILIO_ACCOUNT_SID={twilio['account_sid']}\n"
            f"TWILIO_AUTH_TOKEN={twilio['auth_token']}\n"
        )
        api.post(f"{API}import/", {"text": env_file})
        pages.post(f"{PAGES}add/openai/", {"api_key": used["page"], "environment": "production"})
        with with_byok(ENCRYPTION_KEYS=[OTHER_ENCRYPTION_KEY, *settings.BYOK["ENCRYPTION_KEYS"]]):
            rotate()
        api.delete(f"{API}{key_id}/")

    names = {record.name for record in caplog.records}
    assert {"byok.probes", "django.db.backends", "django.request"} <= names
    assert_absent([*used.values(), twilio["auth_token"]], logged_text(caplog), "the logs")


def test_a_probe_is_logged_by_service_method_host_path_and_status(provider, caplog):
    with caplog.at_level(logging.DEBUG, logger="byok"):
        byok.test_credentials("openai", fake_credentials("openai"))

    (record,) = [r for r in caplog.records if r.name == "byok.probes"]
    assert record.levelno == logging.INFO
    assert re.fullmatch(
        r"probe openai GET api\.openai\.com/v1/models -> 200 in \d+ ms", record.getMessage()
    )


def test_no_probe_puts_a_secret_in_its_url(anywhere):
    checked = {}
    for service in FAKES:
        credentials = fake_credentials(service)
        before = len(anywhere.calls)
        byok.test_credentials(service, credentials)
        checked[service] = len(anywhere.calls) - before
        for call in anywhere.calls[before:]:
            assert_absent(secret_fields(service, credentials), unquote(call.request.url), "a URL")

    assert [s for s, calls in checked.items() if not calls] == ["google_analytics"]


def test_the_aws_secret_access_key_never_leaves_the_server(anywhere):
    credentials = fake_credentials("aws_s3")
    byok.test_credentials("aws_s3", credentials)

    assert len(anywhere.calls) >= 2  # STS, then the bucket
    for call in anywhere.calls:
        request = call.request
        sent = f"{request.url} {dict(request.headers)} {request.body!r}"
        assert_absent([credentials["secret_access_key"]], sent, "a request to AWS")
        assert "Signature=" in request.headers["Authorization"]


def test_an_undecryptable_key_is_logged_by_row_and_key_id_only(api, user, caplog):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    with caplog.at_level(logging.DEBUG), with_byok(ENCRYPTION_KEYS=[OTHER_ENCRYPTION_KEY]):
        assert api.post(f"{API}{key.pk}/reveal/").status_code == 409

    (record,) = [r for r in caplog.records if r.name == "byok.rest"]
    assert record.getMessage() == (
        f"API key {key.pk} cannot be decrypted (encryption key id {get_keyring().primary.id})"
    )
    assert_absent([secret], logged_text(caplog), "the logs")


def through_the_filter(log):
    """What a host's handler with RedactSecretsFilter writes for the records ``log`` makes."""
    from byok.redaction import RedactSecretsFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecretsFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("host_app.security_model")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with ExitStack() as stack:
            stack.callback(setattr, logger, "propagate", True)
            logger.setLevel(logging.DEBUG)
            log(logger)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    return stream.getvalue()


def test_the_log_filter_removes_credentials_from_the_hosts_own_logs():
    prefixed = [fake_credentials(s) for s in ("openai", "anthropic", "stripe", "github")]
    twilio, aws = fake_credentials("twilio"), fake_credentials("aws_s3")
    cloudinary, bearer = fake_credentials("cloudinary"), fake_credentials("resend")
    cloudinary_url = (
        f"cloudinary://{cloudinary['api_key']}:{cloudinary['api_secret']}"
        f"@{cloudinary['cloud_name']}"
    )

    def log(logger):
        for key in prefixed:
            logger.info("calling the provider with %s", key)
            logger.info(f"calling the provider with {key}")
        logger.info("Twilio %s", f"{twilio['account_sid']}:{twilio['auth_token']}")
        logger.info(f"AWS {aws['access_key_id']} {aws['secret_access_key']}")
        logger.debug("headers %s", {"Authorization": f"Bearer {bearer}"})
        logger.info("CLOUDINARY_URL=%s", cloudinary_url)
        try:
            raise ValueError(f"the provider refused {prefixed[0]}")
        except ValueError:
            logger.exception("a call failed")

    written = through_the_filter(log)

    assert written.count("calling the provider with") == 2 * len(prefixed)
    assert "Traceback" in written
    secrets = [*prefixed, twilio["auth_token"], aws["secret_access_key"], bearer]
    assert_absent([*secrets, cloudinary["api_secret"]], written, "the host's log")


def test_the_log_filter_misses_a_secret_whose_mark_is_not_in_the_same_string():
    """A limit: a secret with no prefix is found only beside its name or its partner."""
    twilio = fake_credentials("twilio")

    def log(logger):
        logger.info("value: %s", twilio["auth_token"])
        logger.info("Twilio %s:%s", twilio["account_sid"], twilio["auth_token"])

    written = through_the_filter(log)

    assert written.count(twilio["auth_token"]) == 2


def test_objects_holding_a_secret_never_print_it(user):
    secret, sid_and_token = fake_credentials("openai"), fake_credentials("twilio")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    openai, twilio = registry.get("openai"), registry.get("twilio")
    checked = validate_credentials("openai", secret)
    objects = [
        checked,
        openai.probe_request(checked),
        twilio.probe_request(validate_credentials("twilio", sid_and_token)),
        resolve_api_key(user, "openai"),
        key,
        key.credentials,
        SealedCredentials.seal({"api_key": secret}, binding=b"a row"),
        Entry("line 1", service="openai", credentials=secret),
    ]

    for thing in objects:
        assert_absent(
            [secret, sid_and_token["auth_token"]], f"{thing!r} {thing}", repr(type(thing))
        )


def test_error_reports_from_the_api_and_pages_hold_no_secret(user, monkeypatch):
    secret = fake_credentials("openai")
    stored_secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=stored_secret)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    reports, stop = error_reports()
    try:
        monkeypatch.setattr(byok_keys, "store_key", boom)
        body = {"service": "openai", "key": secret, "test": False}
        assert client.post(API, body, content_type="application/json").status_code == 500
        add = {"api_key": secret, "environment": "production"}
        assert client.post(f"{PAGES}add/openai/", add).status_code == 500
        monkeypatch.setattr(byok_keys.audit, "record", boom)
        assert client.post(f"{API}{key.pk}/reveal/").status_code == 500
    finally:
        stop()

    assert len(reports) == 3
    assert_absent([secret, stored_secret], "\n".join(reports), "an error report")
    assert settings.BYOK["ENCRYPTION_KEYS"][0] not in "\n".join(reports)


def test_an_admin_error_report_holds_no_secret(superuser, user, monkeypatch):
    import byok.admin

    key = UserAPIKeyFactory(user=user)
    secret = fake_credentials("openai")
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    monkeypatch.setattr(byok.admin, "update_user_api_key", boom)
    reports, stop = error_reports()
    try:
        client.post(admin_url("change", key), change_form(key, secret=secret))
    finally:
        stop()

    assert len(reports) == 1
    assert_absent([secret], reports[0], "an admin error report")


# (d) another user's session ---------------------------------------------------------


def test_another_users_key_is_a_404_everywhere(user, other_user, provider):
    theirs = UserAPIKeyFactory(user=other_user, nickname="theirs")
    missing = uuid.uuid4()
    api, pages = client_for(user), page_client(user)
    calls = [
        ("get", "{}/", None),
        ("put", "{}/", {"nickname": "x", "environment": "test", "is_default": True}),
        ("patch", "{}/", {"key": fake_credentials("openai")}),
        ("delete", "{}/", None),
        ("post", "{}/test/", None),
        ("post", "{}/reveal/", None),
    ]
    for method, path, body in calls:
        answers = [
            getattr(api, method)(API + path.format(pk), body) for pk in (theirs.pk, missing)
        ]
        assert [a.status_code for a in answers] == [404, 404], (method, path)
        assert answers[0].json() == answers[1].json()
    for method, path in [("post", "test/"), ("get", "remove/"), ("post", "remove/")]:
        for pk in (theirs.pk, missing):
            assert getattr(pages, method)(f"{PAGES}keys/{pk}/{path}").status_code == 404

    theirs.refresh_from_db()
    assert (theirs.nickname, theirs.deleted_at, theirs.status) == ("theirs", None, "untested")
    assert not provider.calls
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["created"]


def test_a_users_list_and_figures_hold_only_their_own_keys(user, other_user):
    mine = UserAPIKeyFactory(user=user)
    for service in ("openai", "anthropic", "stripe"):
        UserAPIKeyFactory(user=other_user, service=service)
    api = client_for(user)

    assert [k["id"] for k in api.get(API).json()] == [str(mine.pk)]
    assert api.get(f"{API}?service=anthropic").json() == []
    assert api.get(f"{API}stats/").json()["connected_services"] == 1
    connected = [s["id"] for s in api.get(f"{API}services/").json() if s["key_count"]]
    assert connected == ["openai"]


def test_reveal_is_throttled_and_audited(user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    api = client_for(user)

    answers = [api.post(f"{API}{key.pk}/reveal/", HTTP_USER_AGENT="Browser/1") for _ in range(6)]

    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[0].json()["key"] == secret
    events = AuditEvent.objects.filter(action="revealed")
    assert events.count() == 5
    assert {(e.key_id, e.owner_id, e.actor_id) for e in events} == {(key.pk, user.pk, user.pk)}
    assert {(e.ip_address, e.user_agent, e.metadata["via"]) for e in events} == {
        ("127.0.0.1", "Browser/1", "api")
    }


def test_reveal_can_be_switched_off(api, user):
    key = UserAPIKeyFactory(user=user)
    with with_byok(ALLOW_REVEAL=False):
        assert api.post(f"{API}{key.pk}/reveal/").status_code == 403

    assert not AuditEvent.objects.filter(action="revealed").exists()


def test_a_revealed_secret_is_marked_not_to_be_cached(api, user):
    key = UserAPIKeyFactory(user=user)
    response = api.post(f"{API}{key.pk}/reveal/")

    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"


def test_a_session_alone_can_reveal_replace_and_delete_the_users_keys(user, provider):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    session = page_client(user)  # a session cookie, no password asked again

    revealed = session.post(f"{API}{key.pk}/reveal/")
    replaced = session.patch(
        f"{API}{key.pk}/",
        {"key": fake_credentials("openai")},
        content_type="application/json",
    )
    deleted = session.delete(f"{API}{key.pk}/")

    assert revealed.json()["key"] == secret
    assert (replaced.status_code, deleted.status_code) == (200, 204)


def test_throttles_count_in_the_default_cache(api, user):
    key = UserAPIKeyFactory(user=user)
    for _ in range(5):
        api.post(f"{API}{key.pk}/reveal/")
    assert api.post(f"{API}{key.pk}/reveal/").status_code == 429

    cache.clear()  # what a restart does to a per-process cache such as LocMemCache

    assert api.post(f"{API}{key.pk}/reveal/").status_code == 200


# (e) a staff account in the admin ---------------------------------------------------


def test_staff_see_only_masked_keys_in_the_admin(superuser, user):
    stored = {}
    for service in FAKES:
        credentials = fake_credentials(service)
        key = UserAPIKeyFactory(user=user, service=service, credentials=credentials)
        stored[key] = secret_fields(service, credentials)
    admin = page_client(superuser)
    pages = [admin.get("/admin/byok/userapikey/"), admin.get("/admin/byok/auditevent/")]
    for key in stored:
        pages += [admin.get(admin_url("change", key)), admin.get(admin_url("history", key))]
    pages.append(admin.get(admin_url("delete", next(iter(stored)))))

    assert {page.status_code for page in pages} == {200}
    text = "\n".join(page.content.decode() for page in pages)
    assert_absent([v for values in stored.values() for v in values], text, "the admin")
    assert all(key.masked_key in pages[0].content.decode() for key in stored)


def test_staff_can_replace_but_never_read_a_secret(user):
    staff = staff_with("view_userapikey", "change_userapikey")
    old = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=old)
    new = fake_credentials("openai")
    admin = page_client(staff)

    form = admin.get(admin_url("change", key))
    saved = admin.post(admin_url("change", key), change_form(key, secret=new))
    after = admin.get(admin_url("change", key))
    history = admin.get(admin_url("history", key))

    assert saved.status_code == 302
    assert byok.get_user_api_key(user, "openai") == new
    html = "\n".join(p.content.decode() for p in (form, after, history))
    assert 'type="password"' in form.content.decode()
    assert_absent([old, new], html, "the admin")
    logged = json.dumps([[e.object_repr, e.change_message] for e in LogEntry.objects.all()])
    assert_absent([old, new], logged, "the admin's change log")


def test_staff_cannot_move_a_key_to_another_owner(superuser, user):
    key = UserAPIKeyFactory(user=user)
    admin = page_client(superuser)

    admin.post(
        admin_url("change", key),
        change_form(key, user=str(superuser.pk), service="anthropic", nickname="moved?"),
    )

    key.refresh_from_db()
    assert (key.user_id, key.service, key.nickname) == (user.pk, "openai", "moved?")


def test_the_audit_trail_cannot_be_changed_in_the_admin(superuser, user):
    UserAPIKeyFactory(user=user)
    event = AuditEvent.objects.get()
    before = list(AuditEvent.objects.values())
    admin = page_client(superuser)
    changelist = "/admin/byok/auditevent/"

    answers = [
        admin.get(f"{changelist}add/"),
        admin.post(f"{changelist}add/", {"action": "deleted", "service": "openai"}),
        admin.post(admin_url("change", event), {"action": "deleted", "service": "x"}),
        admin.get(admin_url("delete", event)),
        admin.post(admin_url("delete", event), {"post": "yes"}),
    ]
    bulk = admin.post(
        changelist, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )

    assert [a.status_code for a in answers] == [403] * 5
    assert bulk.status_code in (200, 302)
    assert admin.get(admin_url("change", event)).status_code == 200  # viewing is allowed
    assert list(AuditEvent.objects.values()) == before


def test_the_admin_needs_model_permissions(user):
    key = UserAPIKeyFactory(user=user, nickname="kept")
    nobody, viewer = staff_with(), staff_with("view_userapikey")
    changed = change_form(key, nickname="changed")

    assert page_client(nobody).get("/admin/byok/userapikey/").status_code == 403
    assert page_client(nobody).get(admin_url("change", key)).status_code == 403
    assert page_client(viewer).get(admin_url("change", key)).status_code == 200
    assert page_client(viewer).post(admin_url("change", key), changed).status_code == 403
    assert page_client(viewer).get("/admin/byok/userapikey/add/").status_code == 403
    key.refresh_from_db()
    assert key.nickname == "kept"


def test_staff_get_no_special_access_through_the_api_or_pages(superuser, user):
    key = UserAPIKeyFactory(user=user)

    assert client_for(superuser).get(f"{API}{key.pk}/").status_code == 404
    assert client_for(superuser).post(f"{API}{key.pk}/reveal/").status_code == 404
    assert page_client(superuser).get(f"{PAGES}keys/{key.pk}/remove/").status_code == 404
    assert client_for(superuser).get(API).json() == []


def test_admin_changes_are_audited_as_the_staff_member(superuser, user):
    key = UserAPIKeyFactory(user=user)
    admin = page_client(superuser)

    admin.post(admin_url("change", key), change_form(key, secret=fake_credentials("openai")))
    admin.post(admin_url("delete", key), {"post": "yes"})

    events = AuditEvent.objects.exclude(action="created").order_by("created_at", "id")
    assert [(e.action, e.actor_id, e.owner_id, e.metadata["via"]) for e in events] == [
        ("updated", superuser.pk, user.pk, "admin"),
        ("deleted", superuser.pk, user.pk, "admin"),
    ]
    assert events[0].metadata["fields"] == ["credentials"]


# (f) the host's SECRET_KEY ----------------------------------------------------------


def test_changing_secret_key_loses_no_stored_secret(user):
    before = fake_credentials("openai")
    UserAPIKeyFactory(user=user, credentials=before)

    with override_settings(SECRET_KEY="an-entirely-different-secret-key-after-a-rotation"):
        reset_keyring()  # derive the keys again, under the new SECRET_KEY
        assert byok.get_user_api_key(user, "openai") == before
        with pytest.raises(ValidationError, match="already stored"):
            UserAPIKeyFactory(user=user, credentials=before)  # the fingerprint still matches
        during = UserAPIKeyFactory(user=user, service="anthropic").get_secret()

    with override_settings(SECRET_KEY="yet-another-secret-key-for-the-third-time"):
        reset_keyring()
        assert byok.get_user_api_key(user, "openai") == before
        assert byok.get_user_api_key(user, "anthropic") == during


def test_the_encryption_key_cannot_be_secret_key():
    key = settings.BYOK["ENCRYPTION_KEYS"][0]
    with override_settings(SECRET_KEY=key):
        ids = [message.id for message in check_encryption_keys()]

    assert ids == ["byok.E004"]


# (g) a network attacker, a malicious base URL -------------------------------------


def test_probes_verify_tls_and_ignore_proxy_settings_from_the_environment(provider, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.attacker.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/srv/attacker/ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/srv/attacker/ca.pem")

    byok.test_credentials("openai", fake_credentials("openai"))

    (call,) = provider.calls
    assert call.request.url.startswith("https://")
    assert call.request.req_kwargs["verify"] is True
    assert not call.request.req_kwargs["proxies"]


def test_a_tls_failure_is_unreachable_and_never_retried_over_http():
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(OPENAI_MODELS, body=requests.exceptions.SSLError("certificate verify failed"))
        result = byok.test_credentials("openai", fake_credentials("openai"))
        urls = [call.request.url for call in mock.calls]

    assert result.status is ProbeStatus.UNREACHABLE
    assert "TLS" in result.message
    assert urls == [OPENAI_MODELS]


@pytest.mark.parametrize(
    "location", ["https://attacker.example/collect", "https://api.openai.com/v2/models"]
)
def test_provider_redirects_to_another_host_are_not_followed(location):
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(OPENAI_MODELS, status=302, headers={"Location": location})
        mock.get(location, json={"data": []})
        result = byok.test_credentials("openai", fake_credentials("openai"))
        urls = [call.request.url for call in mock.calls]

    assert result.status is ProbeStatus.PROVIDER_ERROR
    assert "redirect" in result.message
    assert urls == [OPENAI_MODELS]


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.0.0.5"],
        ["172.16.4.2"],
        ["192.168.1.10"],
        ["169.254.169.254"],
        ["100.64.0.1"],
        ["0.0.0.0"],  # noqa: S104 - an address a name resolves to, not a bind address
        ["::1"],
        ["fd00::7"],
        ["93.184.216.34", "10.0.0.5"],  # one private address among public ones is enough
    ],
)
def test_a_base_url_resolving_to_a_private_address_is_refused(monkeypatch, addresses):
    monkeypatch.setattr(socket, "getaddrinfo", resolving_to(*addresses))
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{GATEWAY}/models", json={"data": []})
        with with_byok(BASE_URLS={"openai": GATEWAY}):
            result = byok.test_credentials("openai", fake_credentials("openai"))
        sent = len(mock.calls)

    assert result.status is ProbeStatus.UNREACHABLE
    assert "private" in result.message
    assert sent == 0


def test_a_plain_http_base_url_is_refused(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", resolving_to("93.184.216.34"))
    plain = GATEWAY.replace("https://", "http://")
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{plain}/models", json={"data": []})
        with with_byok(BASE_URLS={"openai": plain}):
            result = byok.test_credentials("openai", fake_credentials("openai"))
        sent = len(mock.calls)

    assert result.status is ProbeStatus.UNREACHABLE
    assert "not https" in result.message
    assert sent == 0


def test_allowing_private_base_urls_also_allows_plain_http():
    internal = "http://10.0.0.5:8080/v1"
    with responses_lib.RequestsMock() as mock:
        mock.get(f"{internal}/models", json={"data": []})
        with with_byok(BASE_URLS={"openai": internal}, ALLOW_PRIVATE_BASE_URLS=True):
            result = byok.test_credentials("openai", fake_credentials("openai"))
        urls = [call.request.url for call in mock.calls]

    assert result.status is ProbeStatus.VALID
    assert urls == [f"{internal}/models"]


def test_the_address_check_is_not_pinned_to_the_connection(monkeypatch):
    """A limit: the name is resolved for the check, then again by the connection."""
    lookups = []
    public = resolving_to("93.184.216.34")

    def counting(host, *args, **kwargs):
        lookups.append(host)
        return public(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    with responses_lib.RequestsMock() as mock:
        mock.get(f"{GATEWAY}/models", json={"data": []})
        with with_byok(BASE_URLS={"openai": GATEWAY}):
            result = byok.test_credentials("openai", fake_credentials("openai"))
        urls = [call.request.url for call in mock.calls]

    assert result.status is ProbeStatus.VALID
    assert lookups == ["llm-gateway.example.com"]
    # requests gets the name, not the address that was checked: it resolves it again.
    assert urls == [f"{GATEWAY}/models"]


def test_a_large_or_compressed_answer_is_cut_at_256_kb():
    huge = b'{"data": [' + b'"x",' * (MAX_RESPONSE_BYTES // 2) + b'"x"]}'
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    client = probe_client(registry.get("openai"))
    with responses_lib.RequestsMock() as mock:
        mock.get(OPENAI_MODELS, body=huge)
        plain = client.send(ProbeRequest("GET", "/models"))
        mock.replace(
            responses_lib.GET, OPENAI_MODELS, body=bomb, headers={"Content-Encoding": "gzip"}
        )
        tracemalloc.start()
        try:
            inflated = client.send(ProbeRequest("GET", "/models"))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    for response in (plain, inflated):
        assert len(response.body) == MAX_RESPONSE_BYTES
        assert response.truncated
        assert response.json() is None
    assert peak < 16 * 1024 * 1024  # 64 MB once inflated: never held in memory


@pytest.mark.parametrize(
    "answer",
    [
        {"body": b'{"data": []}', "headers": {"Content-Length": "5000"}},  # cut off
        {"body": b"not gzip at all", "headers": {"Content-Encoding": "gzip"}},
    ],
    ids=["cut-off", "undecodable"],
)
def test_a_broken_answer_is_unreachable_never_an_error_page(api, user, answer):
    key = UserAPIKeyFactory(user=user)
    with responses_lib.RequestsMock() as mock:
        mock.get(OPENAI_MODELS, **answer)
        tested = api.post(f"{API}test/", {"service": "openai", "key": fake_credentials("openai")})
        retested = page_client(user).post(f"{PAGES}keys/{key.pk}/test/")

    assert tested.status_code == 200
    assert tested.json()["status"] == "unreachable"
    assert retested.status_code == 302
    key.refresh_from_db()
    assert key.status == "unreachable"


def test_probes_have_connect_and_read_timeouts(provider):
    byok.test_credentials("openai", fake_credentials("openai"))
    with with_byok(PROBE_TIMEOUT=(2, 7)):
        byok.test_credentials("openai", fake_credentials("openai"))
    provider.replace(responses_lib.GET, OPENAI_MODELS, body=requests.ReadTimeout())
    result = byok.test_credentials("openai", fake_credentials("openai"))

    timeouts = [call.request.req_kwargs["timeout"] for call in provider.calls]
    assert timeouts == [(5.0, 10.0), (2.0, 7.0), (5.0, 10.0), (5.0, 10.0)]
    assert result.status is ProbeStatus.UNREACHABLE  # after one retry


def test_probes_only_call_the_providers_own_hosts(anywhere):
    for service in FAKES:
        byok.test_credentials(service, fake_credentials(service))
    byok.test_credentials("sentry", sentry_org_token(region_url="https://attacker.example"))
    byok.test_credentials("sentry", sentry_org_token(region_url="https://x.sentry.io.evil.com"))

    assert hosts_called(anywhere)
    assert [host for host in hosts_called(anywhere) if not is_provider_host(host)] == []


# (h) a malicious user of the site ---------------------------------------------------


def test_malformed_keys_are_refused_and_never_sent(api, provider):
    malformed = ["sk-short", "sk-admin-" + rand(48), "ghp_" + rand(36), "sk-proj-" + "x" * 60]

    for value in malformed:
        tested = api.post(f"{API}test/", {"service": "openai", "key": value})
        assert tested.json()["status"] == "format_invalid"
        assert api.post(API, {"service": "openai", "key": value}).status_code == 400

    assert not provider.calls
    assert not UserAPIKey.objects.exists()


def test_oversized_values_are_refused(api, user):
    too_long = "sk-" + "a" * (MAX_VALUE_LENGTH - 2)
    bodies = [
        {"service": "openai", "key": too_long, "test": False},
        {"service": "openai", "credentials": {"api_key": too_long}, "test": False},
        {
            "service": "twilio",
            "credentials": {**fake_credentials("twilio"), "auth_token": "a" * 100_000},
            "test": False,
        },
        {"service": "openai", "key": fake_credentials("openai"), "nickname": "n" * 101},
    ]

    assert [api.post(API, body).status_code for body in bodies] == [400] * len(bodies)
    assert not UserAPIKey.objects.exists()


def test_a_request_body_over_djangos_limit_is_refused(api):
    padding = "n" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = {"service": "openai", "key": fake_credentials("openai"), "nickname": padding}

    response = api.generic("POST", API, json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")  # Django's, before any parsing
    assert not UserAPIKey.objects.exists()


def test_nul_bytes_are_refused(api, user):
    secret = fake_credentials("openai")
    with_nul = secret[:20] + "\x00" + secret[20:]
    answers = [
        api.post(API, {"service": "openai", "key": with_nul, "test": False}),
        api.post(API, {"service": "openai", "credentials": {"api_key": with_nul}, "test": False}),
        api.post(API, {"service": "openai", "key": secret, "nickname": "a\x00b", "test": False}),
        api.post(f"{API}import/", {"text": f"OPENAI_API_KEY={with_nul}"}),
        page_client(user).post(f"{PAGES}add/openai/", {"api_key": with_nul}),
    ]

    assert [a.status_code for a in answers] == [400] * len(answers)
    assert not UserAPIKey.objects.exists()


def test_imports_are_capped_in_size_and_entries(api):
    entries = [{"service": "openai", "credentials": fake_credentials("openai")}]
    too_many = json.dumps(entries * (MAX_ENTRIES + 1))
    too_big = "# padding\n" * (MAX_BYTES // 10) + f"OPENAI_API_KEY={fake_credentials('openai')}"
    upload = SimpleUploadedFile("keys.env", too_big.encode(), content_type="text/plain")

    answers = [
        api.post(f"{API}import/", {"text": too_many}),
        api.post(f"{API}import/", {"text": too_big}),
        api.post(f"{API}import/", {"file": upload}, format="multipart"),
    ]

    assert [a.status_code for a in answers] == [400, 400, 400]
    assert answers[0].json()["file"][0]["code"] == "too_many"
    assert answers[2].json()["file"][0]["code"] == "too_large"
    assert not UserAPIKey.objects.exists()


def test_unsafe_requests_need_a_csrf_token(user, provider):
    key = UserAPIKeyFactory(user=user, nickname="kept")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    body = {"service": "openai", "key": fake_credentials("openai"), "test": False}

    refused = [
        browser.post(API, body, content_type="application/json"),
        browser.post(f"{API}{key.pk}/reveal/"),
        browser.patch(f"{API}{key.pk}/", {"nickname": "x"}, content_type="application/json"),
        browser.delete(f"{API}{key.pk}/"),
        browser.post(f"{PAGES}add/openai/", {"api_key": body["key"]}),
        browser.post(f"{PAGES}keys/{key.pk}/test/"),
        browser.post(f"{PAGES}keys/{key.pk}/remove/"),
    ]

    assert [r.status_code for r in refused] == [403] * len(refused)
    key.refresh_from_db()
    assert (UserAPIKey.objects.count(), key.nickname, key.deleted_at) == (1, "kept", None)
    assert not provider.calls
    browser.get(PAGES)  # the dashboard sets the CSRF cookie, as a browser would get it
    token = browser.cookies["csrftoken"].value
    accepted = browser.post(API, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


def test_provider_calls_through_the_api_are_throttled_per_user(user, other_user, provider):
    mine, theirs = client_for(user), client_for(other_user)
    candidate = {"service": "openai", "key": fake_credentials("openai")}

    statuses = [mine.post(f"{API}test/", candidate).status_code for _ in range(11)]

    assert statuses == [200] * 10 + [429]
    assert len(provider.calls) == 10
    assert theirs.post(f"{API}test/", candidate).status_code == 200


def test_provider_calls_from_the_pages_share_the_users_api_budget(user, other_user, provider):
    key = UserAPIKeyFactory(user=user)
    pages, api = page_client(user), client_for(user)
    candidate = {"service": "openai", "key": fake_credentials("openai")}

    statuses = [api.post(f"{API}test/", candidate).status_code for _ in range(5)]
    statuses += [pages.post(f"{PAGES}keys/{key.pk}/test/").status_code for _ in range(5)]
    refused = pages.post(f"{PAGES}keys/{key.pk}/test/", HTTP_ACCEPT="application/json")
    adding = pages.post(
        f"{PAGES}add/openai/",
        {"api_key": fake_credentials("openai"), "environment": "production", "test": "on"},
    )

    assert statuses == [200] * 5 + [302] * 5
    assert (refused.status_code, adding.status_code) == (429, 429)
    assert "try again in" in refused.json()["message"]
    assert len(provider.calls) == 10
    assert not UserAPIKey.objects.exclude(pk=key.pk).exists()
    others = page_client(other_user)
    theirs = UserAPIKeyFactory(user=other_user)
    assert others.post(f"{PAGES}keys/{theirs.pk}/test/").status_code == 302
    assert len(provider.calls) == 11


def test_an_import_that_tests_counts_every_key_it_may_test(api, provider):
    def entries(count):
        keys = [fake_credentials("openai") for _ in range(count)]
        return json.dumps([{"service": "openai", "credentials": key} for key in keys])

    too_many = api.post(f"{API}import/", {"text": entries(11), "test": True})
    four = api.post(f"{API}import/", {"text": entries(4), "test": True})
    seven = api.post(f"{API}import/", {"text": entries(7), "test": True})
    untested = api.post(f"{API}import/", {"text": entries(7)})

    assert too_many.status_code == 429
    assert "Retry-After" in too_many
    assert (four.status_code, seven.status_code, untested.status_code) == (200, 429, 200)
    assert len(provider.calls) == 4
    assert UserAPIKey.objects.count() == 4 + 7


def test_no_request_can_choose_where_a_probe_goes(api, anywhere):
    twilio = fake_credentials("twilio")
    cloudinary = fake_credentials("cloudinary")
    aws = fake_credentials("aws_s3")
    refused = [
        {"service": "openai", "key": fake_credentials("openai"), "base_url": "https://x.example"},
        {"service": "openai", "key": fake_credentials("openai"), "url": "https://x.example"},
    ]
    never_sent = [
        ("twilio", {**twilio, "account_sid": twilio["account_sid"][:-4] + "/../"}),
        ("twilio", {**twilio, "account_sid": "AC" + "0" * 20 + "@attacker.example"}),
        ("cloudinary", {**cloudinary, "cloud_name": "attacker.example/x?"}),
        ("aws_s3", {**aws, "region": "attacker.example#"}),
        ("aws_s3", {**aws, "bucket": "attacker.example/"}),
    ]

    for body in refused:
        answer = api.post(f"{API}test/", body)
        assert answer.status_code == 400
        assert {e["code"] for errors in answer.json().values() for e in errors} == {
            "unknown_field"
        }
    for service, credentials in never_sent:
        answer = api.post(f"{API}test/", {"service": service, "credentials": credentials})
        assert answer.json()["status"] == "format_invalid", (service, credentials)
    assert not anywhere.calls
    token = sentry_org_token(region_url="https://attacker.example")
    api.post(f"{API}test/", {"service": "sentry", "key": token})
    assert hosts_called(anywhere) == {"sentry.io"}


def test_a_masked_value_sent_back_is_refused(api, user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    shown = api.get(f"{API}{key.pk}/").json()

    echoed = api.patch(f"{API}{key.pk}/", {"key": shown["masked_key"], "test": False})
    put_back = api.put(f"{API}{key.pk}/", shown)
    invented = api.post(API, {"service": "openai", "key": "sk-proj-…AbCd", "test": False})

    assert (echoed.status_code, put_back.status_code, invented.status_code) == (400, 200, 400)
    assert byok.get_user_api_key(user, "openai") == secret


def test_nicknames_are_escaped_on_the_pages(user):
    attack = "<script>alert(document.cookie)</script>"
    key = UserAPIKeyFactory(user=user, nickname=attack)
    pages = page_client(user)

    for response in (pages.get(PAGES), pages.get(f"{PAGES}keys/{key.pk}/remove/")):
        html = response.content.decode()
        assert attack not in html
        assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in html


def test_byok_js_inserts_text_never_html():
    script = (apps.get_app_config("byok").path + "/static/byok/byok.js").replace("\\", "/")
    with open(script, encoding="utf-8") as file:
        source = file.read()

    assert "textContent" in source
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source


# what byok does not protect against -------------------------------------------------


def test_host_code_can_read_any_users_key(user, other_user):
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=other_user, credentials=secret)
    events = AuditEvent.objects.count()

    assert byok.get_user_api_key(other_user, "openai") == secret  # no request, no check
    assert AuditEvent.objects.count() == events  # and no audit event either


def test_byok_never_rewrites_earlier_audit_events(user, provider):
    key = UserAPIKeyFactory(user=user)
    first = list(AuditEvent.objects.values())

    byok_keys.update_user_api_key(key, nickname="renamed", credentials=fake_credentials("openai"))
    byok_keys.test_user_api_key(key)
    byok_keys.reveal_user_api_key(key)
    with with_byok(ENCRYPTION_KEYS=[OTHER_ENCRYPTION_KEY, *settings.BYOK["ENCRYPTION_KEYS"]]):
        rotate()
    byok_keys.remove_user_api_key(key)

    assert AuditEvent.objects.count() == len(first) + 5
    assert list(AuditEvent.objects.filter(pk__in=[e["id"] for e in first]).values()) == first


def test_deleting_a_user_keeps_their_audit_events_but_unlinks_them(user):
    UserAPIKeyFactory(user=user)
    event = AuditEvent.objects.get()
    assert (event.owner_id, event.actor_id) == (user.pk, user.pk)

    user.delete()

    event.refresh_from_db()
    assert (event.owner_id, event.actor_id, event.key_id) == (None, None, None)
    assert (event.action, event.service) == ("created", "openai")
    assert not UserAPIKey.objects.exists()
