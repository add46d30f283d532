"""Every protected frame of byok, proven: a failure inside it leaves no secret in the report.

A protected frame is a function of byok marked ``@sensitive_variables()`` or
``@sensitive_post_parameters()`` (tests/protected_frames.py finds them in the code).
``FRAMES`` names, for each one, the scenario that runs it: a real request through the
whole middleware stack (the REST API, a page, the admin, a host's view calling byok's
helpers) with a real secret, or, for what only runs outside a request, byok's command.

Each test runs its scenario twice. The first run, rolled back, counts the calls the
frame makes; the second makes the last of them raise, so the failure happens inside
the frame with everything it computed in its locals. Django's report of that failure
(the mail to ``ADMINS``, text and HTML, and the 500 page; for a command, the report
Django's reporter gives for the exception) must show the frame and hold no piece of
the secret, the decrypted secret or the encryption keys, counting only the frame's
own protection, not its callers' (``OwnProtectionOnly``). With Django's filter
switched off, it must show some: proof that the frame held one within the report's
reach (``OUT_OF_REACH`` says why a few frames hold none). A frame whose callers all
catch any failure and go on makes no report (``SWALLOWED``): the request must succeed,
with nothing mailed and no piece of a secret logged.

A protected frame without an entry in ``FRAMES`` fails the suite.
"""

from __future__ import annotations

import html
import io
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import responses as responses_lib
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.decorators import login_required
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.db import transaction
from django.http import HttpResponse
from django.test import Client, TestCase, override_settings
from django.urls import include, path, reverse
from django.views import debug as reports
from django.views.debug import ExceptionReporter
from django.views.decorators.debug import sensitive_post_parameters

import byok
import byok.clients
from byok import webhooks
from byok.clients.answers import WHOLE_JSON
from byok.crypto import get_keyring, parse_key, reset_keyring
from byok.fields import SealedCredentials, canonical_bytes
from byok.task_framework import task_backends

from error_reports import (
    InjectedFailure,
    as_fields,
    check_report,
    env_file,
    report_of,
    secrets_of,
)
from factories import TeamFactory, UserAPIKeyFactory
from fake_provider import FakeProvider, chat_completion
from fakes import fake_credentials
from kms_server import data_keys_in_the_clear, kms_options
from protected_frames import (
    FailingInside,
    Frame,
    OwnProtectionOnly,
    frame_named,
    frames_in_source,
    protected_frames,
)
from support import (
    NO_INLINE_ROWS,
    OTHER_ENCRYPTION_KEY,
    admin_url,
    change_form,
    windows,
    with_byok,
)

# The same on every database: run by the SQLite environments and the full one.
pytestmark = [pytest.mark.django_db, pytest.mark.database_agnostic]

API = "/api/user/api-keys/"
WEBHOOK_SECRET = "whsec-frames-0123456789-abcdef"
#: A webhook on 127.0.0.1 (allowed), answered by the scene's mock of every URL.
WEBHOOK = {
    "url": "http://127.0.0.1:9/hooks/byok",
    "secret": WEBHOOK_SECRET,
    "events": [webhooks.THRESHOLD_REACHED],
}
CHAT = [{"role": "user", "content": "Say hello."}]


@dataclass
class Scene:
    """Who takes part: the user (signed in on ``client``) and a superuser on ``staff``;
    ``hook``, armed around the request (or command) only, not around the setting up."""

    user: Any
    client: Client
    staff: Client
    hook: FailingInside | None = None

    def run(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        assert self.hook is not None
        with self.hook:
            return action(*args, **kwargs)


@dataclass
class Outcome:
    """What a scenario did: the secrets it involved, and the request's answer (or, for
    a command, the exception it raised)."""

    secrets: list[str]
    response: HttpResponse | None = None
    exc_info: Any = None
    extra_keys: list[str] = field(default_factory=list)


# A host's own views, each calling one of byok's public helpers for the signed-in user.


@login_required
def host_key(request):
    byok.get_user_api_key(request.user, "openai")
    return HttpResponse("ok")


@login_required
@sensitive_post_parameters()
def host_test(request):
    byok.test_credentials("openai", request.POST["key"])
    return HttpResponse("ok")


@login_required
@sensitive_post_parameters()
def host_team_key(request):
    team = TeamFactory(owner=request.user)
    byok.add_team_api_key(team, "openai", request.POST["key"], actor=request.user)
    return HttpResponse("ok")


@login_required
def host_session(request, service):
    byok.clients.session(request.user, service).get("/")
    return HttpResponse("ok")


@login_required
def host_openai(request):
    with byok.clients.openai(request.user) as client:
        client.chat.completions.create(model="gpt-4o", messages=CHAT)
    return HttpResponse("ok")


@login_required
def host_anthropic(request):
    with byok.clients.anthropic(request.user) as client:
        client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=CHAT)
    return HttpResponse("ok")


