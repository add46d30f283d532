"""The metered SDK clients, with the real SDKs, against a local server that answers
like the providers (tests/fake_provider.py): what each call records, against which
key, streamed or not, failed or retried, sync and async, and the hooks around it."""

import importlib
import logging
import sys
from decimal import Decimal
from functools import partial

import anthropic
import openai
import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

import byok
import byok.clients
from byok.clients import Outcome, meter
from byok.clients.answers import AnthropicUsage, BodyReader, OpenAIUsage
from byok.models import Budget, KeyUsage, PlatformUsage, Reservation
from byok.resolution import ResolvedKey
from byok.services.prices import Tokens
from byok.services.registry import registry

from client_hooks import RecordingHook, Refused
from factories import UserAPIKeyFactory
from fake_provider import USAGE, FakeProvider, refused_url
from fakes import fake_credentials

pytestmark = pytest.mark.django_db

PLATFORM = {"openai": fake_credentials("openai"), "anthropic": fake_credentials("anthropic")}
CHAT = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def fake(settings):
    """The fake provider, with streamed bodies cut into 7-byte chunks (events split
    anywhere), as the base URL of both services."""
    with FakeProvider(chunk_size=7) as server:
        settings.BYOK = {
            **settings.BYOK,
            "BASE_URLS": {"openai": server.openai_url, "anthropic": server.url},
            "ALLOW_PRIVATE_BASE_URLS": True,
            "PLATFORM_KEYS": PLATFORM,
        }
        yield server


@pytest.fixture
def hooks(settings):
    RecordingHook.seen = []

    def use(*names):
        settings.BYOK = {**settings.BYOK, "CLIENT_HOOKS": [f"client_hooks.{n}" for n in names]}
        return RecordingHook.seen

    return use


def rows():
    """model -> (calls, input, cached input, output, cost), the user's key and the platform's."""
    found = {}
    for row in [*KeyUsage.objects.all(), *PlatformUsage.objects.all()]:
        found[row.model] = (
            row.calls,
            row.input_tokens,
            row.cached_input_tokens,
            row.output_tokens,
            row.cost,
        )
    return found


def records(seen):
    return [entry[2] for entry in seen if entry[0] == "after"]


# -- OpenAI -----------------------------------------------------------------------------


def test_a_chat_completion_records_its_model_tokens_and_cost_on_the_users_key(user, fake):
    key = UserAPIKeyFactory(user=user, service="openai")
    client = byok.clients.openai(user)
    assert isinstance(client, openai.OpenAI)
    answer = client.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert answer.choices[0].message.content == "Hello!"
    # 1,000 input x $2.50 + 200 cached x $1.25 + 300 output x $10, per million
    assert rows() == {"gpt-4o": (1, 1200, 200, 300, Decimal("0.005750"))}
    assert KeyUsage.objects.get().key == key
    assert not PlatformUsage.objects.exists()
    sent = fake.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {key.get_credentials()['api_key']}"


def test_without_a_key_of_their_own_the_platform_key_serves_and_is_charged(user, fake):
    byok.clients.openai(user).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert not KeyUsage.objects.exists()
    usage = PlatformUsage.objects.get()
    assert (usage.user, usage.service, usage.model, usage.calls) == (
        user,
        "openai",
        "gpt-4o-mini",
        1,
    )
    assert fake.requests[-1].headers["authorization"] == f"Bearer {PLATFORM['openai']}"


