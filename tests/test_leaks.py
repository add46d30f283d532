"""End to end: no secret leaks anywhere, whichever way a key comes in or goes out.

One scenario drives every entry point: keys are added through the REST API, the
pages, the admin, the import command (and the import page and endpoint), then
tested, revealed, updated, re-tested, re-encrypted under a new encryption key and
deleted; a view that handled a secret fails with ``DEBUG = False`` and ``ADMINS``
set, so Django mails an error report. Meanwhile everything observable is captured:
every response body and header, every log record of every logger at DEBUG
(``django.db.backends`` SQL included), the mail outbox, the audit rows, a raw dump of
every byok table and every command's output. None may hold any secret of the
scenario, except the bodies of ``reveal/`` responses.

The mocked providers are hostile: when they reject a key they quote it back in
their error message, as some real ones partly do.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from contextlib import contextmanager
from typing import Any

import pytest
import responses as responses_lib
from django.core import mail
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client, TestCase
from rest_framework.test import APIClient

from byok import (
    add_team_api_key,
    get_user_api_key,
    keys,
    reserve,
    resolve_api_key,
    set_budget,
    track_api_usage,
)
from byok.exceptions import BudgetExceeded
from byok.models import AuditEvent, Budget, Team, TeamRole, UserAPIKey
from byok.services.registry import registry

from factories import UserFactory
from fakes import fake_credentials
from support import ADMINS, NO_INLINE_ROWS, OTHER_ENCRYPTION_KEY, raw_byok_tables

pytestmark = pytest.mark.django_db(transaction=False)

API = "/api/user/api-keys/"
PAGES = "/dashboard/api-keys/"
ADMIN = "/admin/byok/userapikey/"


class Evidence:
    """Everything the scenario let out, and every secret it used."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.secrets: set[str] = set()

    def add(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def use(self, service: str, credentials: Any) -> Any:
        """Remember the secret fields of ``credentials``; return them unchanged."""
        values = credentials if isinstance(credentials, dict) else {"api_key": credentials}
        spec = registry.get(service)
        secret_fields = {field.name for field in spec.fields if field.secret}
        self.secrets.update(v for name, v in values.items() if name in secret_fields)
        return credentials

    def response(self, method: str, path: str, response: Any) -> None:
        headers = json.dumps(dict(response.items())) + str(response.cookies)
        self.add(f"{method} {path} headers", headers)
        if not path.endswith("/reveal/"):
            self.add(f"{method} {path} body", response.content.decode("utf-8", "replace"))

    def leaks(self) -> list[tuple[str, str, str]]:
        """``(where, which secret, context)`` for each secret, or distinctive part of one,
        found; the context shows what surrounds it, the secret itself replaced."""
        needles = {}
        for secret in self.secrets:
            needles[secret] = f"{secret[:4]}…"
            if len(secret) >= 20:
                # Twelve characters of its middle: neither its prefix nor its last four
                # (the masked hint shows those) give a match.
                needles[secret[-16:-4]] = f"part of {secret[:4]}…"
        found = []
        for where, text in self.texts:
            for needle, label in needles.items():
                at = text.find(needle)
                if at >= 0:
                    context = text[max(at - 120, 0) : at + len(needle) + 60]
                    found.append((where, label, context.replace(needle, "<SECRET>")))
        return found


class RecordsResponses:
    """Hands every response to the evidence: mixed into Django's and DRF's test clients."""

    evidence: Evidence

    def request(self, **request: Any) -> Any:
        response = super().request(**request)  # type: ignore[misc]
        self.evidence.response(request["REQUEST_METHOD"], request["PATH_INFO"], response)
        return response


class RecordingClient(RecordsResponses, Client):
    pass


class RecordingAPIClient(RecordsResponses, APIClient):
    pass


class Records(logging.Handler):
    """Every record, formatted with its traceback and stack, plus its raw message and args."""

    def __init__(self, evidence: Evidence) -> None:
        super().__init__(logging.DEBUG)
        self.evidence = evidence
        self.seen: set[int] = set()
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) in self.seen:
            return
        self.seen.add(id(record))
        raw = f"{record.msg!r} {record.args!r} {getattr(record, 'request', '')!r}"
        self.evidence.add(f"log {record.name}", self.format(record) + "\n" + raw)


