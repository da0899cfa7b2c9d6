"""Spending caps: the burn rate, the most Vast may charge in any 24 h, and what a refusal says."""

from __future__ import annotations

from typing import Any

import pytest

from vast_mcp.spending.caps import (
    DAY,
    HOUR,
    Caps,
    Spend,
    billed_between,
    bills_gpu,
    check,
    day_peak,
    new_rental,
    start_of,
)
from vast_mcp.spending.deadlines import Deadline
from vast_mcp.spending.text import money
from vast_mcp.vast import Charge, Instance

NOW = 1_764_525_600.0


def inst(instance_id: int, intended: str | None = "running", **fields: Any) -> Instance:
    values: dict[str, Any] = {
        "actual_status": {"running": "running", "stopped": "exited"}.get(intended or ""),
        "dph_total": 1.0,
        "storage_total_cost": 0.1,
    }
    values.update(fields)
    return Instance(id=instance_id, intended_status=intended, **values)


def charge(start: float, end: float | None, amount: float) -> Charge:
    return Charge(start=start, end=end, amount=amount, type="instance")


# ------------------------------------------------------------------ burn


@pytest.mark.parametrize(
    ("intended", "actual", "cur_state", "gpu"),
    [
        ("running", "running", "running", True),
        ("running", "exited", "stopped", True),  # a queued start: it will bill
        ("running", None, None, True),  # pending
        ("frozen", "frozen", "running", True),
        ("stopped", "exited", "stopped", False),
        ("stopped", "running", "stopped", False),  # stopping
        (None, "loading", None, True),
        (None, "exited", None, False),
    ],
)
def test_what_bills_gpu(intended: str | None, actual: str | None, cur_state: str | None, gpu: bool) -> None:
    instance = inst(1, intended, actual_status=actual, cur_state=cur_state)
    assert bills_gpu(instance) is gpu


def test_burn_is_gpu_of_running_plus_storage_of_the_rest() -> None:
    fleet = [inst(1, dph_total=0.5), inst(2, "stopped", storage_total_cost=0.02), inst(3, dph_total=0.25)]
    assert check(Caps(), fleet, now=NOW).burn_per_hour == pytest.approx(0.77)


def test_max_burn_is_exact_at_the_boundary() -> None:
    fleet = [inst(1, dph_total=0.1)]
    rental = new_rental(0.2, 0.01, now=NOW, hours=None, at_deadline="stop")
    assert 0.1 + 0.2 > 0.3  # float noise: equal must still pass
    assert check(Caps(max_burn=0.3), fleet, now=NOW, action=rental).ok
    refused = check(Caps(max_burn=0.29), fleet, now=NOW, action=rental)
    assert not refused.ok
    assert [b.cap for b in refused.breaches] == ["max_burn"]
    assert refused.breaches[0].over_by == pytest.approx(0.01)


def test_a_start_adds_only_the_gpu_part() -> None:
    stopped = inst(5, "stopped", dph_total=0.5, storage_total_cost=0.1)
    assert check(Caps(), [stopped], now=NOW).burn_per_hour == pytest.approx(0.1)
    start = start_of(stopped, None, now=NOW)
    assert check(Caps(max_burn=0.5), [stopped], now=NOW, action=start).burn_per_hour == pytest.approx(0.5)
    assert check(Caps(max_burn=0.5), [stopped], now=NOW, action=start).ok
    assert not check(Caps(max_burn=0.49), [stopped], now=NOW, action=start).ok


def test_a_refusal_says_by_how_much_and_what_to_stop_or_destroy() -> None:
    fleet = [
        inst(123, dph_total=0.41, storage_total_cost=0.01),
        inst(456, "stopped", dph_total=0.3, storage_total_cost=0.01),
        inst(789, dph_total=1.0, storage_total_cost=0.05),
    ]
    rental = new_rental(0.6, 0.02, now=NOW, hours=2, at_deadline="stop")
    verdict = check(Caps(max_burn=1.6), fleet, now=NOW, action=rental)
    assert not verdict.ok
    assert verdict.burn_per_hour == pytest.approx(2.02)
    assert verdict.make_room == [
        "stopping 789 frees $0.95/h",
        "stopping 123 frees $0.40/h",
        "destroying 456 frees $0.01/h",
    ]
    assert verdict.message == (
        "Refused: this rental would put the account's burn at $2.02/h, $0.42/h over the max-burn cap of $1.60/h. "
        "To make room, free at least $0.42/h: stopping 789 frees $0.95/h; stopping 123 frees $0.40/h; "
        "destroying 456 frees $0.01/h."
    )


def test_a_start_is_not_its_own_remedy() -> None:
    stopped = inst(5, "stopped", dph_total=2.0)
    verdict = check(Caps(max_burn=1.0), [stopped], now=NOW, action=start_of(stopped, None, now=NOW))
    assert verdict.make_room == []
    assert "starting instance 5" in verdict.message and "Nothing else on the account" in verdict.message


# ------------------------------------------------------------------ daily budget


def test_steady_use_reads_as_one_day_not_two() -> None:
    # $1/h for the last day (billed) and on and on (projected): any 24 h holds $24, not $48.
    running = inst(1, dph_total=1.0)
    billed = [charge(NOW - DAY - 7 * HOUR, NOW, 31.0)]
    assert check(Caps(daily_budget=24.0), [running], now=NOW, charges=billed).day_total == pytest.approx(24.0)


