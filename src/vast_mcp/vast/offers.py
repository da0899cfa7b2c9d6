"""Offer search (`POST /api/v0/bundles/`)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from vast_mcp.vast.models import Offer
from vast_mcp.vast.query import Objective, OfferFilters, build_query, rank
from vast_mcp.vast.transport import VastHttp

_OFFERS = TypeAdapter(list[Offer])


class OffersApi:
    def __init__(self, http: VastHttp) -> None:
        self._http = http

    async def search_raw(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """The offers exactly as Vast sent them (for `raw` output and benchmarks)."""
        data = await self._http.request("POST", "/api/v0/bundles/", json_body=query, safe=True)
        offers = data.get("offers") if isinstance(data, dict) else None
        return offers if isinstance(offers, list) else []

    async def search(self, filters: OfferFilters, objective: Objective = "price", limit: int = 50) -> list[Offer]:
        """Valid offers for ``filters``, ranked best first by ``objective``."""
        return [offer for offer, _ in await self.search_with_raw(filters, objective, limit)]

    async def search_with_raw(
        self, filters: OfferFilters, objective: Objective = "price", limit: int = 50
    ) -> list[tuple[Offer, dict[str, Any]]]:
        """Like :meth:`search`, each offer paired with Vast's own object for it."""
        records = [r for r in await self.search_raw(build_query(filters, objective, limit)) if isinstance(r, dict)]
        offers = _OFFERS.validate_python(records)
        raw_by_id = {offer.id: record for offer, record in zip(offers, records, strict=True)}
        return [(offer, raw_by_id[offer.id]) for offer in rank(offers, filters, objective)]
