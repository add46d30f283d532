"""Re-test stored keys against their providers and record the results (cron friendly).

In this process by default; with ``--enqueue`` as batches of tasks that any number of
workers share (``--status`` follows the run).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from byok import audit
from byok.management.users import find_team, find_user
from byok.models import RecheckRun
from byok.recheck import (
    BATCH_SIZE,
    SKIPPED_RATE_LIMITED,
    UNDECRYPTABLE,
    CheckReport,
    KeyCheck,
    RunProgress,
    check_keys,
    count_by_service,
    keys_for,
    progress_of,
    run_options,
)
from byok.results import ProbeStatus
from byok.rls import bypassing
from byok.services.registry import registry
from byok.tasks import notify_if_turned_invalid, start_recheck

MAX_CONCURRENCY = 32
#: How the outcomes that are not a key status read in the output.
LABELS = {SKIPPED_RATE_LIMITED: "skipped (rate limited)"}
#: Statuses that say nothing about the key: reported, but not a failure.
NOT_JUDGED = (ProbeStatus.RATE_LIMITED, ProbeStatus.PROVIDER_ERROR, ProbeStatus.UNREACHABLE)


class Command(BaseCommand):
    help = (
        "Re-test stored API keys against their providers and record each result. "
        "Exits with status 1 when a key is invalid or cannot be decrypted. Prints no secret."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        owner = parser.add_mutually_exclusive_group()
        owner.add_argument(
            "--user", help="Only this user's keys: their username (USERNAME_FIELD) or pk."
        )
        owner.add_argument("--team", help="Only this team's keys: its id or name.")
        parser.add_argument(
            "--service",
            action="append",
            dest="services",
            default=[],
            metavar="ID",
            help="Only keys of this service; repeat for several.",
        )
        parser.add_argument(
            "--stale-days",
            type=int,
            metavar="N",
            help="Only keys never tested or last tested more than N days ago.",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=4,
            metavar="N",
            help=f"Provider requests in flight at once, 1 to {MAX_CONCURRENCY} (default 4).",
        )
        parser.add_argument(
            "--include-inactive",
            action="store_true",
            help="Also test keys their owners switched off (default: active keys only).",
        )
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="Split the keys into batches of tasks for the workers of BYOK['TASK_BACKEND'] "
            "and return; --status follows the run.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            metavar="N",
            help=f"Keys per task with --enqueue (default {BATCH_SIZE}).",
        )
        parser.add_argument(
            "--status",
            nargs="?",
            const="latest",
            metavar="RUN",
            help="Show how far a run enqueued with --enqueue got (default: the latest run).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only count the keys that would be tested, per service; send and write nothing.",
        )

    @bypassing
    def handle(
        self,
        *args: Any,
        user: str | None,
        team: str | None,
        services: list[str],
        stale_days: int | None,
        concurrency: int,
        include_inactive: bool,
        dry_run: bool,
        enqueue: bool,
        batch_size: int,
        status: str | None,
        verbosity: int,
        **options: Any,
    ) -> None:
        if status is not None:
            self._status(status)
            return
        self._check_options(services, stale_days, concurrency)
        if not 1 <= batch_size <= 10_000:
            raise CommandError("--batch-size must be between 1 and 10000.")
        selection: dict[str, Any] = {
            "user": None if user is None else find_user(user),
            "team": None if team is None else find_team(team),
            "services": services,
            "stale_days": stale_days,
            "include_inactive": include_inactive,
        }
        try:
            fixed = run_options(**selection)
            keys = keys_for(fixed)
        except OverflowError:
            raise CommandError("--stale-days is too large.") from None
        if dry_run:
            self._dry_run(count_by_service(keys))
            return
        self.verbosity = verbosity
        if enqueue:
            run = start_recheck(fixed, batch_size=batch_size, concurrency=concurrency)
            self.stdout.write(
                f"Run {run.pk}: {_keys(run.key_count)} in {run.batch_count} batches enqueued. "
                f"Follow it with: manage.py byok_check_keys --status {run.pk}"
            )
            return
        with audit.source("command:byok_check_keys"):
            report = check_keys(keys, concurrency=concurrency, on_check=self._checked)
        self._summary(report)
        lost = report.counts[UNDECRYPTABLE]
        if report.invalid or lost:
            problems = [_invalid_message(report.invalid)] if report.invalid else []
            if lost:
                problems.append(f"{_keys(lost)} cannot be decrypted.")
            raise CommandError(" ".join(problems), returncode=1)

    def _check_options(
        self, services: list[str], stale_days: int | None, concurrency: int
    ) -> None:
        unknown = [service for service in services if service not in registry]
        if unknown:
            raise CommandError(
                f"Unknown service {', '.join(map(repr, unknown))}; "
                f"use one of: {', '.join(service.id for service in registry)}."
            )
        if stale_days is not None and stale_days < 0:
            raise CommandError("--stale-days must be 0 or more.")
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise CommandError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}.")

    def _dry_run(self, counts: dict[str, int]) -> None:
        total = sum(counts.values())
        self.stdout.write(f"Dry run: {total} keys would be tested; nothing is sent or written.")
        for service, keys in counts.items():
            self.stdout.write(f"  {service:<24} {keys:>8}")

    def _status(self, which: str) -> None:
        runs = RecheckRun.objects.all()
        if which == "latest":
            run = runs.first()
        elif which.isdigit():
            run = runs.filter(pk=int(which)).first()
        else:
            raise CommandError("--status takes a run number.")
        if run is None:
            raise CommandError("No such run." if which != "latest" else "No run was enqueued yet.")
        self._progress(progress_of(run))

    def _progress(self, progress: RunProgress) -> None:
        run = progress.run
        self.stdout.write(f"Run {run.pk}, started {run.created_at:%Y-%m-%d %H:%M:%S %Z}")
        self.stdout.write(
            f"  batches: {progress.batches_done} of {run.batch_count} done, "
            f"{progress.batches_claimed - progress.batches_done} in progress"
        )
        self.stdout.write(f"  keys:    {progress.keys_done} of {run.key_count} tested")
        for outcome, keys in sorted(progress.counts.items(), key=lambda item: -item[1]):
            self.stdout.write(f"    {LABELS.get(outcome, outcome):<24} {keys:>8}")
        if progress.rate_limited_services:
            self.stdout.write(
                self.style.WARNING(
                    "  rate limited (left alone for the rest of the run): "
                    + ", ".join(progress.rate_limited_services)
                )
            )
        if progress.finished:
            assert run.finished_at is not None
            elapsed = (run.finished_at - run.created_at).total_seconds()
            self.stdout.write(
                self.style.SUCCESS(
                    f"Finished {run.finished_at:%Y-%m-%d %H:%M:%S %Z} after {elapsed:.1f} s."
                )
            )
        else:
            self.stdout.write("Not finished yet.")

    def _checked(self, check: KeyCheck) -> None:
        notify_if_turned_invalid(check)
        self._line(check)

    def _line(self, check: KeyCheck) -> None:
        if self.verbosity < 1:
            return
        nickname = f" {check.nickname!r}" if check.nickname else ""
        line = (
            f"{check.key_id}  owner {check.owner_id}  {check.service}{nickname}: "
            f"{check.old_status} -> {LABELS.get(check.outcome, check.outcome)}"
        )
        if check.message and self.verbosity > 1:
            line += f" ({check.message})"
        self.stdout.write(line)

    def _summary(self, report: CheckReport) -> None:
        if report.counts[UNDECRYPTABLE]:
            # On stderr whatever the verbosity: the operator lost an encryption key.
            self.stderr.write(
                f"{_keys(report.counts[UNDECRYPTABLE])} cannot be decrypted with "
                "BYOK['ENCRYPTION_KEYS']: put the missing key back (byok_rotate_keys "
                "--dry-run shows which key ids are in use)."
            )
        if self.verbosity < 1:
            return
        self.stdout.write(f"{'outcome':<24} {'keys':>8}")
        for outcome, keys in sorted(report.counts.items(), key=lambda item: -item[1]):
            self.stdout.write(f"{LABELS.get(outcome, outcome):<24} {keys:>8}")
        self.stdout.write(f"{'total':<24} {report.total:>8}")
        if report.rate_limited_services:
            self.stdout.write(
                self.style.WARNING(
                    "Rate limited by "
                    + ", ".join(sorted(report.rate_limited_services))
                    + f": {report.counts[SKIPPED_RATE_LIMITED]} keys were not tested this "
                    "run and keep their status. Not a failure."
                )
            )
        not_judged = sum(report.counts[status] for status in NOT_JUDGED)
        if not_judged:
            self.stdout.write(
                f"{not_judged} keys could not be judged (rate limited, provider error or "
                "unreachable). Not a failure."
            )
        if not report.invalid:
            self.stdout.write(self.style.SUCCESS("No key is invalid."))


def _keys(count: int) -> str:
    return f"{count} {'key' if count == 1 else 'keys'}"


def _invalid_message(invalid: list[KeyCheck], shown: int = 20) -> str:
    listed = ", ".join(
        f"{check.key_id} ({check.service}, owner {check.owner_id})" for check in invalid[:shown]
    )
    more = f" and {len(invalid) - shown} more" if len(invalid) > shown else ""
    count = len(invalid)
    return f"{_keys(count)} {'is' if count == 1 else 'are'} invalid: {listed}{more}."
