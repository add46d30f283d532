"""The example site, run the way the README runs it (in a subprocess, its own settings)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from byok.crypto import generate_key

# The same on every database: run by the SQLite environments and the full one.
pytestmark = pytest.mark.database_agnostic

MANAGE = Path(__file__).resolve().parents[1] / "example_project" / "manage.py"

PAGE_CHECK = """
from django.test import Client
from byok.models import UserAPIKey
client = Client(HTTP_HOST="127.0.0.1")
assert client.login(username="demo", password="byok-demo")
page = client.get("/").content.decode()
keys = list(UserAPIKey.objects.all())
assert len(keys) == 2, keys
for key in keys:
    assert key.masked_key in page
    for value in key.get_credentials().values():
        if len(value) > 20:
            assert value not in page
# The browsable API, without django_filters in INSTALLED_APPS (as the quickstart says).
api = client.get("/api/user/api-keys/", HTTP_ACCEPT="text/html")
assert api.status_code == 200, api.status_code
assert keys[0].masked_key in api.content.decode()
print("page ok")
"""


@pytest.fixture
def example_env(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "BYOK_ENCRYPTION_KEYS": generate_key(),
        "DJANGO_SECRET_KEY": "example-smoke-test-secret-key",
        "PYTHONPATH": "",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def manage(env, *args):
    result = subprocess.run(
        [sys.executable, str(MANAGE), *args], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


def test_demo_command_prepares_the_site_and_prints_the_login(example_env):
    first = manage(example_env, "demo")
    assert "username: demo" in first.stdout
    assert "password: byok-demo" in first.stdout
    assert "http://127.0.0.1:8000/" in first.stdout
    assert "T3BlbkFJ" not in first.stdout + first.stderr
    again = manage(example_env, "demo")  # idempotent: no duplicate keys
    assert "(2 stored keys" in again.stdout
    assert "page ok" in manage(example_env, "shell", "-c", PAGE_CHECK).stdout.splitlines()


def test_the_example_site_passes_its_checks(example_env):
    result = manage(example_env, "check", "--fail-level", "WARNING")
    assert "no issues" in result.stdout


CUSTOM_SERVICE_CHECK = """
import uuid, responses, byok
key = f"{uuid.uuid4()}:fx"
assert byok.validate_credentials("deepl", key).ok
assert not byok.validate_credentials("deepl", "not-a-deepl-key").ok
with responses.RequestsMock() as mock:
    mock.get("https://api-free.deepl.com/v2/usage", json={"character_count": 1})
    result = byok.test_credentials("deepl", key)
    assert mock.calls[0].request.headers["Authorization"] == f"DeepL-Auth-Key {key}"
    mock.get("https://api.deepl.com/v2/usage", status=456, json={"message": "Quota exceeded"})
    spent = byok.test_credentials("deepl", str(uuid.uuid4()))
print(result.status)
print(spent.status)
"""


def test_the_example_registers_a_service_of_its_own(example_env):
    import json

    listed = json.loads(manage(example_env, "byok_services", "--json").stdout)
    assert "deepl" in [row["id"] for row in listed]
    checked = manage(example_env, "shell", "-c", CUSTOM_SERVICE_CHECK)
    assert checked.stdout.splitlines()[-2:] == ["valid", "restricted"]


# /feature/ resolves one key after another. A key stored under an encryption key the
# site no longer has makes a later lookup fail, once earlier keys (the user's OpenAI
# and Twilio keys, the platform's Resend key) sit decrypted in the view's variables.
FEATURE_FAILURE = """
import html, json, logging, os
from secrets import token_hex
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client, override_settings
from django.test.utils import setup_test_environment
from django.utils.log import AdminEmailHandler
from django.views.debug import SafeExceptionReporterFilter
from byok.crypto import generate_key
from byok.keys import add_user_api_key
from byok.models import UserAPIKey
from byok.services.registry import registry

setup_test_environment()
if os.environ.get("UNPROTECTED"):
    SafeExceptionReporterFilter.is_active = lambda self, request: False
for handler in logging.getLogger("django").handlers:
    if isinstance(handler, AdminEmailHandler):
        handler.include_html = True
user = get_user_model().objects.get(username="demo")
with override_settings(BYOK={**settings.BYOK, "ENCRYPTION_KEYS": [generate_key()]}):
    add_user_api_key(user, "sentry", "sntryu_" + token_hex(32), test=False)
secrets = [settings.BYOK["PLATFORM_KEYS"]["resend"]]
assert secrets[0].startswith("re_DEMOFAKE_"), "the demo's platform key is the documented fake"
for key in UserAPIKey.objects.for_user(user).exclude(service="sentry"):
    spec = registry.get(key.service)
    credentials = key.get_credentials()
    secrets += [credentials[f.name] for f in spec.fields if f.secret]
admins = [tuple(a) if isinstance(a, list) else a for a in json.loads(os.environ["ADMINS"])]
with override_settings(ADMINS=admins):
    client = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
    client.force_login(user)
    response = client.get("/feature/")
(message,) = mail.outbox
report = "\\n".join(
    [message.subject, message.body, html.unescape(message.alternatives[0][0]),
     response.content.decode()]
)
pieces = {s[i : i + 12] for s in secrets for i in range(len(s) - 11)}
print(json.dumps({
    "status": response.status_code,
    "failure": "cannot be decrypted" in report and "in feature" in message.body,
    "secrets": len(secrets),
    "shown": sorted(piece for piece in pieces if piece in report),
}))
"""


@pytest.mark.parametrize("protected", [True, False], ids=["protected", "unprotected-control"])
def test_no_secret_in_the_error_report_of_the_feature_page(example_env, protected):
    from support import ADMINS

    env = {**example_env, "DJANGO_DEBUG": "0", "ADMINS": json.dumps(ADMINS)}
    if not protected:
        env["UNPROTECTED"] = "1"
    manage(env, "demo")
    result = json.loads(manage(env, "shell", "-c", FEATURE_FAILURE).stdout.splitlines()[-1])
    assert result["status"] == 500
    assert result["failure"]  # the report is about the later lookup, in the view's frame
    assert result["secrets"] == 3
    if protected:
        assert result["shown"] == [], f"{len(result['shown'])} pieces of a secret in the report"
    else:
        assert result["shown"], "the case never put a secret within the report's reach"
