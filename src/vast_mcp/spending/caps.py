"""Spending caps: the account's burn rate and the most Vast may charge in any 24 h (DESIGN §2).

Pure functions over :class:`vast_mcp.vast.Instance` lists; the caller fetches the instances,
the recorded deadlines and (when a daily budget is set) the last 24 h of charges.

* **burn** ($/h): every instance that bills its GPUs (intended running or frozen: a queued or
  pending start will bill) at ``dph_total``, every other one at ``storage_total_cost``.
* **max_burn**: the burn once the action is done must be at most the cap (equal is allowed).
* **daily_budget**: the most Vast may charge in *any* 24 h window that contains now, i.e. the
  maximum over windows ``[t, t + 24 h]``, ``t`` in ``[now - 24 h, now]``, of the charges already
  billed inside ``[t, now]`` (each charge row spread evenly over its start..end) plus the
  projected cost of ``[now, t + 24 h]`` after the action: each instance at its rate until its
  deadline, then its storage after a ``stop`` deadline and nothing after a ``destroy`` one.
  The sum is piecewise linear in ``t``, so evaluating it at the breakpoints is exact; steady
  use at $1/h reads as $24, not $48. A deadline that has already passed is ignored (the
  instance still bills until something enforces it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from vast_mcp.settings import Settings
from vast_mcp.spending.deadlines import Deadline
from vast_mcp.spending.guard import DeadlineAction
from vast_mcp.spending.text import money, utc
from vast_mcp.vast import Charge, Instance

__all__ = [
    "DAY",
    "HOUR",
    "CapBreach",
    "CapVerdict",
    "Caps",
    "DayPeak",
    "Spend",
    "billed_between",
    "bills_gpu",
    "check",
    "day_peak",
    "new_rental",
    "per_hour_now",
    "project",
    "spend_of",
    "start_of",
]

HOUR: Final = 3600.0
DAY: Final = 24 * HOUR
EPSILON: Final = 1e-9  # dollars: float noise, so a figure exactly at a cap is within it
_MAKE_ROOM_SHOWN: Final = 5

# Intended statuses that bill the GPUs; anything else bills storage only.
_GPU_INTENDED: Final = frozenset({"running", "frozen"})
# Without an intended status, container states that mean the GPUs are (or are about to be) held.
_GPU_ACTUAL: Final = frozenset({"running", "loading", "created", "rebooting", "frozen", "scheduling"})


@dataclass(frozen=True)
class Caps:
    max_burn: float | None = None  # $/h
    daily_budget: float | None = None  # $ in any 24 h

    @classmethod
    def of(cls, settings: Settings) -> Caps:
        return cls(settings.max_burn, settings.daily_budget)

    @property
    def any(self) -> bool:
        return self.max_burn is not None or self.daily_budget is not None


def bills_gpu(inst: Instance) -> bool:
    """The instance bills (or is about to bill) its GPUs: intended running or frozen."""
    if inst.intended_status:
        return inst.intended_status in _GPU_INTENDED
    return inst.actual_status in _GPU_ACTUAL


def per_hour_now(inst: Instance) -> float:
    """What the instance bills per hour: everything while it holds GPUs, else its storage."""
    return inst.dph_total if bills_gpu(inst) else inst.storage_total_cost


@dataclass(frozen=True)
class Spend:
    """How one instance bills from now on: ``per_hour`` until ``until`` (None: on and on), then ``then_per_hour``.

    ``instance_id`` None stands for the rental a create would make.
    """

    instance_id: int | None
    per_hour: float
    until: float | None = None
    then_per_hour: float = 0.0

    def cost(self, start: float, end: float) -> float:
        """Dollars billed in [start, end]."""
        if end <= start:
            return 0.0
        if self.until is None or self.until >= end:
            return self.per_hour * (end - start) / HOUR
        cut = max(self.until, start)
        return (self.per_hour * (cut - start) + self.then_per_hour * (end - cut)) / HOUR


def _after(action: DeadlineAction, storage_per_hour: float) -> float:
    return storage_per_hour if action == "stop" else 0.0


def spend_of(inst: Instance, deadline: Deadline | None, *, now: float, gpu: bool | None = None) -> Spend:
    """An existing instance's billing from ``now``; ``gpu`` overrides whether it bills its GPUs."""
    holds_gpu = bills_gpu(inst) if gpu is None else gpu
    per_hour = inst.dph_total if holds_gpu else inst.storage_total_cost
    if deadline is None or deadline.at <= now:
        return Spend(inst.id, per_hour)
    return Spend(inst.id, per_hour, deadline.at, _after(deadline.action, inst.storage_total_cost))


