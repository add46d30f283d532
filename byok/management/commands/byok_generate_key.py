"""Print a new random encryption key for BYOK['ENCRYPTION_KEYS']."""

from typing import Any

from django.core.management.base import BaseCommand

from byok.crypto import generate_key


class Command(BaseCommand):
    help = (
        "Print a new encryption key for BYOK['ENCRYPTION_KEYS']. Put it first in the "
        "list to start using it, then run byok_rotate_keys."
    )
    # Runs even when the current configuration fails its checks (no key yet).
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(generate_key())
