"""Set up the demo: migrate, create the demo user with a couple of keys, print the login."""

import secrets
import string
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from byok.keys import add_user_api_key
from byok.models import KeyUsage, PlatformUsage, UserAPIKey

USERNAME = "demo"
PASSWORD = "byok-demo"


def _random(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@sensitive_variables()
def demo_keys() -> list[tuple[str, object, str]]:
    """Made-up credentials in the providers' formats: they look real, work nowhere."""
    body = string.ascii_letters + string.digits + "_-"
    openai = "sk-" + "proj-" + _random(74, body) + "T3BlbkFJ" + _random(74, body)
    twilio = {"account_sid": "AC" + secrets.token_hex(16), "auth_token": secrets.token_hex(16)}
    return [("openai", openai, "Personal"), ("twilio", twilio, "Notifications")]


def record_demo_usage(user: Any) -> None:
    """A month of made-up calls, so that the usage page has something to draw."""
    today = timezone.localdate()
    openai = UserAPIKey.objects.for_user(user).get(service="openai")
    for days_ago in range(30):
        calls = 20 + secrets.randbelow(60)
        KeyUsage.objects.create(
            key=openai,
            date=today - timedelta(days=days_ago),
            calls=calls,
            units=calls * 900,
            cost=Decimal(calls) * Decimal("0.0021"),
        )
        PlatformUsage.objects.create(
            user=user,
            service="resend",
            environment="production",
            date=today - timedelta(days=days_ago),
            calls=secrets.randbelow(12),
        )
    UserAPIKey.objects.filter(pk=openai.pk).update(
        usage_count=sum(row.calls for row in openai.daily_usage.all()),
        estimated_cost=sum(row.cost for row in openai.daily_usage.all()),
        last_used_at=timezone.now(),
    )


class Command(BaseCommand):
    help = "Prepare the example site: migrate, create the demo user and keys, print the login."

    @sensitive_variables()  # called from a view (call_command), it would be reported
    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=USERNAME)
        user.is_staff = user.is_superuser = True
        user.set_password(PASSWORD)
        user.save()
        if not UserAPIKey.objects.for_user(user).exists():
            for service, credentials, nickname in demo_keys():
                add_user_api_key(user, service, credentials, nickname=nickname)
            record_demo_usage(user)
        keys = UserAPIKey.objects.for_user(user).count()
        self.stdout.write(
            self.style.SUCCESS("The demo is ready.")
            + "\n  Log in at http://127.0.0.1:8000/accounts/login/"
            + "\n  then see /dashboard/api-keys/, /feature/ and /settings/"
            + f"\n  username: {USERNAME}\n  password: {PASSWORD}"
            + f"\n  ({keys} stored keys, shown masked; the admin is at /admin/)"
        )
