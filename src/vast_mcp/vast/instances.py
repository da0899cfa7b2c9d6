"""Instances: create, list, show, start/stop/label, reboot, destroy, logs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter

from vast_mcp.vast.errors import NotFoundError, OutcomeUnknownError, VastError
from vast_mcp.vast.models import Instance
from vast_mcp.vast.transport import VastHttp

_INSTANCES = TypeAdapter(list[Instance])


class CreateRequest(BaseModel):
    """The body of `PUT /api/v0/asks/{id}/` (field names as the official CLI sends them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str
    disk: float
    label: str
    runtype: str = "ssh_direc ssh_proxy"
    onstart: str | None = None
    env: dict[str, str] = {}
    cancel_unavail: bool = True  # fail instead of leaving a stopped (storage-billing) instance

    def body(self) -> dict[str, Any]:
        return {"client_id": "me", "price": None, **self.model_dump()}


class InstancesApi:
    def __init__(self, http: VastHttp) -> None:
        self._http = http

    async def create(self, offer_id: int, request: CreateRequest) -> int:
        """Rent ``offer_id``; returns the new instance id. Sent exactly once, never retried."""
        data = await self._http.request("PUT", f"/api/v0/asks/{offer_id}/", json_body=request.body(), safe=False)
        contract = data.get("new_contract") if isinstance(data, dict) else None
        if not isinstance(contract, int):
            raise OutcomeUnknownError(
                "Vast accepted the create but did not say which instance it made. "
                "Check list_instances before creating again.",
                method="PUT",
                path=f"/api/v0/asks/{offer_id}/",
            )
        return contract

    async def list(self, *, label: str | None = None, statuses: list[str] | None = None) -> list[Instance]:
        """Every instance on the account (all pages of the v1 list), optionally filtered."""
        filters: dict[str, Any] = {}
        if label is not None:
            filters["label"] = {"eq": label}
        if statuses:
            filters["actual_status"] = {"in": statuses}
        params: dict[str, Any] = {
            "select_filters": filters,
            "order_by": [{"col": "id", "dir": "asc"}],
            "limit": 25,
        }
        return _INSTANCES.validate_python(await self._http.get_all_pages("/api/v1/instances/", params, "instances"))

    async def get(self, instance_id: int) -> Instance:
        return Instance.model_validate(await self.get_raw(instance_id))

    async def get_raw(self, instance_id: int) -> dict[str, Any]:
        """Vast's own object for one instance (``{"instances": null}`` means not found)."""
        data = await self._http.request("GET", f"/api/v0/instances/{instance_id}/", params={"owner": "me"}, safe=True)
        record = data.get("instances") if isinstance(data, dict) else None
        if isinstance(record, list):  # some deployments answer with a one-element list
            record = record[0] if record else None
        if not isinstance(record, dict):
            raise NotFoundError(
                f"Instance {instance_id} does not exist on this account (it may have been destroyed). "
                "Use list_instances to see the ones that do."
            )
        return record

    async def set_state(self, instance_id: int, state: str) -> None:
        await self._manage(instance_id, {"state": state})

    async def set_label(self, instance_id: int, label: str) -> None:
        await self._manage(instance_id, {"label": label})

    async def reboot(self, instance_id: int) -> None:
        # A reboot sent twice reboots twice: not repeatable.
        await self._http.request("PUT", f"/api/v0/instances/reboot/{instance_id}/", json_body={}, safe=False)

    async def destroy(self, instance_id: int) -> None:
        # Repeatable: destroying a destroyed instance changes nothing (it answers 404).
        try:
            await self._http.request("DELETE", f"/api/v0/instances/{instance_id}/", json_body={}, safe=True)
        except NotFoundError as exc:
            if not exc.after_lost_answer:
                raise  # it never existed (or is not ours); a lost first answer means it is done

    async def logs(self, instance_id: int, *, tail: int = 200) -> str:
        data = await self._http.request(
            "PUT",
            f"/api/v0/instances/request_logs/{instance_id}/",
            json_body={"tail": str(tail)},
            safe=True,
        )
        url = data.get("result_url") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise VastError("Vast did not return a log location. Try again in a few seconds.")
        return await self._http.fetch_text(url)

    async def _manage(self, instance_id: int, body: dict[str, Any]) -> None:
        await self._http.request("PUT", f"/api/v0/instances/{instance_id}/", json_body=body, safe=True)
