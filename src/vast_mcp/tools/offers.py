"""search_offers: ranked, compact, storage-inclusive offers."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from vast_mcp.provisioning.plan import DEFAULT_DISK_GB, DEFAULT_GPU
from vast_mcp.tools.base import READ_ONLY, ToolSpec, services
from vast_mcp.tools.params import (
    AnyGpu,
    Countries,
    DiskGb,
    GpuName,
    MaxPrice,
    MinCuda,
    MinReliability,
    MinVram,
    NumGpus,
    ObjectiveArg,
)
from vast_mcp.vast import MAX_OFFERS, OfferFilters
from vast_mcp.views import OfferView, raw_view


class OfferSearchResult(BaseModel):
    offers: list[OfferView]
    matched: int = Field(description="valid offers before the limit (Vast returns at most 64 per search)")
    disk_gb: float = Field(description="disk priced into price_per_hour")
    filters: str
    raw: list[dict[str, Any]] | None = Field(None, description="Vast's own offer objects (only with raw=true)")
    unreadable_fields: int = Field(description="fields Vast sent that could not be read (shown as unknown)")


async def search_offers(
    ctx: Context,
    gpu_name: GpuName = DEFAULT_GPU,
    any_gpu: AnyGpu = False,
    num_gpus: NumGpus = None,
    min_vram_gb: MinVram = None,
    countries: Countries = None,
    max_price_per_hour: MaxPrice = None,
    min_reliability: MinReliability = None,
    verified_only: bool = True,
    min_cuda: MinCuda = None,
    disk_gb: DiskGb = DEFAULT_DISK_GB,
    direct_ssh: Annotated[bool, Field(description="host has open ports")] = False,
    interruptible: Annotated[bool, Field(description="bid offers, priced at their minimum bid")] = False,
    objective: ObjectiveArg = "price",
    limit: Annotated[int, Field(ge=1, le=50)] = 10,
    raw: Annotated[bool, Field(description="add Vast's full objects (large)")] = False,
) -> OfferSearchResult:
    """Rentable GPU offers, best first, $/h with storage for disk_gb included (at most 64 per search).
    Spends nothing. No arguments: 1x RTX 4090, verified, 64 GB, cheapest. To rent, use plan_instance.
    """
    filters = OfferFilters(
        gpu_name=None if any_gpu else gpu_name,
        num_gpus=num_gpus,
        min_gpu_ram_gb=min_vram_gb,
        countries=tuple(countries) if countries else None,
        max_dph=max_price_per_hour,
        min_reliability=min_reliability,
        verified=True if verified_only else None,
        min_cuda=min_cuda,
        disk_gb=disk_gb,
        direct_ports=direct_ssh or None,
        interruptible=interruptible,
    )
    # Ask Vast for more than shown: local re-checks drop some (rented, over budget, ...).
    ranked = await services(ctx).vast.offers.search_with_raw(filters, objective, limit=MAX_OFFERS)
    top = ranked[:limit]
    return OfferSearchResult(
        offers=[OfferView.of(offer, disk_gb, interruptible=interruptible) for offer, _ in top],
        matched=len(ranked),
        disk_gb=disk_gb,
        filters=_summary(filters, objective),
        raw=[raw_view(record) for _, record in top] if raw else None,
        unreadable_fields=sum(len(offer.unreadable) for offer, _ in ranked),
    )


def _summary(filters: OfferFilters, objective: str) -> str:
    shown = filters.model_dump(exclude_none=True, exclude_defaults=True)
    return " ".join(f"{k}={v}" for k, v in shown.items()) + f" objective={objective}"


TOOLS = [ToolSpec(search_offers, "read", "Search GPU offers", READ_ONLY)]
