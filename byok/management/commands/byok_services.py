"""List the registered services: id, name, category, fields, base URL, platform key."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from byok.conf import conf
from byok.probes import probe_client
from byok.services.registry import registry


class Command(BaseCommand):
    help = "List the services users can store keys for (never a key itself)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print JSON instead of a table."
        )

    def handle(self, *args: Any, as_json: bool, **options: Any) -> None:
        rows: list[dict[str, Any]] = [
            {
                "id": service.id,
                "name": service.name,
                "category": service.category,
                "fields": [f.name + ("*" if f.secret else "") for f in service.fields],
                "base_url": probe_client(service).base_url,
                "base_url_overridden": service.overridden,
                "platform_key": bool(conf.PLATFORM_KEYS.get(service.id)),
            }
            for service in registry
        ]
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        self.stdout.write(f"{'id':<18} {'name':<18} {'category':<10} {'platform key':<13} fields")
        for row in rows:
            self.stdout.write(
                f"{row['id']:<18} {row['name']:<18} {row['category']:<10} "
                f"{'yes' if row['platform_key'] else 'no':<13} {', '.join(row['fields'])}"
            )
        self.stdout.write("(* secret fields)")
