"""Spending tools: the leak report, and an instance's deadline (DESIGN §4, §5b)."""

from __future__ import annotations

import time
from typing import Annotated

from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from pydantic import BaseModel, Field

from vast_mcp.services import Services
from vast_mcp.spending.audit import AuditReport, audit
from vast_mcp.spending.deadlines import Deadline
from vast_mcp.spending.guard import DeadlineAction, parse_tag, strip_tag, tag_label
from vast_mcp.spending.text import utc
from vast_mcp.tools.base import READ_ONLY, ToolSpec, services, writes
from vast_mcp.tools.confirm import Ask, Confirm, ConfirmToken, NotAsked, ask, gate, key_phrase
from vast_mcp.tools.params import AtDeadline, Hours, InstanceId
from vast_mcp.vast import Instance, VastError
from vast_mcp.views import describe_instance

HOUR = 3600.0
GUARD_MARK = "vast-mcp guard"  # what the in-instance guard's onstart carries


async def audit_spend(ctx: Context) -> AuditReport:
    """What may be leaking money: each instance's $/h now and why (stopped but billing
    storage, stuck, past its deadline, outbid, queued start, price increase, not ours, no deadline),
    one suggested action each, the leak $/h and the budget left.
    """
    state = services(ctx)
    return await audit(state.vast, state.deadlines, state.settings, now=time.time())


class DeadlineChange(BaseModel):
    instance_id: int
    deadline: str = Field(description='now: e.g. "stop at 2026-11-30 18:00 UTC" or "no deadline"')
    previous: str
    enforced_by: str = Field(description="what enforces it while nobody watches")


def current_deadline(state: Services, inst: Instance) -> Deadline | None:
    """The recorded deadline, else the one the label's tag carries (e.g. set from another machine)."""
    recorded = state.deadlines.get(inst.id)
    if recorded is not None:
        return recorded
    tagged = parse_tag(inst.label)
    return Deadline(instance_id=inst.id, at=float(tagged[0]), action=tagged[1], account=None) if tagged else None


def _describe(deadline: Deadline | None) -> str:
    return f"{deadline.action} at {utc(deadline.at)}" if deadline else "no deadline"


def needs_consent(old: Deadline | None, hours: float | None, action: DeadlineAction, now: float) -> bool:
    """Extending, clearing or changing what happens costs money or data; shortening does not."""
    if old is None:
        return action == "destroy" or not hours  # a first deadline only shortens, unless it destroys
    if not hours:
        return True
    return now + hours * HOUR > old.at or action != old.action


def _changing(instance_id: int, hours: float | None, at_deadline: DeadlineAction) -> Ask:
    async def describe(state: Services) -> str:
        inst = await state.vast.instances.get(instance_id)
        old = _describe(current_deadline(state, inst))
        new = f"{at_deadline} {hours:g} h from now" if hours else "no deadline (it runs and bills until stopped)"
        fate = " At that deadline it is DESTROYED: its disk and data are deleted." if at_deadline == "destroy" else ""
        return (
            f"Change the deadline of Vast {describe_instance(inst)} from {old} to {new}?{fate} "
            f"{key_phrase(state.vast.api_key)}"
        )

    return Ask("set_deadline", {"instance_id": instance_id, "hours": hours, "at_deadline": at_deadline}, describe)


async def ask_deadline(
    instance_id: int, hours: float | None, at_deadline: DeadlineAction, ctx: Context
) -> Elicit[Confirm] | NotAsked:
    state = services(ctx)
    try:
        inst = await state.vast.instances.get(instance_id)
    except VastError:  # the body reads it again and reports the precise reason
        return NotAsked(reason="the instance could not be read")
    if not needs_consent(current_deadline(state, inst), hours, at_deadline, time.time()):
        return NotAsked(reason="shortening a deadline needs no yes")
    return await ask(ctx, _changing(instance_id, hours, at_deadline))


async def set_deadline(
    ctx: Context,
    instance_id: InstanceId,
    consent: Annotated[ElicitationResult[Confirm], Resolve(ask_deadline)],
    hours: Hours = None,
    at_deadline: AtDeadline = "stop",
    confirm_token: ConfirmToken = None,
) -> DeadlineChange:
    """Set, shorten, extend or clear (no hours) an instance's deadline and what happens
    then (stop, or destroy). Extending, clearing or changing the action needs the user's yes (a form,
    or a confirm_token); shortening does not.
    """
    state = services(ctx)
    now = time.time()
    inst = await state.vast.instances.get(instance_id)
    old = current_deadline(state, inst)
    if needs_consent(old, hours, at_deadline, now):
        await gate(ctx, consent, _changing(instance_id, hours, at_deadline), confirm_token)
    base = strip_tag(inst.label or "")
    new = None
    if hours:  # the label first: it is what the guard inside the instance reads
        at = int(now + hours * HOUR)
        account = (await state.vast.account.current_user()).id
        await state.vast.instances.set_label(instance_id, tag_label(base, at, at_deadline))
        new = Deadline(instance_id=instance_id, at=float(at), action=at_deadline, account=account)
        state.deadlines.set(new)
    else:
        await state.vast.instances.set_label(instance_id, base)
        state.deadlines.clear(instance_id)
    if new is None:
        enforced = "nothing: it runs and bills until someone stops or destroys it"
    elif GUARD_MARK in (inst.onstart or ""):
        enforced = "the guard inside the instance (it re-reads its label within 5 minutes) and this machine's reaper"
    else:
        enforced = "this machine's reaper only (serve, or `vast-mcp reap` from cron): it has no guard inside"
    return DeadlineChange(
        instance_id=instance_id, deadline=_describe(new), previous=_describe(old), enforced_by=enforced
    )


TOOLS = [
    ToolSpec(audit_spend, "read", "Find what leaks money", READ_ONLY),
    ToolSpec(set_deadline, "write", "Set an instance's deadline", writes(destructive=False, idempotent=True)),
]
