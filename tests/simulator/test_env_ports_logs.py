"""Env and ports as the official CLI's parse_env sends them, onstart in the log, a registry login kept secret."""

from __future__ import annotations

import json

import httpx
import pytest

from vast_mcp.simulator import Simulator

from .conftest import MakeInstance
from .simutil import BOOT_SECONDS, log_text, refuses, show

#: ``--env "-p 8888:8888 -p 8081:8081/udp -e HF_TOKEN=hf_x -h host"`` after CLI 1.9.1's parse_env.
CLI_ENV = {"-p 8888:8888": "1", "-p 8081:8081/udp": "1", "HF_TOKEN": "hf_secretvalue", "-h": "host"}
LOGIN = "-u robot -p dckr_pat_registrysecret registry.example.com"


def test_published_ports_are_mapped_beside_direct_ssh(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    iid = make_instance(env=CLI_ENV)
    row = show(api, iid)
    assert row is not None
    assert row["extra_env"] == [list(p) for p in CLI_ENV.items()]
    assert set(row["ports"]) == {"8888/tcp", "8081/udp", "22/tcp"}
    host_ports = [m[0]["HostPort"] for m in row["ports"].values()]
    assert all(m[0]["HostIp"] == "0.0.0.0" for m in row["ports"].values())
    assert all(isinstance(p, str) and p.isdigit() for p in host_ports) and len(set(host_ports)) == 3
    assert row["public_ipaddr"] == "127.0.0.1"
    # Real loopback ports held for the instance (nothing answers on them) ...
    for port in host_ports[:2]:
        assert sim.state.hub.reserved(int(port)) and refuses(int(port))
    # ... stable while it lives, released when it is destroyed.
    sim.clock.advance(BOOT_SECONDS)
    again = show(api, iid)
    assert again is not None and again["ports"] == row["ports"]
    api.request("DELETE", f"/api/v0/instances/{iid}/", json={})
    assert not any(sim.state.hub.reserved(int(p)) for p in host_ports)


def test_ports_without_direct_ssh_and_the_docker_flag_string(api: httpx.Client, make_instance: MakeInstance) -> None:
    proxy = make_instance(runtype="ssh_proxy", env={"-p 7860:7860": "1"})
    row = show(api, proxy)
    assert row is not None and set(row["ports"]) == {"7860/tcp"}
    flags = make_instance(env="-e A=b -p 9000:9000 -p 6006")
    row = show(api, flags)
    assert row is not None
    assert row["extra_env"] == [["A", "b"], ["-p 9000:9000", "1"], ["-p 6006", "1"]]
    assert set(row["ports"]) == {"9000/tcp", "6006/tcp", "22/tcp"}


@pytest.mark.parametrize("spec", ["-p 70000:70000", "-p 0:80", "-p 80:80/sctp", "-p web"])
def test_bad_port_mappings_are_refused(sim: Simulator, api: httpx.Client, spec: str) -> None:
    oid = sim.state.offers[0].id
    r = api.put(f"/api/v0/asks/{oid}/", json={"image": "x", "env": {spec: "1"}})
    assert r.status_code == 400 and r.json()["error"] == "invalid_args"
    assert sim.state.instances == {}


def test_the_log_shows_the_onstart_first_line_with_env_expanded(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    onstart = 'echo "token=$HF_TOKEN dir=${HF_HOME} missing=$NOPE"\nsleep infinity'
    iid = make_instance(env={**CLI_ENV, "HF_HOME": "/workspace/hf"}, onstart=onstart)
    assert "onstart" not in log_text(api, iid)  # not started yet
    sim.clock.advance(BOOT_SECONDS)
    text = log_text(api, iid)
    assert 'onstart: echo "token=hf_secretvalue dir=/workspace/hf missing=$NOPE"' in text
    assert "sleep infinity" not in text
    row = show(api, iid)
    assert row is not None and row["onstart"] == onstart  # stored as sent


def test_a_registry_login_is_kept_and_never_echoed(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    iid = make_instance(image_login=LOGIN, onstart="echo hi")
    assert sim.state.instances[iid].image_login == LOGIN
    sim.clock.advance(BOOT_SECONDS)
    text = log_text(api, iid)
    assert "Login Succeeded" in text and "onstart: echo hi" in text
    seen = [
        json.dumps(show(api, iid)),
        api.get("/api/v1/instances/").text,
        text,
        log_text(api, iid, daemon_logs="true"),
        json.dumps(sim.summary()),
    ]
    for secret in ("dckr_pat_registrysecret", "robot", "registry.example.com"):
        assert all(secret not in blob for blob in seen), secret
    free_offer = next(o.id for o in sim.state.offers if o.rentable)
    r = api.put(f"/api/v0/asks/{free_offer}/", json={"image": "x", "image_login": ["-u", "a"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_args"


def test_the_create_answer_does_not_echo_the_login(sim: Simulator, api: httpx.Client) -> None:
    oid = sim.state.offers[0].id
    r = api.put(f"/api/v0/asks/{oid}/", json={"image": "private/img:1", "image_login": LOGIN, "runtype": "ssh"})
    assert r.status_code == 200 and "dckr_pat" not in r.text
    assert set(r.json()) == {"success", "new_contract", "instance_api_key"}
