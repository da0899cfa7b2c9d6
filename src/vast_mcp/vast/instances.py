"""Instances: create, list, show, start/stop/label, bids, price increases, reboot, destroy, logs."""

from __future__ import annotations

import builtins
import math
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vast_mcp.credentials import register_secret
from vast_mcp.settings import check_api_url
from vast_mcp.vast.errors import NotFoundError, OutcomeUnknownError, VastError
from vast_mcp.vast.models import Instance, PriceIncrease
from vast_mcp.vast.transport import VastHttp

# What Vast answers (HTTP 200, success false or absent) to a start whose GPUs were re-let:
# the start is queued and will bill whenever it happens (reference §11).
QUEUED_TEXT = "state change queued"
ONSTART_LIMIT = 4048  # characters Vast accepts in onstart (Vast docs)


class CreateRequest(BaseModel):
    """The body of `PUT /api/v0/asks/{id}/` (field names as the official CLI sends them)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    image: str
    disk: float
    label: str
    runtype: str = "ssh_direc ssh_proxy"
    onstart: str | None = Field(default=None, max_length=ONSTART_LIMIT, description="run at container start")
    # The CLI's parse_env form: {"-p 8888:8888": "1", "HF_TOKEN": "..."}.
    env: dict[str, str] = {}
    price: float | None = Field(default=None, ge=0.001, description="the bid, $/h per machine; None = on-demand")
    image_login: str | None = Field(
        default=None, description='registry login as the CLI sends it: "-u USER -p TOKEN HOST"'
    )
    cancel_unavail: bool = True  # fail instead of leaving a stopped (storage-billing) instance

    def model_post_init(self, _: Any) -> None:
        # The registry login is a secret: logs and error messages are scrubbed of it.
        if self.image_login:
            register_secret(self.image_login)
            words = self.image_login.split()
            for flag, value in pairwise(words):
                if flag in ("-p", "--password"):
                    register_secret(value)

    def body(self) -> dict[str, Any]:
        return {"client_id": "me", **self.model_dump()}


def _queued(answer: dict[str, Any]) -> bool:
    text = answer.get("msg") or answer.get("message")
    return isinstance(text, str) and QUEUED_TEXT in text.lower()


class InstancesApi:
    def __init__(self, http: VastHttp) -> None:
        self._http = http

    async def create(self, offer_id: int, request: CreateRequest) -> int:
        """Rent ``offer_id``; returns the new instance id. Sent exactly once, never retried.

        The answer's ``instance_api_key`` never gets past the transport.
        """
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
        """Every instance on the account (all pages of the v1 list), optionally filtered.

        An instance with an unreadable field is kept (see ``Instance.unreadable``).
        """
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
        records = await self._http.get_all_pages("/api/v1/instances/", params, "instances")
        return self._http.parse(Instance, records, "instance")

    async def get(self, instance_id: int) -> Instance:
        instance = self._http.parse_one(Instance, await self.get_raw(instance_id), f"instance {instance_id}")
        if instance is None:
            raise VastError(f"Vast's record of instance {instance_id} has no readable id. Try again later.")
        return instance

    async def get_raw(self, instance_id: int) -> dict[str, Any]:
        """Vast's own object for one instance (``{"instances": null}`` means not found)."""
        path = f"/api/v0/instances/{instance_id}/"
        data = await self._http.request("GET", path, params={"owner": "me"}, safe=True)
        record = data.get("instances") if isinstance(data, dict) else None
        if isinstance(record, list):
            self._http.note(f"GET {path}", "instances is a list, not an object")
            record = record[0] if record else None
        if not isinstance(record, dict):
            raise NotFoundError(
                f"Instance {instance_id} does not exist on this account (it may have been destroyed). "
                "Use list_instances to see the ones that do."
            )
        return record

    async def set_state(self, instance_id: int, state: str) -> Literal["done", "queued"]:
        """Ask for ``state`` ("running" or "stopped").

        "queued": Vast could not start it now (its GPUs were re-let) and will start it, and bill
        for it, whenever they are free; setting "stopped" cancels that.
        """
        answer = await self._http.request(
            "PUT",
            f"/api/v0/instances/{instance_id}/",
            json_body={"state": state},
            safe=True,
            unsuccessful_ok=_queued,
        )
        return "queued" if isinstance(answer, dict) and _queued(answer) else "done"

    async def set_label(self, instance_id: int, label: str) -> None:
        await self._http.request("PUT", f"/api/v0/instances/{instance_id}/", json_body={"label": label}, safe=True)

    async def change_bid(self, instance_id: int, price: float) -> None:
        """Set an interruptible instance's bid to ``price`` $/h (per machine)."""
        if not math.isfinite(price) or price < 0.001:
            raise ValueError(f"A bid must be a price of at least $0.001/h, not {price!r}. Nothing was changed.")
        await self._http.request(
            "PUT",
            f"/api/v0/instances/bid_price/{instance_id}/",
            json_body={"client_id": "me", "price": price},
            safe=True,  # the same bid twice is the same bid
        )

    async def pending_price_increases(self) -> builtins.list[PriceIncrease]:
        """Host price increases waiting on this account's instances (before/after $/h)."""
        path = "/api/v0/instances/pending-price-increases/"
        data = await self._http.request("GET", path, safe=True)
        rows = data.get("pending_price_increases") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            self._http.note(f"GET {path}", "pending_price_increases is missing or not a list")
            return []
        return self._http.parse(PriceIncrease, rows, "price increase")

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
        if not isinstance(url, str) or not _safe_to_fetch(url):
            raise VastError("Vast did not return a usable log location. Try again in a few seconds.")
        return await self._http.fetch_text(url)


def _safe_to_fetch(url: str) -> bool:
    """https, or plain http only to a loopback address (the simulator)."""
    try:
        check_api_url(url)
    except ValueError:
        return False
    return True
