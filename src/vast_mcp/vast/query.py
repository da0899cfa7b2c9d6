"""Offer filters as a typed object, turned into Vast's ``{field: {op: value}}`` query.

Every query carries the mandatory ``rentable=true`` and ``rented=false`` and asks
Vast to price storage for the disk the user will really allocate
(``allocated_storage``), so ``dph_total`` is the storage-inclusive $/h.
Ranking is done here too, on our side, so the order never depends on Vast's.
A search answers at most ``MAX_OFFERS`` offers whatever ``limit`` says (reference §11),
so the limit sent is capped there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vast_mcp.vast.models import Offer

Objective = Literal["price", "performance", "reliability"]

MAX_OFFERS = 64  # the most offers one search returns, whatever the limit (seen live)

# An offer whose price or availability cannot be read is never offered: its defaults
# (price 0, rentable) would rank it first.
_MUST_READ = frozenset({"dph_base", "storage_cost", "rentable", "rented"})

# Vast sorts server-side first; we re-rank locally with the same intent.
_ORDER: dict[Objective, list[list[str]]] = {
    "price": [["dph_total", "asc"]],
    "performance": [["dlperf", "desc"]],
    "reliability": [["reliability", "desc"]],
}


class OfferFilters(BaseModel):
    """What the user asked for. ``None`` means "no constraint"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu_name: str | None = Field(default=None, description='exact GPU model, e.g. "RTX 4090"')
    num_gpus: int | None = Field(default=None, ge=1, le=16, description="GPUs per instance (exact)")
    min_gpu_ram_gb: float | None = Field(default=None, ge=0, le=1024, description="VRAM per GPU, GB")
    countries: tuple[str, ...] | None = Field(default=None, description="two-letter country codes")
    max_dph: float | None = Field(default=None, gt=0, le=1000, description="storage-inclusive $/h per instance")
    min_reliability: float | None = Field(default=None, ge=0, le=1)
    verified: bool | None = Field(default=True, description="only Vast-verified machines")
    min_cuda: float | None = Field(default=None, ge=0, le=99)
    disk_gb: float = Field(default=64, ge=1, le=8192, description="disk to allocate, GB (priced into dph_total)")
    direct_ports: bool | None = Field(default=None, description="require open host ports for direct SSH")
    interruptible: bool = Field(default=False, description="bid (interruptible) offers; they carry min_bid")


def build_query(filters: OfferFilters, objective: Objective = "price", limit: int = 50) -> dict[str, Any]:
    """The JSON body for ``POST /api/v0/bundles/`` (``limit`` capped at ``MAX_OFFERS``)."""
    if limit < 1:
        raise ValueError(f"An offer search needs a limit of at least 1, not {limit}.")
    q: dict[str, Any] = {"rentable": {"eq": True}, "rented": {"eq": False}}
    if filters.verified is not None:
        q["verified"] = {"eq": filters.verified}
    if filters.gpu_name:
        q["gpu_name"] = {"eq": filters.gpu_name}
    if filters.num_gpus is not None:
        q["num_gpus"] = {"eq": filters.num_gpus}
    if filters.min_gpu_ram_gb is not None:
        q["gpu_ram"] = {"gte": filters.min_gpu_ram_gb * 1000}  # API unit is MB
    if filters.countries:
        q["geolocation"] = {"in": [c.upper() for c in filters.countries]}
    if filters.max_dph is not None:
        q["dph_total"] = {"lte": filters.max_dph}
    if filters.min_reliability is not None:
        q["reliability"] = {"gte": filters.min_reliability}
    if filters.min_cuda is not None:
        q["cuda_max_good"] = {"gte": filters.min_cuda}
    if filters.direct_ports:
        q["direct_port_count"] = {"gte": 1}
    q["disk_space"] = {"gte": filters.disk_gb}
    q["order"] = _ORDER[objective]
    q["type"] = "bid" if filters.interruptible else "on-demand"
    q["limit"] = min(limit, MAX_OFFERS)
    q["allocated_storage"] = filters.disk_gb
    return q


def matches(offer: Offer, filters: OfferFilters) -> bool:
    """Re-check an offer locally: Vast's filtering is not something to trust with money."""
    checks = [
        not _MUST_READ.intersection(offer.unreadable),
        offer.rentable and not offer.rented,
        filters.gpu_name is None or offer.gpu_name == filters.gpu_name,
        filters.num_gpus is None or offer.num_gpus == filters.num_gpus,
        filters.min_gpu_ram_gb is None or offer.gpu_ram >= filters.min_gpu_ram_gb * 1000,
        not filters.countries or offer.country in {c.upper() for c in filters.countries},
        filters.max_dph is None or _price(offer, filters) <= filters.max_dph,
        filters.min_reliability is None or offer.reliability >= filters.min_reliability,
        filters.verified is None or (offer.verification == "verified") == filters.verified,
        filters.min_cuda is None or offer.cuda_max_good >= filters.min_cuda,
        not filters.direct_ports or offer.direct_port_count >= 1,
        offer.disk_space >= filters.disk_gb,
    ]
    return all(checks)


def _price(offer: Offer, filters: OfferFilters) -> float:
    """What renting it costs at least: the on-demand price, or (interruptible) the minimum bid."""
    return offer.price_per_hour(filters.disk_gb, bid=offer.min_bid if filters.interruptible else None)


def rank(offers: Iterable[Offer], filters: OfferFilters, objective: Objective = "price") -> list[Offer]:
    """Valid offers, best first. Ties break on price, then reliability, then id (stable)."""

    def key(o: Offer) -> tuple[float, float, float, int]:
        price = _price(o, filters)
        if objective == "price":
            return (price, -o.reliability, 0.0, o.id)
        if objective == "performance":
            return (-o.dlperf, price, -o.reliability, o.id)
        return (-o.reliability, price, 0.0, o.id)

    return sorted((o for o in offers if matches(o, filters)), key=key)
