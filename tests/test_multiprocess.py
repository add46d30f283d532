"""What must hold across processes, proven with real ones: two gunicorn servers behind
one Redis spend one budget; two database task workers share a re-check run and test
every key exactly once.

These start their own servers and workers (with timeouts, stopped at the end) against
the test database, so they need PostgreSQL or MariaDB, Redis at 127.0.0.1:6379,
gunicorn and django-tasks-db. CI runs them in one tox environment (see tox.ini).
"""

import json
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from django.db import connection
from processes import (
    environment,
    free_port,
    logs,
    manage,
    started,
    wait_for_exit,
    wait_until_serving,
)

from byok.models import Notification, RecheckBackoff, RecheckRun, UserAPIKey

from factories import UserAPIKeyFactory, UserFactory
from fakes import fake_credentials

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def shared_database():
    if connection.vendor not in ("postgresql", "mysql"):
        pytest.skip("other processes cannot open an in-memory SQLite database")


@pytest.fixture
def redis_prefix():
    """A Redis key prefix of this test's own: nothing is flushed, others' keys stay."""
    redis = pytest.importorskip("redis")
    prefix = f"byok-test-{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def username(user):
    return getattr(user, user.USERNAME_FIELD)


# -- Two web processes, one budget ---------------------------------------------------------


@pytest.fixture
def two_servers(tmp_path, redis_prefix, providers):
    pytest.importorskip("gunicorn")
    ports = [free_port(), free_port()]
    env = environment(
        BYOK_TEST_CACHE_PREFIX=redis_prefix,
        # A test spends the budget only when it is about to call the provider.
        BYOK_TEST_BYOK=json.dumps(
            {"ALLOW_PRIVATE_BASE_URLS": True, "BASE_URLS": {"openai": f"{providers}/openai/v1"}}
        ),
    )
    commands = [
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "8",
         "--bind", f"127.0.0.1:{port}", "--timeout", "60",
         "django.core.wsgi:get_wsgi_application()"]
        for port in ports
    ]  # fmt: skip
    with started(commands, env=env, log_dir=tmp_path) as processes:
        urls = [f"http://127.0.0.1:{port}/api/user/api-keys/" for port in ports]
        for url in urls:
            wait_until_serving(url, processes, tmp_path)
        yield urls


def spread(urls, path, auth, body=None, calls=40):
    """``calls`` POSTs at once, alternating between the servers; their status codes."""
    start = threading.Barrier(calls)

    def call(number):
        start.wait(timeout=30)
        url = urls[number % len(urls)] + path
        return requests.post(url, json=body or {}, auth=auth, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=calls) as pool:
        return Counter(pool.map(call, range(calls)))


def test_two_servers_allow_exactly_the_configured_tests(two_servers):
    user = UserFactory()
    body = {"service": "openai", "key": fake_credentials("openai")}  # well formed: sent
    codes = spread(two_servers, "test/", (username(user), PASSWORD), body)
    assert codes == {200: 10, 429: 30}
    assert len(FakeProviders.seen) == 10  # a refused test never reached the provider


def test_two_servers_allow_exactly_the_configured_reveals(two_servers):
    user = UserFactory()
    key = UserAPIKeyFactory(user=user)
    codes = spread(two_servers, f"{key.pk}/reveal/", (username(user), PASSWORD))
    assert codes == {200: 5, 429: 35}


# -- Two task workers, one re-check run ----------------------------------------------------