def test_a_streamed_chat_completion_asks_for_its_usage_and_records_it(user, fake):
    UserAPIKeyFactory(user=user, service="openai")
    stream = byok.clients.openai(user).chat.completions.create(
        model="gpt-4o", messages=CHAT, stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello!"
    assert fake.requests[-1].json["stream_options"] == {"include_usage": True}
    assert rows() == {"gpt-4o": (1, 1200, 200, 300, Decimal("0.005750"))}


def test_a_caller_who_turned_stream_usage_off_keeps_it_off(user, fake):
    UserAPIKeyFactory(user=user, service="openai")
    stream = byok.clients.openai(user).chat.completions.create(
        model="gpt-4o", messages=CHAT, stream=True, stream_options={"include_usage": False}
    )
    list(stream)
    assert fake.requests[-1].json["stream_options"] == {"include_usage": False}
    # The call is counted, for its model; the answer reported no tokens.
    assert rows() == {"gpt-4o": (1, 0, 0, 0, Decimal(0))}


def test_the_responses_api_records_its_usage_plain_and_streamed(user, fake):
    UserAPIKeyFactory(user=user, service="openai")
    client = byok.clients.openai(user)
    assert client.responses.create(model="gpt-4.1", input="Say hello.").output_text == "Hello!"
    with client.responses.create(model="gpt-4.1", input="Say hello.", stream=True) as stream:
        events = [event.type for event in stream]
    assert events[-1] == "response.completed"
    # Twice: 800 x $2 + 100 cached x $0.50 + 150 x $8, per million
    assert rows() == {"gpt-4.1": (2, 1800, 200, 300, Decimal("0.005700"))}


def test_embeddings_record_their_prompt_tokens(user, fake):
    UserAPIKeyFactory(user=user, service="openai")
    answer = byok.clients.openai(user).embeddings.create(
        model="text-embedding-3-large", input=["one", "two"]
    )
    assert len(answer.data) == 2
    tokens = USAGE["embeddings"]["prompt_tokens"]
    assert rows() == {"text-embedding-3-large": (1, tokens, 0, 0, Decimal("0.000008"))}


def test_a_compressed_answer_is_read_and_reaches_the_caller_whole(user, fake):
    UserAPIKeyFactory(user=user, service="openai")
    from fake_provider import chat_completion

    fake.answer("/v1/chat/completions", json=chat_completion("gpt-4o"), gzip=True)
    answer = byok.clients.openai(user).chat.completions.create(model="gpt-4o", messages=CHAT)
    assert answer.usage.prompt_tokens == 1200
    assert fake.requests[-1].headers["accept-encoding"] == "gzip, deflate"
    assert rows()["gpt-4o"][:2] == (1, 1200)


def test_a_call_that_names_no_model_costs_nothing(user, fake):
    UserAPIKeyFactory(user=user, service="openai")
    byok.clients.openai(user).models.list()
    assert rows() == {"": (1, 0, 0, 0, Decimal(0))}


# -- Anthropic --------------------------------------------------------------------------


def test_a_message_records_input_with_cache_reads_and_writes(user, fake):
    key = UserAPIKeyFactory(user=user, service="anthropic")
    client = byok.clients.anthropic(user)
    assert isinstance(client, anthropic.Anthropic)
    answer = client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=CHAT)
    assert answer.content[0].text == "Hello!"
    # 1,000 x $3 + 4,000 cache reads x $0.30 + 2,000 cache writes x $3.75 + 500 x $15
    assert rows() == {"claude-sonnet-4-6": (1, 7000, 4000, 500, Decimal("0.019200"))}
    sent = fake.requests[-1].headers
    # The SDK sends the key as it chooses (its recent versions as a bearer token).
    secret = key.get_credentials()["api_key"]
    assert secret in (sent.get("x-api-key"), sent.get("authorization", "").removeprefix("Bearer "))
    assert sent["anthropic-version"]


def test_a_streamed_message_takes_input_from_its_start_and_output_from_its_delta(user, fake):
    UserAPIKeyFactory(user=user, service="anthropic")
    client = byok.clients.anthropic(user)
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=CHAT) as stream:
        assert "".join(stream.text_stream) == "Hello!"
    # 1,000 x $1 + 4,000 x $0.10 + 2,000 x $1.25 + 500 x $5
    assert rows() == {"claude-haiku-4-5": (1, 7000, 4000, 500, Decimal("0.006400"))}


# -- Failures and retries -----------------------------------------------------------------


