"""Offer search (`POST /api/v0/bundles/`)."""

from __future__ import annotations

from typing import Any

from vast_mcp.vast.models import Offer
from vast_mcp.vast.query import Objective, OfferFilters, build_query, rank
from vast_mcp.vast.transport import VastHttp

SEARCH_PATH = "/api/v0/bundles/"


class OffersApi:
    def __init__(self, http: VastHttp) -> None:
        self._http = http

    async def search_raw(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """The offers exactly as Vast sent them (for `raw` output and benchmarks)."""
        data = await self._http.request("POST", SEARCH_PATH, json_body=query, safe=True)
        offers = data.get("offers") if isinstance(data, dict) else None
        if not isinstance(offers, list):
            self._http.note(f"POST {SEARCH_PATH}", "the answer has no list of offers")
            return []
        return offers

    async def search(self, filters: OfferFilters, objective: Objective = "price", limit: int = 50) -> list[Offer]:
        """Valid offers for ``filters``, ranked best first by ``objective``.

        Vast returns at most ``MAX_OFFERS`` (64) per query whatever ``limit`` says, so ``limit``
        is capped there. An offer with an unreadable field is kept, noting it in ``unreadable``.
        """
        return [offer for offer, _ in await self.search_with_raw(filters, objective, limit)]

    async def search_with_raw(
        self, filters: OfferFilters, objective: Objective = "price", limit: int = 50
    ) -> list[tuple[Offer, dict[str, Any]]]:
        """Like :meth:`search`, each offer paired with Vast's own object for it."""
        records = [r for r in await self.search_raw(build_query(filters, objective, limit)) if isinstance(r, dict)]
        offers = self._http.parse(Offer, records, "offer")
        # Keyed by text: a record's id may arrive as "123" and still parse as 123.
        raw_by_id = {str(record.get("id")): record for record in records}
        return [(offer, raw_by_id.get(str(offer.id), {})) for offer in rank(offers, filters, objective)]
