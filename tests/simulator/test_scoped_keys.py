"""Per-instance scoped keys: the create answer's ``instance_api_key`` acts on its own instance only."""

from __future__ import annotations

import httpx
import pytest

from vast_mcp.simulator import Simulator

from .conftest import MakeInstance
from .simutil import BOOT_SECONDS, client

SCOPED_DENIED = {
    "success": False,
    "error": "auth_error",
    "msg": "This instance key may only read, start, stop or destroy its own instance.",
}


def test_the_create_answer_key_is_the_instance_key(
    sim: Simulator, api: httpx.Client, make_instance: MakeInstance
) -> None:
    iid = make_instance()
    create = next(r for r in sim.requests if r.method == "PUT")
    assert create.status == 200
    key = sim.instance_key(iid)
    assert key != sim.api_key and len(key) >= 32
    assert sim.url is not None
    with client(sim.url, key=key) as scoped:
        r = scoped.get(f"/api/v0/instances/{iid}/", params={"owner": "me"})
    assert r.status_code == 200 and r.json()["instances"]["id"] == iid
    with pytest.raises(KeyError):
        sim.instance_key(424242)


def test_own_state_changes_and_destroy_are_allowed(sim: Simulator, make_instance: MakeInstance) -> None:
    iid = make_instance()
    sim.clock.advance(BOOT_SECONDS)
    assert sim.url is not None
    with client(sim.url, key=sim.instance_key(iid)) as scoped:
        assert scoped.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"}).json() == {"success": True}
        assert sim.state.instances[iid].intended == "stopped"
        assert scoped.put(f"/api/v0/instances/{iid}/", json={"state": "running"}).json() == {"success": True}
        assert sim.state.instances[iid].intended == "running"
        r = scoped.request("DELETE", f"/api/v0/instances/{iid}/", json={})
        assert r.status_code == 200 and r.json() == {"success": True}
    assert iid not in sim.state.instances and iid in sim.state.destroyed


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/api/v0/instances/{own}/", {"label": "renamed"}),
        ("PUT", "/api/v0/instances/{own}/", {"state": "stopped", "label": "renamed"}),
        ("PUT", "/api/v0/instances/reboot/{own}/", {}),
        ("PUT", "/api/v0/instances/request_logs/{own}/", {}),
        ("POST", "/api/v0/instances/{own}/ssh/", {"ssh_key": "ssh-ed25519 AAAAC3Nza x@y"}),
        ("GET", "/api/v0/instances/{other}/", None),
        ("PUT", "/api/v0/instances/{other}/", {"state": "stopped"}),
        ("DELETE", "/api/v0/instances/{other}/", {}),
        ("GET", "/api/v1/instances/", None),
        ("PUT", "/api/v0/instances/", {"state": "stopped", "ids": ["{own}"]}),
        ("GET", "/api/v0/users/current", None),
        ("GET", "/api/v0/ssh/", None),
        ("POST", "/api/v0/bundles/", {}),
        ("GET", "/api/v0/charges/", None),
        ("GET", "/api/v1/invoices/", None),
        ("PUT", "/api/v0/asks/{offer}/", {"image": "x"}),
    ],
)
def test_anything_else_is_401_auth_error(
    sim: Simulator, make_instance: MakeInstance, method: str, path: str, body: object
) -> None:
    own, other = make_instance(), make_instance()
    offer = sim.state.offers[-1].id
    sim.clock.advance(BOOT_SECONDS)
    before = {i: (inst.label, inst.intended) for i, inst in sim.state.instances.items()}
    fill = {"own": own, "other": other, "offer": offer}
    if isinstance(body, dict) and "ids" in body:
        body = {**body, "ids": [own]}
    assert sim.url is not None
    with client(sim.url, key=sim.instance_key(own)) as scoped:
        kwargs = {"json": body} if body is not None else {}
        r = scoped.request(method, path.format(**fill), **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 401
    assert r.json() == SCOPED_DENIED
    assert {i: (inst.label, inst.intended) for i, inst in sim.state.instances.items()} == before
    assert len(sim.state.instances) == 2


def test_a_destroyed_instance_key_stops_working(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    iid = make_instance()
    key = sim.instance_key(iid)
    api.request("DELETE", f"/api/v0/instances/{iid}/", json={})
    assert sim.instance_key(iid) == key  # still known to tests
    assert sim.url is not None
    with client(sim.url, key=key) as scoped:
        r = scoped.get(f"/api/v0/instances/{iid}/")
    assert r.status_code == 401
    assert r.json() == {"success": False, "error": "auth_error", "msg": "Invalid user key"}


def test_admin_api_gives_the_instance_key(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    iid = make_instance()
    r = api.post("/_sim/instance_key", json={"instance_id": iid})
    assert r.status_code == 200 and r.json()["instance_api_key"] == sim.instance_key(iid)
    assert api.post("/_sim/instance_key", json={"instance_id": 1}).status_code == 400
