"""plan_instance: resolve every field, preflight the account, pick offers, mint a quote."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vast_mcp.provisioning.errors import UserFacingError
from vast_mcp.provisioning.quote import QuoteBook, QuoteTerms
from vast_mcp.provisioning.rental import RentalOptions, resolve_options
from vast_mcp.provisioning.sshkeys import PublicKey, key_origin, resolve_public_key
from vast_mcp.settings import Settings
from vast_mcp.spending.audit import AccountState, read_account, report
from vast_mcp.spending.caps import Caps, CapVerdict, new_rental
from vast_mcp.spending.deadlines import DeadlineStore
from vast_mcp.spending.guard import DeadlineAction
from vast_mcp.vast import Offer, OfferFilters, User, VastClient
from vast_mcp.vast.query import Objective
from vast_mcp.views import InstanceView, OfferView, untrusted

Policy = Literal["cheapest", "conservative"]

# DESIGN §5: the defaults the dialog proposes.
DEFAULT_GPU = "RTX 4090"
DEFAULT_IMAGE = "pytorch/pytorch:latest"
DEFAULT_DISK_GB = 64.0
DEFAULT_COUNT = 1
CEILING_HEADROOM = 1.10  # a confirmed plan may rent up to 10% above the shown price (a price move)
DEFAULT_BID_MARGIN = 1.10  # an interruptible plan proposes 10% over the current minimum bid
MAX_FALLBACKS = 3
GONE_STATES = frozenset({"destroyed", "deleted"})


class PlanRequest(BaseModel):
    """What the user said; ``None`` means "use the default" (shown as such in the plan)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu_name: str | None = None
    any_gpu: bool = False
    num_gpus: int | None = None
    min_vram_gb: float | None = None
    countries: tuple[str, ...] | None = None
    max_price_per_hour: float | None = None
    min_reliability: float | None = None
    verified_only: bool | None = None
    image: str | None = None
    disk_gb: float | None = None
    count: int | None = None
    objective: Objective | None = None
    policy: Policy | None = None
    ssh_public_key: str | None = None
    interruptible: bool = False
    bid_per_hour: float | None = None
    env: Mapping[str, str] | None = None
    ports: tuple[int, ...] | None = None
    onstart: str | None = None
    private_image: bool = False
    max_hours: float | None = None
    at_deadline: DeadlineAction | None = None


class PlanField(BaseModel):
    name: str
    value: str
    source: Literal["default", "user", "derived"]


class PlanResult(BaseModel):
    quote_id: str | None = Field(
        description="pass to create_instance after the human confirms; null = not rentable yet"
    )
    expires_in_s: int
    confirm_text: str = Field(description="show this to the human verbatim and ask yes/no")
    fields: list[PlanField]
    chosen: list[OfferView]
    fallbacks: list[OfferView]
    total_per_hour: float = Field(description="$/h for all instances, storage included")
    price_ceiling_per_hour: float = Field(description="per instance; a create never rents above it")
    spending: str = Field(description="the account's $/h and 24 h projection after this rental, against the caps")
    active_instances: list[InstanceView]
    questions: list[str] = Field(description="ask these before creating")
    warnings: list[str]


def derive_label(user: User) -> str:
    """Nickname, else the e-mail's local part, else ``vast-user`` (DESIGN §5)."""
    if user.username and user.username.strip():
        return user.username.strip()[:64]
    if user.email and "@" in user.email and user.email.split("@", 1)[0].strip():
        return user.email.split("@", 1)[0].strip()[:64]
    return "vast-user"


def select(ranked: list[Offer], count: int, policy: Policy) -> list[Offer]:
    """``count`` offers on distinct machines; conservative skips the single best one."""
    start = 1 if policy == "conservative" and len(ranked) > count else 0
    chosen: list[Offer] = []
    machines: set[int | None] = set()
    for offer in ranked[start:]:
        if offer.machine_id in machines and offer.machine_id is not None:
            continue
        chosen.append(offer)
        machines.add(offer.machine_id)
        if len(chosen) == count:
            break
    return chosen


def ceiling_for(prices: list[float], max_price: float | None) -> float:
    if max_price is not None:
        return max_price
    return math.ceil(max(prices) * CEILING_HEADROOM * 100) / 100