class FakeProviders(BaseHTTPRequestHandler):
    """OpenAI (accepts every key but the rejected ones) and Anthropic (answers 429), on
    this machine; each request is written down with the credential it carried."""

    seen: list = []
    rejected: set = set()
    lock = threading.Lock()

    def do_GET(self):
        credential = self.headers.get("Authorization") or self.headers.get("x-api-key")
        with self.lock:
            self.seen.append((self.path, credential))
        time.sleep(0.05)  # a provider's latency: the run lasts long enough to be shared
        if self.path.startswith("/anthropic/"):
            status, body = 429, {"type": "error", "error": {"type": "rate_limit_error"}}
        elif credential in self.rejected:
            status, body = 401, {"error": {"message": "Incorrect API key provided"}}
        else:
            status, body = 200, {"object": "list", "data": []}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def providers():
    FakeProviders.seen, FakeProviders.rejected = [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeProviders)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_two_db_workers_test_every_key_exactly_once(tmp_path, providers, redis_prefix):
    pytest.importorskip("django_tasks_db")
    users = [UserFactory(), UserFactory()]
    openai = {}
    for number in range(40):
        secret = fake_credentials("openai")
        openai[f"Bearer {secret}"] = UserAPIKeyFactory(
            user=users[number % 2], service="openai", credentials=secret
        )
    anthropic = [UserAPIKeyFactory(user=users[0], service="anthropic") for _ in range(10)]
    rejected = list(openai)[:3]
    FakeProviders.rejected = set(rejected)
    mail_dir = tmp_path / "mail"
    env = environment(
        BYOK_TEST_CACHE_PREFIX=redis_prefix,
        BYOK_TEST_MAIL_DIR=str(mail_dir),
        BYOK_TEST_BYOK=json.dumps(
            {
                "ALLOW_PRIVATE_BASE_URLS": True,
                "BASE_URLS": {
                    "openai": f"{providers}/openai/v1",
                    "anthropic": f"{providers}/anthropic/v1",
                },
            }
        ),
    )

    output = manage("byok_check_keys", "--enqueue", "--batch-size", "5", "--concurrency", "1",
                    env=env)  # fmt: skip
    assert "50 keys in 10 batches enqueued" in output
    worker = [sys.executable, "-m", "django", "db_worker", "--batch", "--no-startup-delay",
              "--interval", "0.1", "--verbosity", "2"]  # fmt: skip
    with started([worker, worker], env=env, log_dir=tmp_path) as processes:
        wait_for_exit(processes, tmp_path)

    calls = Counter(credential for path, credential in FakeProviders.seen if "/openai/" in path)
    assert calls == Counter(dict.fromkeys(openai, 1)), logs(tmp_path)
    anthropic_calls = [path for path, _ in FakeProviders.seen if path.startswith("/anthropic/")]
    assert 1 <= len(anthropic_calls) <= 2  # at most one in flight per worker, then none
    run = RecheckRun.objects.get()
    assert run.finished_at is not None
    assert list(RecheckBackoff.objects.values_list("service", flat=True)) == ["anthropic"]
    statuses = Counter(UserAPIKey.objects.values_list("status", flat=True))
    assert statuses["valid"] == 37
    assert statuses["invalid"] == 3
    assert sum(statuses.values()) == 40 + len(anthropic)

    from django_tasks_db.models import DBTaskResult

    results = DBTaskResult.objects.all()
    assert {r.status for r in results} == {"SUCCESSFUL"}
    assert Counter(r.task_path.rsplit(".", 1)[-1] for r in results) == {
        "recheck_batch": 10,
        "send_notification": 3,
    }
    workers = {worker_id for r in results for worker_id in r.worker_ids}
    assert len(workers) == 2  # both workers took part
    assert all(len(r.worker_ids) == 1 for r in results)  # and each task ran once
    for r in results:  # what the backend stored: ids, never a credential
        assert r.args_kwargs["kwargs"] == {}
        assert all(isinstance(arg, int) for arg in r.args_kwargs["args"])

    assert Notification.objects.filter(sent_at__isnull=False).count() == 3
    mails = "".join(path.read_text() for path in Path(mail_dir).glob("*"))
    assert mails.count("Subject: Your OpenAI key stopped working") == 3
    for credential in openai:
        assert credential.removeprefix("Bearer ") not in mails

    status = manage("byok_check_keys", "--status", env=env)
    assert "batches: 10 of 10 done" in status
    assert "keys:    50 of 50 tested" in status
    assert "rate limited (left alone for the rest of the run): anthropic" in status


# -- Celery --------------------------------------------------------------------------------


def test_a_celery_worker_runs_a_recheck_run(tmp_path, providers, redis_prefix):
    """Celery through the django-tasks-fennel adapter, Redis as the broker: byok's tasks
    are plain tasks of the framework, run by a real Celery worker."""
    pytest.importorskip("django_tasks_fennel")
    pytest.importorskip("celery")
    user = UserFactory()
    keys = [UserAPIKeyFactory(user=user, service="openai") for _ in range(12)]
    credentials = [f"Bearer {key.get_credentials()['api_key']}" for key in keys]
    env = environment(
        DJANGO_SETTINGS_MODULE="celery_settings",
        BYOK_TEST_CACHE_PREFIX=redis_prefix,
        BYOK_TEST_BYOK=json.dumps(
            {"ALLOW_PRIVATE_BASE_URLS": True, "BASE_URLS": {"openai": f"{providers}/openai/v1"}}
        ),
    )
    worker = [sys.executable, "-m", "celery", "-A", "django_tasks_fennel.app", "worker",
              "--concurrency", "2", "--pool", "prefork", "--loglevel", "INFO",
              "--without-mingle", "--without-gossip"]  # fmt: skip
    with started([worker], env=env, log_dir=tmp_path) as processes:
        manage("byok_check_keys", "--enqueue", "--batch-size", "3", env=env)
        deadline = time.monotonic() + 120
        while RecheckRun.objects.get().finished_at is None:
            assert time.monotonic() < deadline, "the run did not finish:\n" + logs(tmp_path)
            assert processes[0].poll() is None, logs(tmp_path)
            time.sleep(0.5)

    calls = Counter(credential for _, credential in FakeProviders.seen)
    assert calls == Counter(dict.fromkeys(credentials, 1)), logs(tmp_path)
    assert UserAPIKey.objects.filter(status="valid").count() == 12
    assert logs(tmp_path).count("django_tasks:byok.tasks.recheck_batch[") >= 4
