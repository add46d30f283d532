"""Write down the reminders that came due and send them (run daily, from cron)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from byok.rls import bypassing
from byok.tasks import enqueue as enqueue_task
from byok.tasks import resend_unsent, send_reminders


class Command(BaseCommand):
    help = (
        "Find the keys whose expiry is near (BYOK['EXPIRY_REMINDER_DAYS']), that are older "
        "than BYOK['ROTATION_REMINDER_DAYS'] or unused for BYOK['UNUSED_REMINDER_DAYS'], "
        "and tell their owners, once each; send again what a failing mail server left "
        "unsent. Prints no secret."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="Leave the search to a task worker (BYOK['TASK_BACKEND']) and return at once.",
        )

    @bypassing
    def handle(self, *args: Any, enqueue: bool, **options: Any) -> None:
        if enqueue:
            enqueue_task(send_reminders)
            enqueue_task(resend_unsent)
            self.stdout.write("Reminders enqueued.")
            return
        due = send_reminders.call()
        again = resend_unsent.call()
        self.stdout.write(f"{due} reminders came due; {again} unsent notifications sent again.")
