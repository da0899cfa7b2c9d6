"""Fixtures for the simulator tests: a served simulator on a test-controlled clock."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vast_mcp.simulator import Simulator

API_KEY = "sim-key"
#: The shared read-only material lives next to the repository: <repo>/../shared.
FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real"

#: Instances take 10 s to leave "created" and 20 s more to run (Timings defaults).
BOOT_SECONDS = 30

CheapOffer = Callable[..., dict[str, Any]]
MakeInstance = Callable[..., int]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(api_key=API_KEY, seed=0, offer_count=300, speed=0.0)
    with simulator.serve():
        yield simulator


def client(url: str, key: str | None = API_KEY, timeout: float = 10.0) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    # trust_env=False: never route loopback traffic through a proxy from the environment.
    return httpx.Client(base_url=url, headers=headers, timeout=timeout, trust_env=False)


@pytest.fixture
def api(sim: Simulator) -> Iterator[httpx.Client]:
    assert sim.url is not None
    with client(sim.url) as c:
        yield c


def search(api: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = api.post("/api/v0/bundles/", json=body)
    assert r.status_code == 200, r.text
    offers: list[dict[str, Any]] = r.json()["offers"]
    return offers


@pytest.fixture
def cheap_offer(api: httpx.Client) -> CheapOffer:
    """The cheapest rentable verified 1x RTX 4090 offer not in ``exclude``."""

    def pick(exclude: frozenset[int] = frozenset()) -> dict[str, Any]:
        offers = search(
            api,
            {
                "verified": {"eq": True},
                "rentable": {"eq": True},
                "gpu_name": {"eq": "RTX 4090"},
                "num_gpus": {"eq": 1},
                "direct_port_count": {"gte": 1},
                "order": [["dph_total", "asc"]],
                "limit": 100,
            },
        )
        return next(o for o in offers if o["id"] not in exclude)

    return pick


@pytest.fixture
def make_instance(api: httpx.Client, cheap_offer: CheapOffer) -> MakeInstance:
    """Create an instance on a fresh cheap offer and return its id."""

    def create(
        runtype: str = "ssh_direc ssh_proxy",
        label: str | None = "x",
        disk: float = 64.0,
        offer_id: int | None = None,
        **extra: Any,
    ) -> int:
        oid = offer_id if offer_id is not None else cheap_offer()["id"]
        body = {"client_id": "me", "image": "pytorch/pytorch:latest", "disk": disk, "label": label}
        body.update(runtype=runtype, **extra)
        r = api.put(f"/api/v0/asks/{oid}/", json=body)
        assert r.status_code == 200, r.text
        new_id: int = r.json()["new_contract"]
        return new_id

    return create


def show(api: httpx.Client, instance_id: int) -> dict[str, Any] | None:
    r = api.get(f"/api/v0/instances/{instance_id}/", params={"owner": "me"})
    assert r.status_code == 200, r.text
    row: dict[str, Any] | None = r.json()["instances"]
    return row


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