def default_bid(chosen: list[Offer]) -> float:
    """A bid a little over the highest current minimum among the chosen offers (rounded up to a cent)."""
    return math.ceil(max(o.min_bid for o in chosen) * DEFAULT_BID_MARGIN * 100) / 100 or 0.01


class _Fields:
    """The plan's fields, each marked default, user or derived."""

    def __init__(self) -> None:
        self.items: list[PlanField] = []

    def pick(self, name: str, given: object, default: object, shown: str | None = None) -> None:
        value = default if given is None else given
        self.items.append(
            PlanField(name=name, value=shown or str(value), source="default" if given is None else "user")
        )

    def derived(self, name: str, value: str) -> None:
        self.items.append(PlanField(name=name, value=value, source="derived"))


async def make_plan(
    vast: VastClient,
    quotes: QuoteBook,
    request: PlanRequest,
    *,
    settings: Settings,
    deadlines: DeadlineStore,
    now: float,
) -> PlanResult:
    key = vast.api_key
    if key is None:
        raise UserFacingError(
            "No Vast API key is configured. Ask the user which source to use: the VAST_API_KEY "
            "environment variable, a key file they confirm (e.g. keys/.vast_env), or the OS keyring "
            "(`vast-mcp key set`); then call set_api_key_source."
        )
    image = request.image or DEFAULT_IMAGE
    max_hours = request.max_hours if request.max_hours is not None else settings.default_ttl_hours
    at_deadline: DeadlineAction = request.at_deadline or "stop"
    options = resolve_options(  # every check on the extras, before anything is sent
        image=image,
        interruptible=request.interruptible,
        bid_per_hour=request.bid_per_hour,
        env=request.env,
        ports=list(request.ports or ()),
        onstart=request.onstart,
        private_image=request.private_image,
        max_hours=max_hours,
        at_deadline=at_deadline,
    )
    filters = OfferFilters(
        gpu_name=None if request.any_gpu else (request.gpu_name or DEFAULT_GPU),
        num_gpus=request.num_gpus if request.num_gpus is not None else 1,
        min_gpu_ram_gb=request.min_vram_gb,
        countries=request.countries,
        max_dph=request.max_price_per_hour,
        min_reliability=request.min_reliability,
        verified=None if request.verified_only is False else True,
        disk_gb=request.disk_gb or DEFAULT_DISK_GB,
        interruptible=request.interruptible,
    )
    count = request.count or DEFAULT_COUNT
    objective: Objective = request.objective or "price"
    policy: Policy = request.policy or "cheapest"

    user = await vast.account.current_user()
    label = derive_label(user)
    caps = Caps.of(settings)
    account = await read_account(vast, deadlines, caps, now=now)
    ranked = await vast.offers.search(filters, objective)
    chosen = select(ranked, count, policy)
    if len(chosen) < count:
        raise UserFacingError(
            f"Only {len(chosen)} offer(s) match on distinct machines, {count} needed. Relax the filters "
            f"({describe_filters(filters)}) or lower count, then plan again."
        )

    fields = _Fields()
    fields.derived("api_key_source", f"{key.origin} ({key.fingerprint})")
    gpu_given = request.gpu_name is not None or request.any_gpu
    fields.pick("gpu_name", True if gpu_given else None, DEFAULT_GPU, shown=filters.gpu_name or "any GPU")
    fields.pick("num_gpus", request.num_gpus, 1)
    fields.pick("image", request.image, DEFAULT_IMAGE)
    fields.pick("disk_gb", request.disk_gb, DEFAULT_DISK_GB, shown=f"{filters.disk_gb:g}")
    fields.pick("count", request.count, DEFAULT_COUNT)
    fields.pick("objective", request.objective, "price")
    fields.pick("policy", request.policy, "cheapest")
    fields.pick("verified_only", request.verified_only, True)
    fields.pick("max_hours", request.max_hours, settings.default_ttl_hours, shown=f"{max_hours:g} (0 = no deadline)")
    fields.pick("at_deadline", request.at_deadline, "stop")
    optional: dict[str, object] = {
        "min_vram_gb": request.min_vram_gb,
        "countries": ",".join(request.countries) if request.countries else None,
        "max_price_per_hour": request.max_price_per_hour,
        "min_reliability": request.min_reliability,
        "ports": ",".join(str(p) for p in options.ports) or None,
        "env": ",".join(name for name, _ in options.env) or None,  # names only, never values
    }
    for name, given in optional.items():
        if given is not None:
            fields.pick(name, given, None)
    fields.derived("label", label)

    questions: list[str] = []
    warnings = _preflight(account)
    active = [i for i in account.instances if (i.actual_status or "") not in GONE_STATES]
    running = [i for i in active if i.actual_status == "running"]
    if running:
        warnings.insert(
            0,
            f"{len(running)} instance(s) already running: "
            + ", ".join(f"{i.id} ({i.gpu_name}, ${i.dph_total:.3f}/h)" for i in running),
        )
        questions.append("You already have running instances. Stop or destroy any of them before renting more?")

    bid = None
    if options.interruptible:
        bid, bid_warnings = _bid(options, chosen, fields)
        warnings += bid_warnings
        options = options.model_copy(update={"bid_per_hour": bid})

    ssh_key: PublicKey | None = resolve_public_key(request.ssh_public_key, settings.ssh_dir)
    if ssh_key is None:
        questions.append(
            f"No SSH public key found ({settings.ssh_dir}/id_ed25519.pub or id_rsa.pub). "
            "Which public key should the instance accept? (a .pub path or the key text)"
        )
        fields.pick("ssh_public_key", None, "missing")
    else:
        where = str(ssh_key.path) if ssh_key.path else "given key text"
        fields.pick("ssh_public_key", request.ssh_public_key, None, shown=f"{where} ({ssh_key.fingerprint})")

    disk = filters.disk_gb
    prices = [o.price_per_hour(disk, bid=bid) for o in chosen]
    # A bid is the price: its ceiling is the bid plus storage (rounded up, never below what is charged).
    ceiling = ceiling_for(prices, request.max_price_per_hour) if bid is None else math.ceil(max(prices) * 1e4) / 1e4
    used = {o.id for o in chosen}
    fallbacks = [o for o in ranked if o.id not in used and o.price_per_hour(disk, bid=bid) <= ceiling][:MAX_FALLBACKS]
    total = round(sum(prices), 4)
    storage = sum(o.storage_cost * disk / 720 for o in chosen)
    verdict = account.verdict(caps, new_rental(total, storage, now=now, hours=max_hours, at_deadline=at_deadline))
    if not verdict.ok:
        warnings.append(verdict.message)
        questions.append("This rental would pass a spending cap: make room, shorten max_hours, or change the plan?")

    terms = QuoteTerms(
        offer_ids=tuple(o.id for o in chosen),
        fallback_ids=tuple(o.id for o in fallbacks),
        filters=filters,
        objective=objective,
        image=image,
        disk_gb=disk,
        count=count,
        label=label,
        price_ceiling=ceiling,
        total_per_hour=total,
        storage_per_hour=round(storage, 6),
        options=options,
        ssh_key_fingerprint=ssh_key.fingerprint if ssh_key else None,
        ssh_key_text=ssh_key.text if ssh_key else None,
        ssh_key_origin=key_origin(ssh_key) if ssh_key else None,
        api_key_origin=key.origin,
        api_key_fingerprint=key.fingerprint,
        api_key_id=quotes.key_id(key),
        account_id=user.id,
        expires_at=quotes.expires_at(),
    )
    terms = terms.model_copy(update={"confirm_text": confirmation_text(terms, chosen, verdict)})
    rentable = ssh_key is not None and verdict.ok
    return PlanResult(
        quote_id=quotes.mint(terms) if rentable else None,
        expires_in_s=int(quotes.ttl_s),
        confirm_text=terms.confirm_text,
        fields=fields.items,
        chosen=[OfferView.of(o, disk, bid=bid) for o in chosen],
        fallbacks=[OfferView.of(o, disk, bid=bid) for o in fallbacks],
        total_per_hour=total,
        price_ceiling_per_hour=ceiling,
        spending=verdict.summary,
        active_instances=[InstanceView.of(i) for i in active],
        questions=questions,
        warnings=warnings,
    )