async def host_async(request):
    user = await sync_to_async(auth.get_user)(request)
    async with await byok.clients.async_openai(user) as openai_client:
        await openai_client.chat.completions.create(model="gpt-4o", messages=CHAT)
    async with await byok.clients.async_anthropic(user) as anthropic_client:
        await anthropic_client.messages.create(
            model="claude-haiku-4-5", max_tokens=8, messages=CHAT
        )
    return HttpResponse("ok")


def host_webhook(request):
    """A host's receiver of byok's webhooks, checking the signature."""
    headers = request.headers
    signed = (headers["X-Byok-Timestamp"], headers["X-Byok-Signature"])
    if not webhooks.verify_signature(WEBHOOK_SECRET, request.body, *signed):
        return HttpResponse(status=400)
    return HttpResponse("ok")


urlpatterns = [
    path("host/key/", host_key),
    path("host/test/", host_test),
    path("host/team-key/", host_team_key),
    path("host/session/<str:service>/", host_session),
    path("host/openai/", host_openai),
    path("host/anthropic/", host_anthropic),
    path("host/async/", host_async),
    path("host/webhook/", host_webhook),
    path("", include("urls")),
]


# The scenarios.


def api_create(scene: Scene, service: str = "openai") -> Outcome:
    credentials = fake_credentials(service)
    body = {"service": service, "credentials": as_fields(credentials), "test": True}
    response = scene.run(scene.client.post, API, body, content_type="application/json")
    return Outcome(secrets_of(service, credentials), response)


def api_create_form(scene: Scene) -> Outcome:
    """A create sent as a form, as a plain HTML form or ``multipart/form-data`` would."""
    secret = fake_credentials("openai")
    data = {"service": "openai", "key": secret, "test": "false"}
    return Outcome([secret], scene.run(scene.client.post, API, data))


def api_update(scene: Scene) -> Outcome:
    old, new = fake_credentials("twilio"), fake_credentials("twilio")
    key = UserAPIKeyFactory(user=scene.user, service="twilio", credentials=old)
    body = {"credentials": new, "test": True}
    response = scene.run(
        scene.client.patch, f"{API}{key.pk}/", body, content_type="application/json"
    )
    return Outcome([old["auth_token"], new["auth_token"]], response)


def api_test(scene: Scene) -> Outcome:
    secret = fake_credentials("anthropic")
    body = {"service": "anthropic", "key": secret}
    return Outcome(
        [secret],
        scene.run(scene.client.post, f"{API}test/", body, content_type="application/json"),
    )


def stored_key(scene: Scene, action: str) -> Outcome:
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=scene.user, credentials=secret)
    return Outcome([secret], scene.run(scene.client.post, f"{API}{key.pk}/{action}/"))


def api_import_text(scene: Scene) -> Outcome:
    text, secrets = env_file()
    body = {"text": text, "test": True}
    return Outcome(
        secrets,
        scene.run(scene.client.post, f"{API}import/", body, content_type="application/json"),
    )


def api_import_upload(scene: Scene) -> Outcome:
    text, secrets = env_file()
    upload = io.BytesIO(text.encode())
    upload.name = "keys.env"
    response = scene.run(
        scene.client.post, f"{API}import/", {"file": upload, "environment": "production"}
    )
    return Outcome(secrets, response)


def page_add(scene: Scene) -> Outcome:
    secret = fake_credentials("openai")
    data = {"api_key": secret, "environment": "production", "test": "on"}
    return Outcome(
        [secret], scene.run(scene.client.post, reverse("byok:add", args=["openai"]), data)
    )