@contextmanager
def every_log_record(evidence: Evidence):
    """Every logger at DEBUG, SQL included, into ``evidence``."""
    handler = Records(evidence)
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        logger.addHandler(handler)
    connection.force_debug_cursor = True
    try:
        yield handler
    finally:
        connection.force_debug_cursor = False
        for logger, level, disabled in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.disabled = disabled


def echoed_secrets(request: Any) -> str:
    """What a chatty provider quotes back: bearer tokens, API-key headers, basic auth."""
    quoted = [request.url]
    for name, value in request.headers.items():
        if name.lower() in ("authorization", "x-api-key", "api-key"):
            quoted.append(value)
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "basic":
                quoted.append(base64.b64decode(token).decode("utf-8", "replace"))
    return " ".join(quoted)


@contextmanager
def providers():
    """Every provider: accepts keys until ``mock.rejecting`` is set, then refuses them
    with an error message quoting the credentials it was sent."""
    state = {"rejecting": False}

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        if state["rejecting"]:
            message = f"Incorrect API key provided: {echoed_secrets(request)}"
            return 401, {"Content-Type": "application/json"}, json.dumps({"error": message})
        return 200, {"Content-Type": "application/json"}, json.dumps({"data": [], "ok": True})

    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in (responses_lib.GET, responses_lib.POST, responses_lib.HEAD):
            mock.add_callback(method, re.compile(r"https://.*"), callback=answer)
        mock.state = state  # type: ignore[attr-defined]
        yield mock


def command(evidence: Evidence, name: str, *args: str, **options: Any) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=stdout, stderr=stderr, **options)
    except CommandError as error:
        stderr.write(str(error))
    evidence.add(f"command {name} {' '.join(args)}", stdout.getvalue() + stderr.getvalue())


def ids(response: Any) -> str:
    return response.json()["id"]


@pytest.fixture
def scenario(settings):
    settings.ADMINS = ADMINS
    settings.DEBUG = False
    evidence = Evidence()
    RecordingClient.evidence = RecordingAPIClient.evidence = evidence
    return evidence


