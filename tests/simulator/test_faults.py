"""Each fault kind produces exactly what it says: status, headers, body, dropped connection, state."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from vast_mcp.simulator import Simulator

from .conftest import CheapOffer, MakeInstance
from .simutil import BOOT_SECONDS, banner, client, refuses, search, show, ssh_ports

SHOW = r"^/api/v0/instances/\d+/$"


def test_rate_limit_variants(sim: Simulator, api: httpx.Client) -> None:
    sim.faults.inject("rate_limit", method="GET", path=SHOW, times=2, retry_after_header=1)
    for _ in range(2):
        r = api.get("/api/v0/instances/1/")
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1"
        assert r.json()["msg"] == "API requests too frequent endpoint threshold=2.0"
        assert "retry_after" not in r.json()
    assert api.get("/api/v0/instances/1/").status_code == 200  # used up
    assert sim.faults.injected == {"rate_limit": 2}

    sim.faults.inject("rate_limit", retry_after_body=2.5)
    r = api.get("/api/v0/ssh/")
    assert r.status_code == 429 and r.json()["retry_after"] == 2.5 and "retry-after" not in r.headers

    sim.faults.inject("rate_limit", plain_text=True)
    r = api.get("/api/v0/ssh/")
    assert r.status_code == 429
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == "API requests too frequent endpoint threshold=2.0"

    sim.faults.inject("rate_limit", detail=True, retry_after_header=0.5)
    r = api.get("/api/v0/ssh/")
    assert r.status_code == 429 and r.json() == {"detail": "API requests too frequent endpoint threshold=4.5"}
    assert r.headers["retry-after"] == "0.5"


def test_faults_select_by_method_and_path(sim: Simulator, api: httpx.Client) -> None:
    sim.faults.inject("server_error", method="PUT", path=r"^/api/v0/instances/\d+/$", status=502)
    assert api.get("/api/v0/instances/5/").status_code == 200  # wrong method
    assert api.put("/api/v0/instances/reboot/5/", json={}).status_code == 400  # wrong path
    assert api.put("/api/v0/instances/5/", json={"label": "x"}).status_code == 502
    assert api.put("/api/v0/instances/5/", json={"label": "x"}).status_code == 404


def test_search_quota(sim: Simulator, api: httpx.Client) -> None:
    sim.faults.inject("search_quota", times=2)
    assert api.get("/api/v0/ssh/").status_code == 200  # only searches are counted by default
    r = api.post("/api/v0/bundles/", json={})
    assert r.status_code == 429
    assert r.json() == {"success": False, "error": "search_quota_exceeded", "msg": "Daily search quota exceeded"}
    day = datetime.fromtimestamp(sim.clock.now(), UTC).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    assert int(r.headers["x-ratelimit-reset"]) == int(midnight.timestamp())
    assert api.put("/api/v0/search/asks/", json={"q": {}}).status_code == 429
    assert api.post("/api/v0/bundles/", json={}).status_code == 200


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors(sim: Simulator, api: httpx.Client, status: int) -> None:
    sim.faults.inject("server_error", status=status)
    r = api.get("/api/v0/ssh/")
    assert r.status_code == status
    assert r.json()["success"] is False and r.json()["error"] == "server_error"
    sim.faults.inject("server_error", status=status, html=True)
    r = api.get("/api/v0/ssh/")
    assert r.status_code == status and r.headers["content-type"] == "text/html"
    assert f"<h1>{status} " in r.text
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_empty_and_malformed_bodies(sim: Simulator, api: httpx.Client) -> None:
    sim.faults.inject("empty_body", path="/api/v0/bundles/")
    r = api.post("/api/v0/bundles/", json={})
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "0"
    sim.faults.inject("malformed_body", path="/api/v0/bundles/")
    r = api.post("/api/v0/bundles/", json={})
    assert r.status_code == 200 and r.text == '{"offers": ['
    with pytest.raises(json.JSONDecodeError):
        r.json()
    sim.faults.inject("malformed_body", html=True)
    r = api.get("/api/v0/ssh/")
    assert r.status_code == 200 and r.text.startswith("<html>")
    # The connection survived all of it (exact Content-Length).
    assert api.post("/api/v0/bundles/", json={"limit": 1}).status_code == 200


def test_slow_answers_late_but_acts(sim: Simulator, api: httpx.Client, cheap_offer: CheapOffer) -> None:
    oid = cheap_offer()["id"]
    sim.faults.inject("slow", method="PUT", path=r"^/api/v0/asks/", seconds=1.0)
    assert sim.url is not None
    with client(sim.url, timeout=0.3) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.put(f"/api/v0/asks/{oid}/", json={"image": "x", "runtype": "ssh"})
    assert len(api.get("/api/v1/instances/").json()["instances"]) == 1  # the create happened
    sim.faults.inject("slow", seconds=0.4)
    t0 = time.monotonic()
    assert api.get("/api/v0/ssh/").status_code == 200
    assert time.monotonic() - t0 >= 0.4


def test_drop_after_commit(sim: Simulator, api: httpx.Client, cheap_offer: CheapOffer) -> None:
    oid = cheap_offer()["id"]
    sim.faults.inject("drop_after_commit")
    with pytest.raises(httpx.RemoteProtocolError):
        api.put(f"/api/v0/asks/{oid}/", json={"image": "x", "label": "lost-answer", "runtype": "ssh"})
    rows = api.get("/api/v1/instances/", params={"select_filters": json.dumps({"label": {"eq": "lost-answer"}})})
    assert len(rows.json()["instances"]) == 1  # committed although nobody heard back
    create = [r for r in sim.requests if r.method == "PUT"][-1]
    assert create.dropped is True and create.status is None
    # Any write can be chosen; this one drops a label change that still applies.
    iid = rows.json()["instances"][0]["id"]
    sim.faults.inject("drop_after_commit", method="PUT", path=SHOW)
    with pytest.raises(httpx.RemoteProtocolError):
        api.put(f"/api/v0/instances/{iid}/", json={"label": "renamed"})
    row = show(api, iid)
    assert row is not None and row["label"] == "renamed"


def test_offer_taken_between_search_and_create(sim: Simulator, api: httpx.Client, cheap_offer: CheapOffer) -> None:
    oid = cheap_offer()["id"]
    sim.faults.inject("offer_taken")
    r = api.put(f"/api/v0/asks/{oid}/", json={"image": "x", "cancel_unavail": False})
    assert r.status_code == 404 and r.json()["ask_id"] == oid and "no_such_ask" in r.json()["msg"]
    assert sim.state.instances == {}
    assert search(api, {"ask_contract_id": {"eq": oid}})[0]["rentable"] is False
    other = cheap_offer()["id"]
    sim.faults.inject("offer_taken")
    r = api.put(f"/api/v0/asks/{other}/", json={"image": "x", "cancel_unavail": True})
    assert r.status_code == 410 and r.json()["error"] == "no_such_ask"


def test_price_move_persists_for_matching_offers(sim: Simulator, api: httpx.Client) -> None:
    q = {"gpu_name": {"eq": "H100 SXM"}, "limit": 1000}
    before = {o["id"]: o["dph_base"] for o in search(api, q)}
    others = {o["id"]: o["dph_base"] for o in search(api, {"gpu_name": {"eq": "RTX 3090"}, "limit": 1000})}
    sim.faults.inject("price_move", factor=2.0)
    moved = {o["id"]: o["dph_base"] for o in search(api, q)}
    assert moved.keys() == before.keys()
    assert all(moved[i] == pytest.approx(2 * before[i]) for i in before)
    again = {o["id"]: o["dph_base"] for o in search(api, q)}
    assert again == moved  # persists, and did not move twice
    assert {o["id"]: o["dph_base"] for o in search(api, {"gpu_name": {"eq": "RTX 3090"}, "limit": 1000})} == others


def test_price_move_on_create_prices_the_instance(
    sim: Simulator, api: httpx.Client, cheap_offer: CheapOffer, make_instance: MakeInstance
) -> None:
    offer = cheap_offer()
    sim.faults.inject("price_move", method="PUT", path=r"^/api/v0/asks/", factor=1.5)
    iid = make_instance(offer_id=offer["id"])
    row = show(api, iid)
    assert row is not None and row["dph_base"] == pytest.approx(1.5 * offer["dph_base"])


def test_instance_exit(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    sim.faults.inject("instance_exit")
    crashed = make_instance()
    healthy = make_instance()
    sim.clock.advance(BOOT_SECONDS)
    row = show(api, crashed)
    assert row is not None
    assert (row["actual_status"], row["intended_status"]) == ("exited", "running")
    assert row["status_msg"] == "Error response from daemon: container exited with code 1"
    direct, proxy = ssh_ports(row)
    assert direct is not None and refuses(direct) and refuses(proxy)
    ok = show(api, healthy)
    assert ok is not None and ok["actual_status"] == "running"
    # Targeted at a running instance: it exits now.
    sim.faults.inject("instance_exit", instance_id=healthy)
    ok = show(api, healthy)
    assert ok is not None and ok["actual_status"] == "exited"
    # An exited container bills no GPU time.
    sim.clock.advance(3600)
    now = int(sim.clock.now())
    window = json.dumps({"day": {"gte": now, "lte": now}})
    results = {r["source"]: r for r in api.get("/api/v0/charges/", params={"select_filters": window}).json()["results"]}
    gpu = {i["type"]: i["amount"] for i in results[f"instance-{crashed}"]["items"]}["gpu"]
    assert gpu == 0
    assert sim.faults.injected["instance_exit"] == 2


def test_stuck_unknown(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    sim.faults.inject("stuck_unknown")
    iid = make_instance()
    seen = []
    for _ in range(4):
        row = show(api, iid)
        assert row is not None
        seen.append(row["actual_status"])
        sim.clock.advance(BOOT_SECONDS)
    assert seen == ["created", "unknown", "unknown", "unknown"]


def test_slow_ssh_delays_the_banner(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    sim.faults.inject("slow_ssh", seconds=0.6)
    iid = make_instance()
    sim.clock.advance(BOOT_SECONDS)
    direct, _proxy = ssh_ports(show(api, iid) or {})
    assert direct is not None
    t0 = time.monotonic()
    assert banner(direct).startswith(b"SSH-2.0-")
    assert time.monotonic() - t0 >= 0.5


def test_inject_validates(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        sim.faults.inject("meteor")
    with pytest.raises(ValueError, match="no parameter"):
        sim.faults.inject("rate_limit", retry_after=1)
    with pytest.raises(ValueError, match="500, 502, 503, 504"):
        sim.faults.inject("server_error", status=418)
    with pytest.raises(ValueError, match="no live instance"):
        sim.faults.inject("instance_exit", instance_id=1)
    assert sim.faults.armed() == []
