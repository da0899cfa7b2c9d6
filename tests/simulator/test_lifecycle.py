"""Instances: create errors, lifecycle on a controlled clock, sshd banner ports, keys, logs."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from vast_mcp.simulator import Simulator

from .conftest import CheapOffer, MakeInstance
from .simutil import BOOT_SECONDS, banner, client, refuses, show, ssh_ports

PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIInlineKeyExample bob@host"


def status(api: httpx.Client, iid: int) -> tuple[str, str, str]:
    row = show(api, iid)
    assert row is not None
    return row["actual_status"], row["intended_status"], row["cur_state"]


def test_create_answers_new_contract_and_instance_fields(
    sim: Simulator, api: httpx.Client, cheap_offer: CheapOffer
) -> None:
    offer = cheap_offer()
    r = api.put(
        f"/api/v0/asks/{offer['id']}/",
        json={
            "client_id": "me",
            "image": "pytorch/pytorch:latest",
            "env": {"HF_HOME": "/workspace/hf", "-p 8000:8000": "1"},
            "price": None,
            "disk": 64.0,
            "label": "train-1",
            "onstart": "echo hi",
            "cancel_unavail": False,
            "runtype": "ssh_direc ssh_proxy",
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True
    assert isinstance(body["new_contract"], int)
    assert isinstance(body["instance_api_key"], str) and len(body["instance_api_key"]) >= 32
    row = show(api, body["new_contract"])
    assert row is not None
    assert row["id"] == body["new_contract"]
    assert row["label"] == "train-1"
    assert row["image_uuid"] == "pytorch/pytorch:latest"
    assert row["image_runtype"] == "ssh_direc ssh_proxy"
    assert row["disk_space"] == 64.0
    assert row["extra_env"] == [["HF_HOME", "/workspace/hf"], ["-p 8000:8000", "1"]]
    assert row["gpu_name"] == "RTX 4090" and row["gpu_totalram"] == offer["gpu_total_ram"]
    assert "gpu_total_ram" not in row
    assert row["dph_base"] == pytest.approx(offer["dph_base"])
    assert row["storage_total_cost"] == pytest.approx(offer["storage_cost"] * 64 / 720)
    assert row["dph_total"] == pytest.approx(offer["dph_base"] + offer["storage_cost"] * 64 / 720)
    assert row["start_date"] == pytest.approx(sim.clock.now())
    assert row["public_ipaddr"] == "127.0.0.1" and row["ssh_host"] == "127.0.0.1"
    assert row["ports"]["22/tcp"][0]["HostIp"] == "0.0.0.0"
    assert isinstance(row["ports"]["22/tcp"][0]["HostPort"], str)
    assert sim.count("PUT", r"^/api/v0/asks/\d+/$") == 1


def test_lifecycle_created_loading_running(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    iid = make_instance()
    assert status(api, iid) == ("created", "running", "running")
    sim.clock.advance(9.9)
    assert status(api, iid)[0] == "created"
    sim.clock.advance(0.2)
    assert status(api, iid)[0] == "loading"
    sim.clock.advance(19.8)
    assert status(api, iid)[0] == "loading"
    sim.clock.advance(0.2)
    row = show(api, iid)
    assert row is not None
    assert (row["actual_status"], row["intended_status"], row["cur_state"]) == ("running", "running", "running")
    assert row["status_msg"].startswith("success, running pytorch/pytorch_latest")


def test_stop_start_reboot(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    iid = make_instance()
    sim.clock.advance(BOOT_SECONDS)
    direct, proxy = ssh_ports(show(api, iid) or {})
    assert direct is not None
    assert banner(direct).startswith(b"SSH-2.0-")

    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"}).json() == {"success": True}
    assert status(api, iid) == ("running", "stopped", "stopped")  # the container takes ~5 s to stop
    sim.clock.advance(5)
    # What the real API reports for a stopped instance (instance-200-stopped fixture).
    assert status(api, iid) == ("exited", "stopped", "stopped")
    assert refuses(direct) and refuses(proxy)

    assert api.put(f"/api/v0/instances/{iid}/", json={"state": "running"}).json() == {"success": True}
    assert status(api, iid) == ("loading", "running", "running")
    sim.clock.advance(10)
    assert status(api, iid) == ("running", "running", "running")
    assert banner(proxy).startswith(b"SSH-2.0-")

    assert api.put(f"/api/v0/instances/reboot/{iid}/", json={}).json() == {"success": True}
    assert status(api, iid)[0] == "rebooting"
    assert refuses(direct)
    sim.clock.advance(10)
    assert status(api, iid)[0] == "running"
    assert banner(direct).startswith(b"SSH-2.0-")

    api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"})
    sim.clock.advance(5)
    r = api.put(f"/api/v0/instances/reboot/{iid}/", json={})
    assert r.status_code == 400 and r.json()["error"] == "invalid_args"


def test_label_and_update_errors(api: httpx.Client, make_instance: MakeInstance) -> None:
    iid = make_instance(label=None)
    assert api.put(f"/api/v0/instances/{iid}/", json={"label": "my label"}).json() == {"success": True}
    row = show(api, iid)
    assert row is not None and row["label"] == "my label"
    r = api.put(f"/api/v0/instances/{iid}/", json={"state": "paused"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_args"
    r = api.put(f"/api/v0/instances/{iid}/", json={})
    assert r.status_code == 400
    r = api.put("/api/v0/instances/12345/", json={"state": "running"})
    assert r.status_code == 404
    assert r.json()["success"] is False and r.json()["error"] == "no_such_instance"


def test_destroy_removes_instance_closes_ports_and_frees_offer(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    iid = make_instance()
    sim.clock.advance(BOOT_SECONDS)
    direct, proxy = ssh_ports(show(api, iid) or {})
    assert direct is not None and banner(direct).startswith(b"SSH-2.0-")
    r = api.request("DELETE", f"/api/v0/instances/{iid}/", json={})
    assert r.status_code == 200 and r.json() == {"success": True}
    r = api.get(f"/api/v0/instances/{iid}/", params={"owner": "me"})
    assert r.status_code == 200 and r.json() == {"instances": None}
    assert all(row["id"] != iid for row in api.get("/api/v1/instances/").json()["instances"])
    assert refuses(direct) and refuses(proxy)
    r = api.request("DELETE", f"/api/v0/instances/{iid}/", json={})
    assert r.status_code == 404
    assert r.json()["success"] is False and r.json()["error"] == "no_such_instance"


def test_proxy_only_and_jupyter_runtypes(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    proxy_only = make_instance(runtype="ssh_proxy")
    jupyter = make_instance(runtype="jupyter_proxy ssh_proxy")
    sim.clock.advance(BOOT_SECONDS)
    row = show(api, proxy_only)
    assert row is not None
    assert row["ports"] == {} and row["image_runtype"] == "ssh_proxy"
    assert row["direct_port_start"] == -1 and row["direct_port_end"] == -1
    assert banner(row["ssh_port"]).startswith(b"SSH-2.0-")
    jrow = show(api, jupyter)
    assert jrow is not None and jrow["ports"] == {}
    # The CLI's ssh-url adds 1 to ssh_port for jupyter images: the sshd answers there.
    assert refuses(jrow["ssh_port"])
    assert banner(jrow["ssh_port"] + 1).startswith(b"SSH-2.0-OpenSSH_9.6 VastSim")


def test_create_errors(sim: Simulator, api: httpx.Client, cheap_offer: CheapOffer) -> None:
    body = {"client_id": "me", "image": "ubuntu:22.04", "disk": 10, "cancel_unavail": False, "runtype": "ssh"}
    r = api.put("/api/v0/asks/999/", json=body)
    assert r.status_code == 404
    assert r.json() == {
        "success": False,
        "error": "invalid_args",
        "msg": "error 404/3603: no_such_ask Instance type by id 999 is not available.",
        "ask_id": 999,
    }
    r = api.put("/api/v0/asks/999/", json={**body, "cancel_unavail": True})
    assert r.status_code == 410
    assert r.json() == {
        "success": False,
        "error": "no_such_ask",
        "msg": "error 410/3907: no_such_ask Instance type 999 is no longer available.",
        "ask_id": 999,
    }
    oid = cheap_offer()["id"]
    r = api.put(f"/api/v0/asks/{oid}/", json={**body, "image": None})
    assert r.status_code == 400 and r.json()["error"] == "invalid_args"
    r = api.put(f"/api/v0/asks/{oid}/", json={**body, "disk": 10**6})
    assert r.status_code == 400 and r.json()["error"] == "invalid_args"
    r = api.put(f"/api/v0/asks/{oid}/", json={**body, "runtype": "telnet"})
    assert r.status_code == 400
    assert api.put(f"/api/v0/asks/{oid}/", json=body).status_code == 200
    r = api.put(f"/api/v0/asks/{oid}/", json=body)  # now rented by us
    assert r.status_code == 404 and "no_such_ask" in r.json()["msg"]
    assert len(sim.state.instances) == 1


def test_listener_opens_without_reads_when_the_clock_runs(sim: Simulator) -> None:
    # speed 100: boot (30 simulated s) takes 0.3 real s; nobody polls meanwhile.
    fast = Simulator(api_key="k", speed=100.0)
    with fast.serve() as url, client(url, key="k") as api:
        oid = api.post("/api/v0/bundles/", json={"rentable": {"eq": True}, "num_gpus": {"eq": 1}}).json()["offers"][0][
            "id"
        ]
        iid = api.put(f"/api/v0/asks/{oid}/", json={"image": "ubuntu:22.04", "runtype": "ssh_proxy"}).json()[
            "new_contract"
        ]
        port = api.get(f"/api/v0/instances/{iid}/").json()["instances"]["ssh_port"]
        assert refuses(port)
        reads = len(fast.requests)
        deadline = time.monotonic() + 5
        while refuses(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert banner(port).startswith(b"SSH-2.0-")
        assert len(fast.requests) == reads  # opened by the background tick, not by a read


def test_leaving_serve_closes_everything() -> None:
    before = {t.ident for t in threading.enumerate()}
    s = Simulator()
    with s.serve() as url, client(url) as api:
        oid = api.post("/api/v0/bundles/", json={"rentable": {"eq": True}}).json()["offers"][0]["id"]
        iid = api.put(f"/api/v0/asks/{oid}/", json={"image": "x", "runtype": "ssh_direc ssh_proxy"}).json()[
            "new_contract"
        ]
        s.clock.advance(BOOT_SECONDS)
        direct, proxy = ssh_ports(api.get(f"/api/v0/instances/{iid}/").json()["instances"])
        assert direct is not None and banner(direct).startswith(b"SSH-2.0-")
        port = int(url.rsplit(":", 1)[1])
    assert refuses(direct) and refuses(proxy) and refuses(port)
    deadline = time.monotonic() + 3
    while {t.ident for t in threading.enumerate()} - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert {t.ident for t in threading.enumerate()} - before == set()


def test_account_ssh_keys(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    assert api.get("/api/v0/ssh/").json() == []
    r = api.post("/api/v0/ssh/", json={"ssh_key": PUBKEY})
    assert r.status_code == 200
    key = r.json()["key"]
    assert r.json()["success"] is True
    assert set(key) == {"id", "user_id", "default", "public_key", "private_key", "created_at", "deleted_at"}
    assert key["public_key"] == PUBKEY and key["private_key"] is None
    listed = api.get("/api/v0/ssh/").json()
    assert isinstance(listed, list) and listed == [key]
    for bad in ({}, {"ssh_key": ""}, {"ssh_key": "~/.ssh/id_ed25519.pub"}, {"ssh_key": "-----BEGIN OPENSSH"}):
        r = api.post("/api/v0/ssh/", json=bad)
        assert r.status_code == 400 and r.json()["error"] == "no_ssh_key"
    # Account keys are installed on instances created afterwards.
    iid = make_instance()
    assert sim.instance_ssh_keys(iid) == [PUBKEY]
    assert api.request("DELETE", f"/api/v0/ssh/{key['id']}/", json={}).json() == {"success": True}
    assert api.get("/api/v0/ssh/").json() == []


def test_attach_ssh_key_to_instance(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    iid = make_instance()
    assert sim.instance_ssh_keys(iid) == []
    r = api.post(f"/api/v0/instances/{iid}/ssh/", json={"ssh_key": PUBKEY + "\n"})
    assert r.status_code == 200
    assert r.json()["success"] is True and isinstance(r.json()["msg"], str)
    assert sim.instance_ssh_keys(iid) == [PUBKEY]
    r = api.post(f"/api/v0/instances/{iid}/ssh/", json={"ssh_key": "not a key"})
    assert r.status_code == 400 and r.json()["error"] == "no_ssh_key"
    r = api.post("/api/v0/instances/4242/ssh/", json={"ssh_key": PUBKEY})
    assert r.status_code == 404 and r.json()["error"] == "no_such_instance"


def test_logs_are_served_from_the_simulator(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    iid = make_instance(onstart="echo started")
    sim.clock.advance(BOOT_SECONDS)
    r = api.put(f"/api/v0/instances/request_logs/{iid}/", json={})
    assert r.status_code == 200
    url = r.json()["result_url"]
    assert r.json()["success"] is True
    assert sim.url is not None and url.startswith(sim.url + "/")
    with client(sim.url, key=None) as anon:  # result_url is fetched without auth
        text = anon.get(url).text
    assert "Pulling image pytorch/pytorch:latest" in text
    assert "onstart: echo started" in text
    r = api.put(f"/api/v0/instances/request_logs/{iid}/", json={"tail": "1", "filter": "sshd"})
    with client(sim.url, key=None) as anon:
        assert anon.get(r.json()["result_url"]).text.count("\n") == 1
    r = api.put("/api/v0/instances/request_logs/1/", json={})
    assert r.status_code == 404 and r.json() == {"error": "invalid_id", "msg": "Invalid instance id."}


def test_open_ssh_sessions_end_when_the_instance_stops(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    iid = make_instance()
    sim.clock.advance(BOOT_SECONDS)
    direct, _proxy = ssh_ports(show(api, iid) or {})
    assert direct is not None
    with socket.create_connection(("127.0.0.1", direct), timeout=3) as session:
        stream = session.makefile("rb")
        assert stream.readline().startswith(b"SSH-2.0-")
        api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"})
        sim.clock.advance(5)
        assert status(api, iid)[0] == "exited"
        assert stream.read() == b""  # the server side hung up
