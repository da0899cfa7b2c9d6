"""reference/vast-api.md §11 "Seen live", reproduced by the simulator and met by the client.

The simulator reproduces each fact behind a hook or a fault kind (``sim.relet``,
``odd_records``, ``oci_failure``, ...); each test drives it over real HTTP with the
project's ``VastHttp``/``VastClient`` and checks what the client makes of it. Waits move
the simulator's clock; nothing sleeps. ``test_seen_live.ROWS`` names these per row.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import RecordedSleeps
from vast_mcp.credentials import ApiKey
from vast_mcp.provisioning.readiness import ssh_endpoints, wait_for_state
from vast_mcp.simulator import Simulator
from vast_mcp.vast import (
    MAX_OFFERS,
    AuthError,
    CreateRequest,
    Offer,
    OfferFilters,
    RedirectRefusedError,
    VastClient,
    VastHttp,
)

pytestmark = pytest.mark.anyio

SIM_KEY = "sim-key-for-seen-live-0123"
GOOD_KEY = ApiKey(SIM_KEY, "env", "$VAST_API_KEY")
BOOT_SECONDS = 30.0  # created -> loading -> running with the simulator's default timings
ANYWHERE = OfferFilters(verified=None, disk_gb=10)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(api_key=SIM_KEY, seed=7, offer_count=120, speed=0.0)
    with simulator.serve():
        yield simulator


@asynccontextmanager
async def connect(sim: Simulator, key: ApiKey = GOOD_KEY) -> AsyncIterator[VastClient]:
    assert sim.url is not None
    http = VastHttp(key, sim.url, budget=None, sleep=RecordedSleeps())
    async with VastClient(http) as vast:
        yield vast


@pytest.fixture
async def vast(sim: Simulator) -> AsyncIterator[VastClient]:
    async with connect(sim) as client:
        yield client


async def rent(vast: VastClient, *, offer: Offer | None = None, **request: object) -> int:
    chosen = offer or (await vast.offers.search(ANYWHERE))[0]
    body = {"image": "ubuntu:22.04", "disk": 10, "label": "seen-live", **request}
    return await vast.instances.create(chosen.id, CreateRequest.model_validate(body))


async def wait_running(sim: Simulator, vast: VastClient, instance_id: int) -> object:
    async def sleep(seconds: float) -> None:
        sim.clock.advance(seconds)

    return await wait_for_state(vast, instance_id, "running", timeout_s=300, poll_s=5, sleep=sleep, clock=sim.clock.now)


# -- the queued start -------------------------------------------------------------------------------


async def test_sim_relet_gpus_make_a_start_queued_and_a_stop_cancels_it(sim: Simulator, vast: VastClient) -> None:
    iid = await rent(vast)
    sim.clock.advance(BOOT_SECONDS)
    assert await vast.instances.set_state(iid, "stopped") == "done"
    sim.clock.advance(5)
    sim.relet(iid)
    assert await vast.instances.set_state(iid, "running") == "queued"
    queued = await vast.instances.get(iid)
    assert (queued.intended_status, queued.cur_state) == ("running", "stopped")
    assert await vast.instances.set_state(iid, "stopped") == "done"  # cancels the queued start
    sim.free(iid)
    sim.clock.advance(60)
    assert (await vast.instances.get(iid)).intended_status == "stopped"


# -- 404 auth_error ---------------------------------------------------------------------------------


async def test_sim_bad_key_on_the_v1_list_answers_404_auth_error(sim: Simulator) -> None:
    wrong = ApiKey("wrong-key-for-seen-live-0", "env", "$VAST_API_KEY")
    async with connect(sim, wrong) as vast:
        with pytest.raises(AuthError) as caught:
            await vast.instances.list()
    assert caught.value.status == 404 and caught.value.code == "auth_error"
    assert [r.status for r in sim.requests] == [404]  # one request, never retried


# -- odd records -----------------------------------------------------------------------------------


async def test_sim_odd_records_never_fail_a_search_or_a_list(sim: Simulator, vast: VastClient) -> None:
    normal = {f"offer {o.id}" for o in await vast.offers.search(ANYWHERE, limit=6)}
    assert len(normal) == 6
    sim.faults.inject("odd_records", every=2)
    odd = {f"offer {o.id}" for o in await vast.offers.search(ANYWHERE, limit=6)}
    nulled = {n.where for n in vast.http.oddities if n.detail == "field dph_base could not be read (null)"}
    assert len(nulled) == 3  # every second record
    assert odd == normal - nulled  # an offer whose price cannot be read is never offered; the rest survive

    iid = await rent(vast)
    sim.clock.advance(BOOT_SECONDS)
    sim.faults.inject("odd_records", times=2)
    [listed] = await vast.instances.list()
    shown = await vast.instances.get(iid)
    for inst in (listed, shown):
        assert inst.id == iid
        assert inst.public_ipaddr == "127.0.0.1"  # trimmed
        assert inst.ports == {} and "ports" in inst.unreadable  # a list where a mapping belongs
        assert inst.num_gpus is None and inst.dph_base == 0 and "dph_base" in inst.unreadable  # null: unknown
    assert any("ports could not be read (a list)" in str(o) for o in vast.http.oddities)


# -- at most 64 offers ------------------------------------------------------------------------------


async def test_sim_search_returns_at_most_64_offers(sim: Simulator, vast: VastClient) -> None:
    found = await vast.offers.search_raw({"rentable": {"eq": True}, "limit": 500})
    assert len(found) == MAX_OFFERS
    await vast.offers.search(ANYWHERE, limit=500)
    assert sim.requests[-1].body["limit"] == MAX_OFFERS


# -- the instance's own scoped key ----------------------------------------------------------------


async def test_sim_instance_key_can_stop_only_its_own_instance(sim: Simulator, vast: VastClient) -> None:
    mine, other = await rent(vast), await rent(vast)
    sim.clock.advance(BOOT_SECONDS)
    scoped = ApiKey(sim.instance_key(mine), "env", "CONTAINER_API_KEY")
    async with connect(sim, scoped) as guard:
        assert await guard.instances.set_state(mine, "stopped") == "done"
        with pytest.raises(AuthError):
            await guard.instances.set_state(other, "stopped")
        with pytest.raises(AuthError):
            await guard.instances.list()
    assert (await vast.instances.get(mine)).intended_status == "stopped"
    assert (await vast.instances.get(other)).intended_status == "running"


# -- pending, fatal ------------------------------------------------------------------------------


async def test_sim_pending_null_then_running(sim: Simulator, vast: VastClient) -> None:
    sim.faults.inject("pending_null", seconds=15)
    iid = await rent(vast)
    assert (await vast.instances.get(iid)).actual_status is None
    outcome = await wait_running(sim, vast, iid)
    assert outcome.reached  # type: ignore[attr-defined]


async def test_sim_oci_failure_is_fatal_at_once(sim: Simulator, vast: VastClient) -> None:
    sim.faults.inject("oci_failure")
    iid = await rent(vast)
    outcome = await wait_running(sim, vast, iid)
    assert not outcome.reached  # type: ignore[attr-defined]
    assert "OCI runtime create failed" in outcome.failure  # type: ignore[attr-defined]
    assert outcome.waited_s < BOOT_SECONDS  # type: ignore[attr-defined]  # at once, not after a grace


# -- invoices -------------------------------------------------------------------------------------


async def test_sim_credit_purchase_shows_positive(sim: Simulator, vast: VastClient) -> None:
    now = datetime.fromtimestamp(sim.clock.now(), UTC)
    start = now - timedelta(days=365)
    shown = await vast.account.invoices(start, now)
    window = {"when": {"gte": int(start.timestamp()), "lte": int(now.timestamp())}}
    params = {"select_filters": window, "latest_first": False, "limit": 100}
    wire = await vast.http.get_all_pages("/api/v1/invoices/", params, "results")
    assert {line["type"] for line in wire} >= {"credit", "transfer"}
    for line, row in zip(shown, wire, strict=True):
        flipped = row["type"] not in ("transfer", "payout")
        assert line.amount == (-row["amount"] if flipped else row["amount"])
    assert all(line.amount > 0 for line in shown if line.type == "credit")  # a purchase adds credit


# -- interruptible ------------------------------------------------------------------------------------


async def test_sim_outbid_instance_reads_outbid_and_a_higher_bid_resumes_it(sim: Simulator, vast: VastClient) -> None:
    [offer, *_] = await vast.offers.search(ANYWHERE.model_copy(update={"interruptible": True}))
    assert offer.min_bid > 0
    bid = round(offer.min_bid + 0.01, 4)
    iid = await rent(vast, offer=offer, price=bid)
    sim.clock.advance(BOOT_SECONDS)
    sim.set_min_bid(iid, bid + 0.05)
    sim.clock.advance(5)
    outbid = await vast.instances.get(iid)
    assert outbid.outbid and outbid.min_bid == pytest.approx(bid + 0.05)
    await vast.instances.change_bid(iid, round(bid + 0.06, 4))
    outcome = await wait_running(sim, vast, iid)
    assert outcome.reached and not (await vast.instances.get(iid)).outbid  # type: ignore[attr-defined]


# -- price increases -------------------------------------------------------------------------------


async def test_sim_price_increase_is_listed_per_hour(sim: Simulator, vast: VastClient) -> None:
    iid = await rent(vast)
    sim.clock.advance(BOOT_SECONDS)
    before = (await vast.instances.get(iid)).dph_total
    row_id = sim.raise_price(iid, 1.5)
    [increase] = await vast.instances.pending_price_increases()
    assert (increase.id, increase.instance_id) == (row_id, iid)
    assert increase.old_per_hour is not None and increase.new_per_hour is not None
    assert increase.new_per_hour == pytest.approx(increase.old_per_hour * 1.5, rel=1e-3)
    assert increase.old_per_hour == pytest.approx(before, rel=0.05)


# -- env and ports --------------------------------------------------------------------------------


async def test_sim_env_and_onstart_travel_in_the_cli_form(sim: Simulator, vast: VastClient) -> None:
    iid = await rent(vast, env={"-p 8888:8888": "1", "HF_HOME": "/workspace/hf"}, onstart="echo hello")
    sim.clock.advance(BOOT_SECONDS)
    inst = await vast.instances.get(iid)
    assert inst.onstart == "echo hello"
    assert inst.extra_env == {"-p 8888:8888": "1", "HF_HOME": "/workspace/hf"}
    assert "22/tcp" in inst.mapped_ports
    assert ssh_endpoints(inst, allow_private=False) == []  # the simulator's hosts are loopback
    assert [e.kind for e in ssh_endpoints(inst, allow_private=True)] == ["direct", "proxy"]


@pytest.mark.xfail(strict=True, reason="pending: the simulator does not yet publish -p env entries as ports (ROUND2)")
async def test_sim_ports_from_env_read_as_mapped_ports(sim: Simulator, vast: VastClient) -> None:
    iid = await rent(vast, env={"-p 8888:8888": "1"})
    sim.clock.advance(BOOT_SECONDS)
    inst = await vast.instances.get(iid)
    host, port = inst.mapped_ports["8888/tcp"].rsplit(":", 1)
    assert host == inst.public_ipaddr and port.isdigit()


# -- redirects ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_sim_redirect_off_vast_ai_is_refused(sim: Simulator, vast: VastClient, status: int) -> None:
    # Only refusals are tested live: a followed redirect would leave the machine (MockTransport tests those).
    assert sim.url is not None
    sim.faults.inject("redirect", path="/api/v1/instances/", location=f"{sim.url}/api/v1/instances/", status=status)
    with pytest.raises(RedirectRefusedError, match="not followed"):
        await vast.instances.list()
    assert [(r.path, r.status) for r in sim.requests] == [("/api/v1/instances/", status)]
    assert await vast.instances.list() == []
    assert json.dumps(sim.requests[-1].headers).count("Bearer") <= 1
