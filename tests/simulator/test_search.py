"""Offer search: filters, coercion, order, limit, pricing for allocated_storage, inventory."""

from __future__ import annotations

import time

import httpx
import pytest

from vast_mcp.simulator import Simulator

from .conftest import MakeInstance
from .simutil import client, search

RTX4090_1X = {
    "verified": {"eq": True},
    "rentable": {"eq": True},
    "gpu_name": {"eq": "RTX 4090"},
    "num_gpus": {"eq": 1},
}


def test_search_answers_offers_with_exact_json_content_type(api: httpx.Client) -> None:
    r = api.post("/api/v0/bundles/", json={"limit": 3})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"  # the CLI rejects anything else
    assert len(r.json()["offers"]) == 3


def test_cli_style_string_values_are_coerced(api: httpx.Client) -> None:
    # The CLI sends numbers as strings and multiplies gpu_ram GB -> MB.
    offers = search(
        api,
        {
            "verified": {"eq": True},
            "external": {"eq": False},
            "rentable": {"eq": True},
            "gpu_name": {"eq": "RTX 4090"},
            "num_gpus": {"eq": "1"},
            "reliability": {"gt": "0.95"},
            "gpu_ram": {"gte": 20000.0},
            "order": [["score", "desc"]],
            "type": "on-demand",
            "allocated_storage": 5.0,
        },
    )
    assert len(offers) >= 15
    for o in offers:
        assert o["gpu_name"] == "RTX 4090"
        assert o["num_gpus"] == 1
        assert o["reliability"] > 0.95
        assert o["gpu_ram"] >= 20000
        assert o["verification"] == "verified"
        assert o["rentable"] is True
        assert o["external"] is False


@pytest.mark.parametrize(
    ("clause", "check"),
    [
        ({"num_gpus": {"neq": 1}}, lambda o: o["num_gpus"] != 1),
        ({"num_gpus": {"gte": "4"}}, lambda o: o["num_gpus"] >= 4),
        ({"num_gpus": {"lt": 2}}, lambda o: o["num_gpus"] < 2),
        ({"dph_total": {"lte": "0.3"}}, lambda o: o["dph_total"] <= 0.3),
        ({"gpu_name": {"in": ["H100 SXM", "A100 SXM4"]}}, lambda o: o["gpu_name"] in ("H100 SXM", "A100 SXM4")),
        ({"gpu_name": {"notin": ["RTX 4090", "RTX 3090"]}}, lambda o: o["gpu_name"] not in ("RTX 4090", "RTX 3090")),
        ({"geolocation": {"in": ["US", "CA"]}}, lambda o: o["geolocation"][-2:] in ("US", "CA")),
        ({"geolocation": {"eq": "KR"}}, lambda o: o["geolocation"].endswith(", KR")),
        ({"geolocation": {"notin": ["US"]}}, lambda o: not o["geolocation"].endswith("US")),
        ({"verified": {"eq": "false"}}, lambda o: o["verification"] != "verified"),
        ({"rented": {"eq": True}}, lambda o: o["rented"] is True and o["rentable"] is False),
        ({"direct_port_count": {"gte": 1}}, lambda o: o["direct_port_count"] >= 1),
        ({"cuda_max_good": {"gte": "12.8"}}, lambda o: o["cuda_max_good"] >= 12.8),
        ({"cuda_vers": {"gte": "12.8"}}, lambda o: o["cuda_max_good"] >= 12.8),
        ({"driver_version": {"gte": "570000000"}}, lambda o: o["driver_vers"] >= 570_000_000),
    ],
)
def test_each_operator_filters(api: httpx.Client, clause: dict[str, object], check: object) -> None:
    offers = search(api, {**clause, "limit": 1000})
    assert offers, f"no offer matched {clause}"
    assert all(check(o) for o in offers)  # type: ignore[operator]
    assert len(offers) < 300  # of the 300 offers, the clause really excluded some


def test_unknown_fields_are_ignored(api: httpx.Client) -> None:
    assert len(search(api, {"no_such_field": {"eq": 3}, "limit": 5})) == 5


def test_filter_on_id_returns_nothing_but_ask_contract_id_works(api: httpx.Client) -> None:
    # Recorded real behaviour (search_asks-200-by_ask_contract_id fixture notes).
    oid = search(api, {"limit": 1})[0]["id"]
    assert search(api, {"id": {"eq": oid}}) == []
    found = search(api, {"ask_contract_id": {"eq": oid}})
    assert [o["id"] for o in found] == [oid]


def test_order_and_limit(api: httpx.Client) -> None:
    asc = search(api, {"order": [["dph_total", "asc"]], "limit": 50})
    assert len(asc) == 50
    prices = [o["dph_total"] for o in asc]
    assert prices == sorted(prices)
    desc = search(api, {"order": [["gpu_total_ram", "desc"], ["dph_total", "asc"]], "limit": 80})
    keys = [(-o["gpu_total_ram"], o["dph_total"]) for o in desc]
    assert keys == sorted(keys)
    # Default order is score descending; default limit 64.
    default = search(api, {})
    assert len(default) == 64
    scores = [o["score"] for o in default]
    assert scores == sorted(scores, reverse=True)


def test_price_includes_storage_for_allocated_storage(api: httpx.Client) -> None:
    for gb, expected_gb in ((5.0, 5.0), (64, 64.0), (None, 8.0)):
        body: dict[str, object] = {**RTX4090_1X, "limit": 10}
        if gb is not None:
            body["allocated_storage"] = gb
        for o in search(api, body):
            stc = o["storage_cost"] * expected_gb / 720
            assert o["storage_total_cost"] == pytest.approx(stc)
            assert o["dph_total"] == pytest.approx(o["dph_base"] + stc)
            assert o["search"]["totalHour"] == pytest.approx(o["dph_total"])
            assert o["search"]["gpuCostPerHour"] == pytest.approx(o["dph_base"])
            assert o["search"]["diskHour"] == pytest.approx(stc)
            assert o["instance"]["totalHour"] == pytest.approx(stc)
            assert o["dlperf_per_dphtotal"] == pytest.approx(o["dlperf"] / o["dph_total"])


