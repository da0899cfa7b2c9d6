"""Interruptible rentals (bids, the machine's minimum bid, outbid, change bid) and host price increases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from vast_mcp.simulator import Simulator

from .conftest import CheapOffer, MakeInstance
from .simutil import BOOT_SECONDS, QUEUED, charge_items, log_text, refuses, search, show, ssh_ports, state_of

HOUR = 3600


def bid_offer(api: httpx.Client) -> dict[str, Any]:
    offers = search(
        api, {"rentable": {"eq": True}, "num_gpus": {"eq": 1}, "order": [["dph_total", "asc"]], "type": "bid"}
    )
    return offers[0]


def test_a_bid_search_answers_bidable_offers_with_min_bid(api: httpx.Client) -> None:
    q: dict[str, Any] = {"rentable": {"eq": True}, "order": [["dph_total", "asc"]], "limit": 20}
    on_demand = search(api, q)
    bids = search(api, {**q, "type": "bid"})
    assert [o["id"] for o in bids] == [o["id"] for o in on_demand]
    assert all(o["is_bid"] is False for o in on_demand)
    assert all(o["is_bid"] is True and 0 < o["min_bid"] < o["dph_base"] for o in bids)
    cheap = search(api, {**q, "type": "bid", "min_bid": {"lt": "0.1"}})
    assert cheap and all(o["min_bid"] < 0.1 for o in cheap)


def test_a_bid_rental_runs_and_bills_at_the_bid(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    offer = bid_offer(api)
    bid = round(offer["min_bid"] + 0.01, 4)
    iid = make_instance(offer_id=offer["id"], price=bid)
    row = show(api, iid)
    assert row is not None
    assert row["is_bid"] is True and row["dph_base"] == pytest.approx(bid)
    assert row["min_bid"] == pytest.approx(offer["min_bid"])
    sim.clock.advance(BOOT_SECONDS)
    assert state_of(api, iid) == ("running", "running", "running")
    sim.clock.advance(HOUR)
    assert charge_items(api, sim, iid)["gpu"]["amount"] == pytest.approx(bid)
    on_demand = make_instance()
    od_row = show(api, on_demand)
    assert od_row is not None and od_row["is_bid"] is False


def test_a_bid_below_the_minimum_at_create(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    offer = bid_offer(api)
    low = round(offer["min_bid"] / 2, 4)
    body = {"image": "x", "runtype": "ssh", "price": low, "cancel_unavail": True}
    r = api.put(f"/api/v0/asks/{offer['id']}/", json=body)
    assert r.status_code == 410 and r.json()["error"] == "no_such_ask"
    assert sim.state.instances == {}
    # Without cancel_unavail the rental is made, and outbid at once: stopped, storage billed.
    iid = make_instance(offer_id=offer["id"], price=low, cancel_unavail=False)
    assert state_of(api, iid) == ("exited", "running", "stopped")
    sim.clock.advance(HOUR)
    assert state_of(api, iid) == ("exited", "running", "stopped")
    billed = charge_items(api, sim, iid)
    assert billed["gpu"]["amount"] == 0 and billed["disk"]["amount"] > 0


def test_outbid_stops_it_and_a_higher_bid_resumes_it(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    offer = bid_offer(api)
    bid = round(offer["min_bid"] + 0.01, 4)
    iid = make_instance(offer_id=offer["id"], price=bid)
    sim.clock.advance(BOOT_SECONDS + HOUR)
    direct, proxy = ssh_ports(show(api, iid) or {})
    assert direct is not None and not refuses(direct)

    sim.set_min_bid(iid, bid + 0.05)
    row = show(api, iid)
    assert row is not None and row["min_bid"] == pytest.approx(bid + 0.05)
    assert (row["intended_status"], row["cur_state"]) == ("running", "stopped")
    sim.clock.advance(5)  # the container takes a moment to stop
    assert state_of(api, iid) == ("exited", "running", "stopped")
    row = show(api, iid)
    assert row is not None and "outbid" in row["status_msg"] and row["instance"]["gpuCostPerHour"] == 0
    assert refuses(direct) and refuses(proxy)
    # GPU billing stopped with the container; storage goes on.
    before = charge_items(api, sim, iid)
    sim.clock.advance(HOUR)
    after = charge_items(api, sim, iid)
    assert after["gpu"]["amount"] == pytest.approx(before["gpu"]["amount"])
    assert after["gpu"]["amount"] == pytest.approx(bid * (HOUR + 5) / HOUR)
    assert after["disk"]["amount"] > before["disk"]["amount"]
    # A start cannot beat the minimum bid: it is queued.
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "running"}).json() == QUEUED

    # Raising the bid, still below the minimum: accepted, still outbid.
    r = api.put(f"/api/v0/instances/bid_price/{iid}/", json={"client_id": "me", "price": bid + 0.02})
    assert r.status_code == 200 and r.json() == {"success": True}
    assert state_of(api, iid) == ("exited", "running", "stopped")
    # At or above the minimum: it resumes, through loading, billed at the new bid.
    new_bid = round(bid + 0.05, 4)
    assert api.put(f"/api/v0/instances/bid_price/{iid}/", json={"client_id": "me", "price": new_bid}).json() == {
        "success": True
    }
    assert state_of(api, iid) == ("loading", "running", "running")
    sim.clock.advance(10)
    assert state_of(api, iid) == ("running", "running", "running")
    gpu_before = charge_items(api, sim, iid)["gpu"]["amount"]
    sim.clock.advance(HOUR)
    assert charge_items(api, sim, iid)["gpu"]["amount"] == pytest.approx(gpu_before + new_bid)
    text = log_text(api, iid)
    assert text.count("Stopping container") == 1 and text.count("Starting container") == 2


def test_a_lower_minimum_bid_lets_an_outbid_instance_run(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    offer = bid_offer(api)
    iid = make_instance(offer_id=offer["id"], price=offer["min_bid"])  # a bid at the minimum is enough
    sim.clock.advance(BOOT_SECONDS)
    assert state_of(api, iid)[0] == "running"
    sim.set_min_bid(iid, offer["min_bid"] * 2)
    sim.clock.advance(5)
    assert state_of(api, iid) == ("exited", "running", "stopped")
    assert api.post("/_sim/set_min_bid", json={"instance_id": iid, "price": offer["min_bid"]}).status_code == 200
    assert state_of(api, iid) == ("loading", "running", "running")
    # A user stop is a stop: a later fall of the minimum bid does not start it.
    api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"})
    sim.set_min_bid(iid, 0.001)
    assert state_of(api, iid)[1:] == ("stopped", "stopped")


def test_change_bid_errors(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    offer = bid_offer(api)
    iid = make_instance(offer_id=offer["id"], price=offer["min_bid"] + 0.01)
    for price in (0.0009, 0, -1, None, "cheap"):
        r = api.put(f"/api/v0/instances/bid_price/{iid}/", json={"client_id": "me", "price": price})
        assert r.status_code == 400
        assert r.json() == {"success": False, "error": "invalid_args", "msg": "Please set a bid price >= 0.001."}
    r = api.put("/api/v0/instances/bid_price/4242/", json={"client_id": "me", "price": 0.5})
    assert r.status_code == 404 and r.json()["error"] == "no_such_instance"
    on_demand = make_instance()
    r = api.put(f"/api/v0/instances/bid_price/{on_demand}/", json={"client_id": "me", "price": 0.5})
    assert r.status_code == 400 and r.json()["error"] == "invalid_args"
    with pytest.raises(KeyError):
        sim.set_min_bid(4242, 0.5)
    with pytest.raises(ValueError, match=">= 0"):
        sim.set_min_bid(iid, -1)


# ------------------------------------------------------- price increases


def pending(api: httpx.Client) -> list[dict[str, Any]]:
    r = api.get("/api/v0/instances/pending-price-increases/")
    assert r.status_code == 200
    body = r.json()
    assert (
        body["success"] is True and body["truncated"] is False and body["count"] == len(body["pending_price_increases"])
    )
    rows: list[dict[str, Any]] = body["pending_price_increases"]
    return rows


def test_a_price_increase_is_pending_until_accepted(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    iid = make_instance(disk=100)
    sim.clock.advance(BOOT_SECONDS)
    row0 = show(api, iid)
    assert row0 is not None
    gpu, disk = row0["dph_base"], row0["storage_total_cost"]
    assert pending(api) == []
    pid = sim.raise_price(iid, 1.5)
    (row,) = pending(api)
    assert row["pending_price_increase_id"] == pid and row["contract_id"] == iid
    assert row["old_gpu_costpersec"] == pytest.approx(gpu / HOUR)
    assert row["new_gpu_costpersec"] == pytest.approx(1.5 * gpu / HOUR)
    assert row["old_disk_ram_costpersec"] == pytest.approx(disk / HOUR)
    assert row["new_disk_ram_costpersec"] == pytest.approx(1.5 * disk / HOUR)
    assert row["contract_end_date"] == pytest.approx(row0["end_date"]) and row["created_at"] == sim.clock.now()
    # Pending: nothing changes yet.
    sim.clock.advance(HOUR)
    assert charge_items(api, sim, iid)["gpu"]["amount"] == pytest.approx(gpu)
    r = api.put("/api/v0/instances/accept-price-increase/", json={"pending_price_increase_id": pid})
    assert r.status_code == 200
    assert r.json() == {"success": True, "pending_price_increase_id": pid, "contract_id": iid}
    assert pending(api) == []
    row1 = show(api, iid)
    assert row1 is not None
    assert row1["dph_base"] == pytest.approx(1.5 * gpu) and row1["storage_total_cost"] == pytest.approx(1.5 * disk)
    sim.clock.advance(HOUR)  # the new price from the accept on, the old one before
    billed = charge_items(api, sim, iid)
    assert billed["gpu"]["amount"] == pytest.approx(gpu + 1.5 * gpu)
    assert billed["disk"]["amount"] == pytest.approx(disk * (BOOT_SECONDS + HOUR) / HOUR + 1.5 * disk)
    assert billed["gpu"]["rate"] == pytest.approx(1.25 * gpu)  # the average over the range
    stale = api.put("/api/v0/instances/accept-price-increase/", json={"pending_price_increase_id": pid})
    assert stale.status_code == 404 and stale.json() == {"success": False, "error": "no_pending_price_increase"}


def test_a_rejected_price_increase_keeps_the_old_price(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    iid = make_instance()
    sim.clock.advance(BOOT_SECONDS)
    row0 = show(api, iid)
    assert row0 is not None
    r = api.post("/_sim/raise_price", json={"instance_id": iid, "factor": 2})
    pid = r.json()["pending_price_increase_id"]
    r = api.put("/api/v0/instances/reject-price-increase/", json={"pending_price_increase_id": pid})
    assert r.json() == {"success": True, "pending_price_increase_id": pid, "contract_id": iid}
    assert pending(api) == []
    sim.clock.advance(HOUR)
    row = show(api, iid)
    assert row is not None and row["dph_base"] == row0["dph_base"] and row["actual_status"] == "running"
    assert charge_items(api, sim, iid)["gpu"]["amount"] == pytest.approx(row0["dph_base"])
    r = api.put("/api/v0/instances/reject-price-increase/", json={"pending_price_increase_id": pid})
    assert r.status_code == 404 and r.json()["error"] == "no_pending_price_increase"


def test_price_increase_rows_go_stale_and_bodies_are_exact(
    sim: Simulator, api: httpx.Client, cheap_offer: CheapOffer, make_instance: MakeInstance
) -> None:
    a, b = make_instance(), make_instance()
    first = sim.raise_price(a, 1.2)
    second = sim.raise_price(a, 1.3)  # replaces the first: it turns stale
    other = sim.raise_price(b, 1.1)
    assert sorted(r["pending_price_increase_id"] for r in pending(api)) == sorted([second, other])
    r = api.put("/api/v0/instances/accept-price-increase/", json={"pending_price_increase_id": first})
    assert r.status_code == 404
    for body in (
        {},
        {"pending_price_increase_id": str(second)},
        {"pending_price_increase_id": second, "instance_id": a},
        {"pending_price_increase_id": True},
    ):
        r = api.put("/api/v0/instances/accept-price-increase/", json=body)
        assert r.status_code == 400 and r.json()["error"] == "invalid_args", body
    api.request("DELETE", f"/api/v0/instances/{b}/", json={})
    assert [r["pending_price_increase_id"] for r in pending(api)] == [second]
    bid = make_instance(offer_id=cheap_offer()["id"], price=1.0)
    with pytest.raises(ValueError, match="bid"):
        sim.raise_price(bid, 1.5)
    with pytest.raises(ValueError, match="factor"):
        sim.raise_price(a, 0.9)
