"""What every probing service must do, written once. Each service's test module
subclasses :class:`ProbeContract` and supplies its URL and sample answers."""

import base64
import json
from dataclasses import dataclass, field

import requests

import byok
from byok.http import USER_AGENT

from fakes import fake_credentials, secret_values


@dataclass(frozen=True)
class Answer:
    """A sample answer from the provider and the status byok must read from it."""

    id: str
    status: int
    body: object
    expected: str
    headers: dict = field(default_factory=dict)
    message: str = ""  # a fragment the result's message must contain


def basic_auth(request):
    scheme, _, value = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    return tuple(base64.b64decode(value).decode().split(":", 1))


class ProbeContract:
    service: str
    method = "GET"
    url: str
    answers: list[Answer] = []
    environment = None

    def credentials(self):
        return fake_credentials(self.service)

    def assert_authenticated(self, request, credentials):
        """How the credential travels; overridden per service."""
        raise NotImplementedError

    def add(self, mocked, answer, url=None):
        body = answer.body
        kwargs = {"status": answer.status, "headers": answer.headers}
        if isinstance(body, (dict, list)):
            kwargs["body"] = json.dumps(body)
            kwargs["content_type"] = "application/json"
        elif isinstance(body, Exception):
            kwargs = {"body": body}
        else:
            kwargs["body"] = body or ""
        mocked.add(self.method, url or self.url, **kwargs)

    def probe(self, credentials=None):
        return byok.test_credentials(
            self.service, credentials or self.credentials(), environment=self.environment
        )

    def test_reads_the_answer(self, mocked, answer):
        self.add(mocked, answer)
        credentials = self.credentials()
        result = self.probe(credentials)
        assert result.status == answer.expected, result
        assert answer.message in result.message
        if isinstance(answer.status, int):
            assert result.http_status == answer.status
        text = json.dumps(result.as_dict())
        for value in secret_values(credentials):
            assert value not in text

    def test_sends_the_credential_and_a_user_agent(self, mocked):
        self.add(mocked, Answer("ok", 200, self.valid_body(), "valid"))
        credentials = self.credentials()
        self.probe(credentials)
        request = mocked.calls[0].request
        assert request.headers["User-Agent"] == USER_AGENT
        self.assert_authenticated(request, credentials)

    def valid_body(self):
        return next(a.body for a in self.answers if a.expected == "valid")

    def test_a_refused_connection_is_unreachable(self, mocked):
        mocked.add(self.method, self.url, body=requests.ConnectionError("refused"))
        assert self.probe().status == "unreachable"

    def test_a_timeout_is_retried_once_then_unreachable(self, mocked):
        mocked.add(self.method, self.url, body=requests.ReadTimeout("slow"))
        assert self.probe().status == "unreachable"
        assert len(mocked.calls) == 2

    def test_a_5xx_is_retried_once_and_never_invalid(self, mocked):
        mocked.add(self.method, self.url, status=502, body="<html>Bad gateway</html>")
        result = self.probe()
        assert result.status == "provider_error"
        assert len(mocked.calls) == 2

    def test_a_5xx_then_success_is_valid(self, mocked):
        mocked.add(self.method, self.url, status=503, body="")
        self.add(mocked, Answer("ok", 200, self.valid_body(), "valid"))
        assert self.probe().status == "valid"

    def test_a_429_is_never_invalid(self, mocked):
        mocked.add(self.method, self.url, status=429, body="slow down")
        assert self.probe().status in ("rate_limited", "restricted")

    def test_a_redirect_is_not_followed(self, mocked):
        mocked.add(
            self.method,
            self.url,
            status=302,
            headers={"Location": "https://evil.example/"},
            body="",
        )
        result = self.probe()
        assert result.status == "provider_error"
        assert len(mocked.calls) == 1

    def test_garbage_is_a_provider_error_not_a_crash(self, mocked):
        mocked.add(self.method, self.url, status=418, body=b"\x00\xff not json")
        assert self.probe().status == "provider_error"