def start_of(inst: Instance, deadline: Deadline | None, *, now: float) -> Spend:
    """What starting ``inst`` makes it bill: everything, until its deadline."""
    return spend_of(inst, deadline, now=now, gpu=True)


def new_rental(
    per_hour: float, storage_per_hour: float, *, now: float, hours: float | None, at_deadline: DeadlineAction
) -> Spend:
    """A create: the quote's total $/h (storage included) until ``hours`` from now (None or 0: no deadline)."""
    if not hours:
        return Spend(None, per_hour)
    return Spend(None, per_hour, now + hours * HOUR, _after(at_deadline, storage_per_hour))


def billed_between(charges: Iterable[Charge], start: float, end: float) -> float:
    """Dollars of ``charges`` that fall in [start, end], each row spread evenly over its start..end."""
    total = 0.0
    for charge in charges:
        if charge.start is None:
            continue
        lo = charge.start
        hi = charge.end if charge.end is not None else lo
        amount = abs(charge.amount)  # a cost whatever sign the API gives it
        if hi <= lo:
            total += amount if start <= lo <= end else 0.0
        else:
            total += amount * max(0.0, min(hi, end) - max(lo, start)) / (hi - lo)
    return total


@dataclass(frozen=True)
class DayPeak:
    """The 24 h window containing now in which Vast may charge the most."""

    window_start: float
    billed: float  # already charged in [window_start, now]
    projected: float  # what runs in [now, window_start + 24 h]

    @property
    def total(self) -> float:
        return self.billed + self.projected

    @property
    def window_end(self) -> float:
        return self.window_start + DAY


def day_peak(charges: Sequence[Charge], spends: Iterable[Spend], *, now: float) -> DayPeak:
    """The maximum over windows [t, t + 24 h], t in [now - 24 h, now], evaluated at every breakpoint."""
    spends = list(spends)
    earliest = now - DAY
    starts = {earliest, now}
    for charge in charges:
        starts.update(t for t in (charge.start, charge.end) if t is not None and earliest < t < now)
    starts.update(s.until - DAY for s in spends if s.until is not None and now < s.until < now + DAY)
    windows = (
        DayPeak(t, billed_between(charges, t, now), sum(s.cost(now, t + DAY) for s in spends)) for t in sorted(starts)
    )
    return max(windows, key=lambda peak: peak.total)


def project(
    instances: Sequence[Instance],
    *,
    now: float,
    deadlines: Mapping[int, Deadline],
    action: Spend | None = None,
) -> dict[int | None, Spend]:
    """Every instance's :class:`Spend`, with the action's replacing its instance's (or added, for a create)."""
    spends: dict[int | None, Spend] = {inst.id: spend_of(inst, deadlines.get(inst.id), now=now) for inst in instances}
    if action is not None:
        spends[action.instance_id] = action
    return spends


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CapBreach(_Model):
    cap: Literal["max_burn", "daily_budget"]
    limit: float = Field(description="the cap: $/h for max_burn, $ for daily_budget")
    projected: float = Field(description="the figure after the action, same unit")
    over_by: float = Field(description="projected - limit")


class CapVerdict(_Model):
    ok: bool = Field(description="no cap would be passed")
    burn_per_hour: float = Field(description="$/h of the whole account after the action")
    max_burn: float | None
    day_total: float = Field(description="most Vast may charge in any 24 h containing now, after the action")
    day_billed: float = Field(description="part of day_total already charged")
    day_window_start: float = Field(description="unix start of that 24 h window")
    daily_budget: float | None
    breaches: list[CapBreach]
    make_room: list[str] = Field(description="what to stop or destroy to get under the caps, biggest first")
    message: str = Field(description="plain sentences: the verdict, by how much, what to do")
    summary: str = Field(description="the figures a plan shows")


@dataclass(frozen=True)
class _Relief:
    """What stopping (GPU holders) or destroying (the rest) one instance would leave billing."""

    verb: str
    instance_id: int
    now: Spend
    then: Spend


def _reliefs(instances: Sequence[Instance], spends: Mapping[int | None, Spend], skip: int | None) -> list[_Relief]:
    found = []
    for inst in instances:
        if inst.id == skip:
            continue
        spend = spends[inst.id]
        if bills_gpu(inst):  # stopped, it bills storage until its deadline, then what that deadline leaves
            found.append(_Relief("stopping", inst.id, spend, replace(spend, per_hour=inst.storage_total_cost)))
        else:
            found.append(_Relief("destroying", inst.id, spend, Spend(inst.id, 0.0)))
    return found


