"""Carry out a confirmed quote: create, fall back once, reconcile, wait, attach SSH, prove SSH.

Money rules (DESIGN §5):
* the create request is sent once per attempt; a lost answer is reconciled by
  reading the instance list for this attempt's marker, never by sending again;
* an offer taken between plan and create gets exactly one retry, on the next
  live candidate that still fits the confirmed price ceiling;
* an instance that dies before running is destroyed (it would bill storage for
  nothing) and reported; anything left alive is reported with its price.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import anyio
from pydantic import BaseModel, Field

from vast_mcp.provisioning.errors import MaybeRented, NothingRented, UserFacingError
from vast_mcp.provisioning.logs import log_tail
from vast_mcp.provisioning.quote import QuoteTerms
from vast_mcp.provisioning.readiness import Progress, SshEndpoint, probe_ssh, ssh_endpoints, wait_for_state
from vast_mcp.provisioning.rental import MARKER_ENV
from vast_mcp.provisioning.sshkeys import ensure_on_account, parse_public_key
from vast_mcp.spending.audit import read_account
from vast_mcp.spending.caps import Caps, new_rental
from vast_mcp.spending.deadlines import DeadlineStore
from vast_mcp.spending.lifetime import Lifetime
from vast_mcp.vast import (
    CreateRequest,
    Instance,
    NotFoundError,
    Offer,
    OfferUnavailableError,
    OutcomeUnknownError,
    VastClient,
    VastError,
)
from vast_mcp.views import untrusted

FAILURE_LOG_LINES = 20  # the log tail a failed start reports


class CreatedInstance(BaseModel):
    instance_id: int
    offer_id: int
    state: str = Field(description="last known actual_status")
    price_per_hour: float
    billing: bool = Field(description="true while it exists (GPU while running, disk until destroyed)")
    deadline: str = Field(description='e.g. "stop at 2026-11-30 18:00 UTC", or "no deadline"')
    ssh_ready: bool = False
    ssh_command: str | None = None
    ssh_banner: str | None = None
    ports: dict[str, str] = Field(default_factory=dict, description='container port -> "host:port"')
    log_tail: str | None = Field(
        default=None, description="the container log's last lines when it failed to start (untrusted)"
    )
    notes: list[str] = Field(default_factory=list)


class CreateResult(BaseModel):
    ok: bool = Field(description="every requested instance is running (and answers SSH when waited for)")
    summary: str
    instances: list[CreatedInstance]
    billing_per_hour: float = Field(description="$/h of everything this call left existing")
    next_steps: list[str]


@dataclass
class CreateOptions:
    wait: bool
    deadlines: DeadlineStore  # where a new instance's deadline is recorded
    poll_s: float
    ready_timeout_s: float
    ssh_timeout_s: float
    ssh_interval_s: float = 3.0
    allow_private_ssh: bool = False  # the simulator on loopback: its hosts are loopback too
    caps: Caps = field(default_factory=Caps)  # checked once more right before anything is sent


async def _noop(_: float, __: str) -> None:
    return None


async def execute_quote(
    vast: VastClient, terms: QuoteTerms, cfg: CreateOptions, progress: Progress = _noop
) -> CreateResult:
    """Rent what ``terms`` describe. Once anything may have been rented, this never raises:
    every outcome, good or bad, is in the result, so nothing billing goes unreported."""
    now = time.time()
    await _check_caps(vast, terms, cfg, now)
    lifetime = Lifetime.starting(now=now, hours=terms.options.max_hours, action=terms.options.at_deadline)
    notes: list[str] = []
    if terms.ssh_key_text:
        await progress(0.5, "registering the SSH key on the account (if absent)")
        try:
            await ensure_on_account(vast, parse_public_key(terms.ssh_key_text))
        except VastError as exc:  # e.g. team keys cannot hold account keys; the per-instance attach still runs
            notes.append(f"the SSH key could not be registered on the account ({exc}); attaching per instance")
    try:
        live = await vast.offers.search(terms.filters, terms.objective)
    except VastError as exc:
        raise NothingRented(f"{exc} Nothing was rented; the same quote_id can be used again.") from None
    created: list[CreatedInstance] = []
    used_machines: set[int | None] = set()
    failures: list[str] = list(notes)
    uncertain: list[str] = []
    batch = secrets.token_hex(4)
    for slot, offer_id in enumerate(terms.offer_ids):
        try:
            made = await _create_slot(
                vast, terms, offer_id, live, used_machines, f"{batch}-{slot}", lifetime, cfg.poll_s, progress
            )
        except MaybeRented as exc:
            uncertain.append(f"instance {slot + 1}: {exc}")
            continue
        except (UserFacingError, VastError) as exc:
            failures.append(f"instance {slot + 1}: {exc}")
            continue
        lifetime.record(cfg.deadlines, made.instance_id, terms.account_id)  # at once: enforced whatever follows
        created.append(made)
    for made in created:
        await _check_price(vast, terms, made)
    if cfg.wait:
        for made in created:
            try:
                await _bring_up(vast, terms, made, cfg, progress)
            except VastError as exc:
                made.notes.append(f"could not follow it up ({exc}); it exists and bills: check get_instance")
    return _report(terms, created, failures, uncertain, cfg.wait)


async def _check_caps(vast: VastClient, terms: QuoteTerms, cfg: CreateOptions, now: float) -> None:
    """Refuse, sending nothing, when this rental would pass a spending cap (read fresh: the
    account may have changed since the plan)."""
    if not cfg.caps.any:
        return
    options = terms.options
    action = new_rental(
        terms.total_per_hour, terms.storage_per_hour, now=now, hours=options.max_hours, at_deadline=options.at_deadline
    )
    try:
        state = await read_account(vast, cfg.deadlines, cfg.caps, now=now, price_increases=False)
    except VastError as exc:
        raise NothingRented(f"{exc} Nothing was rented; the same quote_id can be used again.") from None
    verdict = state.verdict(cfg.caps, action)
    if not verdict.ok:
        raise NothingRented(f"{verdict.message} Nothing was rented.")


async def _check_price(vast: VastClient, terms: QuoteTerms, made: CreatedInstance) -> None:
    """Read the new instance back: a price above what the human confirmed is said first."""
    try:
        instance = await vast.instances.get(made.instance_id)
    except VastError as exc:
        made.notes.append(f"its price could not be read back ({exc})")
        return
    made.price_per_hour = round(instance.dph_total, 4)
    if instance.dph_total > terms.price_ceiling + 1e-9:
        made.notes.insert(
            0,
            f"PRICE ABOVE WHAT WAS CONFIRMED: it bills ${instance.dph_total:.3f}/h, over the confirmed ceiling of "
            f"${terms.price_ceiling:.2f}/h. Ask the user; destroy_instance {made.instance_id} unless they accept it.",
        )


async def _create_slot(
    vast: VastClient,
    terms: QuoteTerms,
    offer_id: int,
    live: list[Offer],
    used_machines: set[int | None],
    marker: str,
    lifetime: Lifetime,
    recheck_s: float,
    progress: Progress,
) -> CreatedInstance:
    target = _live_offer(live, offer_id, terms)
    retried = False
    if target is None:  # gone or repriced above the ceiling since the plan: that is our one retry
        retried = True
        target = _next_candidate(live, terms, used_machines)
    for attempt in (1, 2):
        if target is None:
            raise UserFacingError(
                f"no offer within the confirmed ceiling of ${terms.price_ceiling:.2f}/h is available "
                "any more; nothing was rented. Call plan_instance again for current prices."
            )
        try:
            made = await _create_once(vast, terms, target, f"{marker}-{attempt}", lifetime, recheck_s, progress)
        except OfferUnavailableError:
            if retried:
                raise UserFacingError(
                    f"offer {target.id} was taken too, after one retry; nothing was rented. Call plan_instance again."
                ) from None
            retried = True
            await progress(1.0, f"offer {target.id} was taken; trying the next candidate")
            live[:] = await vast.offers.search(terms.filters, terms.objective)
            used_machines.add(target.machine_id)
            target = _next_candidate(live, terms, used_machines)
            continue
        used_machines.add(target.machine_id)
        return made
    raise AssertionError("unreachable: two attempts at most")


def _price(offer: Offer, terms: QuoteTerms) -> float:
    return offer.price_per_hour(terms.disk_gb, bid=terms.options.bid_per_hour)


def _fits(offer: Offer, terms: QuoteTerms) -> bool:
    """Within the confirmed ceiling, and (a bid) not below the offer's minimum bid, which Vast refuses."""
    bid = terms.options.bid_per_hour
    return _price(offer, terms) <= terms.price_ceiling and (bid is None or offer.min_bid <= bid)


