"""RedactSecretsFilter: credentials out of every part of a record, everything else intact."""

import ast
import io
import logging
import logging.config
import re
import uuid
from pathlib import Path

import pytest
from django.core import mail
from django.test import override_settings

import byok.redaction as redaction
from byok.redaction import WITHHELD, RedactSecretsFilter
from byok.services import CredentialField, Service
from byok.services.registry import registry

from fakes import FAKES, fake_credentials
from support import ADMINS, windows

CHECKOUT = Path(__file__).resolve().parents[1]
DOCS = CHECKOUT / "docs" / "logging.md"
EXAMPLE_SETTINGS = CHECKOUT / "example_project" / "example" / "settings.py"
SERVICES = sorted(FAKES)


class Acme(Service):
    """A host's own service: its prefix and variable are redacted like the built-ins'."""

    id = "acme"
    name = "Acme"
    category = "developer"
    fields = (CredentialField("api_key", "API key", env=("ACME_TOKEN",)),)
    key_prefixes = ("acme_live_",)


class Records(logging.Handler):
    """Keeps the records it is given, after its filters ran."""

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def capture():
    """A logger whose one handler has the filter and writes to a StringIO."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactSecretsFilter())
    kept = Records()
    kept.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("host_app.redaction")
    logger.handlers = [handler, kept]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.stream, logger.kept = stream, kept.records
    yield logger
    logger.handlers = []
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def written(logger):
    return logger.stream.getvalue()


def secret_fields(service):
    """The credential's secret values (the others, like a Twilio SID, may stay)."""
    credentials = fake_credentials(service)
    if isinstance(credentials, str):
        return credentials, [credentials]
    spec = registry.get(service)
    secret = [f.name for f in spec.fields if f.secret and f.name in credentials]
    return credentials, [credentials[name] for name in secret]


def assert_redacted(text, secrets):
    for secret in secrets:
        leaked = sorted(w for w in windows(secret, 10) if w in text)
        assert not leaked, f"{len(leaked)} pieces of a secret in: {text[:500]}"
    assert "[redacted" in text, text


# What each provider's credential looks like in a log: a single key as it is, a
# multi-field credential as the mapping (its secrets found by their field names).


@pytest.mark.parametrize("service", SERVICES)
def test_a_credential_is_redacted_from_the_message(capture, service):
    credentials, secrets = secret_fields(service)
    capture.info(f"calling the provider with {credentials}")
    capture.info(f"calling the provider with {credentials!r}.")
    assert_redacted(written(capture), secrets)
    assert written(capture).count("calling the provider with") == 2


@pytest.mark.parametrize("service", SERVICES)
def test_a_credential_is_redacted_from_percent_args(capture, service):
    credentials, secrets = secret_fields(service)
    capture.info("calling the provider with %s", credentials)
    capture.info("calling %s with %r after %d tries", "the provider", credentials, 3)
    assert_redacted(written(capture), secrets)
    assert "after 3 tries" in written(capture)


@pytest.mark.parametrize("service", SERVICES)
def test_a_credential_is_redacted_from_dict_args(capture, service):
    credentials, secrets = secret_fields(service)
    capture.info("key %(key)s for user %(user)d", {"key": credentials, "user": 7})
    capture.info("nested %s", ([{"credentials": credentials}], "x"))
    assert_redacted(written(capture), secrets)
    assert "for user 7" in written(capture)


@pytest.mark.parametrize("service", SERVICES)
def test_a_credential_is_redacted_from_the_exception_text(capture, service):
    credentials, secrets = secret_fields(service)
    try:
        try:
            raise ValueError(f"the provider refused {credentials}")
        except ValueError as error:
            raise RuntimeError(f"while testing {credentials!r}") from error
    except RuntimeError:
        capture.exception("the test failed")
    text = written(capture)
    assert_redacted(text, secrets)
    assert "Traceback (most recent call last)" in text
    assert "ValueError: the provider refused" in text
    assert "RuntimeError: while testing" in text
    assert capture.kept[0].exc_text in text  # handlers print the redacted exc_text


@pytest.mark.parametrize("service", SERVICES)
def test_a_credential_is_redacted_from_the_stack_info(capture, service):
    credentials, secrets = secret_fields(service)
    record = capture.makeRecord(
        capture.name, logging.INFO, __file__, 1, "here", (), None, sinfo=None
    )
    record.stack_info = (
        f'Stack (most recent call last):\n  File "app.py", line 3, in connect\n'
        f"    client = Client({credentials!r})"
    )
    capture.handle(record)
    assert_redacted(written(capture), secrets)
    assert 'File "app.py", line 3, in connect' in written(capture)


