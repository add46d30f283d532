"""Budgets: limits per user and period that block exactly, alert once per threshold,
and leave the lookup at one query and no write."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import byok
from byok import alerts as byok_alerts
from byok import budgets, reservations
from byok.models import AuditAction, AuditEvent, Budget, Reservation
from byok.signals import budget_threshold_reached
from byok.usage import usage_by_model

from factories import TeamFactory, UserAPIKeyFactory, UserFactory
from fakes import fake_credentials
from support import with_row_locks

pytestmark = pytest.mark.django_db

PLATFORM_KEY = fake_credentials("openai")
ALLOWANCE = {"name": "free", "limit": "1.00", "applies_to": "platform", "action": "block"}


def site(**values):
    return override_settings(BYOK={**settings.BYOK, **values})


@pytest.fixture
def platform():
    with site(PLATFORM_KEYS={"openai": PLATFORM_KEY}):
        yield


@pytest.fixture
def allowance(platform):
    """The "use our key up to $1 a month, then bring your own" site."""
    with site(PLATFORM_KEYS={"openai": PLATFORM_KEY}, DEFAULT_BUDGETS=[ALLOWANCE]):
        yield


@pytest.fixture
def alerts():
    received = []

    def receiver(**kwargs):
        received.append((kwargs["budget"].pk, kwargs["threshold"], kwargs["spent"]))

    budget_threshold_reached.connect(receiver)
    yield received
    budget_threshold_reached.disconnect(receiver)


def spend(user, amount, service="openai", **kwargs):
    return byok.track_api_usage(user, service, cost=str(amount), **kwargs)


# -- Setting budgets ---------------------------------------------------------------------


def test_set_budget_creates_then_changes_the_users_budget(user):
    first = byok.set_budget(user, limit="10", service="openai")
    again = byok.set_budget(user, limit="12.5", service="openai", action="block", alert_at=[90])
    assert first.pk == again.pk
    budget = Budget.objects.get()
    assert (budget.limit, budget.action, budget.alert_at, budget.source) == (
        Decimal("12.50"),
        "block",
        "90",
        "user",
    )
    assert AuditEvent.objects.filter(action="budget_changed").count() == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": "-1"}, "limit"),
        ({"limit": "lots"}, "limit"),
        ({"limit": float("nan")}, "limit"),
        ({"limit": "1", "period": "year"}, "period"),
        ({"limit": "1", "service": "nope"}, "service"),
        ({"limit": "1", "applies_to": "everyone"}, "applies_to"),
        ({"limit": "1", "action": "shout"}, "action"),
        ({"limit": "1", "alert_at": [0]}, "alert_at"),
        ({"limit": "1", "alert_at": "x"}, "alert_at"),
        # More than fit in the row's 64 characters.
        ({"limit": "1", "alert_at": list(range(988, 1001))}, "alert_at"),
    ],
)
def test_bad_budget_values_are_refused_by_field(user, kwargs, field):
    with pytest.raises(ValidationError) as refused:
        byok.set_budget(user, **kwargs)
    assert field in refused.value.message_dict
    assert not Budget.objects.exists()


# -- Blocking ----------------------------------------------------------------------------


def test_a_blocking_budget_on_own_keys_blocks_them_once_spent(user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1", service="openai", action="block")
    spend(user, "0.60")
    assert byok.get_user_api_key(user, "openai")
    spend(user, "0.40")
    with pytest.raises(byok.BudgetExceeded) as blocked:
        byok.get_user_api_key(user, "openai")
    error = blocked.value
    assert isinstance(error, byok.NoAPIKey)
    assert (error.spent, error.limit) == (Decimal("1.00"), Decimal("1.00"))
    first_of_next_month = (timezone.localdate().replace(day=28) + timedelta(days=4)).replace(day=1)
    assert error.resets_at.date() == first_of_next_month
    assert fake_credentials("openai")[:8] not in str(error)


def test_an_alert_budget_never_blocks(user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1", service="openai", action="alert")
    spend(user, "5")
    assert byok.get_user_api_key(user, "openai")


def test_a_budget_on_all_services_counts_every_service(user):
    UserAPIKeyFactory(user=user)
    UserAPIKeyFactory(user=user, service="anthropic")
    byok.set_budget(user, limit="1", action="block")
    spend(user, "0.50", "anthropic")
    spend(user, "0.50", "openai")
    for service in ("openai", "anthropic"):
        with pytest.raises(byok.BudgetExceeded):
            byok.get_user_api_key(user, service)


def test_a_spent_platform_allowance_does_not_stop_the_users_own_key(user, allowance):
    spend(user, "1.00")  # on the platform's key: the user has none yet
    with pytest.raises(byok.BudgetExceeded):
        byok.get_user_api_key(user, "openai")
    key = UserAPIKeyFactory(user=user)
    assert byok.resolve_api_key(user, "openai").key_id == key.pk


def test_the_default_budget_gets_its_row_on_first_spend(user, allowance):
    assert byok.resolve_api_key(user, "openai").source == "platform"
    assert not Budget.objects.exists()
    spend(user, "0.25")
    budget = Budget.objects.get()
    assert (budget.default_name, budget.source, budget.spent) == ("free", "site", Decimal("0.25"))
    assert budget.limit is None  # the setting's, until the admin sets one for this user


def test_the_admin_raises_one_users_allowance(user, allowance):
    spend(user, "1.00")
    Budget.objects.filter(user=user).update(limit=Decimal("2.00"))
    assert byok.get_user_api_key(user, "openai") == PLATFORM_KEY


@pytest.mark.parametrize("how", ["lookup", "reserve"])
def test_a_default_of_limit_zero_refuses_at_once_and_the_block_is_audited_once(user, how):
    closed = {**ALLOWANCE, "limit": "0"}

    def call():
        if how == "lookup":
            byok.get_user_api_key(user, "openai")
            return
        with byok.reserve(user, "openai", "0.01"):
            pass  # pragma: no cover - refused before the block

    with site(PLATFORM_KEYS={"openai": PLATFORM_KEY}, DEFAULT_BUDGETS=[closed]):
        for _ in range(2):
            with pytest.raises(byok.BudgetExceeded):
                call()
    budget = Budget.objects.get()
    assert (budget.user_id, budget.default_name, budget.spent) == (user.pk, "free", 0)
    (event,) = AuditEvent.objects.filter(action=AuditAction.BUDGET_BLOCKED)
    assert (event.owner_id, event.metadata["budget"]) == (user.pk, budget.pk)


def test_a_default_the_site_removed_stops_counting(user, allowance):
    spend(user, "1.00")
    with site(DEFAULT_BUDGETS=[]):
        assert byok.get_user_api_key(user, "openai") == PLATFORM_KEY


def test_a_new_period_starts_from_nothing(user):
    UserAPIKeyFactory(user=user)
    budget = byok.set_budget(user, limit="1", service="openai", period="day", action="block")
    spend(user, "1.00")
    Budget.objects.filter(pk=budget.pk).update(
        period_start=timezone.localdate() - timedelta(days=1), alerted=100
    )
    assert byok.get_user_api_key(user, "openai")
    spend(user, "0.30")
    budget.refresh_from_db()
    assert (budget.spent, budget.alerted, budget.period_start) == (
        Decimal("0.30"),
        0,
        timezone.localdate(),
    )


def test_the_lookup_stays_one_query_and_no_write_with_three_budgets(user):
    UserAPIKeyFactory(user=user)
    for service, period in (("openai", "day"), ("", "month"), ("openai", "week")):
        byok.set_budget(user, limit="100", service=service or None, period=period, action="block")
    spend(user, "0.01")
    with CaptureQueriesContext(connection) as queries:
        resolved = byok.resolve_api_key(user, "openai")
    assert len(queries) == 1
    assert len(resolved.budgets) == 3


#: Statements of a call under one budget, its first of the day and the next, inside the
#: test's transaction (so no BEGIN or COMMIT of their own): the usage's and the budget's
#: ``UPDATE``, and the read of its row where ``UPDATE`` returns none. PostgreSQL sends
#: them as one statement; MySQL's next call, as one multi-table ``UPDATE`` and the read.
BUDGETED_CALL_STATEMENTS = {
    "own": {"postgresql": (1, 1), "mysql": (5, 2), "sqlite": (3, 3)},
    "platform": {"postgresql": (1, 1), "mysql": (3, 3), "sqlite": (2, 2)},
}


@pytest.mark.parametrize("source", ["own", "platform"])
def test_metering_under_a_budget_adds_the_spend_in_as_few_statements(user, platform, source):
    if source == "own":
        UserAPIKeyFactory(user=user)
    budget = byok.set_budget(user, limit="10", service="openai", applies_to=source)
    resolved = byok.resolve_api_key(user, "openai")
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            spend(user, "0.25", key=resolved)
        counts.append(len(queries))
    assert tuple(counts) == BUDGETED_CALL_STATEMENTS[source][connection.vendor]
    budget.refresh_from_db()
    assert budget.spent == Decimal("0.50")
    assert usage_by_model(user).cost == Decimal("0.50")


def test_a_call_under_two_budgets_counts_once_on_the_key_and_on_each(user):
    """MySQL joins the budgets' rows to the key's and the day's in one UPDATE: each
    row still adds the call once."""
    key = UserAPIKeyFactory(user=user)
    budgets_ = [
        byok.set_budget(user, limit="10", service="openai"),
        byok.set_budget(user, limit="10", period="day"),
    ]
    resolved = byok.resolve_api_key(user, "openai")
    for _ in range(3):
        spend(user, "0.25", key=resolved)
    key.refresh_from_db()
    assert (key.usage_count, key.estimated_cost) == (3, Decimal("0.75"))
    assert usage_by_model(user).rows[0]["calls"] == 3
    assert [Budget.objects.get(pk=b.pk).spent for b in budgets_] == [Decimal("0.75")] * 2


def test_a_default_budgets_first_spend_makes_its_row_then_adds_to_it(user, allowance):
    resolved = byok.resolve_api_key(user, "openai")
    with CaptureQueriesContext(connection) as queries:
        spend(user, "0.25", key=resolved)
    assert any(q["sql"].lstrip().upper().startswith("INSERT INTO") for q in queries)
    spend(user, "0.25", key=resolved)  # the lookup's rows predate the budget's row
    assert Budget.objects.get(default_name="free").spent == Decimal("0.50")


def test_only_the_first_block_of_a_period_is_audited(user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="0", service="openai", action="block")
    for _ in range(3):
        with pytest.raises(byok.BudgetExceeded):
            byok.get_user_api_key(user, "openai")
    assert AuditEvent.objects.filter(action="budget_blocked").count() == 1


def test_a_block_is_audited_once_per_period_by_the_lookup_and_reserve_together(user):
    UserAPIKeyFactory(user=user)
    budget = byok.set_budget(user, limit="0", service="openai", period="day", action="block")
    blocks = AuditEvent.objects.filter(action="budget_blocked")
    for _ in range(2):
        with pytest.raises(byok.BudgetExceeded):
            byok.get_user_api_key(user, "openai")
        with pytest.raises(byok.BudgetExceeded), byok.reserve(user, "openai", "0.01"):
            pass
    assert blocks.count() == 1
    # As if that block had been yesterday's: today's first block is written again.
    yesterday = timezone.localdate() - timedelta(days=1)
    Budget.objects.filter(pk=budget.pk).update(blocked_period=yesterday)
    for _ in range(2):
        with pytest.raises(byok.BudgetExceeded):
            byok.get_user_api_key(user, "openai")
    assert blocks.count() == 2
    event = blocks.first()
    assert event.metadata["budget"] == budget.pk
    assert event.metadata["period_start"] == timezone.localdate().isoformat()
    assert (event.owner, event.service) == (user, "openai")


# -- Alerts --------------------------------------------------------------------------------


def test_each_threshold_is_announced_once(user, alerts):
    UserAPIKeyFactory(user=user)
    budget = byok.set_budget(user, limit="10", service="openai")
    for amount in ("4", "0.99", "0.02", "3", "0.5", "3"):
        spend(user, amount)
    # 4.00, 4.99, 5.01 (50 %), 8.01 (80 %), 8.51, 11.51 (100 %)
    assert [threshold for _, threshold, _ in alerts] == [50, 80, 100]
    assert [spent for *_, spent in alerts] == [Decimal("5.01"), Decimal("8.01"), Decimal("11.51")]
    assert {pk for pk, *_ in alerts} == {budget.pk}


def test_one_call_past_two_thresholds_announces_both(user, alerts):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="10", service="openai", alert_at=[50, 80])
    spend(user, "9")
    assert [threshold for _, threshold, _ in alerts] == [50, 80]


def test_a_failing_receiver_never_fails_the_call_nor_stops_the_alert(user, alerts):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1", service="openai")

    def broken(**kwargs):
        raise RuntimeError("receiver bug")

    # The host's broken receiver runs before byok's own.
    uid = "byok.alerts.threshold_reached"
    budget_threshold_reached.disconnect(dispatch_uid=uid)
    budget_threshold_reached.connect(broken)
    budget_threshold_reached.connect(byok_alerts.threshold_reached, dispatch_uid=uid)
    try:
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert spend(user, "2") == Decimal("2")
    finally:
        budget_threshold_reached.disconnect(broken)
    assert Budget.objects.get().spent == Decimal("2")
    assert [threshold for _, threshold, _ in alerts] == [50, 80, 100]
    assert len(mail.outbox) == 3


# -- Reservations ------------------------------------------------------------------------


def test_a_reservation_holds_money_until_the_call_is_recorded(user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1", service="openai", action="block")
    with byok.reserve(user, "openai", "0.70") as resolved:
        assert Reservation.objects.get().amount == Decimal("0.70")
        with pytest.raises(byok.BudgetExceeded):
            reservations.hold(user, "openai", "0.40")  # 0.70 held + 0.40 > 1
        spend(user, "0.55", key=resolved)
        assert not Reservation.objects.exists()  # settled with the usage
    assert Budget.objects.get().spent == Decimal("0.55")
    assert byok.get_user_api_key(user, "openai")


def test_leaving_the_block_gives_back_what_was_not_used(user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1", service="openai", action="block")
    with pytest.raises(RuntimeError), byok.reserve(user, "openai", "0.90"):
        raise RuntimeError("the provider call failed")
    assert not Reservation.objects.exists()
    with byok.reserve(user, "openai", "0.90"):
        pass


def test_an_estimate_that_does_not_fit_is_refused_and_reserves_nothing(user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1", service="openai", action="block")
    spend(user, "0.50")
    with pytest.raises(byok.BudgetExceeded), byok.reserve(user, "openai", "0.51"):
        pass
    assert not Reservation.objects.exists()


def test_a_reservation_a_crashed_process_left_expires(user):
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1", service="openai", action="block")
    reservations.hold(user, "openai", "1.00")  # never settled nor released
    with pytest.raises(byok.BudgetExceeded):
        byok.get_user_api_key(user, "openai")
    Reservation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert byok.get_user_api_key(user, "openai")


def test_reserving_on_a_default_budget_makes_its_row(user, allowance):
    with byok.reserve(user, "openai", "0.30") as resolved:
        assert resolved.source == "platform"
        assert Reservation.objects.get().budget.default_name == "free"


@pytest.mark.parametrize("estimate", ["-1", "much", "NaN"])
def test_a_bad_estimate_is_refused(user, estimate):
    UserAPIKeyFactory(user=user)
    with pytest.raises(ValueError, match="estimate"), byok.reserve(user, "openai", estimate):
        pass


def test_without_a_budget_reserving_holds_nothing(user):
    UserAPIKeyFactory(user=user)
    with byok.reserve(user, "openai", "5") as resolved:
        assert resolved.hold.reservation_ids == []
        spend(user, "0.10", key=resolved)
    assert not Budget.objects.exists()


# -- Sixteen threads against a $1.00 cap ----------------------------------------------------


def race(target, threads=16, rounds=10):
    barrier = threading.Barrier(threads)
    outcomes, errors = [], []

    def worker():
        try:
            barrier.wait()
            for _ in range(rounds):
                outcomes.append(target())
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert errors == []
    return outcomes


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("owner", ["user", "team", "member"])
def test_sixteen_threads_setting_one_budget_leave_one_row(owner):
    user = UserFactory()
    team = TeamFactory(owner=user) if owner != "user" else None
    limits = iter(range(1000))
    lock = threading.Lock()

    def set_it():
        with lock:
            limit = next(limits)
        return byok.set_budget(None if owner == "team" else user, team=team, limit=limit)

    race(set_it, rounds=2)
    (budget,) = Budget.objects.all()
    assert AuditEvent.objects.filter(action=AuditAction.BUDGET_CHANGED).count() == 32
    assert AuditEvent.objects.filter(metadata__created=True).count() == 1
    assert (budget.user_id, budget.team_id) == (
        None if owner == "team" else user.pk,
        None if team is None else team.pk,
    )


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_reserving_never_spend_past_the_cap():
    user = UserFactory()
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1.00", service="openai", action="block")

    def call():
        try:
            with byok.reserve(user, "openai", "0.10") as resolved:
                byok.track_api_usage(user, "openai", cost="0.07", key=resolved)
        except byok.BudgetExceeded:
            return False
        return True

    made = race(call)
    budget = Budget.objects.get()
    assert budget.spent <= Decimal("1.00")
    assert budget.spent == Decimal("0.07") * sum(made)
    assert sum(made) >= 13  # 14 fit; the last ones are refused while others hold money
    assert not Reservation.objects.exists()


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_without_reserving_record_every_call_made(alerts):
    """Without reserve() the lookup cannot claim anything: calls already past it when
    the cap was reached still record. Every lookup after that is refused, and each
    threshold is announced once, however many threads cross it."""
    user = UserFactory()
    UserAPIKeyFactory(user=user)
    byok.set_budget(user, limit="1.00", service="openai", action="block")

    def call():
        try:
            resolved = byok.resolve_api_key(user, "openai")
        except byok.BudgetExceeded:
            return False
        byok.track_api_usage(user, "openai", cost="0.07", key=resolved)
        return True

    made = race(call)
    budget = Budget.objects.get()
    assert budget.spent == Decimal("0.07") * sum(made)
    assert budget.spent >= Decimal("1.00")
    with pytest.raises(byok.BudgetExceeded):
        byok.resolve_api_key(user, "openai")
    assert sorted(threshold for _, threshold, _ in alerts) == [50, 80, 100]


def test_budget_states_count_only_the_current_period():
    rule = budgets.Rule("r", "", "all", "month", Decimal(1), "block", (50,), "user")
    today = timezone.localdate()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    row = budgets.BudgetRow(
        1, "", "all", "month", Decimal(1), "block", "50", "", last_month, Decimal(5),
        user_id=1, team_id=None, reserved=Decimal(0),
    )  # fmt: skip
    (state,) = budgets.states([row], today)
    assert (state.spent, state.start) == (Decimal(0), today.replace(day=1))
    assert rule.covers("openai", "own")


@pytest.mark.parametrize(
    "entry",
    [
        "free",
        {"limit": "1"},
        {"name": "x", "limit": "-1"},
        {"name": "x", "limit": "1", "period": "year"},
        {"name": "x", "limit": "1", "service": "nope"},
        {"name": "x", "limit": "1", "applies_to": "friends"},
        {"name": "x", "limit": "1", "action": "email"},
        {"name": "x", "limit": "1", "alert_at": [0]},
        {"name": "x", "limit": "1", "colour": "red"},
        {"name": "", "limit": "1"},
    ],
)
def test_e018_a_malformed_default_budget(entry):
    from byok import checks

    with site(DEFAULT_BUDGETS=[entry]):
        assert [m.id for m in checks.check_settings()] == ["byok.E018"]


def test_e018_two_default_budgets_of_one_name():
    from byok import checks

    with site(DEFAULT_BUDGETS=[ALLOWANCE, ALLOWANCE]):
        assert [m.id for m in checks.check_settings()] == ["byok.E018"]


def test_a_malformed_default_budget_fails_loudly_at_run_time(user):
    from django.core.exceptions import ImproperlyConfigured

    UserAPIKeyFactory(user=user)
    with site(DEFAULT_BUDGETS=[{"name": "x"}]), pytest.raises(ImproperlyConfigured):
        byok.get_user_api_key(user, "openai")
