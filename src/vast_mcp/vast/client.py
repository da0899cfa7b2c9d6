"""`VastClient`: one HTTP layer, one namespace per API area."""

from __future__ import annotations

from vast_mcp.credentials import ApiKey
from vast_mcp.vast.account import AccountApi
from vast_mcp.vast.instances import InstancesApi
from vast_mcp.vast.offers import OffersApi
from vast_mcp.vast.ssh import SshApi
from vast_mcp.vast.transport import VastHttp


class VastClient:
    """Use as ``async with VastClient(VastHttp(key, url)) as vast: await vast.offers.search(...)``."""

    def __init__(self, http: VastHttp) -> None:
        self.http = http
        self.offers = OffersApi(http)
        self.instances = InstancesApi(http)
        self.ssh = SshApi(http)
        self.account = AccountApi(http)

    @property
    def api_key(self) -> ApiKey | None:
        return self.http.api_key

    async def __aenter__(self) -> VastClient:
        await self.http.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.__aexit__(*exc)
