"""GET /api/v1/instances/: filters, order, keyset paging, label counts; the deprecated v0 list."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from vast_mcp.simulator import Simulator

from .simutil import API_KEY, BOOT_SECONDS, client, search


@pytest.fixture(scope="module")
def fleet() -> Any:
    """A simulator with 32 instances: labels a/b/none, some stopped, some still loading."""
    sim = Simulator(api_key=API_KEY, seed=3, offer_count=300)
    with sim.serve() as url, client(url) as api:
        offers = search(api, {"rentable": {"eq": True}, "order": [["dph_total", "asc"]], "limit": 32})
        ids = []
        for n, offer in enumerate(offers):
            label = ("a", "b", None)[n % 3]
            body = {"image": "ubuntu:22.04", "disk": 10, "label": label, "runtype": "ssh_proxy"}
            ids.append(api.put(f"/api/v0/asks/{offer['id']}/", json=body).json()["new_contract"])
            sim.clock.advance(1)
        sim.clock.advance(BOOT_SECONDS)
        for iid in ids[:5]:
            api.put(f"/api/v0/instances/{iid}/", json={"state": "stopped"})
        sim.clock.advance(5)
        yield sim, api, ids


def page(api: httpx.Client, **params: Any) -> dict[str, Any]:
    query = {k: v if isinstance(v, str | int) else json.dumps(v) for k, v in params.items()}
    r = api.get("/api/v1/instances/", params=query)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def all_pages(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token = None
    for _ in range(10):
        extra = {"after_token": token} if token else {}
        body = page(api, **params, **extra)
        assert body["instances_found"] == len(body["instances"])
        rows += body["instances"]
        token = body["next_token"]
        if token is None:
            return rows
    raise AssertionError("paging never ended")


def test_default_paging_is_25_by_id(fleet: Any) -> None:
    _sim, api, ids = fleet
    first = page(api, select_filters={}, order_by=[{"col": "id", "dir": "asc"}], limit=25)
    assert first["success"] is True
    assert first["instances_found"] == 25 and first["total_instances"] == 32
    assert isinstance(first["next_token"], str)
    second = page(
        api, select_filters={}, order_by=[{"col": "id", "dir": "asc"}], limit=25, after_token=first["next_token"]
    )
    assert second["instances_found"] == 7 and second["next_token"] is None
    got = [r["id"] for r in first["instances"] + second["instances"]]
    assert got == sorted(ids)
    # No parameters at all: the same defaults.
    assert [r["id"] for r in page(api)["instances"]] == sorted(ids)[:25]


def test_order_by_start_date_desc_pages_consistently(fleet: Any) -> None:
    _sim, api, ids = fleet
    rows = all_pages(api, order_by=[{"col": "start_date", "dir": "desc"}], limit=10)
    assert [r["id"] for r in rows] == sorted(ids, reverse=True)  # created one second apart


def test_limits(fleet: Any) -> None:
    _sim, api, _ids = fleet
    assert page(api, limit=100)["instances_found"] == 25
    assert page(api, limit=0)["instances_found"] == 5
    assert page(api, limit=3)["instances_found"] == 3


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"label": {"eq": "a"}}, lambda r: r["label"] == "a"),
        ({"label": {"in": [None]}}, lambda r: r["label"] is None),
        ({"label": {"in": ["b", None]}}, lambda r: r["label"] in ("b", None)),
        ({"label": {"neq": "a"}}, lambda r: r["label"] != "a"),
        ({"actual_status": {"eq": "running"}}, lambda r: r["actual_status"] == "running"),
        ({"actual_status": {"in": ["exited"]}}, lambda r: r["actual_status"] == "exited"),
        ({"actual_status": {"notin": ["running"]}}, lambda r: r["actual_status"] != "running"),
        (
            {"actual_status": {"eq": "running"}, "label": {"eq": "b"}},
            lambda r: r["actual_status"] == "running" and r["label"] == "b",
        ),
    ],
)
def test_filters(fleet: Any, filters: dict[str, Any], expected: Any) -> None:
    _sim, api, ids = fleet
    rows = all_pages(api, select_filters=filters, limit=25)
    everything = all_pages(api)
    wanted = [r["id"] for r in everything if expected(r)]
    assert rows and len(rows) < len(ids)
    assert [r["id"] for r in rows] == sorted(wanted)


def test_label_counts_and_total_follow_the_filter(fleet: Any) -> None:
    _sim, api, _ids = fleet
    body = page(api)
    assert body["label_counts"] == {"a": 11, "b": 11, "": 10}
    body = page(api, select_filters={"label": {"in": ["a", None]}})
    assert body["label_counts"] == {"a": 11, "": 10} and body["total_instances"] == 21


def test_select_cols_projects_rows(fleet: Any) -> None:
    _sim, api, _ids = fleet
    body = page(api, select_cols=["id", "actual_status", "label"])
    assert all(set(r) == {"id", "actual_status", "label"} for r in body["instances"])


@pytest.mark.parametrize(
    "params",
    [
        {"select_filters": json.dumps({"dph_total": {"lt": 1}})},
        {"select_filters": json.dumps({"label": {"like": "a"}})},
        {"select_filters": "{broken"},
        {"order_by": json.dumps([{"col": "num_gpus", "dir": "asc"}])},
        {"order_by": json.dumps([{"col": "id", "dir": "sideways"}])},
    ],
)
def test_bad_query_parameters_are_400_invalid_request(fleet: Any, params: dict[str, str]) -> None:
    _sim, api, _ids = fleet
    r = api.get("/api/v1/instances/", params=params)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


def test_bad_token_is_400_invalid_token(fleet: Any) -> None:
    _sim, api, _ids = fleet
    r = api.get("/api/v1/instances/", params={"after_token": "not-a-token"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_token"


def test_instance_filter_values(fleet: Any) -> None:
    _sim, api, _ids = fleet
    r = api.get("/api/v0/instances/filters/")
    assert r.status_code == 200
    statuses = {f["actual_status"] for f in r.json()["filters"]}
    assert statuses == {"running", "exited"}


def test_v0_list_is_deprecated_410(fleet: Any) -> None:
    _sim, api, _ids = fleet
    r = api.get("/api/v0/instances/", params={"owner": "me"})
    assert r.status_code == 410
    assert r.json() == {
        "success": False,
        "error": "deprecated_endpoint",
        "msg": "/api/v0/instances/ is deprecated. Use /api/v1/instances/ instead.",
    }