def test_a_credential_is_redacted_from_exc_text_set_by_an_earlier_handler(capture):
    secret = fake_credentials("openai")
    record = capture.makeRecord(capture.name, logging.ERROR, __file__, 1, "failed", (), None)
    record.exc_text = f"Traceback:\nValueError: bad key {secret}"
    capture.handle(record)
    assert_redacted(written(capture), [secret])


@pytest.mark.parametrize(
    ("service", "name"),
    [
        (spec.id, name)
        for spec in registry
        for field in spec.fields
        if field.secret
        for name in (field.name, *field.env)
    ],
)
def test_a_secret_after_its_field_or_variable_name_is_redacted(capture, service, name):
    credentials, _ = secret_fields(service)
    spec = registry.get(service)
    field = next(f for f in spec.fields if name in (f.name, *f.env))
    value = credentials if isinstance(credentials, str) else credentials.get(field.name)
    value = value or "x" * 8 + uuid.uuid4().hex  # an optional field the fake leaves out
    capture.info(f"{name}={value}")
    capture.info(f"{name.lower()}: {value} and more")
    capture.info(f'{{"{name}": "{value}"}}')
    capture.info("env %s", f"export {name}='{value}'")
    assert_redacted(written(capture), [value])
    assert f"{name}=[redacted]" in written(capture)


def test_prefixless_secrets_are_found_beside_their_partner(capture):
    twilio, aws = fake_credentials("twilio"), fake_credentials("aws_s3")
    sid, token = twilio["account_sid"], twilio["auth_token"]
    key_id, secret = aws["access_key_id"], aws["secret_access_key"]
    capture.info(f"curl -u {sid}:{token} https://api.twilio.com")
    capture.info("auth %s", (sid, token))
    capture.info(f"aws {key_id} {secret}")
    capture.info("boto %r", {"pair": [key_id, secret]})
    text = written(capture)
    assert_redacted(text, [token, secret])
    assert f"{sid}:[redacted Twilio secret]" in text
    assert f"{key_id} [redacted AWS S3 secret]" in text


def test_headers_urls_and_bearer_tokens_are_redacted(capture):
    token = str(uuid.uuid4())  # a DeepL-like key: no prefix to recognize it by
    basic = "QUMxMjM0NTY3ODkwOnNlY3JldHRva2VuMTIzNDU2"
    cloudinary = fake_credentials("cloudinary")
    url = f"cloudinary://{cloudinary['api_key']}:{cloudinary['api_secret']}@demo"
    capture.info(f"Authorization: DeepL-Auth-Key {token}")
    capture.info("sent %s", {"Authorization": f"Basic {basic}", "Accept": "application/json"})
    capture.info("meta %s", {"HTTP_AUTHORIZATION": f"Bearer {token}"})
    capture.info("Proxy-Authorization: Basic %s", basic)
    capture.info("retrying with bearer %s", token)
    capture.info("connecting to %s", url)
    capture.info("database postgres://byok:%s@db:5432/byok", "hunter2-but-longer")
    text = written(capture)
    assert_redacted(text, [token, basic, cloudinary["api_secret"], "hunter2-but-longer"])
    assert "Authorization: DeepL-Auth-Key [redacted]" in text
    assert "'Authorization': 'Basic [redacted]', 'Accept': 'application/json'" in text
    assert f"cloudinary://{cloudinary['api_key']}:[redacted]@demo" in text
    assert "postgres://byok:[redacted]@db:5432/byok" in text


def test_the_replacement_names_the_kind_and_keeps_nothing_of_the_key(capture):
    secret = fake_credentials("openai")
    capture.info("key %s.", secret)
    assert written(capture) == "INFO key [redacted OpenAI key].\n"


