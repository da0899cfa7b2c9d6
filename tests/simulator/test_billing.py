"""Charges from instance history on the sim clock, invoices, and the user's credit."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from vast_mcp.simulator import Simulator

from .conftest import MakeInstance
from .simutil import API_KEY, BOOT_SECONDS, client, show

DAY = 86400


def charges(api: httpx.Client, sim: Simulator, **extra: Any) -> dict[str, Any]:
    now = int(sim.clock.now())
    params = {"select_filters": json.dumps({"day": {"gte": now - 7 * DAY, "lte": now}}), "limit": 20}
    params.update(extra)
    r = api.get("/api/v0/charges/", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def amounts(api: httpx.Client, sim: Simulator) -> tuple[float, float]:
    (result,) = charges(api, sim)["results"]
    items = {item["type"]: item["amount"] for item in result["items"]}
    assert result["amount"] == pytest.approx(items["gpu"] + items["disk"])
    return items["gpu"], items["disk"]


def test_gpu_while_running_storage_while_existing_nothing_after_destroy(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    iid = make_instance(disk=100)
    row = show(api, iid)
    assert row is not None
    gpu_rate, disk_rate = row["dph_base"], row["storage_total_cost"]

    sim.clock.advance(BOOT_SECONDS)  # created + loading: storage only
    gpu, disk = amounts(api, sim)
    assert gpu == 0
    assert disk == pytest.approx(disk_rate * BOOT_SECONDS / 3600)

    sim.clock.advance(3600)  # one hour running
    gpu, disk = amounts(api, sim)
    assert gpu == pytest.approx(gpu_rate)
    assert disk == pytest.approx(disk_rate * (3600 + BOOT_SECONDS) / 3600)

    api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"})
    sim.clock.advance(7200)  # stopped for two hours (5 s of it still stopping)
    gpu, disk = amounts(api, sim)
    assert gpu == pytest.approx(gpu_rate * (3600 + 5) / 3600)
    assert disk == pytest.approx(disk_rate * (3600 + BOOT_SECONDS + 7200) / 3600)

    api.request("DELETE", f"/api/v0/instances/{iid}/", json={})
    final = amounts(api, sim)
    sim.clock.advance(10 * 3600)
    assert amounts(api, sim) == pytest.approx(final)


def test_charge_shape_and_user_credit(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    credit0 = api.get("/api/v0/users/current").json()["credit"]
    iid = make_instance(label="billing")
    sim.clock.advance(BOOT_SECONDS + 7200)
    body = charges(api, sim, latest_first="true", format="table")
    assert body["success"] is True and body["count"] == 1 and body["total"] == 1 and body["next_token"] is None
    (result,) = body["results"]
    assert result["type"] == "instance" and result["source"] == f"instance-{iid}"
    assert result["metadata"]["label"] == "billing"
    assert {i["type"] for i in result["items"]} == {"gpu", "disk"}
    assert "hours at $" in result["items"][0]["description"]
    credit = api.get("/api/v0/users/current").json()["credit"]
    assert credit == pytest.approx(credit0 - result["amount"])
    assert credit < credit0


def test_charges_window_type_filter_and_paging(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    for _ in range(3):
        make_instance()
    sim.clock.advance(3600)
    assert charges(api, sim)["total"] == 3
    first = charges(api, sim, limit=2)
    assert first["count"] == 2 and first["next_token"]
    second = charges(api, sim, limit=2, after_token=first["next_token"])
    assert second["count"] == 1 and second["next_token"] is None
    now = int(sim.clock.now())
    only_volumes = {"day": {"gte": now - DAY, "lte": now}, "type": {"in": ["volume"]}}
    r = api.get("/api/v0/charges/", params={"select_filters": json.dumps(only_volumes)})
    assert r.json()["results"] == []
    # Day-granular: a range of whole days that ended before the instances existed is empty.
    past = {"day": {"gte": now - 30 * DAY, "lte": now - 2 * DAY}}
    assert api.get("/api/v0/charges/", params={"select_filters": json.dumps(past)}).json()["results"] == []


def test_charges_require_a_day_range(api: httpx.Client) -> None:
    for params in ({}, {"select_filters": json.dumps({"day": {"gte": 1}})}):
        r = api.get("/api/v0/charges/", params=params)
        assert r.status_code == 400
        assert r.json()["msg"] == "Must provide both 'day' gte and lte filters"


def test_invoices(sim: Simulator, api: httpx.Client) -> None:
    r = api.get("/api/v1/invoices/")
    assert r.status_code == 200
    assert r.json() == {
        "success": False,
        "error": "Invalid date range",
        "count": 0,
        "total": 0,
        "results": [],
        "next_token": None,
    }
    now = int(sim.clock.now())
    window = {"when": {"gte": now - 365 * DAY, "lte": now}}
    body = api.get("/api/v1/invoices/", params={"select_filters": json.dumps(window), "limit": 50}).json()
    assert body["success"] is True and body["count"] == 2 and body["total"] == 2
    credit, transfer = body["results"]
    # The API's sign (reference §11): a credit purchase is negative on the wire, a
    # transfer received positive; the official CLI flips all but transfer/payout.
    assert (credit["type"], credit["amount"]) == ("credit", pytest.approx(-80.0))
    assert (transfer["type"], transfer["amount"]) == ("transfer", pytest.approx(20.0))
    assert transfer["metadata"]["service"] == "transfer" and credit["metadata"]["service"] == "stripe_payments"
    assert all(set(i["metadata"]) == {"invoice_id", "service"} for i in body["results"])
    shown = [-i["amount"] if i["type"] not in ("transfer", "payout") else i["amount"] for i in body["results"]]
    assert sum(shown) == pytest.approx(api.get("/api/v0/users/current").json()["credit"])
    only_transfers = {**window, "service": {"in": ["transfer"]}}
    r = api.get("/api/v1/invoices/", params={"select_filters": json.dumps(only_transfers)})
    assert [i["type"] for i in r.json()["results"]] == ["transfer"]
    recent = {"when": {"gte": now - DAY, "lte": now}}
    assert api.get("/api/v1/invoices/", params={"select_filters": json.dumps(recent)}).json()["results"] == []


def test_user_object(api: httpx.Client) -> None:
    for path in ("/api/v0/users/current", "/api/v0/users/current/"):
        r = api.get(path)
        assert r.status_code == 200
        user = r.json()
        assert user["api_key"] and user["api_key"] != API_KEY  # a fake; clients must strip it
        assert user["email"] == "sim-user@example.com" and user["username"] == "simuser"
        assert isinstance(user["created_at"], int) and user["created_at"] > 10**12  # milliseconds
        assert user["credit"] == pytest.approx(100.0)
    # The real endpoint rejects owner=me (the CLI removed it).
    assert api.get("/api/v0/users/current", params={"owner": "me"}).status_code == 400


def test_user_identity_is_configurable() -> None:
    sim = Simulator(username=None, email="ada@example.org", credit=5.0)
    with sim.serve() as url, client(url) as api:
        user = api.get("/api/v0/users/current").json()
    assert user["username"] is None and user["email"] == "ada@example.org" and user["credit"] == 5.0
