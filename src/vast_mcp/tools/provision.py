"""plan_instance and create_instance: the dialog-first, quote-gated create."""

from __future__ import annotations

import time
from typing import Annotated

from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from pydantic import Field

from vast_mcp.provisioning.create import CreateOptions, CreateResult, execute_quote
from vast_mcp.provisioning.errors import NothingRented, QuoteError
from vast_mcp.provisioning.plan import PlanRequest, PlanResult, Policy, make_plan
from vast_mcp.provisioning.readiness import Progress
from vast_mcp.services import Services
from vast_mcp.spending.caps import Caps
from vast_mcp.tools.base import READ_ONLY, ToolSpec, services, writes
from vast_mcp.tools.confirm import Ask, Confirm, NotAsked, ask, gate
from vast_mcp.tools.params import (
    AnyGpu,
    AtDeadline,
    Bid,
    Countries,
    Env,
    GpuName,
    Hours,
    Image,
    MaxPrice,
    MinReliability,
    MinVram,
    NumGpus,
    ObjectiveArg,
    Onstart,
    Ports,
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
    count: Annotated[int | None, Field(ge=1, le=8)] = None,
    objective: ObjectiveArg | None = None,
    policy: Policy | None = None,
    ssh_public_key: PublicKeyArg = None,
    max_hours: Hours = None,
    at_deadline: AtDeadline | None = None,
    interruptible: bool = False,
    bid_per_hour: Bid = None,
    env: Env = None,
    ports: Ports = None,
    onstart: Onstart = None,
    private_image: Annotated[bool, Field(description="use the server's registry login")] = False,
) -> PlanResult:
    """Plan a rental (spends nothing) and mint its quote. Defaults: 1x RTX 4090,
    pytorch/pytorch:latest, 64 GB, 1 instance, cheapest, stop after 24 h. Show the user confirm_text
    and questions; create only after a yes.
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
        max_hours=max_hours,
        at_deadline=at_deadline,
        interruptible=interruptible,
        bid_per_hour=bid_per_hour,
        env=env,
        ports=tuple(ports) if ports else None,
        onstart=onstart,
        private_image=private_image,
    )
    return await make_plan(
        state.vast, state.quotes, request, settings=state.settings, deadlines=state.deadlines, now=time.time()
    )


def _renting(quote_id: str) -> Ask:
    async def describe(state: Services) -> str:
        return state.quotes.peek(quote_id).confirm_text  # what plan_instance showed, word for word

    return Ask("create_instance", {"quote_id": quote_id}, describe)


async def ask_create(quote_id: str, ctx: Context) -> Elicit[Confirm] | NotAsked:
    return await ask(ctx, _renting(quote_id))


async def create_instance(
    ctx: Context,
    quote_id: QuoteId,
    consent: Annotated[ElicitationResult[Confirm], Resolve(ask_create)],
    wait: Annotated[bool, Field(description="until running and SSH answers")] = True,
) -> CreateResult:
    """Rent what a plan_instance quote describes. SPENDS MONEY: only after the user's yes to
    its confirm_text (a form may ask too). Refuses a bad, used or expired quote, or a changed API key.
    Waits until it runs and SSH answers; on any failure says what exists and bills.
    """
    state = services(ctx)
    terms = state.quotes.peek(quote_id)  # a precise refusal for bad quotes, before anything else
    key = state.vast.api_key
    if terms.api_key_id != state.quotes.key_id(key):
        now = f"{key.origin} ({key.fingerprint})" if key else "no key"
        raise QuoteError(
            f"This quote was planned with the API key from {terms.api_key_origin} ({terms.api_key_fingerprint}), "
            f"but the server now uses {now}: a yes covers one account. Nothing was rented. Switch the key "
            "back, or call plan_instance again and confirm the new plan."
        )
    await gate(ctx, consent, _renting(quote_id), confirmed_in_chat=True)
    terms = state.quotes.redeem(quote_id)
    settings = state.settings

    async def progress(step: float, message: str) -> None:
        await ctx.report_progress(step, message=message)

    cfg = CreateOptions(
        wait=wait,
        deadlines=state.deadlines,
        caps=Caps.of(settings),
        poll_s=settings.poll_interval,
        ready_timeout_s=settings.ready_timeout,
        ssh_timeout_s=settings.ssh_timeout,
        ssh_interval_s=settings.ssh_interval,
        allow_private_ssh=settings.api_is_loopback,
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