ORDINARY = [
    "GET /api/user/api-keys/ HTTP/1.1 200 5123",
    "probe openai GET api.openai.com/v1/models -> 200 in 123 ms",
    "user 42 stored key sk-proj-…AbCd (production)",
    "masked values sk-…AbCd, sk-proj-••••, re_…9fQx, AKIA…WXYZ stay as they are",
    f"request {uuid.uuid4()} took 12.5 ms; sha {'0123456789abcdef' * 4}",
    "md5 d41d8cd98f00b204e9800998ecf8427e, commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "re_authenticate_the_current_user_session_now() was called",
    "Twilio account AC0123456789abcdef0123456789abcdef is suspended",
    "Authorization failed for user 42; the api_key field is required",
    "api_key: None, auth_token=null",
    "https://example.com:8443/path?page=2 and ftp://files.example.com/x",
    "sk-learn-and-some-other-lowercase-words-here is not a key",
    "100% done, 3 of 3 keys; ratio 0.25",
    "Ünïcödé text with İstanbul and ß stays as it is",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_survives_untouched(capture, text):
    capture.info(text)
    capture.info("%s", text)
    capture.info("%(text)s", {"text": text})
    assert written(capture) == f"INFO {text}\n" * 3


def test_numbers_stay_lazy_and_records_without_secrets_are_not_rebuilt(capture):
    args = (3, 2.5, None, True, "GET /")
    capture.info("%d keys, %.1f%%, %s, %s, %s", *args)
    record = capture.kept[0]
    assert all(a is b for a, b in zip(record.args, args, strict=True))
    assert written(capture) == "INFO 3 keys, 2.5%, None, True, GET /\n"


def test_an_argument_holding_a_secret_is_replaced_and_the_others_kept(capture):
    secret = fake_credentials("stripe")
    capture.info("%d: %s (%.1f s)", 7, secret, 0.5)
    record = capture.kept[0]
    assert record.msg == "%d: %s (%.1f s)"
    assert record.args == (7, "[redacted Stripe key]", 0.5)
    assert written(capture) == "INFO 7: [redacted Stripe key] (0.5 s)\n"


def test_a_context_in_the_message_and_a_secret_in_the_argument(capture):
    token, hex_token = str(uuid.uuid4()), fake_credentials("twilio")["auth_token"]
    capture.info("Authorization: Bearer %s", token)
    capture.info("auth_token=%s; tries=%d", hex_token, 2)
    capture.info("auth_token=%(token)s", {"token": hex_token})
    assert written(capture).splitlines() == [
        "INFO Authorization: Bearer [redacted]",
        "INFO auth_token=[redacted]; tries=2",
        "INFO auth_token=[redacted]",
    ]
    assert capture.kept[0].args == ()  # the formatted message replaced both


def test_an_object_argument_is_formatted_to_be_checked(capture):
    secret = fake_credentials("github")

    class Client:
        def __str__(self):
            return f"<Client token={secret}>"

    error = ConnectionError(f"https://api.github.com/user?access_token={secret}")
    capture.info("client %s failed: %s", Client(), error)
    plain = uuid.uuid4()
    capture.info("request %s took %s", plain, 0.5)
    assert_redacted(written(capture), [secret])
    assert capture.kept[1].args == (plain, 0.5)  # nothing found: still lazy


def test_a_host_service_is_covered_once_the_registry_loads_it(capture):
    key = "acme_live_" + "Zq7" * 10
    with override_settings(BYOK={**_byok(), "SERVICES": [f"{__name__}.Acme"]}):
        registry.all()
        capture.info("acme %s", key)
        capture.info("ACME_TOKEN=%s", "short-but-secret")
    text = written(capture)
    assert "acme [redacted Acme key]" in text
    assert "ACME_TOKEN=[redacted]" in text
    assert key not in text


def test_the_filter_never_builds_the_registry(capture, monkeypatch):
    registry.reset()
    capture.info("key %s", fake_credentials("openai"))
    assert registry.loaded() is None
    assert "[redacted OpenAI key]" in written(capture)


def test_a_record_logged_while_the_rules_are_built_passes(monkeypatch):
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "inner", (), None)
    results = []

    class Logging(redaction.Redactor):
        def __init__(self, services):
            results.append(RedactSecretsFilter().filter(record))  # re-entered
            super().__init__(services)

    monkeypatch.setattr(redaction, "_current", redaction._Current())
    monkeypatch.setattr(redaction, "Redactor", Logging)
    outer = logging.LogRecord("x", logging.INFO, __file__, 1, "k %s", ("sk-" + "A1b2" * 10,), None)
    assert RedactSecretsFilter().filter(outer) is True
    assert results == [True]
    assert record.getMessage() == "inner"
    assert outer.getMessage() == "k [redacted OpenAI key]"


def test_the_filter_returns_true_for_every_record(capture):
    secret = fake_credentials("openai")
    capture.info("plain")
    capture.info("key %s", secret)
    capture.error("failed", exc_info=(None, None, None))
    capture.info({"not": "a string", "key": secret})
    assert len(capture.kept) == 4
    flt = RedactSecretsFilter()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", None, None)
    assert flt.filter(record) is True