def test_a_rejected_call_is_one_call_with_no_tokens(user, fake, hooks):
    seen = hooks("RecordingHook")
    UserAPIKeyFactory(user=user, service="openai")
    fake.answer("/v1/chat/completions", status=401)
    with pytest.raises(openai.AuthenticationError):
        byok.clients.openai(user).chat.completions.create(model="gpt-4o", messages=CHAT)
    assert rows() == {"gpt-4o": (1, 0, 0, 0, Decimal(0))}
    [record] = records(seen)
    assert (record.status, record.outcome, record.tokens) == (401, "4xx", Tokens())


def test_each_retry_is_a_call_of_its_own(user, fake, hooks):
    seen = hooks("RecordingHook")
    UserAPIKeyFactory(user=user, service="anthropic")
    fake.answer("/v1/messages", status=429, headers={"retry-after-ms": "1"})
    fake.answer("/v1/messages", status=500, headers={"retry-after-ms": "1"})
    client = byok.clients.anthropic(user, max_retries=2)
    client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=CHAT)
    assert [r.outcome for r in records(seen)] == ["429", "5xx", "ok"]
    assert [c.attempt for _, c, *rest in seen if _ == "before"] == [0, 1, 2]
    assert rows() == {"claude-sonnet-4-6": (3, 7000, 4000, 500, Decimal("0.019200"))}


def test_a_refused_connection_is_recorded_for_each_try(user, settings, hooks):
    seen = hooks("RecordingHook")
    UserAPIKeyFactory(user=user, service="openai")
    settings.BYOK = {
        **settings.BYOK,
        "BASE_URLS": {"openai": refused_url()},
        "ALLOW_PRIVATE_BASE_URLS": True,
    }
    client = byok.clients.openai(user, max_retries=1)
    with pytest.raises(openai.APIConnectionError):
        client.with_options(timeout=2).chat.completions.create(model="gpt-4o", messages=CHAT)
    assert [(r.outcome, r.status) for r in records(seen)] == [("error", None), ("error", None)]
    assert rows() == {"gpt-4o": (2, 0, 0, 0, Decimal(0))}


def test_a_timeout_is_recorded_as_one(user, fake, hooks):
    seen = hooks("RecordingHook")
    UserAPIKeyFactory(user=user, service="openai")
    fake.answer("/v1/chat/completions", delay=1)
    client = byok.clients.openai(user, max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=CHAT)
    [record] = records(seen)
    assert record.outcome == Outcome.TIMEOUT
    assert 150 < record.latency_ms < 1000


def test_a_recording_error_is_logged_without_the_key_and_the_call_goes_on(
    user, fake, monkeypatch, caplog
):
    key = UserAPIKeyFactory(user=user, service="openai")

    def broken(*args, **kwargs):
        raise DatabaseError(f"cannot write with {key.get_credentials()['api_key']}")

    monkeypatch.setattr(meter, "track_api_usage", broken)
    with caplog.at_level(logging.DEBUG):
        answer = byok.clients.openai(user).chat.completions.create(model="gpt-4o", messages=CHAT)
    assert answer.choices[0].message.content == "Hello!"
    assert "Could not record a openai call (model gpt-4o): DatabaseError" in caplog.text
    assert key.get_credentials()["api_key"] not in caplog.text


def test_no_key_reaches_the_logs(user, fake, caplog):
    key = UserAPIKeyFactory(user=user, service="openai")
    secret = key.get_credentials()["api_key"]
    fake.answer("/v1/chat/completions", status=500)
    with caplog.at_level(logging.DEBUG):
        client = byok.clients.openai(user, max_retries=1)
        client.chat.completions.create(model="gpt-4o", messages=CHAT)
        list(client.chat.completions.create(model="gpt-4o", messages=CHAT, stream=True))
        byok.clients.anthropic(user).messages.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=CHAT
        )
    assert caplog.records  # the SDKs and HTTPX2 did log
    for secret_value in (secret, PLATFORM["anthropic"]):
        assert secret_value not in caplog.text
        assert secret_value[-12:] not in caplog.text


