"""plan_instance: resolve every field, preflight the account, pick offers, mint a quote."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vast_mcp.provisioning.errors import UserFacingError
from vast_mcp.provisioning.quote import QuoteBook, QuoteTerms
from vast_mcp.provisioning.sshkeys import PublicKey, key_origin, resolve_public_key
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


async def make_plan(vast: VastClient, quotes: QuoteBook, request: PlanRequest, ssh_dir: Path) -> PlanResult:
    key = vast.api_key
    if key is None:
        raise UserFacingError(
            "No Vast API key is configured. Ask the user which source to use: the VAST_API_KEY "
            "environment variable, a key file they confirm (e.g. keys/.vast_env), or the OS keyring "
            "(`vast-mcp key set`); then call set_api_key_source."
        )
    fields: list[PlanField] = []

    def pick(name: str, given: object, default: object, shown: str | None = None) -> None:
        value = default if given is None else given
        fields.append(PlanField(name=name, value=shown or str(value), source="default" if given is None else "user"))

    filters = OfferFilters(
        gpu_name=None if request.any_gpu else (request.gpu_name or DEFAULT_GPU),
        num_gpus=request.num_gpus if request.num_gpus is not None else 1,
        min_gpu_ram_gb=request.min_vram_gb,
        countries=request.countries,
        max_dph=request.max_price_per_hour,
        min_reliability=request.min_reliability,
        verified=None if request.verified_only is False else True,
        disk_gb=request.disk_gb or DEFAULT_DISK_GB,
    )
    image = request.image or DEFAULT_IMAGE
    count = request.count or DEFAULT_COUNT
    objective: Objective = request.objective or "price"
    policy: Policy = request.policy or "cheapest"

    user = await vast.account.current_user()
    label = derive_label(user)
    instances = await vast.instances.list()
    active = [i for i in instances if (i.actual_status or "") not in GONE_STATES]
    ranked = await vast.offers.search(filters, objective)
    chosen = select(ranked, count, policy)

    fields.append(PlanField(name="api_key_source", value=f"{key.origin} ({key.fingerprint})", source="derived"))
    gpu_given = request.gpu_name is not None or request.any_gpu
    pick("gpu_name", True if gpu_given else None, DEFAULT_GPU, shown=filters.gpu_name or "any GPU")
    pick("num_gpus", request.num_gpus, 1)
    pick("image", request.image, DEFAULT_IMAGE)
    pick("disk_gb", request.disk_gb, DEFAULT_DISK_GB, shown=f"{filters.disk_gb:g}")
    pick("count", request.count, DEFAULT_COUNT)
    pick("objective", request.objective, "price")
    pick("policy", request.policy, "cheapest")
    pick("verified_only", request.verified_only, True)
    optional: dict[str, object] = {
        "min_vram_gb": request.min_vram_gb,
        "countries": ",".join(request.countries) if request.countries else None,
        "max_price_per_hour": request.max_price_per_hour,
        "min_reliability": request.min_reliability,
    }
    for name, given in optional.items():
        if given is not None:
            pick(name, given, None)
    fields.append(PlanField(name="label", value=label, source="derived"))

    questions: list[str] = []
    warnings: list[str] = []
    running = [i for i in active if i.actual_status == "running"]
    if running:
        warnings.append(
            f"{len(running)} instance(s) already running: "
            + ", ".join(f"{i.id} ({i.gpu_name}, ${i.dph_total:.3f}/h)" for i in running)
        )
        questions.append("You already have running instances. Stop or destroy any of them before renting more?")
    stopped = [i for i in active if i.intended_status == "stopped"]
    if stopped:
        warnings.append(
            f"{len(stopped)} stopped instance(s) still bill storage: "
            + ", ".join(f"{i.id} (${i.storage_total_cost:.4f}/h)" for i in stopped)
        )

    ssh_key: PublicKey | None = resolve_public_key(request.ssh_public_key, ssh_dir)
    if ssh_key is None:
        questions.append(
            f"No SSH public key found ({ssh_dir}/id_ed25519.pub or id_rsa.pub). "
            "Which public key should the instance accept? (a .pub path or the key text)"
        )
        fields.append(PlanField(name="ssh_public_key", value="missing", source="default"))
    else:
        where = str(ssh_key.path) if ssh_key.path else "given key text"
        fields.append(
            PlanField(
                name="ssh_public_key",
                value=f"{where} ({ssh_key.fingerprint})",
                source="user" if request.ssh_public_key else "default",
            )
        )

    if len(chosen) < count:
        raise UserFacingError(
            f"Only {len(chosen)} offer(s) match on distinct machines, {count} needed. Relax the filters "
            f"({_describe(filters)}) or lower count, then plan again."
        )
    prices = [o.price_per_hour(filters.disk_gb) for o in chosen]
    ceiling = ceiling_for(prices, request.max_price_per_hour)
    used = {o.id for o in chosen}
    fallbacks = [o for o in ranked if o.id not in used and o.price_per_hour(filters.disk_gb) <= ceiling][:MAX_FALLBACKS]
    total = round(sum(prices), 4)

    terms = QuoteTerms(
        offer_ids=tuple(o.id for o in chosen),
        fallback_ids=tuple(o.id for o in fallbacks),
        filters=filters,
        objective=objective,
        image=image,
        disk_gb=filters.disk_gb,
        count=count,
        label=label,
        price_ceiling=ceiling,
        total_per_hour=total,
        ssh_key_fingerprint=ssh_key.fingerprint if ssh_key else None,
        ssh_key_text=ssh_key.text if ssh_key else None,
        ssh_key_origin=key_origin(ssh_key) if ssh_key else None,
        api_key_origin=key.origin,
        api_key_fingerprint=key.fingerprint,
        api_key_id=quotes.key_id(key),
        expires_at=quotes.expires_at(),
    )
    terms = terms.model_copy(update={"confirm_text": confirmation_text(terms, chosen)})
    quote_id = quotes.mint(terms) if ssh_key is not None else None
    return PlanResult(
        quote_id=quote_id,
        expires_in_s=int(quotes.ttl_s),
        confirm_text=terms.confirm_text,
        fields=fields,
        chosen=[OfferView.of(o, filters.disk_gb) for o in chosen],
        fallbacks=[OfferView.of(o, filters.disk_gb) for o in fallbacks],
        total_per_hour=total,
        price_ceiling_per_hour=ceiling,
        active_instances=[InstanceView.of(i) for i in active],
        questions=questions,
        warnings=warnings,
    )


def confirmation_text(terms: QuoteTerms, chosen: list[Offer]) -> str:
    """The question the human answers. Derived only from the quote, so it never changes."""
    offers = "; ".join(
        f"offer {o.id}: {o.num_gpus}x {o.gpu_name}, {untrusted(o.geolocation or 'unknown location', 60)}, "
        f"${o.price_per_hour(terms.disk_gb):.3f}/h"
        for o in chosen
    )
    ssh = (
        f"SSH key {terms.ssh_key_fingerprint} ({terms.ssh_key_origin}) gets root login, and is registered on "
        "your Vast account if it is not there yet (it stays there for future instances)."
        if terms.ssh_key_fingerprint
        else "No SSH key."
    )
    return (
        f"Rent {terms.count} instance(s) for ${terms.total_per_hour:.3f}/h in total "
        f"(never above ${terms.price_ceiling:.2f}/h each, storage included). {offers}. "
        f"Image {terms.image}, disk {terms.disk_gb:g} GB, label {terms.label!r}, "
        f"filters: {_describe(terms.filters)}. {ssh} "
        f"API key from {terms.api_key_origin} ({terms.api_key_fingerprint}). "
        "GPU billing starts when it runs; disk bills until destroyed."
    )


def _describe(filters: OfferFilters) -> str:
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
    return " ".join(parts)
