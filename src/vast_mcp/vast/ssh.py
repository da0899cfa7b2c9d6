"""SSH keys: the account's keys and the keys attached to one instance."""

from __future__ import annotations

from vast_mcp.vast.errors import VastError
from vast_mcp.vast.models import SshKey
from vast_mcp.vast.transport import VastHttp


class SshApi:
    def __init__(self, http: VastHttp) -> None:
        self._http = http

    async def list_keys(self) -> list[SshKey]:
        data = await self._http.request("GET", "/api/v0/ssh/", safe=True)
        # Real answers are a bare array; the CLI's own tests also accept {"ssh_keys": [...]}.
        items = data.get("ssh_keys") if isinstance(data, dict) else data
        if not isinstance(data, list):
            self._http.note("GET /api/v0/ssh/", "the answer is not a bare list of keys")
        if not isinstance(items, list):
            return []
        return self._http.parse(SshKey, [SshKey.wire_record(i) if isinstance(i, dict) else i for i in items], "ssh key")

    async def create_key(self, public_key: str) -> SshKey:
        # Not repeatable: a lost answer is reconciled by listing the keys again.
        data = await self._http.request("POST", "/api/v0/ssh/", json_body={"ssh_key": public_key}, safe=False)
        key = data.get("key") if isinstance(data, dict) else None
        created = (
            self._http.parse_one(SshKey, SshKey.wire_record(key), "new ssh key") if isinstance(key, dict) else None
        )
        if created is None:
            raise VastError("Vast did not confirm the new SSH key. Check the account's keys and try again.")
        return created

    async def attach(self, instance_id: int, public_key: str) -> None:
        # Attaching the same key twice leaves the same state, so it may be retried.
        await self._http.request(
            "POST", f"/api/v0/instances/{instance_id}/ssh/", json_body={"ssh_key": public_key}, safe=True
        )