# -- The hooks ------------------------------------------------------------------------------


def test_the_hooks_see_the_request_before_and_the_record_after(user, fake, hooks):
    seen = hooks("RecordingHook")
    UserAPIKeyFactory(user=user, service="openai")
    client = byok.clients.openai(user)
    client.chat.completions.create(model="gpt-4o", messages=CHAT, max_completion_tokens=50)
    (_, call), (_, after_call, record) = seen
    assert after_call is call
    assert (call.service, call.model, call.max_tokens, call.messages) == (
        "openai",
        "gpt-4o",
        50,
        CHAT,
    )
    assert (call.method, call.path, call.key.source, call.notes) == (
        "POST",
        "/v1/chat/completions",
        "user",
        {"reserved": True},
    )
    assert (record.model, record.status, record.outcome) == ("gpt-4o", 200, "ok")
    assert record.tokens == Tokens(input=1200, output=300, cached=200)
    assert record.cost == Decimal("0.00575")
    assert record.latency_ms > 0


@pytest.mark.parametrize("service", ["openai", "anthropic"])
def test_a_hook_that_refuses_stops_the_call_with_its_own_exception(user, fake, hooks, service):
    seen = hooks("RecordingHook", "RefusingHook")
    UserAPIKeyFactory(user=user, service=service)
    client = getattr(byok.clients, service)(user, max_retries=2)
    if service == "openai":
        create = partial(client.chat.completions.create, model="gpt-4o", messages=CHAT)
    else:
        create = partial(client.messages.create, model="claude-sonnet-4-6", max_tokens=8)
        create = partial(create, messages=CHAT)
    with pytest.raises(Refused, match=r"^no budget for (gpt-4o|claude-sonnet-4-6)$"):
        create()
    assert fake.requests == []  # nothing sent, nothing retried
    assert rows() == {}
    # The hook that had reserved hears the call was refused.
    assert [r.outcome for r in records(seen)] == ["refused"]


def test_a_failing_after_hook_is_logged_and_the_call_goes_on(user, fake, hooks, caplog):
    hooks("BrokenAfterHook")
    UserAPIKeyFactory(user=user, service="openai")
    with caplog.at_level(logging.WARNING, logger="byok.clients"):
        byok.clients.openai(user).chat.completions.create(model="gpt-4o", messages=CHAT)
    assert (
        "The client hook BrokenAfterHook failed after a openai call: RuntimeError" in caplog.text
    )
    assert rows()["gpt-4o"][0] == 1


def test_a_hook_that_cannot_be_imported_is_a_clear_error(user, fake, settings):
    settings.BYOK = {**settings.BYOK, "CLIENT_HOOKS": ["client_hooks.Missing"]}
    with pytest.raises(ImproperlyConfigured, match=r"client_hooks\.Missing"):
        byok.clients.openai(user)


# -- Async ------------------------------------------------------------------------------------


def test_the_async_clients_record_like_the_sync_ones(user, fake, hooks):
    seen = hooks("RecordingHook")
    UserAPIKeyFactory(user=user, service="openai")

    async def scenario():
        openai_client = await byok.clients.async_openai(user)
        assert isinstance(openai_client, openai.AsyncOpenAI)
        await openai_client.chat.completions.create(model="gpt-4o", messages=CHAT)
        stream = await openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=CHAT, stream=True
        )
        async for _ in stream:
            pass
        anthropic_client = await byok.clients.async_anthropic(user)
        assert isinstance(anthropic_client, anthropic.AsyncAnthropic)
        async with anthropic_client.messages.stream(
            model="claude-haiku-4-5", max_tokens=8, messages=CHAT
        ) as events:
            async for _ in events:
                pass
        await openai_client.close()
        await anthropic_client.close()

    async_to_sync(scenario)()
    assert rows() == {
        "gpt-4o": (1, 1200, 200, 300, Decimal("0.005750")),
        "gpt-4o-mini": (1, 1200, 200, 300, Decimal("0.000345")),
        "claude-haiku-4-5": (1, 7000, 4000, 500, Decimal("0.006400")),
    }
    assert [r.outcome for r in records(seen)] == ["ok", "ok", "ok"]