def _make_room(reliefs: list[_Relief], freed: dict[int, float], unit: str, need: float) -> tuple[list[str], str]:
    ranked = sorted((r for r in reliefs if freed[r.instance_id] > EPSILON), key=lambda r: -freed[r.instance_id])
    options = [f"{r.verb} {r.instance_id} frees {money(freed[r.instance_id])}{unit}" for r in ranked]
    options = options[:_MAKE_ROOM_SHOWN]
    if not options:
        return [], "Nothing else on the account bills enough to make room."
    return options, f"To make room, free at least {money(need)}{unit}: " + "; ".join(options) + "."


def check(
    caps: Caps,
    instances: Sequence[Instance],
    *,
    now: float,
    action: Spend | None = None,
    deadlines: Mapping[int, Deadline] | None = None,
    charges: Sequence[Charge] = (),
) -> CapVerdict:
    """Would ``action`` (a :func:`new_rental` or :func:`start_of`; None: nothing, just now) pass a cap?

    Pass the last 24 h of charges whenever a daily budget is set; without them the 24 h figure
    holds only what is projected.
    """
    spends = project(instances, now=now, deadlines=deadlines or {}, action=action)
    burn = sum(s.per_hour for s in spends.values())  # GPU of those that hold (or will hold) GPUs, storage of all
    peak = day_peak(charges, spends.values(), now=now)
    what = _describe(action)
    reliefs = _reliefs(instances, spends, action.instance_id if action is not None else None)
    breaches: list[CapBreach] = []
    sentences: list[str] = []
    make_room: list[str] = []
    if caps.max_burn is not None and burn > caps.max_burn + EPSILON:
        over = burn - caps.max_burn
        breaches.append(CapBreach(cap="max_burn", limit=caps.max_burn, projected=burn, over_by=over))
        sentences.append(
            f"Refused: {what} would put the account's burn at {money(burn)}/h, {money(over)}/h over the "
            f"max-burn cap of {money(caps.max_burn)}/h."
        )
        freed = {r.instance_id: r.now.per_hour - r.then.per_hour for r in reliefs}
        options, advice = _make_room(reliefs, freed, "/h", over)
        make_room += options
        sentences.append(advice)
    if caps.daily_budget is not None and peak.total > caps.daily_budget + EPSILON:
        over = peak.total - caps.daily_budget
        breaches.append(CapBreach(cap="daily_budget", limit=caps.daily_budget, projected=peak.total, over_by=over))
        sentences.append(
            f"Refused: {what} would let Vast charge {money(peak.total)} in the 24 h from "
            f"{utc(peak.window_start)} ({money(peak.billed)} already billed, {money(peak.projected)} projected), "
            f"{money(over)} over the daily budget of {money(caps.daily_budget)}."
        )
        end = peak.window_end
        freed = {r.instance_id: r.now.cost(now, end) - r.then.cost(now, end) for r in reliefs}
        options, advice = _make_room(reliefs, freed, " in that window", over)
        make_room += options
        if action is not None and action.instance_id is None:
            advice += " Or give this rental a shorter deadline."
        sentences.append(advice)
    summary = _summary(caps, burn, peak)
    if not breaches:
        sentences.append(f"Within the caps: {summary}." if caps.any else f"{summary[0].upper()}{summary[1:]}.")
    return CapVerdict(
        ok=not breaches,
        burn_per_hour=burn,
        max_burn=caps.max_burn,
        day_total=peak.total,
        day_billed=peak.billed,
        day_window_start=peak.window_start,
        daily_budget=caps.daily_budget,
        breaches=breaches,
        make_room=make_room,
        message=" ".join(sentences),
        summary=summary,
    )


def _describe(action: Spend | None) -> str:
    if action is None:
        return "what runs now"
    return "this rental" if action.instance_id is None else f"starting instance {action.instance_id}"


def _summary(caps: Caps, burn: float, peak: DayPeak) -> str:
    """``$/h after: 1.20 of max 2.00; 24 h: $14.30 of $40.00 budget`` (or says which cap is unset)."""
    if not caps.any:
        return f"no caps set ($/h after: {burn:.2f}; 24 h: {money(peak.total)})"
    rate = f"$/h after: {burn:.2f}" + (f" of max {caps.max_burn:.2f}" if caps.max_burn is not None else " (no max)")
    day = f"24 h: {money(peak.total)}" + (
        f" of {money(caps.daily_budget)} budget" if caps.daily_budget is not None else " (no daily budget)"
    )
    return f"{rate}; {day}"