def page_import(scene: Scene) -> Outcome:
    text, secrets = env_file()
    upload = io.BytesIO(text.encode())
    upload.name = "keys.env"
    data = {"file": upload, "environment": "production", "test": "on"}
    return Outcome(secrets, scene.run(scene.client.post, reverse("byok:import"), data))


def admin_change(scene: Scene) -> Outcome:
    old, new = fake_credentials("openai"), fake_credentials("openai")
    key = UserAPIKeyFactory(user=scene.user, credentials=old)
    response = scene.run(scene.staff.post, admin_url("change", key), change_form(key, secret=new))
    return Outcome([old, new], response)


def host_view(url: str, service: str = "openai") -> Callable[[Scene], Outcome]:
    def scenario(scene: Scene) -> Outcome:
        credentials = fake_credentials(service)
        UserAPIKeyFactory(user=scene.user, service=service, credentials=credentials)
        response = scene.run(scene.client.get, url)
        return Outcome(secrets_of(service, credentials), response)

    return scenario


def host_post(url: str) -> Callable[[Scene], Outcome]:
    def scenario(scene: Scene) -> Outcome:
        secret = fake_credentials("openai")
        return Outcome([secret], scene.run(scene.client.post, url, {"key": secret}))

    return scenario


def host_sdk(url: str) -> Callable[[Scene], Outcome]:
    def scenario(scene: Scene) -> Outcome:
        secrets = [fake_credentials("openai"), fake_credentials("anthropic")]
        UserAPIKeyFactory(user=scene.user, service="openai", credentials=secrets[0])
        UserAPIKeyFactory(user=scene.user, service="anthropic", credentials=secrets[1])
        with FakeProvider() as server:
            urls = {"openai": server.openai_url, "anthropic": server.url}
            with with_byok(BASE_URLS=urls, ALLOW_PRIVATE_BASE_URLS=True):
                return Outcome(secrets, scene.run(scene.client.get, url))

    return scenario


def host_large_answer(scene: Scene) -> Outcome:
    """The OpenAI client's answer, too large to parse whole, quotes the key back."""
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=scene.user, credentials=secret)
    answer = {"echo": secret, **chat_completion("gpt-4o"), "padding": "x" * WHOLE_JSON}
    with FakeProvider() as server:
        server.answer("/v1/chat/completions", json=answer)
        with with_byok(BASE_URLS={"openai": server.openai_url}, ALLOW_PRIVATE_BASE_URLS=True):
            return Outcome([secret], scene.run(scene.client.get, "/host/openai/"))


def host_session_unreachable(scene: Scene) -> Outcome:
    """The session's request fails to connect: its error is rid of the credential."""
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=scene.user, credentials=secret)
    with responses_lib.RequestsMock():  # nothing answers
        return Outcome([secret], scene.run(scene.client.get, "/host/session/openai/"))


def outside_a_request(scene: Scene, action: Callable[..., Any], *args: Any) -> Outcome:
    """``action`` run as a command or a task worker runs it: no request, an exception."""
    try:
        scene.run(action, *args)
    except InjectedFailure:
        return Outcome([], exc_info=sys.exc_info())
    return Outcome([])


def command(scene: Scene, name: str, *args: str) -> Outcome:
    return outside_a_request(
        scene,
        lambda: call_command(name, *args, stdout=io.StringIO(), stderr=io.StringIO()),
    )


def check_keys_command(scene: Scene) -> Outcome:
    secret = fake_credentials("openai")
    UserAPIKeyFactory(user=scene.user, credentials=secret)
    outcome = command(scene, "byok_check_keys")
    outcome.secrets.append(secret)
    return outcome


def rotate_keys_command(scene: Scene) -> Outcome:
    secret = fake_credentials("openai")
    with with_byok(ENCRYPTION_KEYS=[OTHER_ENCRYPTION_KEY]):
        UserAPIKeyFactory(user=scene.user, credentials=secret)
    keys = [*settings.BYOK["ENCRYPTION_KEYS"], OTHER_ENCRYPTION_KEY]
    with with_byok(ENCRYPTION_KEYS=keys):
        outcome = command(scene, "byok_rotate_keys")
    outcome.secrets.append(secret)
    outcome.extra_keys.append(OTHER_ENCRYPTION_KEY)
    return outcome


