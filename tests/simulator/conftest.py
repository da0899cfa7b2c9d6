"""Fixtures for the simulator tests: a served simulator on a test-controlled clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from vast_mcp.simulator import Simulator

from .simutil import API_KEY, client, search

CheapOffer = Callable[..., dict[str, Any]]
MakeInstance = Callable[..., int]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(api_key=API_KEY, seed=0, offer_count=300, speed=0.0)
    with simulator.serve():
        yield simulator


@pytest.fixture
def api(sim: Simulator) -> Iterator[httpx.Client]:
    assert sim.url is not None
    with client(sim.url) as c:
        yield c


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
