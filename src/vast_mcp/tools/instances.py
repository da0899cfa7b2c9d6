"""Instance tools: list, show, wait, start, stop, reboot, destroy, label."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from pydantic import BaseModel, Field

from vast_mcp.provisioning.readiness import Target, WaitOutcome, wait_for_state
from vast_mcp.services import Services
from vast_mcp.tools.base import READ_ONLY, ToolSpec, services, writes
from vast_mcp.tools.confirm import Ask, Confirm, ConfirmToken, NotAsked, ask, gate, key_phrase
from vast_mcp.tools.params import InstanceId, Label, Timeout
from vast_mcp.vast import Instance, NotFoundError
from vast_mcp.views import UNTRUSTED_NOTE, InstanceView, describe_instance, raw_view, untrusted

QUEUED_START = (
    "Vast queued the start: the host's GPUs are rented to someone else right now. It starts, and GPU billing "
    "starts, whenever they are free, possibly hours from now. To cancel it, call stop_instance."
)
StatusFilter = Literal["running", "loading", "created", "exited", "offline", "unknown", "rebooting", "scheduling"]


class InstanceList(BaseModel):
    instances: list[InstanceView]
    count: int
    running_per_hour: float = Field(description="$/h of the running instances")
    storage_per_hour: float = Field(description="$/h of disk on instances that are not running")
    note: str = UNTRUSTED_NOTE


class InstanceDetail(BaseModel):
    instance: InstanceView
    raw: dict[str, Any] | None = Field(None, description="Vast's full object (only with raw=true)")
    note: str = UNTRUSTED_NOTE


class StateChange(BaseModel):
    instance_id: int
    action: str
    reached: bool = Field(description="the final state was verified by reading it back")
    state: str
    waited_s: float
    detail: str
    status_msg: str | None = Field(description="host text, untrusted")


async def list_instances(
    ctx: Context,
    label: Annotated[Label | None, Field(description="only instances with exactly this label")] = None,
    status: Annotated[StatusFilter | None, Field(description="only instances in this actual_status")] = None,
) -> InstanceList:
    """List the account's instances with status, price and SSH endpoints.

    Use it before renting (to spot instances already running or stopped-but-billing),
    to find an instance id, or to check what is billing right now.
    """
    found = await services(ctx).vast.instances.list(label=label, statuses=[status] if status else None)
    running = sum(i.dph_total for i in found if i.actual_status == "running")
    idle = sum(i.storage_total_cost for i in found if i.actual_status != "running")
    return InstanceList(
        instances=[InstanceView.of(i) for i in found],
        count=len(found),
        running_per_hour=round(running, 4),
        storage_per_hour=round(idle, 4),
    )


async def get_instance(
    ctx: Context,
    instance_id: InstanceId,
    raw: Annotated[bool, Field(description="also return Vast's full ~90-field object")] = False,
) -> InstanceDetail:
    """Show one instance: status, status message, price, image, disk and SSH endpoints."""
    record = await services(ctx).vast.instances.get_raw(instance_id)
    instance = Instance.model_validate(record)
    return InstanceDetail(instance=InstanceView.of(instance), raw=raw_view(record) if raw else None)


async def _wait(ctx: Context, instance_id: int, target: Target, timeout_s: float) -> WaitOutcome:
    settings = services(ctx).settings

    async def progress(step: float, message: str) -> None:
        await ctx.report_progress(step, message=message)

    return await wait_for_state(
        services(ctx).vast,
        instance_id,
        target,
        timeout_s=timeout_s,
        poll_s=settings.poll_interval,
        progress=progress,
    )


def _change(instance_id: int, action: str, outcome: WaitOutcome, target: str) -> StateChange:
    if outcome.reached:
        detail = f"verified {target}"
    elif outcome.failure:
        detail = f"will not reach {target}: {outcome.failure}"
    else:
        detail = f"not {target} yet after {outcome.waited_s:.0f}s (still {outcome.state}); call wait_for_instance"
    return StateChange(
        instance_id=instance_id,
        action=action,
        reached=outcome.reached,
        state=outcome.state,
        waited_s=round(outcome.waited_s, 1),
        detail=detail,
        status_msg=untrusted(outcome.instance.status_msg, 300) if outcome.instance else None,
    )


async def wait_for_instance(
    ctx: Context,
    instance_id: InstanceId,
    target: Annotated[Literal["running", "stopped", "gone"], Field(description="state to wait for")] = "running",
    timeout_seconds: Timeout = 900,
) -> StateChange:
    """Poll an instance until it is running, stopped, or gone, with progress notifications.

    Fails fast when the instance cannot get there (exited or offline while meant to run,
    or no heartbeat for a minute). Polls at most every few seconds, within Vast's rate limits.
    """
    outcome = await _wait(ctx, instance_id, target, timeout_seconds)
    return _change(instance_id, "wait", outcome, target)


def _starting(instance_id: int) -> Ask:
    async def describe(state: Services) -> str:
        inst = await state.vast.instances.get(instance_id)
        return (
            f"Start Vast {describe_instance(inst)}? GPU billing resumes at ${inst.dph_total:.3f}/h (storage "
            f"included) until it is stopped or destroyed. {key_phrase(state.vast.api_key)}"
        )

    return Ask("start_instance", {"instance_id": instance_id}, describe)


async def ask_start(instance_id: int, ctx: Context) -> Elicit[Confirm] | NotAsked:
    return await ask(ctx, _starting(instance_id))


async def start_instance(
    ctx: Context,
    instance_id: InstanceId,
    consent: Annotated[ElicitationResult[Confirm], Resolve(ask_start)],
    timeout_seconds: Timeout = 600,
    confirm_token: ConfirmToken = None,
) -> StateChange:
    """Start a stopped instance and wait until it is verified running. SPENDS MONEY (GPU billing
    resumes): the human confirms through a form, or, without forms, the first call returns a
    confirm_text and confirm_token (see create_instance). Starting needs the host's GPUs free.
    """
    await gate(ctx, consent, _starting(instance_id), confirm_token)
    if await services(ctx).vast.instances.set_state(instance_id, "running") == "queued":
        return StateChange(
            instance_id=instance_id,
            action="start",
            reached=False,
            state="queued",
            waited_s=0.0,
            detail=QUEUED_START,
            status_msg=None,
        )
    return _change(instance_id, "start", await _wait(ctx, instance_id, "running", timeout_seconds), "running")


async def stop_instance(ctx: Context, instance_id: InstanceId, timeout_seconds: Timeout = 300) -> StateChange:
    """Stop an instance and verify it stopped. GPU billing stops; its disk keeps billing until destroyed."""
    await services(ctx).vast.instances.set_state(instance_id, "stopped")
    return _change(instance_id, "stop", await _wait(ctx, instance_id, "stopped", timeout_seconds), "stopped")


async def reboot_instance(ctx: Context, instance_id: InstanceId, timeout_seconds: Timeout = 600) -> StateChange:
    """Restart an instance's container (keeps its GPUs and disk) and wait until it runs again."""
    await services(ctx).vast.instances.reboot(instance_id)
    return _change(instance_id, "reboot", await _wait(ctx, instance_id, "running", timeout_seconds), "running")