def verify_rows_command(scene: Scene) -> Outcome:
    """``byok_rotate_keys --verify`` on a row of each format (format 1 as byok wrote it)."""
    old, new = fake_credentials("openai"), fake_credentials("openai")
    key = UserAPIKeyFactory(user=scene.user, credentials=old)
    key.credentials = SealedCredentials(
        get_keyring().primary.encrypt_v1(canonical_bytes({"api_key": old}))
    )
    key.save(update_fields=["credentials"])
    UserAPIKeyFactory(user=scene.user, credentials=new)
    outcome = command(scene, "byok_rotate_keys", "--verify")
    outcome.secrets += [old, new]
    return outcome


def format_1_row(scene: Scene) -> Outcome:
    """A format 1 token written as tests and benchmarks write one: no code of byok
    writes format 1 any more, so its only callers are outside any request."""
    secret = fake_credentials("openai")
    plaintext = canonical_bytes({"api_key": secret})
    outcome = outside_a_request(scene, get_keyring().primary.encrypt_v1, plaintext)
    if outcome.exc_info is not None:  # the report, from byok's code down: above is ours
        exc_type, exc, tb = outcome.exc_info
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        outcome.exc_info = (exc_type, exc, tb)
    outcome.secrets.append(secret)
    return outcome


def admin_add(scene: Scene) -> Outcome:
    """The admin's add form, storing a key for the user."""
    secret = fake_credentials("openai")
    data = {
        "user": str(scene.user.pk),
        "service": "openai",
        "nickname": "",
        "environment": "production",
        "is_active": "on",
        "secret": secret,
        **NO_INLINE_ROWS,
    }
    url = reverse("admin:byok_userapikey_add")
    return Outcome([secret], scene.run(scene.staff.post, url, data))


def api_team_create(scene: Scene) -> Outcome:
    team = TeamFactory(owner=scene.user)
    secret = fake_credentials("openai")
    body = {"service": "openai", "key": secret, "test": True}
    url = f"{API}teams/{team.pk}/keys/"
    return Outcome(
        [secret], scene.run(scene.client.post, url, body, content_type="application/json")
    )


