"""Every endpoint the client calls, against httpx.MockTransport: method, path, query, body, parsing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.vast.fake import FakeVast, reply
from vast_mcp.credentials import key_from_env
from vast_mcp.vast import OfferFilters, VastClient, VastHttp
from vast_mcp.vast.query import build_query

pytestmark = pytest.mark.anyio


@pytest.fixture
def fake() -> FakeVast:
    return FakeVast()


@pytest.fixture
async def vast(fake: FakeVast) -> AsyncIterator[VastClient]:
    key = key_from_env({"VAST_API_KEY": "test-key-abcdef"})

    async def no_sleep(_: float) -> None:
        return None

    http = VastHttp(key, "https://vast.test", transport=fake.transport(), budget=None, sleep=no_sleep)
    async with VastClient(http) as client:
        yield client


def query_json(request: httpx.Request, name: str) -> object:
    return json.loads(request.url.params[name])


def offer(offer_id: int, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": offer_id,
        "machine_id": offer_id * 10,
        "num_gpus": 1,
        "gpu_name": "RTX 4090",
        "gpu_ram": 24564,
        "reliability": 0.99,
        "verification": "verified",
        "geolocation": "Ohio, US",
        "dph_base": 0.40,
        "storage_cost": 0.15,
        "disk_space": 500.0,
        "cuda_max_good": 12.8,
        "direct_port_count": 10,
        "rentable": True,
        "rented": False,
    }
    return {**base, **extra}


async def test_search_posts_the_query_and_ranks_locally(vast: VastClient, fake: FakeVast) -> None:
    fake.on(
        "POST",
        "/api/v0/bundles/",
        reply(body={"offers": [offer(1, dph_base=0.5), offer(2, dph_base=0.3), offer(3, rented=True, dph_base=0.1)]}),
    )
    filters = OfferFilters(gpu_name="RTX 4090", num_gpus=1, countries=("us",), max_dph=1.0, disk_gb=64)
    ranked = await vast.offers.search(filters, "price")
    assert [o.id for o in ranked] == [2, 1]  # the rented one is dropped even if Vast returned it
    body = fake.body()
    assert body == build_query(filters, "price", 50)
    assert body["rentable"] == {"eq": True}
    assert body["rented"] == {"eq": False}
    assert body["gpu_name"] == {"eq": "RTX 4090"}
    assert body["geolocation"] == {"in": ["US"]}
    assert body["allocated_storage"] == 64
    assert body["order"] == [["dph_total", "asc"]]
    assert ranked[0].price_per_hour(64) == pytest.approx(0.3 + 0.15 * 64 / 720)


def test_query_builder_units_and_objectives() -> None:
    q = build_query(
        OfferFilters(min_gpu_ram_gb=24, min_reliability=0.98, min_cuda=12.1, direct_ports=True), "performance"
    )
    assert q["gpu_ram"] == {"gte": 24000}  # GB -> MB
    assert q["reliability"] == {"gte": 0.98}
    assert q["cuda_max_good"] == {"gte": 12.1}
    assert q["direct_port_count"] == {"gte": 1}
    assert q["order"] == [["dlperf", "desc"]]
    assert build_query(OfferFilters(), "reliability")["order"] == [["reliability", "desc"]]
    assert "verified" in build_query(OfferFilters())
    assert "verified" not in build_query(OfferFilters(verified=None))


async def test_list_instances_follows_every_page_with_filters(vast: VastClient, fake: FakeVast) -> None:
    pages = [
        reply(body={"success": True, "instances": [{"id": 1}, {"id": 2}], "next_token": "tok2"}),
        reply(body={"success": True, "instances": [{"id": 3}], "next_token": None}),
    ]
    fake.on("GET", "/api/v1/instances/", *pages)
    found = await vast.instances.list(label="alice", statuses=["running"])
    assert [i.id for i in found] == [1, 2, 3]
    first, second = fake.requests
    assert query_json(first, "select_filters") == {"label": {"eq": "alice"}, "actual_status": {"in": ["running"]}}
    assert query_json(first, "order_by") == [{"col": "id", "dir": "asc"}]
    assert first.url.params["limit"] == "25"
    assert "after_token" not in first.url.params
    assert second.url.params["after_token"] == "tok2"


async def test_show_instance_parses_ports_and_status(vast: VastClient, fake: FakeVast) -> None:
    record = {
        "id": 7,
        "actual_status": "running",
        "intended_status": "running",
        "public_ipaddr": "203.0.113.57",
        "ports": {"22/tcp": [{"HostIp": "0.0.0.0", "HostPort": "40311"}]},
        "ssh_host": "ssh4.vast.ai",
        "ssh_port": 35610,
        "image_runtype": "jupyter_proxy ssh_proxy",
        "gpu_totalram": 49128,
        "extra_env": [["VAST_MCP_REQUEST", "m-1"], ["-p 8000:8000", "1"]],
    }
    fake.on("GET", r"/api/v0/instances/7/", reply(body={"instances": record}))
    inst = await vast.instances.get(7)
    assert inst.direct_ssh == ("203.0.113.57", 40311)
    assert inst.proxy_ssh == ("ssh4.vast.ai", 35611)  # jupyter runtypes: proxy port + 1, like the CLI
    assert inst.gpu_totalram == 49128
    assert inst.extra_env["VAST_MCP_REQUEST"] == "m-1"


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        ("start", "PUT", "/api/v0/instances/9/", {"state": "running"}),
        ("stop", "PUT", "/api/v0/instances/9/", {"state": "stopped"}),
        ("label", "PUT", "/api/v0/instances/9/", {"label": "my label"}),
        ("reboot", "PUT", "/api/v0/instances/reboot/9/", {}),
        ("destroy", "DELETE", "/api/v0/instances/9/", {}),
    ],
)
async def test_lifecycle_calls(
    vast: VastClient, fake: FakeVast, call: str, method: str, path: str, body: object
) -> None:
    fake.on(method, path, reply(body={"success": True}))
    actions = {
        "start": lambda: vast.instances.set_state(9, "running"),
        "stop": lambda: vast.instances.set_state(9, "stopped"),
        "label": lambda: vast.instances.set_label(9, "my label"),
        "reboot": lambda: vast.instances.reboot(9),
        "destroy": lambda: vast.instances.destroy(9),
    }
    await actions[call]()
    assert fake.count(method, path) == 1
    assert fake.body() == body


async def test_reboot_is_not_repeated_after_a_5xx(vast: VastClient, fake: FakeVast) -> None:
    fake.on("PUT", "/api/v0/instances/reboot/9/", reply(502, text="bad gateway"))
    with pytest.raises(Exception, match="may or may not"):
        await vast.instances.reboot(9)
    assert fake.count("PUT", "/api/v0/instances/reboot/9/") == 1


async def test_ssh_keys_list_create_attach(vast: VastClient, fake: FakeVast) -> None:
    fake.on(
        "GET",
        "/api/v0/ssh/",
        reply(
            body=[{"id": 1, "public_key": "ssh-ed25519 AAA a", "private_key": None}, {"id": 2, "key": "ssh-rsa BBB b"}]
        ),
    )
    fake.on("POST", "/api/v0/ssh/", reply(body={"success": True, "key": {"id": 3, "public_key": "ssh-ed25519 CCC"}}))
    fake.on("POST", "/api/v0/instances/9/ssh/", reply(body={"success": True, "msg": "ok"}))
    keys = await vast.ssh.list_keys()
    assert [(k.id, k.public_key) for k in keys] == [(1, "ssh-ed25519 AAA a"), (2, "ssh-rsa BBB b")]
    assert all("private_key" not in k.model_dump() for k in keys)
    created = await vast.ssh.create_key("ssh-ed25519 CCC")
    assert created.id == 3
    assert fake.body() == {"ssh_key": "ssh-ed25519 CCC"}
    await vast.ssh.attach(9, "ssh-ed25519 CCC")
    assert fake.body() == {"ssh_key": "ssh-ed25519 CCC"}


async def test_ssh_keys_list_wrapped_form(vast: VastClient, fake: FakeVast) -> None:
    fake.on("GET", "/api/v0/ssh/", reply(body={"ssh_keys": [{"id": 5, "public_key": "ssh-ed25519 X"}]}))
    assert [k.id for k in await vast.ssh.list_keys()] == [5]


async def test_current_user_drops_api_key_and_converts_ms(vast: VastClient, fake: FakeVast) -> None:
    fake.on(
        "GET",
        "/api/v0/users/current",
        reply(
            body={
                "id": 1,
                "username": "alice",
                "credit": 24.73,
                "created_at": 1728748803601,
                "api_key": "SECRET-ACCOUNT-KEY",
            }
        ),
    )
    user = await vast.account.current_user()
    assert user.username == "alice"
    assert user.credit == pytest.approx(24.73)
    assert user.created_at == datetime.fromtimestamp(1728748803.601, UTC)
    assert "SECRET-ACCOUNT-KEY" not in repr(user) + user.model_dump_json()
    assert fake.requests[0].url.path == "/api/v0/users/current"  # no trailing slash, no owner=me
    assert "owner" not in fake.requests[0].url.params


async def test_charges_and_invoices_for_a_range_with_paging(vast: VastClient, fake: FakeVast) -> None:
    item = {"type": "gpu", "description": "1.000 hours at $0.400/hour", "amount": 0.4}
    fake.on(
        "GET",
        "/api/v0/charges/",
        reply(
            body={
                "success": True,
                "results": [{"source": "instance-9", "amount": 0.4, "items": [item]}],
                "next_token": "n",
            }
        ),
        reply(body={"success": True, "results": [{"source": "instance-10", "amount": 0.1}], "next_token": None}),
    )
    fake.on("GET", "/api/v1/invoices/", reply(body={"success": True, "results": [{"type": "credit", "amount": -25.0}]}))
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 31, tzinfo=UTC)
    charges = await vast.account.charges(start, end)
    invoices = await vast.account.invoices(start, end)
    assert [c.source for c in charges] == ["instance-9", "instance-10"]
    assert charges[0].items[0].amount == pytest.approx(0.4)
    assert invoices[0].amount == 25.0  # a credit purchase: negative on the wire, positive as the CLI shows it
    first_charges, second_charges, invoice_request = fake.requests
    assert query_json(first_charges, "select_filters") == {"day": {"gte": 1767225600, "lte": 1769817600}}
    assert second_charges.url.params["after_token"] == "n"
    assert query_json(invoice_request, "select_filters") == {"when": {"gte": 1767225600, "lte": 1769817600}}


async def test_logs_request_then_fetch_without_the_key(vast: VastClient, fake: FakeVast) -> None:
    fake.on(
        "PUT",
        "/api/v0/instances/request_logs/9/",
        reply(body={"success": True, "result_url": "https://logs.test/instance_logs/abc.log"}),
    )
    fake.on("GET", "/instance_logs/abc.log", reply(404, text="not yet"), httpx.Response(200, text="line1\nline2\n"))
    text = await vast.instances.logs(9, tail=100)
    assert text == "line1\nline2\n"
    put, *gets = fake.requests
    assert json.loads(put.content) == {"tail": "100"}
    assert len(gets) == 2
    assert all("authorization" not in g.headers for g in gets)