def test_bigger_disk_can_reorder_by_total_price(api: httpx.Client) -> None:
    small = search(api, {**RTX4090_1X, "order": [["dph_total", "asc"]], "allocated_storage": 1, "limit": 1000})
    big = search(api, {**RTX4090_1X, "order": [["dph_total", "asc"]], "allocated_storage": 4000, "limit": 1000})
    assert {o["id"] for o in small} == {o["id"] for o in big}
    by_id = {o["id"]: o for o in small}
    assert all(o["dph_total"] > by_id[o["id"]]["dph_total"] for o in big)
    # Storage prices differ per host, so the cheapest machine changes with the disk size.
    assert [o["id"] for o in small] != [o["id"] for o in big]


def test_taken_offer_leaves_rentable_search_and_returns_on_destroy(
    api: httpx.Client, make_instance: MakeInstance
) -> None:
    offer = search(api, {**RTX4090_1X, "order": [["dph_total", "asc"]], "limit": 1})[0]
    iid = make_instance(offer_id=offer["id"])
    found = search(api, {"ask_contract_id": {"eq": offer["id"]}})
    assert found[0]["rented"] is True and found[0]["rentable"] is False
    assert offer["id"] not in {o["id"] for o in search(api, {**RTX4090_1X, "limit": 1000})}
    assert api.request("DELETE", f"/api/v0/instances/{iid}/", json={}).json() == {"success": True}
    assert offer["id"] in {o["id"] for o in search(api, {**RTX4090_1X, "limit": 1000})}


def test_put_search_asks_answers_the_same_offers(api: httpx.Client) -> None:
    q = {**RTX4090_1X, "order": [["dph_total", "asc"]], "limit": 5, "allocated_storage": 5.0}
    r = api.put("/api/v0/search/asks/", json={"select_cols": ["*"], "q": q})
    assert r.status_code == 200
    assert r.json()["offers"] == search(api, q)
    r = api.put("/api/v0/search/asks/", json={"select_cols": ["id", "dph_total"], "q": q})
    assert all(set(o) == {"id", "dph_total"} for o in r.json()["offers"])


def test_bad_bodies_are_400_invalid_request(api: httpx.Client) -> None:
    r = api.post("/api/v0/bundles/", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_request", "msg": "Invalid json body"}
    r = api.post("/api/v0/bundles/", json={"num_gpus": {"about": 1}})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
    r = api.post("/api/v0/bundles/", json={"num_gpus": {"gt": "many"}})
    assert r.status_code == 400


def test_gpu_names_need_no_auth(sim: Simulator) -> None:
    assert sim.url is not None
    with client(sim.url, key=None) as anon:
        r = anon.get("/api/v0/gpu_names/unique/")
    assert r.status_code == 200
    names = r.json()["gpu_names"]
    assert {"RTX 4090", "RTX 3090", "RTX 5090", "H100 SXM", "A100 SXM4", "L40S"} <= set(names)


def test_inventory_is_seeded_and_varied() -> None:
    a = Simulator(seed=0).state.offers
    b = Simulator(seed=0).state.offers
    c = Simulator(seed=1).state.offers
    assert [(o.id, o.dph_base) for o in a] == [(o.id, o.dph_base) for o in b]
    assert [(o.id, o.dph_base) for o in a] != [(o.id, o.dph_base) for o in c]
    assert len({o.static["gpu_name"] for o in a}) >= 10
    assert {o.static["num_gpus"] for o in a} == {1, 2, 4, 8}
    assert len({o.static["geolocation"] for o in a}) >= 10
    assert {o.static["verification"] for o in a} == {"verified", "unverified"}
    assert all(0.9 <= o.static["reliability"] <= 0.999 for o in a)
    rtx = [
        o
        for o in a
        if o.static["gpu_name"] == "RTX 4090"
        and o.static["num_gpus"] == 1
        and o.rentable
        and o.static["verification"] == "verified"
    ]
    assert len(rtx) >= 15
    # Per-model pricing: an H100 SXM GPU costs more than an RTX 3060 one.
    per_gpu = {
        name: min(o.dph_base / o.static["num_gpus"] for o in a if o.static["gpu_name"] == name)
        for name in ("H100 SXM", "RTX 3060")
    }
    assert per_gpu["H100 SXM"] > 5 * per_gpu["RTX 3060"]


def test_ten_thousand_offers_build_and_search_fast() -> None:
    # CPU time, so a busy machine running other suites does not make this flaky.
    t0 = time.process_time()
    big = Simulator(offer_count=10_000)
    built = time.process_time() - t0
    assert len(big.state.offers) == 10_000
    assert len({o.id for o in big.state.offers}) == 10_000
    assert built < 1.0, f"building 10,000 offers took {built:.2f} s of CPU"
    with big.serve() as url, client(url) as api:
        t0 = time.process_time()
        offers = search(
            api,
            {
                "verified": {"eq": True},
                "rentable": {"eq": True},
                "num_gpus": {"gte": "2"},
                "order": [["dph_total", "asc"]],
            },
        )
        searched = time.process_time() - t0
    assert len(offers) == 64
    assert searched < 1.0, f"searching 10,000 offers took {searched:.2f} s of CPU"