def _preflight(account: AccountState) -> list[str]:
    """One line per instance the leak report flags (the same findings as audit_spend)."""
    lines = []
    for audited in report(account, Caps()).instances:
        for finding in audited.findings:
            if finding.kind in ("not_ours", "no_deadline"):
                continue  # worth audit_spend's attention, not a reason to pause a new rental
            lines.append(f"instance {audited.id}: {finding.detail}; {finding.suggestion}")
    return lines


def _bid(options: RentalOptions, chosen: list[Offer], fields: _Fields) -> tuple[float, list[str]]:
    """The bid for an interruptible plan (the user's, else a default), and what to warn about."""
    bid = options.bid_per_hour
    fields.pick("bid_per_hour", bid, None, shown=f"{bid if bid is not None else default_bid(chosen):.3f}")
    bid = bid if bid is not None else default_bid(chosen)
    for offer in chosen:
        if bid > offer.dph_base:
            raise UserFacingError(
                f"The bid ${bid:.3f}/h is above offer {offer.id}'s on-demand price ${offer.dph_base:.3f}/h: rent it "
                "on-demand instead (interruptible=false), or bid less. Nothing was done."
            )
    return bid, [
        f"The bid ${bid:.3f}/h is at or below offer {o.id}'s current minimum bid ${o.min_bid:.3f}/h: Vast may "
        "refuse it or outbid it at once."
        for o in chosen
        if bid <= o.min_bid
    ]


