"""The account: current user, and billing (charges and invoices)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from vast_mcp.vast.models import Charge, User
from vast_mcp.vast.transport import VastHttp

_CHARGES = TypeAdapter(list[Charge])


class AccountApi:
    def __init__(self, http: VastHttp) -> None:
        self._http = http

    async def current_user(self) -> User:
        data = await self._http.request("GET", "/api/v0/users/current", safe=True)
        # The answer includes the account's api_key: User.from_api drops it before anything keeps it.
        return User.from_api(data if isinstance(data, dict) else {})

    async def charges(self, start: datetime, end: datetime) -> list[Charge]:
        """Per-instance charges (GPU, disk, bandwidth) for days in [start, end]."""
        window = {"day": {"gte": int(start.timestamp()), "lte": int(end.timestamp())}}
        return await self._paged("/api/v0/charges/", window)

    async def invoices(self, start: datetime, end: datetime) -> list[Charge]:
        """Payments and credits (top-ups, transfers, refunds) in [start, end]."""
        window = {"when": {"gte": int(start.timestamp()), "lte": int(end.timestamp())}}
        return await self._paged("/api/v1/invoices/", window)

    async def _paged(self, path: str, filters: dict[str, Any]) -> list[Charge]:
        params = {"select_filters": filters, "latest_first": False, "limit": 100}
        return _CHARGES.validate_python(await self._http.get_all_pages(path, params, "results"))
