"""Plain helpers for the simulator tests (fixtures are in conftest.py)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx

from vast_mcp.simulator import Simulator

API_KEY = "sim-key"
#: Real recorded Vast answers, vendored in the repository (see its README.md).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real"

#: Instances take 10 s to leave "created" and 20 s more to run (Timings defaults).
BOOT_SECONDS = 30
#: The live answer to a start whose GPUs are not available (reference §11).
QUEUED = {"success": False, "msg": "Required resources are currently unavailable, state change queued."}


def client(url: str, key: str | None = API_KEY, timeout: float = 10.0) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    # trust_env=False: never route loopback traffic through a proxy from the environment.
    # verify=False: plain http on loopback, so skip loading CA certificates (40 ms a client).
    return httpx.Client(base_url=url, headers=headers, timeout=timeout, trust_env=False, verify=False)  # noqa: S501


def search(api: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = api.post("/api/v0/bundles/", json=body)
    assert r.status_code == 200, r.text
    offers: list[dict[str, Any]] = r.json()["offers"]
    return offers


def show(api: httpx.Client, instance_id: int) -> dict[str, Any] | None:
    r = api.get(f"/api/v0/instances/{instance_id}/", params={"owner": "me"})
    assert r.status_code == 200, r.text
    row: dict[str, Any] | None = r.json()["instances"]
    return row


def state_of(api: httpx.Client, instance_id: int) -> tuple[str | None, str, str]:
    """(actual_status, intended_status, cur_state) as the API shows them."""
    row = show(api, instance_id)
    assert row is not None
    return row["actual_status"], row["intended_status"], row["cur_state"]


def charge_items(api: httpx.Client, sim: Simulator, instance_id: int) -> dict[str, dict[str, Any]]:
    """The instance's charge items of the last day by type ("gpu", "disk")."""
    now = int(sim.clock.now())
    window = json.dumps({"day": {"gte": now - 86400, "lte": now}})
    results = api.get("/api/v0/charges/", params={"select_filters": window}).json()["results"]
    charge = next(r for r in results if r["source"] == f"instance-{instance_id}")
    return {item["type"]: item for item in charge["items"]}


def log_text(api: httpx.Client, instance_id: int, **body: str) -> str:
    """``request_logs`` then the ``result_url``, fetched without a key like the CLI does."""
    r = api.put(f"/api/v0/instances/request_logs/{instance_id}/", json=body)
    assert r.status_code == 200, r.text
    with httpx.Client(trust_env=False) as anon:
        return anon.get(r.json()["result_url"]).text


def banner(port: int, timeout: float = 3.0) -> bytes:
    """Connect to a loopback port and read the first line."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        return sock.makefile("rb").readline()


def refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0):
            return False
    except ConnectionRefusedError:
        return True


def ssh_ports(row: dict[str, Any]) -> tuple[int | None, int]:
    """(direct port or None, proxy port the sshd answers on) as a client derives them."""
    direct = row["ports"].get("22/tcp")
    proxy = row["ssh_port"] + (1 if "jupyter" in row["image_runtype"] else 0)
    return (int(direct[0]["HostPort"]) if direct else None), proxy