def confirmation_text(terms: QuoteTerms, chosen: list[Offer], verdict: CapVerdict) -> str:
    """The question the human answers. Derived only from the quote, so it never changes."""
    options = terms.options
    bid = options.bid_per_hour
    offers = "; ".join(
        f"offer {o.id}: {o.num_gpus}x {o.gpu_name}, {untrusted(o.geolocation or 'unknown location', 60)}, "
        f"${o.price_per_hour(terms.disk_gb, bid=bid):.3f}/h"
        for o in chosen
    )
    ssh = (
        f"SSH key {terms.ssh_key_fingerprint} ({terms.ssh_key_origin}) gets root login and is added to your "
        "Vast account if absent (kept for future instances)."
        if terms.ssh_key_fingerprint
        else "No SSH key."
    )
    kind = (
        f"Interruptible at a bid of ${bid:.3f}/h per instance: when outbid, Vast stops it (its disk still bills)."
        if bid is not None
        else "On-demand."
    )
    if options.max_hours:
        fate = "stopped" if options.at_deadline == "stop" else "DESTROYED (its disk and data deleted)"
        lifetime = (
            f"Deadline: it is {fate} {options.max_hours:g} h after it is created (enforced inside the instance "
            "and by this server)."
        )
    else:
        lifetime = "No deadline: it runs and bills until someone stops or destroys it."
    return " ".join(
        [
            f"Rent {terms.count} instance(s) for ${terms.total_per_hour:.3f}/h in total "
            f"(never above ${terms.price_ceiling:.2f}/h each, storage included). {offers}.",
            kind,
            f"Image {terms.image}, disk {terms.disk_gb:g} GB, label {terms.label!r}, "
            f"filters: {describe_filters(terms.filters)}.",
            *options.describe(),
            lifetime,
            ssh,
            f"API key from {terms.api_key_origin} ({terms.api_key_fingerprint}).",
            f"Spending after it: {verdict.summary}.",
            "GPU billing starts when it runs; disk bills until destroyed.",
        ]
    )


def describe_filters(filters: OfferFilters) -> str:
    parts = [
        f"gpu={filters.gpu_name or 'any'}",
        f"num_gpus={filters.num_gpus or 'any'}",
        f"disk>={filters.disk_gb:g}GB",
    ]
    if filters.min_gpu_ram_gb is not None:
        parts.append(f"vram>={filters.min_gpu_ram_gb:g}GB")
    if filters.countries:
        parts.append(f"countries={','.join(filters.countries)}")
    if filters.max_dph is not None:
        parts.append(f"max ${filters.max_dph:g}/h")
    if filters.min_reliability is not None:
        parts.append(f"reliability>={filters.min_reliability:g}")
    if filters.verified:
        parts.append("verified")
    if filters.min_cuda is not None:
        parts.append(f"cuda>={filters.min_cuda:g}")
    if filters.direct_ports:
        parts.append("direct ssh")
    if filters.interruptible:
        parts.append("interruptible")
    return " ".join(parts)