def _live_offer(live: list[Offer], offer_id: int, terms: QuoteTerms) -> Offer | None:
    for offer in live:
        if offer.id == offer_id and _fits(offer, terms):
            return offer
    return None


def _next_candidate(live: list[Offer], terms: QuoteTerms, used_machines: set[int | None]) -> Offer | None:
    """The best live offer that still matches the confirmed filters and ceiling (live is ranked)."""
    for offer in live:
        if offer.machine_id in used_machines and offer.machine_id is not None:
            continue
        if _fits(offer, terms):
            return offer
    return None


async def _create_once(
    vast: VastClient,
    terms: QuoteTerms,
    offer: Offer,
    marker: str,
    lifetime: Lifetime,
    recheck_s: float,
    progress: Progress,
) -> CreatedInstance:
    options = terms.options
    label = lifetime.label(terms.label)
    request = CreateRequest(
        image=terms.image,
        disk=terms.disk_gb,
        label=label,
        env=options.env_body((MARKER_ENV, marker)),
        onstart=lifetime.onstart(options.onstart),
        price=options.bid_per_hour,
        image_login=options.image_login(),
    )
    price = _price(offer, terms)
    await progress(1.0, f"renting offer {offer.id} ({offer.num_gpus}x {offer.gpu_name}, ${price:.3f}/h)")
    try:
        instance_id = await vast.instances.create(offer.id, request)
    except OutcomeUnknownError:
        await progress(1.5, "the create's answer was lost; checking the instance list instead of resending")
        found = await _reconcile(vast, label, marker, recheck_s)
        if found is None:
            raise UserFacingError(
                f"the answer to renting offer {offer.id} was lost and, read twice, the instance list "
                "holds no instance with this request's marker: nothing was rented. Call plan_instance "
                "again to retry."
            ) from None
        instance_id = found.id
    return CreatedInstance(
        instance_id=instance_id,
        offer_id=offer.id,
        state="created",
        price_per_hour=round(price, 4),
        billing=True,
        deadline=lifetime.describe(),
    )