def test_arguments_that_do_not_fit_the_message_are_reported_redacted(capture, capsys):
    secret = fake_credentials("anthropic")

    class Unprintable:
        def __str__(self):
            raise RuntimeError("no")

        def __repr__(self):
            return f"<Unprintable {secret}>"

    handler = capture.handlers[0]  # not pytest's own handlers: they fail the test
    with _raise_exceptions():
        for message, args in [("%d and %d", (secret,)), ("value %s", (Unprintable(),))]:
            handler.handle(capture.makeRecord(capture.name, 20, __file__, 1, message, args, None))
    errors = capsys.readouterr().err
    assert "--- Logging error ---" in errors
    assert secret not in errors + written(capture)
    assert "<Unprintable [redacted Anthropic key]>" in written(capture)


def test_a_failure_inside_the_filter_withholds_the_message(capture, monkeypatch):
    def broken():
        raise RuntimeError("the rules are broken")

    monkeypatch.setattr(redaction._current, "get", broken)
    try:
        raise ValueError(fake_credentials("openai"))
    except ValueError:
        capture.exception("key %s", fake_credentials("openai"))
    assert written(capture).splitlines()[0] == f"ERROR {WITHHELD}"
    assert "Traceback [withheld" in written(capture)
    assert "sk-" not in written(capture)


def test_the_documented_configuration_works_end_to_end(settings):
    """docs/logging.md's LOGGING, through dictConfig: console and admin mails redacted."""
    namespace = {}
    exec(_documented_snippet(), namespace)  # noqa: S102 - our own documentation
    config = namespace["LOGGING"]
    settings.ADMINS = ADMINS
    secret, token = fake_credentials("sendgrid"), fake_credentials("twilio")
    with _restored_logging(["", *config["loggers"]]):
        logging.config.dictConfig(config)
        console = io.StringIO()
        server = io.StringIO()
        logging.getLogger().handlers[0].setStream(console)
        logging.getLogger("django.server").handlers[0].setStream(server)
        logging.getLogger("host_app.views").info("sending with %s", secret)
        logging.getLogger("django.request").error(
            "Internal Server Error: /hook/ (%s)", f"TWILIO_AUTH_TOKEN={token['auth_token']}"
        )
        logging.getLogger("django.server").info('"GET /?key=%s HTTP/1.1" 200 5', secret)
        logging.getLogger("django.db.backends").setLevel(logging.DEBUG)
        logging.getLogger("django.db.backends").debug("(0.001) SELECT %s", secret)
    text = console.getvalue() + server.getvalue()
    assert "host_app.views sending with [redacted SendGrid key]" in text
    assert "Internal Server Error: /hook/ (TWILIO_AUTH_TOKEN=[redacted])" in text
    assert '"GET /?key=[redacted SendGrid key] HTTP/1.1" 200 5' in server.getvalue()
    assert "SELECT [redacted SendGrid key]" in text
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    everything = message.subject + message.body
    assert "TWILIO_AUTH_TOKEN=[redacted]" in everything
    assert_redacted(text + everything, [secret, token["auth_token"]])


def test_the_example_project_uses_the_documented_configuration():
    """Read, not imported: the example's settings write files in example_project/var."""
    tree = ast.parse(EXAMPLE_SETTINGS.read_text())
    value = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["LOGGING"]
    )
    namespace = {}
    exec(_documented_snippet(), namespace)  # noqa: S102 - our own documentation
    assert ast.literal_eval(value) == namespace["LOGGING"]


def _documented_snippet():
    text = DOCS.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    return next(block for block in blocks if block.startswith("LOGGING = {"))


def _byok():
    from django.conf import settings

    return settings.BYOK


class _restored_logging:
    """Puts back the named loggers' handlers, levels and propagation afterwards."""

    def __init__(self, names):
        self.loggers = [logging.getLogger(name or None) for name in names]

    def __enter__(self):
        self.saved = [
            (lg, lg.handlers[:], lg.level, lg.propagate, lg.filters[:], lg.disabled)
            for lg in self.loggers
        ]
        self.db = logging.getLogger("django.db.backends").level
        return self

    def __exit__(self, *exc):
        for lg in self.loggers:
            for handler in lg.handlers:
                handler.close()
        for lg, handlers, level, propagate, filters, disabled in self.saved:
            lg.handlers, lg.level, lg.propagate = handlers, level, propagate
            lg.filters, lg.disabled = filters, disabled
        logging.getLogger("django.db.backends").setLevel(self.db)


class _raise_exceptions:
    """logging.raiseExceptions on: a formatting error is reported on stderr."""

    def __enter__(self):
        self.before = logging.raiseExceptions
        logging.raiseExceptions = True

    def __exit__(self, *exc):
        logging.raiseExceptions = self.before


def test_the_old_module_path_still_works_with_a_warning():
    import byok.logging

    with pytest.warns(DeprecationWarning, match="byok.redaction.RedactSecretsFilter"):
        assert byok.logging.RedactSecretsFilter is RedactSecretsFilter
