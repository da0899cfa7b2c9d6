"""The account: current user, and billing (charges and invoices)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vast_mcp.vast.models import Charge, User
from vast_mcp.vast.transport import VastHttp

# The official CLI (1.9.1, invoices-v1) shows every invoice amount negated except these:
# a credit purchase arrives negative and is shown as the positive amount it added.
_SIGN_AS_SENT = frozenset({"transfer", "payout"})


class AccountApi:
    def __init__(self, http: VastHttp) -> None:
        self._http = http

    async def current_user(self) -> User:
        data = await self._http.request("GET", "/api/v0/users/current", safe=True)
        # The answer's api_key never gets past the transport.
        if not isinstance(data, dict):
            self._http.note("GET /api/v0/users/current", "the answer is not an object")
            data = {}
        return self._http.parse_one(User, User.wire_record(data), "user") or User()

    async def charges(self, start: datetime, end: datetime) -> list[Charge]:
        """Per-instance charges (GPU, disk, bandwidth) for days in [start, end]."""
        window = {"day": {"gte": int(start.timestamp()), "lte": int(end.timestamp())}}
        return await self._paged("/api/v0/charges/", window, "charge")

    async def invoices(self, start: datetime, end: datetime) -> list[Charge]:
        """Payments and credits (top-ups, transfers, refunds) in [start, end], signed as the CLI shows them."""
        window = {"when": {"gte": int(start.timestamp()), "lte": int(end.timestamp())}}
        return [
            line if line.type in _SIGN_AS_SENT else line.model_copy(update={"amount": -line.amount})
            for line in await self._paged("/api/v1/invoices/", window, "invoice")
        ]

    async def _paged(self, path: str, filters: dict[str, Any], what: str) -> list[Charge]:
        params = {"select_filters": filters, "latest_first": False, "limit": 100}
        return self._http.parse(Charge, await self._http.get_all_pages(path, params, "results"), what)
