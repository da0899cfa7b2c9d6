"""Offer search (`POST /api/v0/bundles/`)."""

from __future__ import annotations

from pydantic import TypeAdapter

from vast_mcp.vast.models import Offer
from vast_mcp.vast.query import Objective, OfferFilters, build_query, rank
from vast_mcp.vast.transport import VastHttp

_OFFERS = TypeAdapter(list[Offer])


class OffersApi:
    def __init__(self, http: VastHttp) -> None:
        self._http = http

    async def search_raw(self, query: dict[str, object]) -> list[dict[str, object]]:
        """The offers exactly as Vast sent them (for `raw` output and benchmarks)."""
        data = await self._http.request("POST", "/api/v0/bundles/", json_body=query, safe=True)
        offers = data.get("offers") if isinstance(data, dict) else None
        return offers if isinstance(offers, list) else []

    async def search(self, filters: OfferFilters, objective: Objective = "price", limit: int = 50) -> list[Offer]:
        """Valid offers for ``filters``, ranked best first by ``objective``."""
        raw = await self.search_raw(build_query(filters, objective, limit))
        return rank(_OFFERS.validate_python(raw), filters, objective)
