"""Shape parity with real recorded responses (tests/fixtures/real/*.json).

For each fixture the simulator can answer, send the recorded request and compare
key sets and JSON value types recursively with the real body (values are ignored).
Type rules: a real ``null`` accepts any value (nullable or scrubbed); a real ``0``
accepts any number (often a scrubbed placeholder); any other real int must be an
int, a real float a float, a real bool a bool, a real string a string. Keys the
simulator omits or adds on purpose are listed below with the reason.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from vast_mcp.simulator import Simulator

from .conftest import MakeInstance
from .simutil import BOOT_SECONDS, FIXTURES, client

#: Real keys (by name) the simulator leaves out on purpose.
OMITTED: dict[str, str] = {
    # Kept "as recorded" upstream; the README says it is unknown whether the API or
    # the recording client added it, so the simulator answers {"offers": [...]} only.
    "truncated": "possibly added by the recording client",
}
#: Simulator keys (by name) the recorded bodies lack, on purpose; all on instances.
EXTRA: dict[str, str] = {
    # reference §6: instances carry their port map; the recorded stopped, proxy-only
    # instance happened not to include it.
    "ports": "documented port map (HostPort strings)",
    "country_code": "documented in the v1 instance schema",
    "volume_info": "documented; the CLI's instance table selects it",
}
#: Fields scrubbed upstream to a placeholder of the wrong type (fixture notes).
SCRUBBED: dict[str, frozenset[str]] = {
    "users_current-200-jdziat.json": frozenset(
        {
            "$.phone_number",
            "$.paypal_email",
            "$.fullname",
            "$.billaddress_line1",
            "$.billaddress_line2",
            "$.billaddress_city",
            "$.billaddress_zip",
            "$.sid",
            "$.oauth_provider",
        }
    ),
}
#: Fixtures the simulator does not serve, and why.
NOT_SIMULATED = {
    "template-200-recommended-jdziat.json": "templates are not simulated (no create by template hash)",
}


def real(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def shape_problems(
    real_value: Any, sim_value: Any, path: str = "$", scrubbed: frozenset[str] = frozenset()
) -> list[str]:
    if real_value is None or path in scrubbed:
        return []
    if isinstance(real_value, dict):
        if not isinstance(sim_value, dict):
            return [f"{path}: object expected, got {type(sim_value).__name__}"]
        problems = []
        for key in real_value:
            sub = f"{path}.{key}"
            if key not in sim_value:
                if key not in OMITTED:
                    problems.append(f"{sub}: missing")
                continue
            problems += shape_problems(real_value[key], sim_value[key], sub, scrubbed)
        problems += [f"{path}.{k}: unexpected extra key" for k in sim_value if k not in real_value and k not in EXTRA]
        return problems
    if isinstance(real_value, list):
        if not isinstance(sim_value, list):
            return [f"{path}: array expected, got {type(sim_value).__name__}"]
        if not real_value:
            return []
        out = []
        for item in sim_value:
            out += shape_problems(real_value[0], item, f"{path}[]", scrubbed)
        return out
    if isinstance(real_value, bool):
        ok = isinstance(sim_value, bool)
    elif isinstance(real_value, int):
        ok = isinstance(sim_value, int | float) if real_value == 0 else isinstance(sim_value, int)
        ok = ok and not isinstance(sim_value, bool)
    elif isinstance(real_value, float):
        ok = isinstance(sim_value, float)
    else:
        ok = isinstance(sim_value, type(real_value))
    return [] if ok else [f"{path}: {type(real_value).__name__} expected, got {sim_value!r}"]


def test_the_comparison_itself_catches_differences() -> None:
    assert shape_problems({"a": 1, "b": [1.5]}, {"a": 2, "b": [2.5]}) == []
    assert shape_problems({"a": 1}, {"a": 1.0}) == ["$.a: int expected, got 1.0"]
    assert shape_problems({"a": 0}, {"a": 0.5}) == []
    assert shape_problems({"a": 1.5}, {"a": 1}) == ["$.a: float expected, got 1"]
    assert shape_problems({"a": True}, {"a": 1}) == ["$.a: bool expected, got 1"]
    assert shape_problems({"a": None}, {"a": "x"}) == []
    assert shape_problems({"a": {"b": "x"}}, {"a": {}}) == ["$.a.b: missing"]
    assert shape_problems({"a": 1}, {"a": 1, "z": 2}) == ["$.z: unexpected extra key"]
    assert shape_problems({"a": 1, "truncated": False}, {"a": 1, "ports": {}}) == []
    assert shape_problems({"a": [{"b": 1}]}, {"a": [{"b": "x"}]}) == ["$.a[].b: int expected, got 'x'"]


def test_every_fixture_is_covered_or_explained() -> None:
    covered = {
        "search_asks-200-jdziat.json",
        "search_asks-200-by_ask_contract_id-jdziat.json",
        "instance-200-nonexistent_null-jdziat.json",
        "instance-200-stopped-jdziat.json",
        "instances-200-empty-jdziat.json",
        "ssh-200-jdziat.json",
        "users_current-200-jdziat.json",
        "bundles-429-nikitatsym.json",
    }
    on_disk = {p.name for p in FIXTURES.glob("*.json")}
    assert on_disk <= covered | set(NOT_SIMULATED), on_disk - covered - set(NOT_SIMULATED)


def send(api: httpx.Client, request: dict[str, Any]) -> httpx.Response:
    return api.request(request["method"], request["path"], params=request["query"], json=request["body"])


def test_offer_search(api: httpx.Client) -> None:
    fixture = real("search_asks-200-jdziat.json")
    r = send(api, fixture["request"])
    assert r.status_code == fixture["response"]["status"]
    body = r.json()
    assert len(body["offers"]) == 2  # the recorded q had limit 2
    for real_offer in fixture["response"]["body"]["offers"]:
        assert shape_problems({**fixture["response"]["body"], "offers": [real_offer]}, body) == []


def test_offer_by_ask_contract_id(api: httpx.Client) -> None:
    fixture = real("search_asks-200-by_ask_contract_id-jdziat.json")
    request = json.loads(json.dumps(fixture["request"]))
    # The recorded id is a real marketplace id; ask for one of the simulator's instead.
    sim_id = api.post("/api/v0/bundles/", json={"limit": 1}).json()["offers"][0]["id"]
    request["body"]["q"]["ask_contract_id"] = {"eq": sim_id}
    body = send(api, request).json()
    assert [o["id"] for o in body["offers"]] == [sim_id]
    assert shape_problems(fixture["response"]["body"], body) == []


def test_nonexistent_instance(api: httpx.Client) -> None:
    fixture = real("instance-200-nonexistent_null-jdziat.json")
    r = send(api, fixture["request"])
    assert r.status_code == 200 and r.json() == fixture["response"]["body"]


def stopped_instance(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> int:
    iid = make_instance(runtype="ssh", label="vastai-mcp-probe-stopped-price", disk=10)
    sim.clock.advance(BOOT_SECONDS)
    api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"})
    sim.clock.advance(10)
    return iid


def test_stopped_instance(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    fixture = real("instance-200-stopped-jdziat.json")
    iid = stopped_instance(sim, api, make_instance)
    request = dict(fixture["request"], path=f"/api/v0/instances/{iid}/")
    body = send(api, request).json()
    assert shape_problems(fixture["response"]["body"], body) == []
    real_row = fixture["response"]["body"]["instances"]
    for key in ("actual_status", "intended_status", "cur_state", "next_state", "image_runtype"):
        assert body["instances"][key] == real_row[key], key
    # Same pricing relations as the recording: dph_total includes storage while stopped.
    row = body["instances"]
    assert row["dph_total"] == pytest.approx(row["dph_base"] + row["storage_cost"] * row["disk_space"] / 720)
    assert row["instance"]["gpuCostPerHour"] == 0


def test_v1_list_items_match_the_instance_shape(sim: Simulator, api: httpx.Client, make_instance: MakeInstance) -> None:
    old = real("instances-200-empty-jdziat.json")
    # The recorded v0 list endpoint is now deprecated: the simulator answers 410 ...
    assert send(api, old["request"]).status_code == 410
    # ... so compare the v1 list's rows with the real instance object instead.
    stopped_instance(sim, api, make_instance)
    make_instance(runtype="ssh_direc ssh_proxy")
    sim.clock.advance(BOOT_SECONDS)
    rows = api.get("/api/v1/instances/").json()["instances"]
    assert len(rows) == 2
    real_row = real("instance-200-stopped-jdziat.json")["response"]["body"]["instances"]
    for row in rows:
        assert shape_problems(real_row, row) == []


def test_ssh_keys(api: httpx.Client) -> None:
    fixture = real("ssh-200-jdziat.json")
    api.post("/api/v0/ssh/", json={"ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFirst a@b"})
    api.post("/api/v0/ssh/", json={"ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISecond c@d"})
    body = send(api, fixture["request"]).json()
    assert isinstance(body, list) and len(body) == 2  # a bare array, like the real one
    assert shape_problems(fixture["response"]["body"], body) == []


def test_current_user(api: httpx.Client) -> None:
    fixture = real("users_current-200-jdziat.json")
    api.post("/api/v0/ssh/", json={"ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFirst a@b"})
    body = send(api, fixture["request"]).json()
    name = "users_current-200-jdziat.json"
    assert shape_problems(fixture["response"]["body"], body, scrubbed=SCRUBBED[name]) == []


def test_rate_limited_search() -> None:
    fixture = real("bundles-429-nikitatsym.json")
    sim = Simulator(rate_limit=(5, 10.0))
    with sim.serve() as url, client(url) as api:
        statuses = [send(api, {**fixture["request"], "body": {}}) for _ in range(6)]
    last = statuses[-1]
    assert [r.status_code for r in statuses] == [200] * 5 + [fixture["response"]["status"]]
    assert shape_problems(fixture["response"]["body"], last.json()) == []
    wanted = {k for k in fixture["response"]["headers"] if k not in ("connection", "server")}
    assert wanted <= set(last.headers)