@override_settings(TASKS={"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}})
def webhook_delivery(scene: Scene) -> Outcome:
    """A budget's threshold crossed by a metered call; the worker delivers the webhook."""
    UserAPIKeyFactory(user=scene.user)
    byok.set_budget(scene.user, limit="10", service="openai")
    with with_byok(WEBHOOKS=[WEBHOOK], WEBHOOK_ALLOWED_HOSTS=["127.0.0.1"]):
        queued = task_backends["default"].results
        with TestCase.captureOnCommitCallbacks(execute=True):
            byok.track_api_usage(scene.user, "openai", cost="6")
        (alert,) = queued  # the threshold's alert: its e-mail, and its webhook's task
        with TestCase.captureOnCommitCallbacks(execute=True):
            alert.task.call(*alert.args, **alert.kwargs)
        delivery = queued[-1]
        assert delivery.task.name == "send_webhook"
        outcome = outside_a_request(scene, delivery.task.call, *delivery.args)
    outcome.secrets.append(WEBHOOK_SECRET)
    return outcome


def webhook_received(scene: Scene) -> Outcome:
    """A host's view receiving a signed webhook, checked with the shared secret."""
    body = webhooks.encode(webhooks.event(webhooks.THRESHOLD_REACHED, "frames", {}))
    timestamp = str(int(time.time()))
    headers = {
        "X-Byok-Timestamp": timestamp,
        "X-Byok-Signature": webhooks.signature(WEBHOOK_SECRET, timestamp, body),
    }
    response = scene.run(
        scene.client.post, "/host/webhook/", body, content_type="application/json", headers=headers
    )
    return Outcome([WEBHOOK_SECRET], response)


def api_create_aws(scene: Scene) -> Outcome:
    """An AWS key pair that STS accepts, so the probe goes on to the bucket."""
    identity = (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/byok</Arn>"
        "<Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>"
    )
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as aws:
        aws.add("POST", re.compile(r"https://sts\..*"), body=identity)
        aws.add("HEAD", re.compile(r"https://.*\.s3\..*"))
        return api_create(scene, "aws_s3")


def under_kms(scenario: Callable[[Scene], Outcome]) -> Callable[[Scene], Outcome]:
    """``scenario`` with data keys from the local KMS encrypting, in a process that has
    unwrapped none yet; the data keys in the clear are secrets of the report too."""

    def run(scene: Scene) -> Outcome:
        with with_byok(KEYRING="kms", KMS=kms_options()):
            outcome = scenario(scene)
            return replace(outcome, extra_keys=[*outcome.extra_keys, *data_keys_in_the_clear()])

    return run


def host_view_with_a_data_key_to_unwrap(scene: Scene) -> Outcome:
    credentials = fake_credentials("openai")
    UserAPIKeyFactory(user=scene.user, credentials=credentials)
    reset_keyring()  # as a new process: the data key is stored, not yet unwrapped
    return Outcome([credentials], scene.run(scene.client.get, "/host/key/"))


SCENARIOS: dict[str, Callable[[Scene], Outcome]] = {
    "API create under a KMS": under_kms(api_create),
    "host view: get_user_api_key under a KMS": under_kms(host_view_with_a_data_key_to_unwrap),
    "API create": api_create,
    "API create (AWS)": api_create_aws,
    "API create, sent as a form": api_create_form,
    "API create (Cloudinary)": lambda scene: api_create(scene, "cloudinary"),
    "API update with a new secret": api_update,
    "API test of candidate credentials": api_test,
    "API test of a stored key": lambda scene: stored_key(scene, "test"),
    "API reveal": lambda scene: stored_key(scene, "reveal"),
    "API import of text": api_import_text,
    "API import of an upload": api_import_upload,
    "page add key": page_add,
    "page import": page_import,
    "admin change of the secret": admin_change,
    "host view: get_user_api_key": host_view("/host/key/"),
    "host view: test_credentials": host_post("/host/test/"),
    "host view: add_team_api_key": host_post("/host/team-key/"),
    "host view: a metered session": host_view("/host/session/openai/"),
    "host view: a metered session (AWS)": host_view("/host/session/aws_s3/", "aws_s3"),
    "host view: a metered session, unreachable": host_session_unreachable,
    "host view: the OpenAI client": host_sdk("/host/openai/"),
    "host view: the Anthropic client": host_sdk("/host/anthropic/"),
    "host view: a large answer of the OpenAI client": host_large_answer,
    "async host view: the async clients": host_sdk("/host/async/"),
    "command: byok_check_keys": check_keys_command,
    "command: byok_rotate_keys": rotate_keys_command,
    "command: byok_rotate_keys --verify": verify_rows_command,
    "tests and benchmarks: a format 1 row": format_1_row,
    "admin add of a key": admin_add,
    "API create of a team key": api_team_create,
    "task: a budget webhook delivered": webhook_delivery,
    "host view: a webhook received": webhook_received,
}

#: Each protected frame (``module:qualname``) and the scenario that runs it.
FRAMES = {
    "byok.admin:UserAPIKeyAdmin._add": "admin add of a key",
    "byok.admin:UserAPIKeyAdmin.changeform_view": "admin change of the secret",
    "byok.admin:UserAPIKeyAdmin.save_model": "admin change of the secret",
    "byok.admin:UserAPIKeyForm.clean": "admin change of the secret",
    "byok.admin:UserAPIKeyForm.credentials": "admin change of the secret",
    "byok.clients:anthropic": "host view: the Anthropic client",
    "byok.clients:async_anthropic": "async host view: the async clients",
    "byok.clients:async_openai": "async host view: the async clients",
    "byok.clients:openai": "host view: the OpenAI client",
    "byok.clients:session": "host view: a metered session",
    "byok.clients.resolution:resolve": "host view: a metered session",
    "byok.clients.session:MeteredSession._without_credential": (
        "host view: a metered session, unreachable"
    ),
    "byok.clients.session:MeteredSession.request": "host view: a metered session",
    "byok.clients.session:MeteredSession.send": "host view: a metered session",
    "byok.clients.transport:AsyncMeteredTransport.handle_async_request": (
        "async host view: the async clients"
    ),
    "byok.clients.transport:MeteredTransport.handle_request": "host view: the OpenAI client",
    "byok.crypto:EncryptionKey.__init__": "API create",
    "byok.crypto:EncryptionKey._decrypt_v2": "host view: get_user_api_key",
    "byok.crypto:EncryptionKey.decrypt": "API test of a stored key",
    "byok.crypto:EncryptionKey.encrypt_v1": "tests and benchmarks: a format 1 row",
    "byok.crypto:EncryptionKey.encrypt": "API create",
    "byok.crypto:EncryptionKey.fingerprint": "API create",
    "byok.crypto:Keyring.decrypt": "API test of a stored key",
    "byok.crypto:Keyring.encrypt": "API create",
    "byok.crypto:Keyring.fingerprint": "API create",
    "byok.crypto:Keyring.fingerprints": "API create",
    "byok.crypto:_derive": "API create",
    "byok.crypto:_envelope_keyring": "API create under a KMS",
    "byok.kms:AwsKms.generate_data_key": "API create under a KMS",
    "byok.kms:AwsKms.decrypt": "host view: get_user_api_key under a KMS",
    "byok.kms:EnvelopeKeyring.fingerprints": "API create under a KMS",
    "byok.kms:EnvelopeKeyring._new_data_key": "API create under a KMS",
    "byok.kms:EnvelopeKeyring._unwrap": "host view: get_user_api_key under a KMS",
    "byok.kms:envelope_keyring": "API create under a KMS",
    "byok.crypto:_keyring_for": "API create",
    "byok.crypto:_load_keyring": "API create",
    "byok.crypto:get_keyring": "API create",
    "byok.crypto:parse_key": "API create",
    "byok.fields:SealedCredentials.open": "API test of a stored key",
    "byok.fields:padded": "API create",
    "byok.fields:SealedCredentials.seal": "API create",
    "byok.http:ProbeClient._send": "API create",
    "byok.http:ProbeClient.send": "API create",
    "byok.importing:import_file": "page import",
    "byok.importing:import_keys": "API import of text",
    "byok.jsonsafe:depth": "API create",
    "byok.jsonsafe:loads": "API create",
    "byok.jsonsafe:raw_decode": "host view: a large answer of the OpenAI client",
    "byok.keys:_apply_changes": "API update with a new secret",
    "byok.keys:_replace_secret": "API update with a new secret",
    "byok.keys:add_team_api_key": "host view: add_team_api_key",
    "byok.keys:add_user_api_key": "page add key",
    "byok.keys:check_new_secret": "API create",
    "byok.keys:holds_secret": "API create",
    "byok.keys:prepare_key": "API create",
    "byok.keys:reveal_user_api_key": "API reveal",
    "byok.keys:update_user_api_key": "API update with a new secret",
    "byok.models:UserAPIKey.seal": "API create",
    "byok.models:UserAPIKey.set_credentials": "API create",
    "byok.probes:probe": "API create",
    "byok.probes:test_credentials": "host view: test_credentials",
    "byok.recheck:_probe": "command: byok_check_keys",
    "byok.recheck:check_keys": "command: byok_check_keys",
    "byok.resolution:_resolved": "host view: get_user_api_key",
    "byok.resolution:resolve_api_key": "host view: get_user_api_key",
    "byok.rest.serializers:APIKeyCreateSerializer.validate": "API create",
    "byok.rest.serializers:APIKeyUpdateSerializer.validate": "API update with a new secret",
    "byok.rest.serializers:CandidateSerializer.validate": "API test of candidate credentials",
    "byok.rest.serializers:CredentialsInput.credentials_from": "API create",
    "byok.rest.serializers:ImportTextSerializer.validate": "API import of text",
    "byok.rest.serializers:ImportUploadSerializer.validate": "API import of an upload",
    "byok.rest.views:APIKeyViewSet.add_key": "API create",
    "byok.rest.team_views:TeamKeyViewSet.add_key": "API create of a team key",
    "byok.rest.parsers:JSONParser.parse": "API create",
    "byok.rotation:_verify_row": "command: byok_rotate_keys --verify",
    "byok.webhooks:post": "task: a budget webhook delivered",
    "byok.webhooks:signature": "task: a budget webhook delivered",
    "byok.webhooks:verify_signature": "host view: a webhook received",
    "byok.rest.views:APIKeyViewSet.create": "API create",
    "byok.rest.views:APIKeyViewSet.finalize_response": "API reveal",
    "byok.rest.views:APIKeyViewSet.import_keys": "API import of text",
    "byok.rest.views:APIKeyViewSet.initialize_request": "API create, sent as a form",
    "byok.rest.views:APIKeyViewSet.retest": "API test of a stored key",
    "byok.rest.views:APIKeyViewSet.reveal": "API reveal",
    "byok.rest.views:APIKeyViewSet.test": "API test of candidate credentials",
    "byok.rest.views:APIKeyViewSet.update": "API update with a new secret",
    "byok.rotation:_reencrypt": "command: byok_rotate_keys",
    "byok.services.auth:CredentialAuth.__call__": "host view: a metered session",
    "byok.services.auth:SigV4.sign": "host view: a metered session (AWS)",
    "byok.services.aws_s3:AWSS3.call_sts": "API create (AWS)",
    "byok.services.aws_s3:AWSS3.head_bucket": "API create (AWS)",
    "byok.services.aws_s3:AWSS3.probe": "API create (AWS)",
    "byok.services.aws_s3:signature": "API create (AWS)",
    "byok.validation:_cautions": "API create",
    "byok.validation:_formats": "API create",
    "byok.validation:_placeholders": "API create",
    "byok.validation:_refusals": "API create",
    "byok.validation:_swaps": "API create (Cloudinary)",
    "byok.validation:check_credentials": "API create",
    "byok.validation:validate_credentials": "API test of candidate credentials",
    "byok.views:add_key": "page add key",
    "byok.views:import_keys": "page import",
}

#: Frames that hold no secret readably where the failure happens (the last call they
#: make): with the filter off, the report shows none either. Why, for each.
RESOLVED = "the key is in a ResolvedKey or a Meter, whose repr hides it"
IN_HEADERS = "the credential is in the request's headers, which its repr leaves out"
PASSED_ON = "the plaintext is passed on or returned at once, never kept in a local"
OUT_OF_REACH = {
    "byok.kms:AwsKms.decrypt": "the data key arrives in its last step and is returned at once",
    "byok.clients:anthropic": RESOLVED,
    "byok.clients:async_anthropic": RESOLVED,
    "byok.clients:async_openai": RESOLVED,
    "byok.clients:openai": RESOLVED,
    "byok.clients:session": RESOLVED,
    "byok.clients.resolution:resolve": RESOLVED,
    "byok.resolution:resolve_api_key": RESOLVED,
    "byok.clients.session:MeteredSession.request": IN_HEADERS,
    "byok.clients.session:MeteredSession.send": IN_HEADERS,
    "byok.clients.transport:AsyncMeteredTransport.handle_async_request": IN_HEADERS,
    "byok.clients.transport:MeteredTransport.handle_request": IN_HEADERS,
    "byok.crypto:EncryptionKey._decrypt_v2": PASSED_ON,
    "byok.crypto:EncryptionKey.decrypt": PASSED_ON,
    "byok.crypto:Keyring.decrypt": PASSED_ON,
    "byok.rotation:_reencrypt": PASSED_ON,
    "byok.rest.serializers:ImportUploadSerializer.validate": "the upload is read as it is kept",
    "byok.rest.views:APIKeyViewSet.finalize_response": "a Response's repr shows no data",
    "byok.rest.views:APIKeyViewSet.retest": "a UserAPIKey's repr shows no secret",
    "byok.rotation:_verify_row": "a UserAPIKey's repr shows no secret",
    "byok.webhooks:post": "a Webhook's repr hides its secret; the headers hold only the signature",
    "byok.rest.parsers:JSONParser.parse": "the body is read and passed on at once, never kept",
    "byok.views:import_keys": "an UploadedFile's repr shows its name only",
}

#: Frames whose every caller in byok catches any failure, logs its type alone and
#: goes on: a failure inside one makes no report. Their test: the request still
#: succeeds, nothing is mailed, and the log holds no piece of a secret.
SWALLOWED = {
    "byok.jsonsafe:raw_decode": "reading usage from an answer never breaks the answer",
}

FOUND = protected_frames()


def test_every_protected_frame_has_a_scenario():
    assert sorted(set(FOUND) - set(FRAMES)) == [], "protected frames without a scenario"
    assert sorted(set(FRAMES) - set(FOUND)) == [], "scenarios for frames no longer protected"
    assert set(FRAMES.values()) == set(SCENARIOS)
    assert set(OUT_OF_REACH) <= set(FRAMES)
    assert set(SWALLOWED) <= set(FRAMES) - set(OUT_OF_REACH)


def test_the_walk_finds_every_protected_function_of_the_source():
    assert {name: set(frame.marks) for name, frame in FOUND.items()} == frames_in_source()


@pytest.fixture
def scene(user, superuser, anywhere, settings):
    """The user and staff, signed in; the host's views mounted; every provider answering."""
    settings.ROOT_URLCONF = __name__
    client, staff = Client(raise_request_exception=False), Client(raise_request_exception=False)
    client.force_login(user)
    staff.force_login(superuser)
    return Scene(user, client, staff)


#: How many calls each frame makes in its scenario, counted once for both runs; the
#: scenarios run once already (which imports what they import on first use: an
#: import makes calls, so a first run may count more).
CALLS: dict[str, int] = {}
WARMED: set[str] = set()


def rolled_back(scenario: Callable[[Scene], Outcome], scene: Scene, hook: FailingInside) -> None:
    """Run ``scenario`` with ``hook`` and undo what it did."""
    reset_keyring()
    scene.hook = hook
    with transaction.atomic():
        scenario(scene)
        transaction.set_rollback(True)
    cache.clear()
    mail.outbox.clear()


def calls_made(frame: Frame, scenario: Callable[[Scene], Outcome], scene: Scene) -> int:
    """How many calls ``frame`` makes in ``scenario`` (not on its first run)."""
    if FRAMES[frame.name] not in WARMED:
        rolled_back(scenario, scene, FailingInside(frame.code))
        WARMED.add(FRAMES[frame.name])
    if frame.name not in CALLS:
        rolled_back(scenario, scene, counting := FailingInside(frame.code))
        assert counting.reached, f"{FRAMES[frame.name]!r} never runs {frame.name}"
        CALLS[frame.name] = counting.calls
    return CALLS[frame.name]


def command_report(exc_info: Any) -> tuple[str, str, str]:
    reporter = ExceptionReporter(None, *exc_info)
    return "", reporter.get_traceback_text(), html.unescape(reporter.get_traceback_html())


def key_material(keys: list[str]) -> list[str]:
    """The encryption keys as configured, and as their bytes are printed."""
    return [*keys, *(repr(parse_key(key))[2:-1] for key in keys)]


@pytest.mark.parametrize("name", FRAMES)
def test_a_failure_inside_the_frame_leaves_no_secret_in_the_report(
    name, scene, admin_mails, protected, monkeypatch, caplog
):
    frame = frame_named(name)
    assert name in FOUND, f"{name} is no longer protected"  # its own test fails too
    scenario = SCENARIOS[FRAMES[name]]
    own_protection_only = OwnProtectionOnly(frame.code)
    monkeypatch.setattr(reports, "get_exception_reporter_filter", lambda r: own_protection_only)
    scene.hook = FailingInside(frame.code, calls_made(frame, scenario, scene))
    reset_keyring()
    outcome = scenario(scene)
    assert scene.hook.failed

    keys = key_material([*settings.BYOK["ENCRYPTION_KEYS"], *outcome.extra_keys])
    secrets = [*outcome.secrets, *keys]
    if name in SWALLOWED:
        assert outcome.response is not None
        assert outcome.response.status_code == 200
        assert admin_mails == []
        assert InjectedFailure.__name__ in caplog.text  # logged, by its type alone
        pieces = {piece for secret in secrets for piece in windows(secret, 12)}
        assert not [piece for piece in pieces if piece in caplog.text]
        return
    reachable = name not in OUT_OF_REACH
    if outcome.response is None:
        report = command_report(outcome.exc_info)
        check_report(report, secrets, frame.code.co_name, protected, reachable)
    else:
        assert outcome.response.status_code == 500
        report = report_of(admin_mails)
        page = outcome.response.content.decode()
        check_report(report, secrets, frame.code.co_name, protected, reachable, page)
    shown = rf'File "{re.escape(frame.code.co_filename)}", line \d+, in {frame.code.co_name}$'
    assert re.search(shown, report[1], re.MULTILINE), "the report does not show the frame"
    if "post" in frame.marks and protected:
        assert "'********************'" in report[1]  # the posted secret, hidden
