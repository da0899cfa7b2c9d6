"""Contract tests: every response recorded from the real Vast API, served to our client.

Each ``tests/fixtures/real/*.json`` is served (status, headers, body) through
``httpx.MockTransport`` to the client method that issues that request, and the test
checks what the client makes of it: the typed model with the right values, or the
right error. The glob is parametrized, so a new fixture is picked up automatically;
one without an entry in :data:`CONTRACTS` fails until a handler is added.

The recorded request is not always the request our client sends for the same
operation; the fixture is served for whatever our client asks, and the mapping is:

=========================================  ==========================================  =================================
recorded request                           our client sends                            client call
=========================================  ==========================================  =================================
PUT  /api/v0/search/asks/ ``{"q": ...}``   POST /api/v0/bundles/ (flat query; same     ``offers.search(OfferFilters)``
                                           offer objects, reference §4)
GET  /api/v0/instances/?owner=me           GET /api/v1/instances/ (v0 list answers     ``instances.list()``
                                           410 deprecated_endpoint since mid-2026)
GET  /api/v0/instances/{id}/?owner=me      the same                                    ``instances.get(id)``
GET  /api/v0/ssh/                          the same                                    ``ssh.list_keys()``
GET  /api/v0/users/current/                GET /api/v0/users/current (no slash, as     ``account.current_user()``
                                           the official CLI 1.9.1 sends it)
POST /api/v0/bundles/ (429)                the same                                    ``offers.search(OfferFilters)``
GET  /api/v0/template/                     nothing: no client method (see below)       raw ``VastHttp.request`` only
=========================================  ==========================================  =================================
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

import vast_mcp.vast
from tests.fidelity.recorded import (
    KEY_SECRET,
    Canned,
    Fixture,
    Replay,
    client_for,
    fixture_paths,
    load,
    recorded,
)
from vast_mcp.vast import (
    CreateRequest,
    Instance,
    NotFoundError,
    Offer,
    OfferFilters,
    RateBudget,
    RateLimitError,
    RetryPolicy,
    SshKey,
    User,
    VastClient,
)

pytestmark = pytest.mark.anyio

Check = Callable[[VastClient, Fixture, Replay], Awaitable[None]]


@dataclass(frozen=True)
class Contract:
    client_call: str  # the client method that issues this operation ("" when there is none)
    sends: tuple[str, str]  # (method, path) every request our client sent must have
    check: Check


# -- offers ----------------------------------------------------------------------------------------


async def check_search_two_offers(vast: VastClient, fx: Fixture, replay: Replay) -> None:
    # The recorded storage prices are for 8 GB (storage_total_cost = storage_cost * 8 / 720).
    offers = await vast.offers.search(OfferFilters(disk_gb=8), "price")
    assert [o.id for o in offers] == [44077682, 49332239]  # ranked cheapest first
    a, b = offers
    assert all(isinstance(o, Offer) for o in offers)
    assert (a.gpu_name, b.gpu_name) == ("RTX 5090", "RTX PRO 6000 WS")
    assert (a.ask_contract_id, b.ask_contract_id) == (44077682, 49332239)
    assert (a.num_gpus, a.gpu_ram, a.gpu_total_ram) == (1, 32607, 32607)  # MB
    assert b.gpu_total_ram == 97887
    assert a.reliability == pytest.approx(0.9977697)
    assert b.reliability == pytest.approx(0.9958992)
    assert a.dph_base == pytest.approx(0.4)
    assert a.dph_total == pytest.approx(0.4037037037037037)
    assert b.dph_total == pytest.approx(1.3355555555555554)
    assert a.storage_cost == pytest.approx(1 / 3)  # $/GB/month
    assert a.storage_total_cost == pytest.approx(0.0037037037037037034)
    # Our storage-inclusive price reproduces Vast's dph_total for the recorded 8 GB (never adds it twice).
    assert a.price_per_hour(8) == pytest.approx(a.dph_total)
    assert b.price_per_hour(8) == pytest.approx(b.dph_total)
    assert (a.country, b.country) == ("KR", "JP")
    assert a.geolocation == "South Korea, KR"
    assert a.verification == "verified" and a.rentable and not a.rented
    assert (a.cuda_max_good, a.disk_space, a.direct_port_count, a.cpu_ram) == (13.0, 663.0, 98, 31197)
    assert (a.inet_up, a.inet_down) == (784.9, 558.3)
    assert a.machine_id == 0  # scrubbed upstream to 0; still an int
    assert a.unreadable == b.unreadable == ()
    # What we sent: the mandatory filters and the disk to price.
    sent = replay.body()
    assert sent["rentable"] == {"eq": True} and sent["rented"] == {"eq": False}
    assert sent["allocated_storage"] == 8 and sent["type"] == "on-demand"


async def check_search_one_offer(vast: VastClient, fx: Fixture, replay: Replay) -> None:
    # Upstream looked the offer up by ask_contract_id; our client has no single-offer lookup
    # and re-searches with the user's filters instead, so that is the call served here.
    [offer] = await vast.offers.search(OfferFilters(gpu_name="RTX 5090", disk_gb=8), "price")
    assert offer.id == offer.ask_contract_id == 45669396  # the offer id is the ask contract id
    assert offer.gpu_name == "RTX 5090"
    assert offer.reliability == pytest.approx(0.9958626)
    assert offer.dph_total == pytest.approx(0.4037037037037037)
    assert offer.price_per_hour(8) == pytest.approx(offer.dph_total)
    assert (offer.disk_space, offer.inet_down, offer.country) == (524.0, 621.8, "KR")
    assert replay.body()["gpu_name"] == {"eq": "RTX 5090"}


# -- instances -------------------------------------------------------------------------------------


async def check_instances_empty(vast: VastClient, fx: Fixture, replay: Replay) -> None:
    assert await vast.instances.list() == []
    [request] = replay.requests  # no next_token: one page
    assert request.url.params["limit"] == "25"
    assert "select_filters" in request.url.params


async def check_instance_nonexistent(vast: VastClient, fx: Fixture, replay: Replay) -> None:
    with pytest.raises(NotFoundError, match="Instance 1 does not exist"):
        await vast.instances.get(1)
    [request] = replay.requests  # HTTP 200: nothing to retry
    assert request.url.params["owner"] == "me"


async def check_instance_stopped(vast: VastClient, fx: Fixture, replay: Replay) -> None:
    inst = await vast.instances.get(49983543)
    assert isinstance(inst, Instance)
    assert inst.id == 49983543
    # Stopped on the real API: actual_status "exited", intent and state "stopped".
    assert (inst.actual_status, inst.intended_status, inst.cur_state, inst.next_state) == (
        "exited",
        "stopped",
        "stopped",
        "stopped",
    )
    assert inst.status_msg == "success, running ubuntu_22.04/ssh"
    assert inst.label == "vastai-mcp-probe-stopped-price"
    assert (inst.image_uuid, inst.image_runtype) == ("ubuntu:22.04", "ssh")
    assert (inst.gpu_name, inst.num_gpus, inst.gpu_ram) == ("Quadro P2000", 1, 5120)
    assert inst.gpu_totalram == 5120  # instances spell it gpu_totalram
    assert inst.disk_space == 10.0
    assert inst.dph_base == pytest.approx(0.02666666666666667)
    assert inst.dph_total == pytest.approx(0.029444444444444447)
    assert inst.storage_total_cost == pytest.approx(0.0027777777777777775)
    assert inst.reliability2 == pytest.approx(0.9507721)
    assert inst.geolocation == "Nevada, US"
    assert inst.public_ipaddr == "203.0.113.13"
    assert inst.extra_env == {}  # null (scrubbed) -> empty
    assert inst.machine_id == 0 and inst.ssh_port == 0
    # No ports map and a scrubbed proxy port: no SSH endpoint is invented.
    assert inst.direct_ssh is None and inst.proxy_ssh is None
    # ssh_host was scrubbed upstream to "<scrubbed>": not a host, so unreadable, never an SSH target.
    assert inst.ssh_host is None and inst.unreadable == ("ssh_host",)
    assert inst.start_date == pytest.approx(1788630599.0734155)


# -- ssh keys and account --------------------------------------------------------------------------


async def check_ssh_keys(vast: VastClient, fx: Fixture, replay: Replay) -> None:
    keys = await vast.ssh.list_keys()
    assert all(isinstance(k, SshKey) for k in keys)
    assert [k.id for k in keys] == [1000, 1001]
    assert [k.public_key for k in keys] == ["ssh-ed25519 <scrubbed>"] * 2
    assert keys[0].created_at == pytest.approx(1774048157.145925)
    for key in keys:
        assert set(key.model_dump()) == {"id", "public_key", "created_at", "unreadable"}  # private_key never kept
        assert key.unreadable == ()


async def check_current_user(vast: VastClient, fx: Fixture, replay: Replay) -> None:
    user = await vast.account.current_user()
    assert isinstance(user, User)
    dumped = user.model_dump()
    assert "api_key" not in dumped
    # 1728748803601 is milliseconds.
    assert user.created_at == datetime(2024, 10, 12, 16, 0, 3, 601000, tzinfo=UTC)
    assert user.credit == pytest.approx(104.50219200555648)
    assert user.balance == 0
    assert user.id == 0  # scrubbed upstream
    assert user.fullname is None  # scrubbed to 0 upstream: not a string, so not kept
    assert user.unreadable == ("fullname",)
    assert user.username == "<scrubbed>"


# -- the real 429 ----------------------------------------------------------------------------------


async def check_rate_limited(vast: VastClient, fx: Fixture, replay: Replay) -> None:
    attempts = RetryPolicy().attempts
    with pytest.raises(RateLimitError) as caught:
        await vast.offers.search(OfferFilters())
    assert caught.value.retry_after == 10
    assert caught.value.status == 429
    assert "in 10 s" in str(caught.value)
    assert len(replay.requests) == attempts  # a safe search is retried, then given up
    assert replay.waits == [10.0] * (attempts - 1)  # each wait is the server's retry_after


async def check_template(vast: VastClient, fx: Fixture, replay: Replay) -> None:
    # The client creates from an image (DESIGN §5: `image`, default pytorch/pytorch:latest),
    # never from a template hash, so it has no template call. Assert that stays true, so a
    # template method cannot appear without a contract here.
    for area in ("offers", "instances", "ssh", "account"):
        api = getattr(vast, area)
        names = [n for n, _ in inspect.getmembers(api, inspect.ismethod) if not n.startswith("_")]
        assert not [n for n in names if "template" in n.lower()], f"{area} grew a template method: add a contract"
    sources = Path(inspect.getfile(vast_mcp.vast)).parent.glob("*.py")
    assert not [p.name for p in sources if "/template" in p.read_text()]
    # The transport still reads the answer (success: true) without raising, and the body
    # parses with a tolerant model, should templates ever be needed.
    params = dict(fx.request["query"])  # select_cols ["*"], select_filters recommended = true
    data = await vast.http.request("GET", "/api/v0/template/", params=params, safe=True)
    templates = [RecordedTemplate.model_validate(t) for t in data["templates"]]
    assert data["templates_found"] == 37 and len(templates) == 3  # trimmed upstream
    assert [t.image for t in templates] == ["axolotlai/axolotl-cloud", "vastai/fluxgym", "vastai/voicebox"]
    assert templates[0].recommended_disk_space == 200.0 and templates[0].use_ssh


class RecordedTemplate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    name: str
    image: str
    tag: str | None = None
    runtype: str | None = None
    use_ssh: bool = False
    recommended_disk_space: float | None = None


#: file name -> what our client does with it. Every fixture needs an entry.
CONTRACTS: dict[str, Contract] = {
    "search_asks-200-jdziat.json": Contract("offers.search", ("POST", "/api/v0/bundles/"), check_search_two_offers),
    "search_asks-200-by_ask_contract_id-jdziat.json": Contract(
        "offers.search", ("POST", "/api/v0/bundles/"), check_search_one_offer
    ),
    "instances-200-empty-jdziat.json": Contract("instances.list", ("GET", "/api/v1/instances/"), check_instances_empty),
    "instance-200-nonexistent_null-jdziat.json": Contract(
        "instances.get", ("GET", "/api/v0/instances/1/"), check_instance_nonexistent
    ),
    "instance-200-stopped-jdziat.json": Contract(
        "instances.get", ("GET", "/api/v0/instances/49983543/"), check_instance_stopped
    ),
    "ssh-200-jdziat.json": Contract("ssh.list_keys", ("GET", "/api/v0/ssh/"), check_ssh_keys),
    "users_current-200-jdziat.json": Contract(
        "account.current_user", ("GET", "/api/v0/users/current"), check_current_user
    ),
    "bundles-429-nikitatsym.json": Contract("offers.search", ("POST", "/api/v0/bundles/"), check_rate_limited),
    # No client method: only the raw transport is exercised (see check_template).
    "template-200-recommended-jdziat.json": Contract("", ("GET", "/api/v0/template/"), check_template),
}

_PATHS = fixture_paths()
_PARAMS = [pytest.param(p, id=p.name) for p in _PATHS]


@pytest.mark.parametrize("path", _PARAMS)
async def test_recorded_response(path: Path) -> None:
    contract = CONTRACTS.get(path.name)
    if contract is None:
        pytest.fail(
            f"No contract handler for the recorded response {path.name}: add an entry to CONTRACTS in "
            f"{Path(__file__).name} that calls the client method issuing {load(path).request['method']} "
            f"{load(path).request['path']} and checks what the client makes of it."
        )
    fx = load(path)
    replay = Replay(recorded(fx))
    async with client_for(replay) as vast:
        await contract.check(vast, fx, replay)
    assert replay.requests, "the check sent nothing"
    assert set(replay.sent()) == {contract.sends}, f"{contract.client_call or 'raw request'} sent {replay.sent()}"
    for request in replay.requests:
        assert request.headers["authorization"] == f"Bearer {KEY_SECRET}"


def test_every_contract_has_its_fixture() -> None:
    """A handler whose fixture was renamed or removed is dead: say so instead of passing quietly."""
    assert set(CONTRACTS) <= {p.name for p in _PATHS}


# -- the recorded 429, followed by a 200 -----------------------------------------------------------

RATE_LIMITED = "bundles-429-nikitatsym.json"


async def test_recorded_429_then_200_retries_after_exactly_retry_after() -> None:
    replay = Replay(recorded(load(RATE_LIMITED)), Canned(200, {"offers": []}))
    async with client_for(replay) as vast:
        assert await vast.offers.search(OfferFilters()) == []
    assert replay.waits == [10.0]  # retry-after: 10 and body retry_after: 10, waited once, not added
    assert replay.sent() == [("POST", "/api/v0/bundles/")] * 2


async def test_recorded_429_with_the_shared_budget_waits_once() -> None:
    """With the default budget on, the penalty and the retry wait overlap: 10 s in all, not 20."""
    replay = Replay(recorded(load(RATE_LIMITED)), Canned(200, {"offers": []}))
    budget = RateBudget(5, 10.0, clock=replay.clock)
    async with client_for(replay, budget=budget) as vast:
        assert await vast.offers.search(OfferFilters()) == []
    assert replay.waits == [10.0]
    assert replay.now == pytest.approx(10.0)


async def test_recorded_429_on_a_create_is_not_retried() -> None:
    replay = Replay(recorded(load(RATE_LIMITED)))
    async with client_for(replay) as vast:
        with pytest.raises(RateLimitError, match="Nothing was done") as caught:
            await vast.instances.create(44077682, CreateRequest(image="ubuntu:22.04", disk=8, label="x"))
    assert caught.value.retry_after == 10
    assert replay.sent() == [("PUT", "/api/v0/asks/44077682/")]
    assert replay.waits == []