def test_no_secret_leaks_from_any_entry_point(scenario, monkeypatch, tmp_path, settings):
    evidence = scenario
    alice = UserFactory()
    staff = UserFactory(is_staff=True, is_superuser=True)
    api = RecordingAPIClient()
    api.force_login(alice)
    pages = RecordingClient()
    pages.force_login(alice)
    admin = RecordingClient()
    admin.force_login(staff)

    with every_log_record(evidence), providers() as mock:
        # -- add: the REST API
        openai = evidence.use("openai", fake_credentials("openai"))
        openai_id = ids(api.post(API, {"service": "openai", "key": openai, "nickname": "Work"}))
        twilio = evidence.use("twilio", fake_credentials("twilio"))
        twilio_id = ids(api.post(API, {"service": "twilio", "credentials": twilio}))
        assert api.post(API, {"service": "openai", "key": openai}).status_code == 400  # twice

        # -- add: the pages, as a plain form and as byok.js posts it
        anthropic = evidence.use("anthropic", fake_credentials("anthropic"))
        form = {"api_key": anthropic, "environment": "production", "test": "on"}
        assert pages.post(f"{PAGES}add/anthropic/", form).status_code == 302
        resend = evidence.use("resend", fake_credentials("resend"))
        answer = pages.post(
            f"{PAGES}add/resend/",
            {"api_key": resend, "environment": "test"},
            HTTP_ACCEPT="application/json",
        )
        assert answer.json()["saved"] is True
        bad = pages.post(f"{PAGES}add/sendgrid/", {"api_key": "SG.short", "environment": "test"})
        assert bad.status_code == 400

        # -- add: the admin
        github = evidence.use("github", fake_credentials("github"))
        added = admin.post(
            f"{ADMIN}add/",
            {
                "user": str(alice.pk),
                "service": "github",
                "nickname": "CI",
                "environment": "production",
                "is_active": "on",
                "secret": github,
                **NO_INLINE_ROWS,
            },
        )
        assert added.status_code == 302, added.content.decode()[:2000]
        github_key = UserAPIKey.objects.get(service="github")

        # -- add: import command, import page, import endpoint
        stripe = evidence.use("stripe", fake_credentials("stripe"))
        aws = evidence.use("aws_s3", fake_credentials("aws_s3"))
        cloudinary = evidence.use("cloudinary", fake_credentials("cloudinary"))
        unrelated = fake_credentials("sentry")  # a variable no service reads: never stored
        evidence.secrets.add(unrelated)
        env_file = tmp_path / ".env"
        env_file.write_text(
            f"STRIPE_SECRET_KEY={stripe}\n"
            f"AWS_ACCESS_KEY_ID={aws['access_key_id']}\n"
            f"AWS_SECRET_ACCESS_KEY={aws['secret_access_key']}\n"
            f"CLOUDINARY_URL=cloudinary://{cloudinary['api_key']}:{cloudinary['api_secret']}"
            f"@{cloudinary['cloud_name']}\n"
            f"UNRELATED_SECRET={unrelated}\n"
            "not a line\n"
        )
        command(evidence, "byok_import", str(env_file), user=str(alice.pk), test=True)
        command(evidence, "byok_import", str(env_file), user=str(alice.pk), dry_run=True)
        sentry = evidence.use("sentry", fake_credentials("sentry"))
        upload = SimpleUploadedFile(".env", f"SENTRY_AUTH_TOKEN={sentry}\n".encode())
        assert pages.post(f"{PAGES}import/", {"file": upload, "environment": "production"})
        mixpanel = evidence.use("mixpanel", fake_credentials("mixpanel"))
        items = [{"service": "mixpanel", "credentials": mixpanel}]
        imported = api.post(f"{API}import/", {"text": json.dumps(items)}, format="json")
        assert imported.status_code == 200, imported.content

        # -- look at everything
        for path in (API, f"{API}{openai_id}/", f"{API}services/", f"{API}stats/"):
            api.get(path)
        for path in (PAGES, f"{PAGES}usage/", f"{PAGES}keys/{twilio_id}/remove/", "/settings/"):
            pages.get(path)
        for path in (
            ADMIN,
            f"{ADMIN}?q={alice.pk}",
            f"{ADMIN}{github_key.pk}/change/",
            f"{ADMIN}{github_key.pk}/history/",
            f"{ADMIN}{github_key.pk}/delete/",
            "/admin/byok/auditevent/",
        ):
            admin.get(path)

        # -- use, test, reveal
        assert get_user_api_key(alice, "openai") == openai
        track_api_usage(alice, "openai", units=1000)
        api.post(f"{API}test/", {"service": "openai", "key": openai})
        api.post(f"{API}{openai_id}/test/")
        pages.post(f"{PAGES}keys/{twilio_id}/test/")
        admin.post(ADMIN, {"action": "test_keys", "_selected_action": [str(github_key.pk)]})
        assert api.post(f"{API}{openai_id}/reveal/").json()["key"] == openai
        assert api.post(f"{API}{twilio_id}/reveal/").json()["credentials"] == twilio
        cache.clear()

        # -- the providers now reject every key, quoting it back
        mock.state["rejecting"] = True
        api.post(f"{API}{openai_id}/test/")
        api.post(f"{API}test/", {"service": "anthropic", "key": anthropic})
        pages.post(f"{PAGES}keys/{twilio_id}/test/", HTTP_ACCEPT="application/json")
        admin.post(ADMIN, {"action": "test_keys", "_selected_action": [str(github_key.pk)]})
        command(evidence, "byok_check_keys", "-v", "2")
        sendgrid = evidence.use("sendgrid", fake_credentials("sendgrid"))
        api.post(API, {"service": "sendgrid", "key": sendgrid})
        pages.post(f"{PAGES}add/sendgrid/", {"api_key": sendgrid, "test": "on"})
        mock.state["rejecting"] = False
        assert UserAPIKey.objects.filter(status="invalid").count() >= 3  # the quotes were read
        cache.clear()

        # -- update: a new secret through the API and the admin, then test again
        openai_2 = evidence.use("openai", fake_credentials("openai"))
        api.patch(f"{API}{openai_id}/", {"key": openai_2, "nickname": "Rotated"})
        api.patch(f"{API}{openai_id}/", {"key": UserAPIKey.objects.get(pk=openai_id).masked_key})
        github_2 = evidence.use("github", fake_credentials("github"))
        changed = admin.post(
            f"{ADMIN}{github_key.pk}/change/",
            {
                "nickname": "CI 2",
                "environment": "production",
                "is_active": "on",
                "secret": github_2,
                **NO_INLINE_ROWS,
            },
        )
        assert changed.status_code == 302, changed.content.decode()[:2000]
        admin.get(f"{ADMIN}{github_key.pk}/history/")
        api.post(f"{API}{openai_id}/test/")

        # -- rotate the encryption key
        keys_now = settings.BYOK["ENCRYPTION_KEYS"]
        settings.BYOK = {**settings.BYOK, "ENCRYPTION_KEYS": [OTHER_ENCRYPTION_KEY, *keys_now]}
        command(evidence, "byok_rotate_keys", "--dry-run")
        command(evidence, "byok_rotate_keys")
        assert get_user_api_key(alice, "openai") == openai_2
        command(evidence, "byok_services")
        command(evidence, "byok_prune_audit", "--older-than", "1")

        # -- a view that handled a secret fails: Django mails the error report
        def storage_fails(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("The database went away.")

        monkeypatch.setattr(keys, "store_key", storage_fails)
        failing = {"raise_request_exception": False}
        crash_api, crash_page, crash_admin = (
            RecordingAPIClient(**failing),
            RecordingClient(**failing),
            RecordingClient(**failing),
        )
        crash_api.force_login(alice)
        crash_page.force_login(alice)
        crash_admin.force_login(staff)
        anthropic_2 = evidence.use("anthropic", fake_credentials("anthropic"))
        answers = [
            crash_api.post(API, {"service": "anthropic", "key": anthropic_2, "test": False}),
            crash_page.post(
                f"{PAGES}add/anthropic/",
                {"api_key": anthropic_2, "nickname": "x", "environment": "production"},
            ),
            crash_admin.post(
                f"{ADMIN}add/",
                {
                    "user": str(alice.pk),
                    "service": "anthropic",
                    "nickname": "Crash",
                    "environment": "production",
                    "is_active": "on",
                    "secret": anthropic_2,
                    **NO_INLINE_ROWS,
                },
            ),
        ]
        assert [answer.status_code for answer in answers] == [500, 500, 500]
        monkeypatch.undo()

        # -- delete
        api.delete(f"{API}{openai_id}/")
        pages.post(f"{PAGES}keys/{twilio_id}/remove/")
        admin.post(f"{ADMIN}{github_key.pk}/delete/", {"post": "yes"})
        admin.get(f"{ADMIN}{github_key.pk}/change/")
        admin.get("/admin/byok/auditevent/")

    # -- the evidence
    assert len(mail.outbox) == 3, [message.subject for message in mail.outbox]
    for message in mail.outbox:
        parts = [message.subject, message.body]
        parts += [content for content, _type in getattr(message, "alternatives", [])]
        evidence.add(f"mail {message.subject}", "\n".join(parts))
    for event in AuditEvent.objects.values():
        evidence.add(f"audit {event['action']}", repr(event))
    evidence.add("raw dump of the byok tables", raw_byok_tables())

    assert len(evidence.secrets) == 15
    kinds = {where.split(" ")[0] for where, _text in evidence.texts}
    assert {"GET", "POST", "PATCH", "DELETE", "log", "command", "mail", "audit"} <= kinds
    assert any("django.db.backends" in where for where, _text in evidence.texts)
    leaks = evidence.leaks()
    assert leaks == [], "\n".join(map(repr, leaks))


def test_no_secret_leaks_from_teams_budgets_alerts_or_webhooks(scenario, settings):
    """The same evidence for what came later: a team's keys added, seen, tested, revealed,
    replaced and removed by each role; budgets set on the pages, the API and in Python;
    spend that crosses their thresholds and blocks, so alerts are mailed and signed
    webhooks posted (their bodies are evidence too); the admin's budget pages."""
    evidence = scenario
    hook_secret = "whsec-leak-test-0123456789abcdef"
    evidence.secrets.add(hook_secret)
    settings.BYOK = {
        **settings.BYOK,
        "WEBHOOKS": [
            {
                "url": "https://hooks.example.test/byok",
                "secret": hook_secret,
                "events": ["budget.threshold_reached", "budget.blocked"],
            }
        ],
        "WEBHOOK_ALLOWED_HOSTS": ["hooks.example.test"],
    }
    owner, admin_user, member, outsider = (UserFactory() for _ in range(4))
    staff = UserFactory(is_staff=True, is_superuser=True)
    team = Team.objects.create(name="Acme")
    team.add_member(owner, TeamRole.OWNER)
    team.add_member(admin_user, TeamRole.ADMIN)
    team.add_member(member)
    clients = {}
    for name, who in (("owner", owner), ("admin", admin_user), ("member", member)):
        clients[name] = RecordingAPIClient()
        clients[name].force_login(who)
    clients["outsider"] = RecordingAPIClient()
    clients["outsider"].force_login(outsider)
    pages = RecordingClient()
    pages.force_login(member)
    site_admin = RecordingClient()
    site_admin.force_login(staff)
    keys_url = f"{API}teams/{team.pk}/keys/"

    with every_log_record(evidence), providers() as mock:
        # -- team keys: added through the API and in Python, by its managers only
        openai = evidence.use("openai", fake_credentials("openai"))
        added = clients["admin"].post(keys_url, {"service": "openai", "key": openai})
        assert added.status_code == 201, added.content
        openai_id = ids(added)
        refused = evidence.use("openai", fake_credentials("openai"))
        for who in ("member", "outsider"):
            answer = clients[who].post(keys_url, {"service": "openai", "key": refused})
            assert answer.status_code in (403, 404)
        anthropic = evidence.use("anthropic", fake_credentials("anthropic"))
        anthropic_key = add_team_api_key(team, "anthropic", anthropic, actor=owner, test=True)

        # -- seen by every role
        for who in ("owner", "admin", "member", "outsider"):
            for path in (
                f"{API}teams/",
                f"{API}teams/{team.pk}/",
                f"{API}teams/{team.pk}/members/",
                f"{API}teams/{team.pk}/usage/",
                keys_url,
                f"{keys_url}{openai_id}/",
            ):
                clients[who].get(path)
        assert clients["member"].post(f"{keys_url}{openai_id}/reveal/").status_code == 404
        assert clients["owner"].post(f"{keys_url}{openai_id}/reveal/").json()["key"] == openai

        # -- budgets: on the team's keys in Python, a member's own through the API
        set_budget(None, team=team, limit="1", service="openai", action="block")
        mine = clients["member"].post(
            f"{API}budgets/",
            {"service": "openai", "applies_to": "team", "limit": "2", "alert_at": [50]},
            format="json",
        )
        assert mine.status_code == 201, mine.content

        # -- spend on the team's key: alerts, then the cap refuses, webhooks posted
        hooks: list[Any] = []

        def hook(request: Any) -> tuple[int, dict[str, str], str]:
            hooks.append(request)
            return 200, {}, "{}"

        mock.add_callback(responses_lib.POST, "https://hooks.example.test/byok", callback=hook)
        with TestCase.captureOnCommitCallbacks(execute=True):
            served = resolve_api_key(member, "openai", team=team)
            assert (served.source, served.value) == ("team", openai)
            track_api_usage(member, "openai", cost="0.6", key=served)
        with TestCase.captureOnCommitCallbacks(execute=True):
            track_api_usage(member, "openai", cost="0.5", key=served)
        with (
            TestCase.captureOnCommitCallbacks(execute=True),
            pytest.raises(BudgetExceeded),
            reserve(member, "openai", "0.10", team=team),
        ):
            pass  # pragma: no cover - refused before the block
        with pytest.raises(BudgetExceeded):
            get_user_api_key(member, "openai", team=team)
        for request in hooks:
            evidence.add("webhook headers", json.dumps(dict(request.headers)))
            evidence.add("webhook body", request.body.decode())
        for path in (f"{API}budgets/", f"{API}usage/", f"{API}stats/", f"{API}comparison/"):
            clients["member"].get(path)
        for path in (
            PAGES,
            f"{PAGES}?team={team.pk}",
            f"{PAGES}budgets/",
            f"{PAGES}usage/",
            f"{PAGES}compare/",
        ):
            pages.get(path)
        for path in (
            "/admin/byok/budget/",
            f"/admin/byok/budget/{Budget.objects.filter(team=team).get().pk}/change/",
            f"{ADMIN}?q=Acme",
            f"{ADMIN}{openai_id}/change/",
            "/admin/byok/auditevent/",
        ):
            site_admin.get(path)

        # -- the providers now reject the team's keys, quoting them back
        mock.state["rejecting"] = True
        clients["admin"].post(f"{keys_url}{openai_id}/retest/")
        clients["member"].post(f"{keys_url}{openai_id}/retest/")
        command(evidence, "byok_check_keys", "--team", str(team.pk), "-v", "2")
        mock.state["rejecting"] = False
        assert UserAPIKey.objects.get(pk=anthropic_key.pk).status == "invalid"

        # -- replaced, switched off, removed
        openai_2 = evidence.use("openai", fake_credentials("openai"))
        replaced = clients["admin"].patch(f"{keys_url}{openai_id}/", {"key": openai_2})
        assert replaced.status_code == 200, replaced.content
        clients["member"].patch(f"{keys_url}{openai_id}/", {"key": refused})
        clients["owner"].patch(f"{keys_url}{openai_id}/", {"is_active": False}, format="json")
        clients["owner"].delete(f"{keys_url}{openai_id}/")
        clients["owner"].get(keys_url)

    assert len(hooks) >= 2, [request.body for request in hooks]
    assert {m.to[0] for m in mail.outbox} >= {owner.email, admin_user.email, member.email}
    for message in mail.outbox:
        evidence.add(f"mail {message.subject}", f"{message.subject}\n{message.body}")
    for event in AuditEvent.objects.values():
        evidence.add(f"audit {event['action']}", repr(event))
    evidence.add("raw dump of the byok tables", raw_byok_tables())

    assert len(evidence.secrets) == 5
    kinds = {where.split(" ")[0] for where, _text in evidence.texts}
    assert {"GET", "POST", "PATCH", "DELETE", "log", "command", "mail", "audit"} <= kinds
    assert {"webhook"} <= kinds
    leaks = evidence.leaks()
    assert leaks == [], "\n".join(map(repr, leaks))