def _destroying(instance_id: int) -> Ask:
    async def describe(state: Services) -> str:
        inst = await state.vast.instances.get(instance_id)
        return (
            f"Destroy Vast {describe_instance(inst)}? Its disk and all data on it are deleted and all its "
            f"billing ends. This cannot be undone. {key_phrase(state.vast.api_key)}"
        )

    return Ask("destroy_instance", {"instance_id": instance_id}, describe)


async def ask_destroy(instance_id: int, ctx: Context) -> Elicit[Confirm] | NotAsked:
    return await ask(ctx, _destroying(instance_id))


async def destroy_instance(
    ctx: Context,
    instance_id: InstanceId,
    consent: Annotated[ElicitationResult[Confirm], Resolve(ask_destroy)],
    confirm_token: ConfirmToken = None,
) -> StateChange:
    """Destroy an instance: deletes its disk and ends all its billing, then verifies it is gone.
    The human confirms through a form, or, without forms, the first call returns confirm_text and a
    confirm_token for a second call after the user's yes. stop_instance keeps the disk (billed).
    """
    vast = services(ctx).vast
    already_gone = False
    try:
        await gate(ctx, consent, _destroying(instance_id), confirm_token)
        await vast.instances.destroy(instance_id)
    except NotFoundError:
        already_gone = True  # nothing to destroy (or consent to); verify below, and claim nothing
    outcome = await _wait(ctx, instance_id, "gone", 120)
    change = _change(instance_id, "destroy", outcome, "gone")
    if already_gone and outcome.reached:
        change.detail = "already gone: no such instance on this account, nothing was destroyed now"
    return change


class LabelResult(BaseModel):
    instance_id: int
    label: str


async def label_instance(ctx: Context, instance_id: InstanceId, label: Label) -> LabelResult:
    """Set an instance's label (used to find it again and in billing)."""
    await services(ctx).vast.instances.set_label(instance_id, label)
    return LabelResult(instance_id=instance_id, label=label)


TOOLS = [
    ToolSpec(list_instances, "read", "List instances", READ_ONLY),
    ToolSpec(get_instance, "read", "Show an instance", READ_ONLY),
    ToolSpec(wait_for_instance, "read", "Wait for an instance state", READ_ONLY),
    ToolSpec(start_instance, "write", "Start an instance", writes(destructive=False, idempotent=True)),
    ToolSpec(stop_instance, "write", "Stop an instance", writes(destructive=False, idempotent=True)),
    ToolSpec(reboot_instance, "write", "Reboot an instance", writes(destructive=False, idempotent=False)),
    ToolSpec(destroy_instance, "write", "Destroy an instance", writes(destructive=True, idempotent=True)),
    ToolSpec(label_instance, "write", "Label an instance", writes(destructive=False, idempotent=True)),
]
