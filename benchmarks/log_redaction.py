"""Logging 10k records through a handler with RedactSecretsFilter against the same
handler without it.

Budget: ratio <= 1.5. The records are what a Django site logs: request lines,
byok's probe lines, SQL at DEBUG, messages with a dict argument, a few with an
exception, and one in a hundred holding a secret (so the redaction itself is
measured too, not only the look for one). The handler is a StreamHandler writing
to a StringIO through a formatter with the time, the level and the logger's name.
Before timing it checks, once, that the filtered output holds none of the
secrets and that the unfiltered output does (else the check would prove nothing).
Both sides are timed in the same process, interleaved, and the best of many
repeats is compared.

    python benchmarks/log_redaction.py
"""

import io
import logging
import statistics
import sys
from pathlib import Path

from _setup import interleaved, summary, verdict

BUDGET = 1.5
RECORDS, REPEAT = 10_000, 15
ROOT = Path(__file__).resolve().parents[1]


def configure() -> None:
    import django
    from django.conf import settings

    sys.path.insert(0, str(ROOT / "tests"))
    settings.configure(
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "byok"],
        SECRET_KEY="benchmark-only-secret-key",
        BYOK={"ENCRYPTION_KEYS": ["YmVuY2htYXJrLW9ubHkta2V5LWZvci1ieW9rLWJlbmNoZXM"]},
    )
    django.setup()
    from byok.services.registry import registry

    registry.all()  # as on a site that has served a request


def workload(logger: logging.Logger, secrets: list[str]) -> None:
    """Log RECORDS records of the kinds a site logs."""
    try:
        raise ValueError("the provider answered 502")
    except ValueError:
        failure = sys.exc_info()
    for number in range(RECORDS):
        kind = number % 10
        if number % 100 == 99:
            secret = secrets[number // 100 % len(secrets)]
            logger.warning("calling the provider with %s failed", secret)
        elif kind in (0, 1, 2):
            logger.info('"%s" %s %s', "GET /dashboard/api-keys/ HTTP/1.1", 200, 5123)
        elif kind in (3, 4):
            logger.info(
                "probe %s %s %s%s -> %s in %.0f ms",
                "openai",
                "GET",
                "api.openai.com",
                "/v1/models",
                200,
                123.4,
            )
        elif kind == 5:
            logger.debug(
                "(%.3f) %s; args=%s; alias=%s",
                0.0012,
                'SELECT "byok_userapikey"."id" FROM "byok_userapikey" WHERE "user_id" = %s',
                (42,),
                "default",
            )
        elif kind == 6:
            logger.info("key %(key)s tested: %(status)s", {"key": "sk-proj-…AbCd", "status": "ok"})
        elif kind == 7 and number % 1000 == 7:
            logger.error("the test of a key failed", exc_info=failure)
        else:
            logger.info("Internal state refreshed for user %d in %.1f ms", number, 0.25)


def main() -> int:
    configure()
    from byok.redaction import RedactSecretsFilter

    from fakes import FAKES, fake_credentials, secret_values

    secrets = [
        value
        for service in FAKES
        for value in secret_values(fake_credentials(service))
        if isinstance(fake_credentials(service), str)
    ]

    def handler_and_logger(name: str, redact: bool) -> tuple[io.StringIO, logging.Logger]:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        if redact:
            handler.addFilter(RedactSecretsFilter())
        logger = logging.getLogger(f"bench.{name}")
        logger.handlers = [handler]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        return stream, logger

    ours_stream, ours_logger = handler_and_logger("filtered", redact=True)
    bare_stream, bare_logger = handler_and_logger("bare", redact=False)

    workload(ours_logger, secrets)
    workload(bare_logger, secrets)
    leaked = [secret for secret in secrets if secret in ours_stream.getvalue()]
    assert not leaked, f"{len(leaked)} secret(s) in the filtered output"
    assert all(secret in bare_stream.getvalue() for secret in secrets), "no secret logged"
    assert "[redacted" in ours_stream.getvalue()

    def ours() -> None:
        ours_stream.seek(0)
        ours_stream.truncate()
        workload(ours_logger, secrets)

    def baseline() -> None:
        bare_stream.seek(0)
        bare_stream.truncate()
        workload(bare_logger, secrets)

    rounds = interleaved(ours, baseline, repeat=REPEAT)
    ratio, spread = summary(rounds)
    with_filter = statistics.median(a for a, _ in rounds)
    without = statistics.median(b for _, b in rounds)
    print(
        f"  {RECORDS} records: with the filter {with_filter * 1e3:7.1f} ms   "
        f"without {without * 1e3:7.1f} ms   "
        f"({(with_filter - without) / RECORDS * 1e6:.1f} us a record; {spread})   "
        f"ratio {ratio:.2f}"
    )
    return 0 if verdict(ratio, BUDGET) else 1


if __name__ == "__main__":
    sys.exit(main())