async def _reconcile(vast: VastClient, label: str, marker: str, recheck_s: float) -> Instance | None:
    """Find the instance a lost create made, by label and this attempt's marker.

    Read twice (a create can surface in the list a moment late, and a read can fail). If no
    read succeeded, nobody can tell whether something bills: :class:`MaybeRented`, never "nothing".
    """
    error: VastError | None = None
    read_ok = False
    for attempt in (1, 2):
        if attempt == 2:
            await anyio.sleep(recheck_s)
        try:
            candidates = await vast.instances.list(label=label)
        except VastError as exc:
            error = exc
            continue
        read_ok = True
        for instance in candidates:
            if instance.extra_env.get(MARKER_ENV) == marker:
                return instance
    if not read_ok:
        raise MaybeRented(
            f"the create's answer was lost and the instance list could not be read ({error}). An instance "
            f"labelled {label!r} may exist and bill: call list_instances before anything else, and do "
            "not plan again until it is checked."
        )
    return None


async def _bring_up(
    vast: VastClient, terms: QuoteTerms, made: CreatedInstance, cfg: CreateOptions, progress: Progress
) -> None:
    outcome = await wait_for_state(
        vast, made.instance_id, "running", timeout_s=cfg.ready_timeout_s, poll_s=cfg.poll_s, progress=progress
    )
    made.state = outcome.state
    if not outcome.reached:
        if outcome.failure is None:
            made.notes.append(
                f"not running after {outcome.waited_s:.0f}s (status {outcome.state}); it exists and bills. "
                "Wait longer with wait_for_instance, or destroy it."
            )
            return
        made.notes.append(f"failed to start: {outcome.failure}")
        try:
            made.log_tail, _ = await log_tail(vast, made.instance_id, FAILURE_LOG_LINES)
        except VastError:
            made.notes.append(f"its log could not be read; get_instance_logs {made.instance_id} may show why")
        await _destroy_dud(vast, made)
        return
    instance = outcome.instance
    assert instance is not None
    if terms.ssh_key_text:
        try:
            await vast.ssh.attach(made.instance_id, terms.ssh_key_text)
        except VastError as exc:
            made.notes.append(f"attaching the SSH key failed ({exc}); retry with attach_ssh_key")
    endpoints = ssh_endpoints(instance, allow_private=cfg.allow_private_ssh)
    probe = await probe_ssh(endpoints, timeout_s=cfg.ssh_timeout_s, interval_s=cfg.ssh_interval_s, progress=progress)
    made.ssh_ready = probe.ready
    chosen: SshEndpoint | None = probe.endpoint or (endpoints[0] if endpoints else None)
    made.ssh_command = chosen.command if chosen else None
    made.ssh_banner = untrusted(probe.banner, 100) if probe.banner else None
    made.ports = instance.mapped_ports
    if not probe.ready:
        made.notes.append(
            f"running, but SSH did not answer within {cfg.ssh_timeout_s:.0f}s; try check_ssh again shortly"
        )


