"""plan_instance and create_instance: the dialog-first, quote-gated create."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from pydantic import Field

from vast_mcp.provisioning.create import CreateOptions, CreateResult, execute_quote
from vast_mcp.provisioning.errors import NothingRented, QuoteError
from vast_mcp.provisioning.plan import PlanRequest, PlanResult, Policy, make_plan
from vast_mcp.provisioning.readiness import Progress
from vast_mcp.tools.base import READ_ONLY, ToolSpec, services, writes
from vast_mcp.tools.confirm import Confirm, NotAsked, can_elicit, require_consent
from vast_mcp.tools.params import (
    AnyGpu,
    Countries,
    GpuName,
    Image,
    MaxPrice,
    MinReliability,
    MinVram,
    NumGpus,
    ObjectiveArg,
    PublicKeyArg,
)

QuoteId = Annotated[
    str,
    Field(min_length=5, max_length=80, pattern=r"^q-[A-Za-z0-9_\-]+$", description="quote_id from plan_instance"),
]


async def plan_instance(
    ctx: Context,
    gpu_name: GpuName | None = None,
    any_gpu: AnyGpu = False,
    num_gpus: NumGpus = None,
    min_vram_gb: MinVram = None,
    countries: Countries = None,
    max_price_per_hour: MaxPrice = None,
    min_reliability: MinReliability = None,
    verified_only: bool | None = None,
    image: Image | None = None,
    disk_gb: Annotated[float | None, Field(ge=1, le=8192)] = None,
    count: Annotated[int | None, Field(ge=1, le=8, description="on distinct machines")] = None,
    objective: ObjectiveArg | None = None,
    policy: Policy | None = None,
    ssh_public_key: PublicKeyArg = None,
) -> PlanResult:
    """Plan a rental and mint its quote; spends nothing. No arguments = defaults (1x RTX 4090,
    pytorch/pytorch:latest, 64 GB, 1 instance, cheapest; conservative = 2nd cheapest). Lists active
    instances, picks offers. Show the user confirm_text, defaults and questions; create_instance
    only after a yes.
    """
    state = services(ctx)
    request = PlanRequest(
        gpu_name=gpu_name,
        any_gpu=any_gpu,
        num_gpus=num_gpus,
        min_vram_gb=min_vram_gb,
        countries=tuple(c.upper() for c in countries) if countries else None,
        max_price_per_hour=max_price_per_hour,
        min_reliability=min_reliability,
        verified_only=verified_only,
        image=image,
        disk_gb=disk_gb,
        count=count,
        objective=objective,
        policy=policy,
        ssh_public_key=ssh_public_key,
    )
    return await make_plan(state.vast, state.quotes, request, state.settings.ssh_dir)


async def ask_create(quote_id: str, ctx: Context) -> Elicit[Confirm] | NotAsked:
    try:
        terms = services(ctx).quotes.peek(quote_id)
    except QuoteError:
        return NotAsked(reason="the quote is not valid")  # the tool body reports the precise reason
    if not can_elicit(ctx):
        return NotAsked(reason="this client cannot show a confirmation form")
    offers = ", ".join(str(i) for i in terms.offer_ids)
    return Elicit(
        f"Rent {terms.count} Vast instance(s) (offer {offers}) for ${terms.total_per_hour:.3f}/h in total, "
        f"never above ${terms.price_ceiling:.2f}/h each? Image {terms.image}, disk {terms.disk_gb:g} GB, "
        f"label {terms.label!r}, API key {terms.api_key_source} ({terms.api_key_fingerprint}). "
        "Billing starts now and continues until you destroy it.",
        Confirm,
    )


async def create_instance(
    ctx: Context,
    quote_id: QuoteId,
    consent: Annotated[ElicitationResult[Confirm], Resolve(ask_create)],
    wait: Annotated[bool, Field(description="until running and SSH answers")] = True,
) -> CreateResult:
    """Rent what a plan_instance quote describes. SPENDS MONEY. Call it only after the user
    confirmed that plan's confirm_text; the human is also asked through the client when it can
    show a form. Refuses without a valid, unexpired, unused quote from this server. With wait
    (default) it returns once the instance runs and answers SSH, with the ssh command; if any step
    fails it says exactly what exists and is billing.
    """
    state = services(ctx)
    state.quotes.peek(quote_id)  # a precise refusal for bad quotes, before anything else
    require_consent(consent, confirm_mode=state.settings.confirm, action="rent")
    terms = state.quotes.redeem(quote_id)
    settings = state.settings

    async def progress(step: float, message: str) -> None:
        await ctx.report_progress(step, message=message)

    cfg = CreateOptions(
        wait=wait,
        poll_s=settings.poll_interval,
        ready_timeout_s=settings.ready_timeout,
        ssh_timeout_s=settings.ssh_timeout,
        ssh_interval_s=settings.ssh_interval,
    )
    try:
        return await execute_quote(state.vast, terms, cfg, _monotonic(progress))
    except NothingRented:
        state.quotes.release(quote_id)
        raise


def _monotonic(progress: Progress) -> Progress:
    """MCP wants progress values to increase; domain steps restart per phase."""
    counter = [0.0]

    async def forward(_: float, message: str) -> None:
        counter[0] += 1
        await progress(counter[0], message)

    return forward


TOOLS = [
    ToolSpec(plan_instance, "read", "Plan a rental", READ_ONLY),
    ToolSpec(create_instance, "write", "Rent the quoted instance(s)", writes(destructive=True, idempotent=False)),
]
