"""What the live API is known to do (reference §11), reproduced on demand or always."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from vast_mcp.simulator import Simulator

from .conftest import MakeInstance
from .simutil import (
    BOOT_SECONDS,
    QUEUED,
    charge_items,
    log_text,
    refuses,
    search,
    show,
    ssh_ports,
    state_of,
)


def gpu_and_disk(api: httpx.Client, sim: Simulator, iid: int) -> tuple[float, float]:
    billed = charge_items(api, sim, iid)
    return billed["gpu"]["amount"], billed["disk"]["amount"]


# ------------------------------------------------------------------ always


def test_a_search_returns_at_most_64_offers_whatever_limit_says(api: httpx.Client) -> None:
    for limit in (65, 100, 1000):
        assert len(search(api, {"limit": limit})) == 64
    assert len(search(api, {"limit": 10})) == 10
    r = api.put("/api/v0/search/asks/", json={"select_cols": ["*"], "q": {"limit": 500}})
    assert len(r.json()["offers"]) == 64


# ------------------------------------------------------------ re-let GPUs


def stopped(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> int:
    iid = make_instance()
    sim.clock.advance(BOOT_SECONDS)
    api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"})
    sim.clock.advance(5)
    return iid


def test_a_start_after_relet_is_queued_until_free(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    iid = stopped(sim, api, make_instance)
    sim.relet(iid)
    r = api.put(f"/api/v0/instances/{iid}/", json={"state": "running"})
    assert r.status_code == 200 and r.json() == QUEUED
    assert state_of(api, iid) == ("exited", "running", "stopped")
    row = show(api, iid)
    assert row is not None and "state change queued" in row["status_msg"]
    assert row["instance"]["gpuCostPerHour"] == 0
    # Asking again changes nothing and answers the same.
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "running"}).json() == QUEUED
    sim.clock.advance(3600)
    gpu_before, disk_before = gpu_and_disk(api, sim, iid)
    sim.clock.advance(3600)
    gpu, disk = gpu_and_disk(api, sim, iid)
    assert gpu == pytest.approx(gpu_before)  # a queued start bills no GPU ...
    assert disk > disk_before  # ... but storage all along

    sim.free(iid)
    assert state_of(api, iid) == ("loading", "running", "running")
    sim.clock.advance(10)
    assert state_of(api, iid) == ("running", "running", "running")
    direct, _proxy = ssh_ports(show(api, iid) or {})
    assert direct is not None and not refuses(direct)
    sim.clock.advance(3600)
    assert gpu_and_disk(api, sim, iid)[0] == pytest.approx(gpu_before + row["dph_base"])  # billed from the start
    # Starting is plain again once the GPUs are back.
    api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"})
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "running"}).json() == {"success": True}


def test_a_stop_cancels_the_queued_start(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    iid = stopped(sim, api, make_instance)
    sim.relet(iid)
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "running"}).json() == QUEUED
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"}).json() == {"success": True}
    assert state_of(api, iid) == ("exited", "stopped", "stopped")
    gpu = gpu_and_disk(api, sim, iid)[0]
    sim.free(iid)
    sim.clock.advance(3600)
    assert state_of(api, iid) == ("exited", "stopped", "stopped")
    assert gpu_and_disk(api, sim, iid)[0] == pytest.approx(gpu)


def test_relet_needs_a_stopped_instance_and_has_an_admin_form(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    running = make_instance()
    with pytest.raises(ValueError, match="stop it first"):
        sim.relet(running)
    with pytest.raises(KeyError):
        sim.relet(1)
    iid = stopped(sim, api, make_instance)
    assert api.post("/_sim/relet", json={"instance_id": iid}).status_code == 200
    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "running"}).json() == QUEUED
    assert api.post("/_sim/free", json={"instance_id": iid}).status_code == 200
    assert state_of(api, iid) == ("loading", "running", "running")
    assert api.post("/_sim/relet", json={"instance_id": running}).status_code == 400


# ------------------------------------------------------------ odd records


def test_odd_records_in_a_search(sim: Simulator, api: httpx.Client) -> None:
    normal = search(api, {"order": [["dph_total", "asc"]], "limit": 4})
    sim.faults.inject("odd_records", every=2)
    odd = search(api, {"order": [["dph_total", "asc"]], "limit": 4})
    assert [o["id"] for o in odd] == [o["id"] for o in normal]
    for i, (o, n) in enumerate(zip(odd, normal, strict=True)):
        if i % 2:
            assert o == n
            continue
        for name in ("dlperf", "cuda_max_good", "inet_up", "num_gpus", "dph_base"):
            assert o[name] is None, name
        assert o["external"] is None and o["verification"] == "deverified"
        assert o["public_ipaddr"] == " 127.0.0.1\n" and o["public_ipaddr"].strip() == "127.0.0.1"
        assert o["gpu_name"] == n["gpu_name"]
    assert search(api, {"order": [["dph_total", "asc"]], "limit": 4}) == normal  # used up; state untouched


def test_odd_records_in_instance_reads(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    iid = make_instance()
    sim.clock.advance(BOOT_SECONDS)
    direct, _proxy = ssh_ports(show(api, iid) or {})
    sim.faults.inject("odd_records", times=2)
    row = show(api, iid)
    assert row is not None
    assert row["num_gpus"] is None and row["dph_base"] is None and row["external"] is None
    assert row["verification"] == "deverified" and row["public_ipaddr"] == " 127.0.0.1\n"
    assert row["ports"] == [direct]
    listed = api.get("/api/v1/instances/").json()
    assert listed["instances"][0]["cuda_max_good"] is None and isinstance(listed["instances"][0]["ports"], list)
    clean = show(api, iid)
    assert clean is not None and isinstance(clean["ports"], dict) and clean["num_gpus"] == 1


# ------------------------------------------------------- create outcomes


def test_oci_failure_dies_while_loading(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    sim.faults.inject("oci_failure")
    broken = make_instance()
    healthy = make_instance()
    seen: list[tuple[Any, Any]] = []
    for _ in range(4):
        row = show(api, broken)
        assert row is not None
        seen.append((row["actual_status"], row["status_msg"]))
        sim.clock.advance(10)
    assert [s for s, _ in seen] == ["created", "loading", "exited", "exited"]
    assert seen[-1][1].startswith("OCI runtime create failed: ")
    row = show(api, broken)
    assert row is not None and row["intended_status"] == "running"
    assert refuses(ssh_ports(row)[1])
    assert gpu_and_disk(api, sim, broken)[0] == 0  # it never ran
    ok = show(api, healthy)
    assert ok is not None and ok["actual_status"] == "running"
    assert "OCI runtime create failed" in log_text(api, broken)


def test_pending_null(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    sim.faults.inject("pending_null", seconds=15)
    pending = make_instance()
    other = make_instance()
    assert state_of(api, other)[0] == "created"
    row = show(api, pending)
    assert row is not None and row["actual_status"] is None and row["status_msg"] is None
    assert api.get("/api/v1/instances/").json()["instances"][0]["actual_status"] is None
    sim.clock.advance(14.9)
    assert state_of(api, pending)[0] is None
    sim.clock.advance(0.2)
    assert state_of(api, pending)[0] == "loading"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect(sim: Simulator, api: httpx.Client, status: int) -> None:
    sim.faults.inject("redirect", path="/api/v1/instances/", location="http://localhost:9/elsewhere/", status=status)
    r = api.get("/api/v1/instances/")  # httpx does not follow by default
    assert r.status_code == status and r.headers["location"] == "http://localhost:9/elsewhere/"
    assert r.content == b""
    assert api.get("/api/v1/instances/").status_code == 200


def test_new_fault_kinds_validate(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="location"):
        sim.faults.inject("redirect")
    with pytest.raises(ValueError, match="301, 302, 307, 308"):
        sim.faults.inject("redirect", location="http://127.0.0.1:9/", status=303)
    with pytest.raises(ValueError, match="every"):
        sim.faults.inject("odd_records", every=0)
    with pytest.raises(ValueError, match="no parameter"):
        sim.faults.inject("oci_failure", instance_id=1)
    assert sim.faults.armed() == []
