"""The probe HTTP client over real sockets, against a local server."""

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.test import override_settings

import byok
from byok.http import MAX_RESPONSE_BYTES, USER_AGENT, ProbeRequest
from byok.probes import probe_client
from byok.results import ProbeStatus
from byok.services import registry

from fakes import fake_credentials


class Provider(BaseHTTPRequestHandler):
    """A fake provider: the first path segment picks its behaviour."""

    hits: list

    def do_GET(self):
        self.server.hits.append({"path": self.path, "headers": dict(self.headers)})
        mode = self.path.split("/")[1]
        if mode == "slow":
            time.sleep(1.5)
        if mode == "redirect":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/ok/models")
            self.end_headers()
            return
        if mode == "flaky" and len(self.server.hits) == 1:
            self._send(500, b'{"error": {"message": "boom"}}')
            return
        if mode == "huge":
            self._send(200, b"[" + b'"x",' * (MAX_RESPONSE_BYTES // 2) + b'"x"]')
            return
        self._send(200, json.dumps({"object": "list", "data": []}).encode())

    def _send(self, status, body):
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def at(server, mode, **extra):
    """Settings that point OpenAI's probe at the local provider's ``mode``."""
    return override_settings(
        BYOK={
            **settings.BYOK,
            "BASE_URLS": {"openai": f"http://127.0.0.1:{server.server_port}/{mode}"},
            "ALLOW_PRIVATE_BASE_URLS": True,
            "PROBE_TIMEOUT": (1, 0.5),
            **extra,
        }
    )


def test_a_real_request_carries_the_key_and_the_user_agent(provider):
    secret = fake_credentials("openai")
    with at(provider, "ok"):
        result = byok.test_credentials("openai", secret)
    assert result.status == ProbeStatus.VALID
    (hit,) = provider.hits
    assert hit["path"] == "/ok/models"
    assert hit["headers"]["Authorization"] == f"Bearer {secret}"
    assert hit["headers"]["User-Agent"] == USER_AGENT


def test_a_slow_provider_times_out_twice_then_is_unreachable(provider):
    with at(provider, "slow"):
        started = time.monotonic()
        result = byok.test_credentials("openai", fake_credentials("openai"))
    assert result.status == ProbeStatus.UNREACHABLE
    assert len(provider.hits) == 2
    assert time.monotonic() - started < 3


def test_a_5xx_is_retried_once(provider):
    with at(provider, "flaky"):
        result = byok.test_credentials("openai", fake_credentials("openai"))
    assert result.status == ProbeStatus.VALID
    assert len(provider.hits) == 2


def test_redirects_are_never_followed(provider):
    with at(provider, "redirect"):
        result = byok.test_credentials("openai", fake_credentials("openai"))
    assert result.status == ProbeStatus.PROVIDER_ERROR
    assert [hit["path"] for hit in provider.hits] == ["/redirect/models"]


def test_the_response_is_read_up_to_the_cap(provider):
    with at(provider, "huge"):
        response = probe_client(registry.get("openai")).send(ProbeRequest("GET", "/models"))
    assert response.truncated
    assert len(response.body) == MAX_RESPONSE_BYTES
    assert response.json() is None


@pytest.mark.parametrize(
    "base_url",
    [
        "https://127.0.0.1:9/v1",
        "https://localhost:9/v1",
        "https://10.1.2.3/v1",
        "https://169.254.169.254/latest",
        "https://[::1]:9/v1",
    ],
)
def test_private_base_urls_are_refused_before_anything_is_sent(base_url):
    with override_settings(BYOK={**settings.BYOK, "BASE_URLS": {"openai": base_url}}):
        result = byok.test_credentials("openai", fake_credentials("openai"))
    assert result.status == ProbeStatus.UNREACHABLE
    assert "ALLOW_PRIVATE_BASE_URLS" in result.message


def test_plain_http_is_refused_unless_allowed(provider):
    url = f"http://127.0.0.1:{provider.server_port}/ok"
    with override_settings(BYOK={**settings.BYOK, "BASE_URLS": {"openai": url}}):
        result = byok.test_credentials("openai", fake_credentials("openai"))
    assert result.status == ProbeStatus.UNREACHABLE
    assert "not https" in result.message
    assert provider.hits == []


def test_nothing_secret_is_logged_at_any_level(provider, caplog):
    secret = fake_credentials("openai")
    with caplog.at_level(logging.DEBUG), at(provider, "ok"):
        byok.test_credentials("openai", secret)
    assert any(r.name == "byok.probes" for r in caplog.records)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/ok/models" in logged
    assert secret not in logged
    assert "Authorization" not in logged


def test_a_malformed_key_is_never_sent(provider):
    with at(provider, "ok"):
        result = byok.test_credentials("openai", "sk-too-short")
    assert result.status == ProbeStatus.FORMAT_INVALID
    assert provider.hits == []


def test_probe_timeout_setting():
    client = probe_client(registry.get("openai"))
    with override_settings(BYOK={**settings.BYOK, "PROBE_TIMEOUT": 20}):
        assert client.timeout == (5.0, 20.0)
    with override_settings(BYOK={**settings.BYOK, "PROBE_TIMEOUT": (2, 3)}):
        assert client.timeout == (2.0, 3.0)


def test_environment_proxies_are_ignored(provider, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    with at(provider, "ok"):
        assert byok.test_credentials("openai", fake_credentials("openai")).status == "valid"
