"""Shared by the spending tests: renting on a served simulator, and a client for it."""

from __future__ import annotations

import http.client
import json
import os
import shutil
from typing import Any
from urllib.parse import urlsplit

from tests.helpers import SIM_KEY, RecordedSleeps
from vast_mcp.credentials import ApiKey
from vast_mcp.provisioning.rental import MARKER_ENV
from vast_mcp.simulator import Simulator
from vast_mcp.vast import VastClient, VastHttp


def _shells() -> list[str]:
    """dash (strict POSIX), plain sh when it is another shell, and bash: each installed one once."""
    found: dict[str, str] = {}
    for name in ("dash", "sh", "bash"):
        path = shutil.which(name)
        if path is not None:
            found.setdefault(os.path.realpath(path), name)
    return list(found.values())


SHELLS = _shells()
BOOT_SECONDS = 60.0  # simulated seconds from create to running, with room to spare
OURS = {MARKER_ENV: "req-test-0"}  # the marker create_instance puts in a rental's env


def call(url: str, method: str, path: str, body: Any = None, *, key: str = SIM_KEY) -> tuple[int, Any]:
    """One raw request to the simulator: (status, parsed JSON body)."""
    address = urlsplit(url)
    conn = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
    try:
        conn.request(
            method,
            path,
            body=None if body is None else json.dumps(body),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def rent(
    sim: Simulator, url: str, *, label: str = "spend-test", env: dict[str, str] | None = None, bid: bool = False
) -> int:
    """A new instance on the next free offer (a direct create with the account key), not yet running.

    ``bid``: an interruptible rental bidding the offer's on-demand GPU price.
    """
    offer = next(o for o in sim.state.offers if o.rentable and not o.rented and o.static["disk_space"] >= 16)
    body: dict[str, Any] = {"image": "pytorch/pytorch:latest", "disk": 16, "label": label, "env": env or {}}
    if bid:
        body["price"] = offer.dph_base
    status, answer = call(url, "PUT", f"/api/v0/asks/{offer.id}/", body)
    assert status == 200, answer
    return int(answer["new_contract"])


def state(sim: Simulator, instance_id: int) -> dict[str, Any] | None:
    """What the simulator itself says about an instance (None once destroyed)."""
    return next((i for i in sim.summary()["instances"] if i["id"] == instance_id), None)


def client(url: str) -> VastClient:
    """The account's client: no pacing, and retries that record their waits instead of sleeping."""
    return VastClient(VastHttp(ApiKey(SIM_KEY, "env"), url, budget=None, sleep=RecordedSleeps()))