async def _destroy_dud(vast: VastClient, made: CreatedInstance) -> None:
    """An instance that died before running is useless and bills disk: remove it."""
    try:
        await vast.instances.destroy(made.instance_id)
        try:
            await vast.instances.get(made.instance_id)
        except NotFoundError:
            made.billing = False
            made.state = "destroyed"
            made.notes.append("it was destroyed so it does not keep billing")
            return
        made.notes.append("destroy was requested but it still exists; check it with get_instance")
    except VastError as exc:
        made.notes.append(f"destroying it failed ({exc}); it still bills: destroy_instance {made.instance_id}")


def _report(
    terms: QuoteTerms, created: list[CreatedInstance], failures: list[str], uncertain: list[str], waited: bool
) -> CreateResult:
    alive = [c for c in created if c.billing]
    complete = len(created) == terms.count and not failures and not uncertain
    ready = all(c.state == "running" and (c.ssh_ready or not terms.ssh_key_text) for c in created)
    good = complete and (ready or not waited)
    billing = round(sum(c.price_per_hour for c in alive), 4)
    parts = [f"{len(alive)} of {terms.count} instance(s) exist and bill ${billing:.3f}/h in total."]
    if uncertain:
        parts.append("More may exist: see below.")
    parts += failures + uncertain
    for c in created:
        if c.notes:
            parts.append(f"instance {c.instance_id}: " + "; ".join(c.notes))
    steps: list[str] = []
    if alive and not good:
        ids = ", ".join(str(c.instance_id) for c in alive)
        steps.append(f"Ask the user whether to keep or destroy instance(s) {ids} (destroy_instance).")
    if uncertain:
        steps.append(
            f"An instance labelled {terms.label!r} may exist and bill: call list_instances before anything "
            "else; plan again only once it is checked."
        )
    elif not alive and failures:
        steps.append("Nothing is billing. Call plan_instance again to get a fresh quote.")
    for c in alive:
        if c.ssh_command and c.ssh_ready:
            steps.append(f"Connect: {c.ssh_command}")
    if alive:
        steps.append("When done: stop_instance keeps the disk (still billed), destroy_instance ends all billing.")
    return CreateResult(ok=good, summary=" ".join(parts), instances=created, billing_per_hour=billing, next_steps=steps)