def test_an_async_hook_refusal_reaches_the_caller(user, fake, hooks):
    hooks("RefusingHook")
    UserAPIKeyFactory(user=user, service="anthropic")

    async def scenario():
        async with await byok.clients.async_anthropic(user) as client:
            await client.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=CHAT)

    with pytest.raises(Refused):
        async_to_sync(scenario)()
    assert fake.requests == []


# -- Making a client --------------------------------------------------------------------------


@pytest.mark.parametrize("argument", ["api_key", "base_url", "http_client"])
def test_what_byok_sets_cannot_be_passed(user, fake, argument):
    with pytest.raises(TypeError, match=argument):
        byok.clients.openai(user, **{argument: "x"})


def test_a_private_base_url_is_refused_unless_allowed(user, settings):
    settings.BYOK = {
        **settings.BYOK,
        "BASE_URLS": {"openai": "http://127.0.0.1:9/v1"},
        "PLATFORM_KEYS": PLATFORM,
    }
    with pytest.raises(ImproperlyConfigured, match="ALLOW_PRIVATE_BASE_URLS"):
        byok.clients.openai(user)


def test_without_a_key_the_factory_raises_no_api_key(user):
    with pytest.raises(byok.NoAPIKey):
        byok.clients.anthropic(user)


def test_the_official_base_urls_are_used_when_none_is_configured(user, settings):
    settings.BYOK = {**settings.BYOK, "PLATFORM_KEYS": PLATFORM}
    assert str(byok.clients.openai(user).base_url) == "https://api.openai.com/v1/"
    assert str(byok.clients.anthropic(user).base_url) == "https://api.anthropic.com"


# -- Reading answers -------------------------------------------------------------------------


def feed(reader, body, size):
    for start in range(0, len(body), size):
        reader.feed(body[start : start + size])
    return reader.finish()


@pytest.mark.parametrize("size", [1, 5, 4096])
def test_events_are_read_whatever_the_chunks(size):
    body = (
        b'event: message_start\r\ndata: {"type":"message_start","message":{"model":"claude-x",'
        b'"usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}\r\n\r\n'
        b": a comment\n\n"
        b'data: {"type":"message_delta",\ndata: "usage":{"output_tokens":7}}\n\n'
    )
    usage = feed(BodyReader(AnthropicUsage(), events=True), body, size)
    assert usage.model == "claude-x"
    assert usage.tokens == Tokens(input=15, output=7, cached=5)


def test_a_large_json_body_is_read_from_its_ends():
    padding = ",".join(["0.125"] * 400_000)
    body = (
        b'{"object":"list","data":[{"embedding":[' + padding.encode() + b"]}],"
        b'"model":"text-embedding-3-small","usage":{"prompt_tokens":9,"total_tokens":9}}'
    )
    assert len(body) > 2 << 20
    reader = BodyReader(OpenAIUsage(), events=False)
    usage = feed(reader, body, 65536)
    assert usage.model == "text-embedding-3-small"
    assert usage.tokens == Tokens(input=9)
    assert len(reader._tail) <= 64 << 10


def test_a_body_that_is_not_json_is_not_read():
    assert BodyReader.for_answer(OpenAIUsage(), "audio/mpeg") is None
    assert BodyReader.for_answer(OpenAIUsage(), "application/json; charset=utf-8") is not None


def test_garbage_in_an_answer_reads_as_no_usage():
    reader = BodyReader(OpenAIUsage(), events=True)
    usage = feed(reader, b'data: {"usage": [1, 2]}\n\ndata: {"usage": \n\n', 3)
    assert usage.tokens is None


def test_a_cut_json_answer_reads_as_no_usage():
    usage = feed(BodyReader(OpenAIUsage(), events=False), b'{"model": "gpt-4o", "usage": {', 4)
    assert (usage.model, usage.tokens) == (None, None)


