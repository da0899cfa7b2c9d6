"""The leak report behind ``audit_spend``: what every instance costs now and why it may be a leak.

One finding per reason, each with one suggested action; the total $/h of the instances with a
finding; the budget left under both caps. Text a host or another user controls (labels, status
messages) is wrapped by :func:`vast_mcp.views.untrusted`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from vast_mcp.provisioning.rental import MARKER_ENV
from vast_mcp.settings import Settings
from vast_mcp.spending.caps import DAY, Caps, CapVerdict, Spend, bills_gpu, check, per_hour_now
from vast_mcp.spending.deadlines import Deadline, DeadlineStore
from vast_mcp.spending.guard import DeadlineAction, strip_tag
from vast_mcp.spending.text import money, utc
from vast_mcp.vast import Charge, Instance, PriceIncrease, VastClient, VastError
from vast_mcp.views import untrusted

__all__ = [
    "STUCK_AFTER",
    "AccountState",
    "AuditReport",
    "BudgetLeft",
    "Finding",
    "InstanceAudit",
    "audit",
    "read_account",
    "report",
]

STUCK_AFTER: Final = 15 * 60.0  # seconds after create an instance meant to run may take to get there
HOURS_PER_MONTH: Final = 720  # Vast's storage prices are per 30-day month
_NOT_UP: Final = frozenset({None, "created", "loading", "scheduling", "exited", "unknown", "offline"})

FindingKind = Literal[
    "past_deadline",
    "stopped_storage",
    "outbid",
    "start_queued",
    "not_running",
    "price_increase",
    "not_ours",
    "no_deadline",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Finding(_Model):
    kind: FindingKind
    detail: str = Field(description="why it may be a leak, in a sentence")
    per_hour: float = Field(description="$/h at stake: what it bills now (for a price increase: the rise)")
    suggestion: str = Field(description="the one action that ends it")


class InstanceAudit(_Model):
    id: int
    label: str | None = Field(description="untrusted")
    status: str | None = Field(description="actual_status")
    intended_status: str | None
    per_hour: float = Field(description="$/h it bills now: everything while it holds GPUs, else storage")
    deadline: float | None = Field(description="unix time of its recorded deadline")
    at_deadline: DeadlineAction | None
    findings: list[Finding]


class BudgetLeft(_Model):
    burn_per_hour: float = Field(description="$/h counted against max_burn: a queued or outbid start counts as running")
    max_burn: float | None
    burn_room: float | None = Field(description="$/h left under max_burn (negative: over)")
    day_total: float | None = Field(description="most Vast may charge in a 24 h window containing now")
    daily_budget: float | None
    day_room: float | None = Field(description="$ left under daily_budget (negative: over)")
    summary: str


class AuditReport(_Model):
    instances: list[InstanceAudit]
    leak_per_hour: float = Field(description="$/h now of every instance with a finding")
    budget: BudgetLeft
    summary: str
    notes: list[str] = Field(description="what this report could not check")


@dataclass(frozen=True)
class AccountState:
    """What the caps and the audit read, read once: instances, local deadlines, and (with a daily
    budget) the last 24 h of charges, and (when asked for) the pending host price increases."""

    now: float
    instances: list[Instance]
    deadlines: dict[int, Deadline]
    charges: list[Charge]
    rises: dict[int, PriceIncrease]
    notes: list[str]

    def verdict(self, caps: Caps, action: Spend | None = None) -> CapVerdict:
        """Would ``action`` pass a cap (None: just now)?"""
        return check(caps, self.instances, now=self.now, action=action, deadlines=self.deadlines, charges=self.charges)


async def read_account(
    vast: VastClient, store: DeadlineStore, caps: Caps, *, now: float, price_increases: bool = True
) -> AccountState:
    """Read once what the caps (and, with ``price_increases``, the audit) need."""
    instances = await vast.instances.list()
    charges: list[Charge] = []
    if caps.daily_budget is not None:
        charges = await vast.account.charges(datetime.fromtimestamp(now - DAY, UTC), datetime.fromtimestamp(now, UTC))
    notes: list[str] = []
    rises: dict[int, PriceIncrease] = {}
    if price_increases:
        try:
            rises = {r.instance_id: r for r in await vast.instances.pending_price_increases()}
        except VastError as exc:  # e.g. a key without that permission: the rest of the report still holds
            notes.append(f"pending host price increases could not be read: {exc}")
    deadlines = {d.instance_id: d for d in store.all()}
    return AccountState(now, instances, deadlines, charges, rises, notes)


async def audit(vast: VastClient, store: DeadlineStore, settings: Settings, *, now: float) -> AuditReport:
    """Read the account (instances, pending price increases and, with a daily budget, the last
    24 h of charges) and the local deadlines, and report every possible leak."""
    caps = Caps.of(settings)
    return report(await read_account(vast, store, caps, now=now), caps)


def report(state: AccountState, caps: Caps) -> AuditReport:
    audits = [
        _audit_one(inst, state.deadlines.get(inst.id), state.rises.get(inst.id), state.now) for inst in state.instances
    ]
    leak = sum(a.per_hour for a in audits if a.findings)
    budget = _budget(caps, state.verdict(caps))
    flagged = sum(1 for a in audits if a.findings)
    summary = (
        f"{len(audits)} instance(s) billing {money(sum(a.per_hour for a in audits))}/h now; "
        f"{flagged} with findings ({money(leak)}/h may be leaking). Budget: {budget.summary}."
    )
    return AuditReport(instances=audits, leak_per_hour=leak, budget=budget, summary=summary, notes=state.notes)


def _budget(caps: Caps, verdict: CapVerdict) -> BudgetLeft:
    parts: list[str] = []
    burn_room = day_room = None
    if caps.max_burn is not None:
        burn_room = caps.max_burn - verdict.burn_per_hour
        parts.append(f"{money(burn_room)}/h left under the max burn of {money(caps.max_burn)}/h")
    if caps.daily_budget is not None:
        day_room = caps.daily_budget - verdict.day_total
        parts.append(f"{money(day_room)} left of the {money(caps.daily_budget)} daily budget")
    return BudgetLeft(
        burn_per_hour=verdict.burn_per_hour,
        max_burn=caps.max_burn,
        burn_room=burn_room,
        day_total=verdict.day_total if caps.daily_budget is not None else None,
        daily_budget=caps.daily_budget,
        day_room=day_room,
        summary="; ".join(parts) or "no caps set",
    )


def _audit_one(inst: Instance, deadline: Deadline | None, rise: PriceIncrease | None, now: float) -> InstanceAudit:
    findings = list(_findings(inst, deadline, rise, now))
    return InstanceAudit(
        id=inst.id,
        label=untrusted(strip_tag(inst.label), 200) if inst.label else None,
        status=inst.actual_status,
        intended_status=inst.intended_status,
        per_hour=_billing_now(inst),
        deadline=deadline.at if deadline else None,
        at_deadline=deadline.action if deadline else None,
        findings=findings,
    )


def _billing_now(inst: Instance) -> float:
    """What it bills this hour: a start Vast holds back bills storage only (the caps count it as running)."""
    return inst.storage_total_cost if inst.held_by_vast else per_hour_now(inst)


def _findings(inst: Instance, deadline: Deadline | None, rise: PriceIncrease | None, now: float) -> Iterator[Finding]:
    rate, storage = _billing_now(inst), inst.storage_total_cost
    past = _past_deadline(inst, deadline, now)
    if past is not None:
        yield past
    if inst.intended_status == "stopped" and storage > 0:
        yield Finding(
            kind="stopped_storage",
            detail=f"stopped, but its disk bills {money(storage)}/h ({money(storage * HOURS_PER_MONTH)}/month) "
            "until it is destroyed",
            per_hour=storage,
            suggestion=f"destroy_instance {inst.id} if its data is no longer needed (stopping does not end "
            "storage billing)",
        )
    if inst.held_by_vast:
        yield _held(inst)
    stuck = _not_running(inst, now)
    if stuck is not None:
        yield stuck
    if rise is not None:
        yield Finding(
            kind="price_increase",
            detail=f"the host raised its price: {_rate(rise.old_per_hour)} -> {_rate(rise.new_per_hour)}, pending",
            per_hour=_rise(rise),
            suggestion=f"accept or reject the increase in the Vast console; destroy_instance {inst.id} if it is "
            "too high",
        )
    if MARKER_ENV not in inst.extra_env:
        yield Finding(
            kind="not_ours",
            detail="not rented through vast-mcp (no request marker): nothing here tracks it unless it gets a deadline",
            per_hour=rate,
            suggestion=f"set_deadline {inst.id} to give it one, or leave it if another tool manages it",
        )
    if deadline is None and bills_gpu(inst):
        yield Finding(
            kind="no_deadline",
            detail=f"meant to run with no deadline: it bills {money(inst.dph_total)}/h while running, until "
            "someone stops it",
            per_hour=rate,
            suggestion=f"set_deadline {inst.id} with the hours it still needs",
        )


def _past_deadline(inst: Instance, deadline: Deadline | None, now: float) -> Finding | None:
    if deadline is None or deadline.at > now:
        return None
    if deadline.action == "stop" and not bills_gpu(inst):
        return None  # enforced: it is stopped (its storage is its own finding)
    late = (now - deadline.at) / 3600
    return Finding(
        kind="past_deadline",
        detail=f"its {deadline.action} deadline ({utc(deadline.at)}) passed {late:.1f} h ago and it still bills "
        f"{money(_billing_now(inst))}/h",
        per_hour=_billing_now(inst),
        suggestion=f"run `vast-mcp reap` now (or {deadline.action}_instance {inst.id})",
    )


def _rise(rise: PriceIncrease) -> float:
    """$/h more after the increase (0 when a price cannot be read)."""
    old, new = rise.old_per_hour, rise.new_per_hour
    return new - old if old is not None and new is not None else 0.0


def _rate(per_hour: float | None) -> str:
    return "an unreadable price" if per_hour is None else f"{money(per_hour)}/h"


def _held(inst: Instance) -> Finding:
    storage = inst.storage_total_cost
    if inst.outbid:
        floor = f"; the current minimum bid is {money(inst.min_bid)}/h" if inst.min_bid is not None else ""
        return Finding(
            kind="outbid",
            detail=f"outbid: Vast stopped it (bid {money(inst.dph_base)}/h{floor}); its disk still bills "
            f"{money(storage)}/h",
            per_hour=storage,
            suggestion=f"raise the bid (it needs your yes) or destroy_instance {inst.id}; it is never re-bid "
            "automatically",
        )
    return Finding(
        kind="start_queued",
        detail=f"a start is queued until the host's GPUs are free: it bills {money(storage)}/h now and "
        f"{money(inst.dph_total)}/h once it starts",
        per_hour=storage,
        suggestion=f"stop_instance {inst.id} to cancel the queued start, or wait for it",
    )


def _not_running(inst: Instance, now: float) -> Finding | None:
    if inst.intended_status != "running" or inst.held_by_vast or inst.actual_status not in _NOT_UP:
        return None
    if inst.start_date is None or now - inst.start_date < STUCK_AFTER:
        return None
    minutes = (now - inst.start_date) / 60
    message = f": {untrusted(inst.status_msg, 300)}" if inst.status_msg else ""
    return Finding(
        kind="not_running",
        detail=f"not running {minutes:.0f} min after it was created (status {inst.actual_status or 'pending'}"
        f"{message})",
        per_hour=_billing_now(inst),
        suggestion=f"get_instance_logs {inst.id} to see why; destroy_instance {inst.id} if it will not start",
    )