def test_a_burst_already_billed_counts_with_what_runs_next() -> None:
    # $10 billed in the last hour, then $2/h: the worst window starts an hour ago: 10 + 23 * 2.
    billed = [charge(NOW - HOUR, NOW, 10.0)]
    peak = day_peak(billed, [Spend(1, 2.0, NOW + 30 * HOUR, 0.1)], now=NOW)
    assert peak.window_start == NOW - HOUR
    assert (peak.billed, peak.projected) == (pytest.approx(10.0), pytest.approx(46.0))


def test_a_deadline_ends_the_projection_and_is_a_breakpoint() -> None:
    # $5 billed 20 h ago; $1/h until a destroy deadline 10 h from now: the worst window is the one
    # that ends at the deadline plus 14 h of nothing (10), not one that reaches back to the $5 (9).
    billed = [charge(NOW - 20 * HOUR, NOW - 19 * HOUR, 5.0)]
    peak = day_peak(billed, [Spend(1, 1.0, NOW + 10 * HOUR, 0.0)], now=NOW)
    assert peak.total == pytest.approx(10.0)
    assert peak.window_start == NOW - 14 * HOUR


def test_after_a_stop_deadline_only_storage_bills() -> None:
    spend = new_rental(1.0, 0.25, now=NOW, hours=4, at_deadline="stop")
    assert spend.cost(NOW, NOW + DAY) == pytest.approx(4 * 1.0 + 20 * 0.25)
    gone = new_rental(1.0, 0.25, now=NOW, hours=4, at_deadline="destroy")
    assert gone.cost(NOW, NOW + DAY) == pytest.approx(4.0)
    assert new_rental(1.0, 0.25, now=NOW, hours=0, at_deadline="destroy").until is None


def test_a_passed_deadline_does_not_shorten_the_projection() -> None:
    late = {1: Deadline(1, NOW - HOUR, "destroy", None)}
    verdict = check(Caps(daily_budget=100.0), [inst(1, dph_total=1.0)], now=NOW, deadlines=late)
    assert verdict.day_total == pytest.approx(24.0)
    soon = {1: Deadline(1, NOW + HOUR, "destroy", None)}
    assert check(Caps(daily_budget=100.0), [inst(1)], now=NOW, deadlines=soon).day_total == pytest.approx(1.0)


def test_charges_are_spread_over_their_span() -> None:
    rows = [
        charge(NOW - 10 * HOUR, NOW - 6 * HOUR, 8.0),  # $2/h
        charge(NOW - 3 * HOUR, None, -1.5),  # a point, signed as a debit: still a cost
        Charge(start=None, end=None, amount=99.0),  # no time: cannot be placed
    ]
    assert billed_between(rows, NOW - 8 * HOUR, NOW) == pytest.approx(4.0 + 1.5)
    assert billed_between(rows, NOW - 2 * HOUR, NOW) == 0.0


def test_the_daily_budget_is_exact_at_the_boundary_and_a_refusal_explains() -> None:
    fleet = [inst(1, dph_total=0.5, storage_total_cost=0.05)]
    billed = [charge(NOW - DAY, NOW, 12.0)]
    rental = new_rental(0.5, 0.05, now=NOW, hours=None, at_deadline="stop")
    assert check(Caps(daily_budget=24.0), fleet, now=NOW, action=rental, charges=billed).ok
    verdict = check(Caps(daily_budget=20.0), fleet, now=NOW, action=rental, charges=billed)
    assert not verdict.ok and verdict.breaches[0].over_by == pytest.approx(4.0)
    assert verdict.make_room == ["stopping 1 frees $10.80 in that window"]
    assert "$4.00 over the daily budget of $20.00" in verdict.message
    assert "shorter deadline" in verdict.message


# ------------------------------------------------------------------ what a plan shows


def test_the_summary_names_both_caps_or_says_there_are_none() -> None:
    fleet = [inst(1, dph_total=1.2)]
    both = check(Caps(max_burn=2.0, daily_budget=40.0), fleet, now=NOW)
    assert both.summary == "$/h after: 1.20 of max 2.00; 24 h: $28.80 of $40.00 budget"
    assert both.message == f"Within the caps: {both.summary}."
    one = check(Caps(max_burn=2.0), fleet, now=NOW)
    assert one.summary == "$/h after: 1.20 of max 2.00; 24 h: $28.80 (no daily budget)"
    none = check(Caps(), fleet, now=NOW)
    assert none.ok and none.summary == "no caps set ($/h after: 1.20; 24 h: $28.80)"
    assert none.message.startswith("No caps set")


def test_both_caps_can_refuse_at_once() -> None:
    verdict = check(
        Caps(max_burn=1.0, daily_budget=10.0),
        [inst(1, dph_total=0.9)],
        now=NOW,
        action=new_rental(0.5, 0.0, now=NOW, hours=None, at_deadline="stop"),
    )
    assert [b.cap for b in verdict.breaches] == ["max_burn", "daily_budget"]
    assert verdict.message.count("Refused:") == 2


@pytest.mark.parametrize(
    ("amount", "text"), [(0, "$0.00"), (0.01, "$0.01"), (0.0083333, "$0.0083"), (1234.5, "$1,234.50"), (-2, "-$2.00")]
)
def test_money(amount: float, text: str) -> None:
    assert money(amount) == text