# -- Without the SDKs -----------------------------------------------------------------------


@pytest.fixture
def without(monkeypatch):
    """Imports of the named modules fail, as when they are not installed; byok's client
    modules are imported afresh."""

    def block(*names):
        # Put the package's attribute back too, once done.
        monkeypatch.setattr(byok, "clients", sys.modules["byok.clients"])
        for name in list(sys.modules):
            if name.startswith("byok.clients"):
                monkeypatch.delitem(sys.modules, name)
        for name in names:
            monkeypatch.setitem(sys.modules, name, None)

    return block


def test_byok_clients_imports_without_the_sdks(without):
    without("openai", "anthropic", "httpx2")
    clients = importlib.import_module("byok.clients")
    assert callable(clients.session)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_factory_without_its_sdk_says_which_extra_to_install(user, without, settings, sdk):
    settings.BYOK = {**settings.BYOK, "PLATFORM_KEYS": PLATFORM}
    without(sdk)
    clients = importlib.import_module("byok.clients")
    with pytest.raises(ImportError, match=rf"pip install 'django-byok\[{sdk}\]'"):
        getattr(clients, sdk)(user)


# -- Budgets ----------------------------------------------------------------------------


def test_under_a_blocking_budget_a_call_reserves_its_estimate_and_settles_it(user, fake):
    UserAPIKeyFactory(user=user, service="openai")
    byok.set_budget(user, limit="0.02", service="openai", action="block")
    client = byok.clients.openai(user)
    # 4,096 output tokens (no max_tokens) at $10 a million do not fit in $0.02 ...
    with pytest.raises(byok.BudgetExceeded):
        client.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert fake.requests == []
    assert not KeyUsage.objects.exists()
    # ... 100 do: the call goes, and records what the answer says it used.
    client.chat.completions.create(model="gpt-4o", messages=CHAT, max_tokens=100)
    assert rows() == {"gpt-4o": (1, 1200, 200, 300, Decimal("0.005750"))}
    assert Budget.objects.get().spent == Decimal("0.00575")
    assert not Reservation.objects.exists()


def test_a_refused_call_gives_its_reservation_back(user, fake, hooks):
    UserAPIKeyFactory(user=user, service="openai")
    byok.set_budget(user, limit="1", service="openai", action="block")
    hooks("RefusingHook")
    with pytest.raises(Refused):
        byok.clients.openai(user).chat.completions.create(model="gpt-4o", messages=CHAT)
    assert not Reservation.objects.exists()
    assert Budget.objects.get().spent == 0


def test_without_a_blocking_budget_nothing_is_reserved(user, fake):
    UserAPIKeyFactory(user=user, service="openai")
    byok.set_budget(user, limit="1", service="openai", action="alert")
    client = byok.clients.openai(user)
    with CaptureQueriesContext(connection) as queries:
        client.chat.completions.create(model="gpt-4o", messages=CHAT)
    statements = [query["sql"] for query in queries]
    assert statements  # the usage and the budget were written ...
    assert not any("byok_reservation" in sql for sql in statements)  # ... nothing reserved
    assert not any("FOR UPDATE" in sql for sql in statements)  # ... and nothing locked


def test_the_estimate_prices_the_request_at_its_most():
    key = ResolvedKey("sk-…", "user", "openai", "production")
    messages = [{"role": "user", "content": "x" * 300}]

    def estimate(**body):
        return meter.estimate(meter.Call(None, key, "POST", "/v1/chat/completions", body))

    # 1,000 output tokens at $10 a million, and at most one input token per character
    # of the messages at $2.50 a million
    capped = estimate(model="gpt-4o", messages=messages, max_tokens=1000)
    assert Decimal("0.01") < capped < Decimal("0.01") + Decimal("2.5") * 333 / 10**6
    assert estimate(model="gpt-4o", messages=messages) > capped  # 4,096 by default
    unpriced = estimate(model="my-own-model", messages=messages)
    assert unpriced == registry.get("openai").default_cost_per_call
