"""Every simulator fault, produced on the wire and met by the project's client as DESIGN §6 says.

Each test arms one fault on a served simulator, talks to it with a real
``VastHttp``/``VastClient`` (no pacing; waits recorded instead of slept where they
would be long), and checks both sides: what the simulator sent (a tap on the
client's transport sees every raw answer) and what the client made of it.
:data:`COVERED` must name every kind in ``vast_mcp.simulator.FAULT_KINDS``.
"""

from __future__ import annotations

import os
import re
import ssl
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from tests.helpers import RecordedSleeps, ScriptedUser, data, served_simulator, server_for, ssh_dir_with_key
from vast_mcp.credentials import ApiKey
from vast_mcp.provisioning.readiness import UNKNOWN_GRACE_S, probe_ssh, ssh_endpoints, wait_for_state
from vast_mcp.simulator import FAULT_KINDS, Simulator
from vast_mcp.vast import (
    AuthError,
    BadResponseError,
    CreateRequest,
    NotFoundError,
    Offer,
    OfferFilters,
    OfferUnavailableError,
    OutcomeUnknownError,
    RateLimitError,
    RetryPolicy,
    SearchQuotaError,
    VastClient,
    VastHttp,
)

pytestmark = pytest.mark.anyio

SSH = r"^/api/v0/ssh/$"
SEARCH = r"^/api/v0/bundles/$"
CREATE = r"^/api/v0/asks/\d+/$"
INSTANCE = r"^/api/v0/instances/\d+/$"
MARKER = "VAST_MCP_REQUEST"
EXIT_MSG = "Error response from daemon: container exited with code 1"
SIM_KEY = "sim-key-for-fidelity-0123"
GOOD_KEY = ApiKey(SIM_KEY, "env", "$VAST_API_KEY")
_TLS = ssl.create_default_context()
BACKOFF_FIRST = (RetryPolicy().base_delay / 2, RetryPolicy().base_delay)  # jittered first backoff


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    status: int | None  # None: no answer (timeout, dropped connection)
    headers: dict[str, str]
    body: bytes
    error: str | None = None


class Tap(httpx.AsyncBaseTransport):
    """A real HTTP transport that keeps every raw answer the simulator sent."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport(verify=_TLS)  # plain HTTP; a shared context keeps setup fast
        self.seen: list[Seen] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.inner.handle_async_request(request)
            body = await response.aread()
        except httpx.HTTPError as exc:
            self.seen.append(Seen(request.method, request.url.path, None, {}, b"", type(exc).__name__))
            raise
        self.seen.append(Seen(request.method, request.url.path, response.status_code, dict(response.headers), body))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def statuses(self) -> list[int | None]:
        return [s.status for s in self.seen]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(api_key=SIM_KEY, seed=7, offer_count=120, speed=0.0)
    with simulator.serve():
        yield simulator


@pytest.fixture
def tap() -> Tap:
    return Tap()


@pytest.fixture
def waits() -> RecordedSleeps:
    return RecordedSleeps()


@asynccontextmanager
async def connect(
    sim: Simulator, tap: Tap, waits: RecordedSleeps, *, key: ApiKey = GOOD_KEY, read_timeout: float = 10.0
) -> AsyncIterator[VastClient]:
    assert sim.url is not None
    http = VastHttp(
        key,
        sim.url,
        timeout=httpx.Timeout(read_timeout, connect=5.0),
        budget=None,
        transport=tap,
        sleep=waits,
    )
    async with VastClient(http) as vast:
        yield vast


@pytest.fixture
async def vast(sim: Simulator, tap: Tap, waits: RecordedSleeps) -> AsyncIterator[VastClient]:
    async with connect(sim, tap, waits) as client:
        yield client


async def cheapest(vast: VastClient) -> Offer:
    offers = await vast.offers.search(OfferFilters(verified=None, disk_gb=10))
    assert offers
    return offers[0]


def create_request(label: str, marker: str = "m-1") -> CreateRequest:
    return CreateRequest(image="ubuntu:22.04", disk=10, label=label, env={MARKER: marker})


async def rent(vast: VastClient, label: str = "fidelity") -> int:
    return await vast.instances.create((await cheapest(vast)).id, create_request(label))


def sim_statuses(sim: Simulator, method: str, path: str) -> list[int | None]:
    rx = re.compile(path)
    return [r.status for r in sim.requests if r.method == method and rx.search(r.path)]


# -- rate_limit -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected_wait", "content_type"),
    [
        ({"retry_after_header": 3}, 3.0, "application/json"),
        ({"retry_after_body": 2.5}, 2.5, "application/json"),
        ({"plain_text": True}, None, "text/plain"),
        ({"detail": True}, None, "application/json"),
        ({"detail": True, "retry_after_header": 0.5}, 0.5, "application/json"),
        ({}, None, "application/json"),
    ],
    ids=["retry-after-header", "body-retry_after", "plain-text", "detail", "detail+header", "no-hint"],
)
async def test_rate_limit_is_waited_out_on_a_safe_request(
    sim: Simulator,
    vast: VastClient,
    tap: Tap,
    waits: RecordedSleeps,
    params: dict[str, Any],
    expected_wait: float | None,
    content_type: str,
) -> None:
    sim.faults.inject("rate_limit", method="GET", path=SSH, **params)
    assert await vast.ssh.list_keys() == []
    first = tap.seen[0]
    assert first.status == 429 and first.headers["content-type"].startswith(content_type)
    assert tap.statuses() == [429, 200]
    if expected_wait is not None:
        assert waits.waits == [expected_wait]  # exactly what the server asked for
    else:
        [wait] = waits.waits  # no hint: the jittered first backoff
        assert BACKOFF_FIRST[0] <= wait <= BACKOFF_FIRST[1]


async def test_rate_limit_on_a_create_is_not_resent(sim: Simulator, vast: VastClient, waits: RecordedSleeps) -> None:
    offer = await cheapest(vast)
    sim.faults.inject("rate_limit", method="PUT", path=CREATE, retry_after_header=2)
    with pytest.raises(RateLimitError, match="Nothing was done") as caught:
        await vast.instances.create(offer.id, create_request("rl"))
    assert caught.value.retry_after == 2
    assert sim_statuses(sim, "PUT", CREATE) == [429]
    assert waits.waits == []
    assert await vast.instances.list() == []


async def test_rate_limit_that_persists_gives_up_with_the_wait(
    sim: Simulator, vast: VastClient, waits: RecordedSleeps
) -> None:
    attempts = RetryPolicy().attempts
    sim.faults.inject("rate_limit", method="GET", path=SSH, times=attempts, retry_after_body=4)
    with pytest.raises(RateLimitError, match="in 4 s"):
        await vast.ssh.list_keys()
    assert sim_statuses(sim, "GET", SSH) == [429] * attempts
    assert waits.waits == [4.0] * (attempts - 1)


# -- search_quota ---------------------------------------------------------------------------------


async def test_search_quota_fails_at_once_and_says_when_it_resets(
    sim: Simulator, vast: VastClient, tap: Tap, waits: RecordedSleeps
) -> None:
    sim.faults.inject("search_quota")
    with pytest.raises(SearchQuotaError) as caught:
        await vast.offers.search(OfferFilters())
    today = datetime.fromtimestamp(sim.clock.now(), UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    midnight = today + timedelta(days=1)
    [seen] = tap.seen  # one request, never retried
    assert seen.status == 429 and int(seen.headers["x-ratelimit-reset"]) == int(midnight.timestamp())
    assert caught.value.resets_at == midnight
    assert f"It resets at {midnight:%Y-%m-%d %H:%M} UTC." in str(caught.value)
    assert waits.waits == []


# -- server_error ---------------------------------------------------------------------------------


@pytest.mark.parametrize("html", [False, True], ids=["json", "html"])
@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_error_on_a_safe_request_is_retried(
    sim: Simulator, vast: VastClient, tap: Tap, waits: RecordedSleeps, status: int, html: bool
) -> None:
    sim.faults.inject("server_error", method="GET", path=SSH, status=status, html=html)
    assert await vast.ssh.list_keys() == []
    assert tap.statuses() == [status, 200]
    assert tap.seen[0].headers["content-type"].startswith("text/html" if html else "application/json")
    [wait] = waits.waits
    assert BACKOFF_FIRST[0] <= wait <= BACKOFF_FIRST[1]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_error_on_a_create_is_not_resent(sim: Simulator, vast: VastClient, status: int) -> None:
    offer = await cheapest(vast)
    sim.faults.inject("server_error", method="PUT", path=CREATE, status=status)
    with pytest.raises(OutcomeUnknownError, match="may or may not have taken effect") as caught:
        await vast.instances.create(offer.id, create_request("s5xx"))
    assert caught.value.status == status
    assert sim_statuses(sim, "PUT", CREATE) == [status]  # exactly one PUT
    # Reconciling by reading: this simulator answered before creating, so nothing exists.
    assert await vast.instances.list(label="s5xx") == []


# -- empty_body / malformed_body --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "raw"),
    [
        ("empty_body", {}, b""),
        ("malformed_body", {}, b'{"offers": ['),
        ("malformed_body", {"html": True}, b"<html><body><h1>Vast.ai</h1>"),
    ],
    ids=["empty", "malformed-json", "malformed-html"],
)
async def test_unreadable_body_is_retried_once_then_saved_privately(
    sim: Simulator, vast: VastClient, tap: Tap, kind: str, params: dict[str, Any], raw: bytes
) -> None:
    sim.faults.inject(kind, path=SEARCH, times=2, **params)
    with pytest.raises(BadResponseError) as caught:
        await vast.offers.search(OfferFilters())
    assert tap.statuses() == [200, 200]  # one retry, then given up
    assert all(s.body.startswith(raw) for s in tap.seen)
    saved = caught.value.saved_to
    assert saved is not None and saved.exists()
    try:
        assert str(saved) in str(caught.value)
        assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
        content = saved.read_text()
        assert "POST /api/v0/bundles/ -> HTTP 200" in content
        if raw:
            assert raw.decode() in content
        assert SIM_KEY not in content
    finally:
        saved.unlink()


@pytest.mark.parametrize("kind", ["empty_body", "malformed_body"])
async def test_unreadable_body_once_is_retried_and_succeeds(
    sim: Simulator, vast: VastClient, tap: Tap, kind: str
) -> None:
    sim.faults.inject(kind, method="GET", path=SSH)
    assert await vast.ssh.list_keys() == []
    assert tap.statuses() == [200, 200]


@pytest.mark.parametrize("kind", ["empty_body", "malformed_body"])
async def test_unreadable_body_on_a_create_is_not_resent(sim: Simulator, vast: VastClient, kind: str) -> None:
    offer = await cheapest(vast)
    sim.faults.inject(kind, method="PUT", path=CREATE)
    with pytest.raises(OutcomeUnknownError, match="unreadable body"):
        await vast.instances.create(offer.id, create_request("unreadable"))
    assert sim_statuses(sim, "PUT", CREATE) == [200]


# -- slow ------------------------------------------------------------------------------------------

SHORT = 0.4  # the client's read timeout in these tests
LATE = 1.2  # the simulator's delay: well beyond it


async def test_slow_answer_times_out_and_a_safe_request_is_retried(
    sim: Simulator, tap: Tap, waits: RecordedSleeps
) -> None:
    sim.faults.inject("slow", method="GET", path=SSH, seconds=LATE)
    async with connect(sim, tap, waits, read_timeout=SHORT) as vast:
        assert await vast.ssh.list_keys() == []
    assert [s.error for s in tap.seen] == ["ReadTimeout", None]
    assert tap.statuses() == [None, 200]
    assert len(waits.waits) == 1


async def test_slow_create_is_not_resent_and_is_found_by_reading(
    sim: Simulator, tap: Tap, waits: RecordedSleeps
) -> None:
    async with connect(sim, tap, waits, read_timeout=SHORT) as vast:
        offer = await cheapest(vast)
        sim.faults.inject("slow", method="PUT", path=CREATE, seconds=LATE)
        with pytest.raises(OutcomeUnknownError, match="may have taken effect"):
            await vast.instances.create(offer.id, create_request("slowpoke", "m-slow"))
        assert sim.count("PUT", CREATE) == 1
        [found] = await vast.instances.list(label="slowpoke")  # it was committed
    assert found.extra_env[MARKER] == "m-slow"


async def test_slow_destroy_that_took_effect_is_not_reported_as_not_found(
    sim: Simulator, tap: Tap, waits: RecordedSleeps
) -> None:
    async with connect(sim, tap, waits, read_timeout=SHORT) as vast:
        instance_id = await rent(vast, "doomed")
        sim.faults.inject("slow", method="DELETE", path=INSTANCE, seconds=LATE)
        try:
            await vast.instances.destroy(instance_id)  # the instance is gone: that is success
        finally:
            assert sim_statuses(sim, "DELETE", INSTANCE)[0] == 200  # the first DELETE destroyed it
            with pytest.raises(NotFoundError):
                await vast.instances.get(instance_id)


async def test_dud_destroyed_despite_a_lost_delete_answer_is_not_reported_as_billing(tmp_path: Path) -> None:
    with served_simulator() as (simulator, url):
        server = server_for(url, ssh_dir_with_key(tmp_path), http_timeout=SHORT)
        async with Client(server, elicitation_callback=ScriptedUser()) as client:
            planned = data(await client.call_tool("plan_instance", {}))
            simulator.faults.inject("instance_exit")
            simulator.faults.inject("slow", method="DELETE", path=INSTANCE, seconds=LATE)
            result = data(await client.call_tool("create_instance", {"quote_id": planned["quote_id"]}))
        with simulator.state.lock:
            left = dict(simulator.state.instances)
    assert left == {}  # the first DELETE destroyed the dud
    [instance] = result["instances"]
    assert not result["ok"] and "exited" in " ".join(instance["notes"])
    assert instance["billing"] is False, instance["notes"]
    assert result["billing_per_hour"] == 0


async def test_destroy_tool_with_a_lost_answer_says_it_destroyed_the_instance(tmp_path: Path) -> None:
    with served_simulator() as (simulator, url):
        server = server_for(url, ssh_dir_with_key(tmp_path), http_timeout=SHORT)
        async with Client(server, elicitation_callback=ScriptedUser()) as client:
            planned = data(await client.call_tool("plan_instance", {}))
            created = data(await client.call_tool("create_instance", {"quote_id": planned["quote_id"], "wait": False}))
            [instance] = created["instances"]
            simulator.faults.inject("slow", method="DELETE", path=INSTANCE, seconds=LATE)
            result = data(await client.call_tool("destroy_instance", {"instance_id": instance["instance_id"]}))
        assert sim_statuses(simulator, "DELETE", INSTANCE)[0] == 200  # this call's DELETE destroyed it
    assert result["reached"] and result["state"] == "gone"
    assert result["detail"] == "verified gone", result["detail"]


# -- offer_taken / price_move ----------------------------------------------------------------------


async def test_offer_taken_is_offer_unavailable(sim: Simulator, vast: VastClient, tap: Tap) -> None:
    offer = await cheapest(vast)
    sim.faults.inject("offer_taken")
    with pytest.raises(OfferUnavailableError) as caught:
        await vast.instances.create(offer.id, create_request("taken"))
    assert caught.value.offer_id == offer.id
    assert sim_statuses(sim, "PUT", CREATE) == [410]  # cancel_unavail: gone, not a stopped instance
    assert await vast.instances.list() == []
    assert offer.id not in {o.id for o in await vast.offers.search(OfferFilters(verified=None, disk_gb=10))}


async def test_price_move_shows_in_the_next_search(sim: Simulator, vast: VastClient) -> None:
    filters = OfferFilters(verified=None, disk_gb=10)
    before = {o.id: o for o in await vast.offers.search(filters)}
    sim.faults.inject("price_move", factor=1.5)
    after = {o.id: o for o in await vast.offers.search(filters)}
    assert set(after) == set(before)
    for offer_id, old in before.items():
        new = after[offer_id]
        assert new.dph_base == pytest.approx(old.dph_base * 1.5)
        assert new.dph_total > old.dph_total
        assert new.price_per_hour(10) > old.price_per_hour(10)
        assert new.dph_total == pytest.approx(new.price_per_hour(10))  # storage still priced in once


# -- drop_after_commit -----------------------------------------------------------------------------


async def test_drop_after_commit_is_outcome_unknown_and_the_instance_exists(
    sim: Simulator, vast: VastClient, tap: Tap
) -> None:
    offer = await cheapest(vast)
    sim.faults.inject("drop_after_commit")
    with pytest.raises(OutcomeUnknownError, match="may have taken effect"):
        await vast.instances.create(offer.id, create_request("dropped", "m-drop"))
    assert [s.error for s in tap.seen if s.method == "PUT"] == ["RemoteProtocolError"]
    [create] = [r for r in sim.requests if r.method == "PUT"]
    assert create.dropped and create.status is None  # the simulator committed, then hung up
    assert sim.count("PUT", CREATE) == 1  # never resent
    [found] = await vast.instances.list(label="dropped")
    assert found.extra_env[MARKER] == "m-drop"
    assert len(await vast.instances.list()) == 1


# -- instance_exit / stuck_unknown: waiting with the simulator's clock -------------------------------


class Lockstep:
    """One fake clock for the waiter and the simulator (speed 0): every sleep moves both."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sim.clock.advance(seconds)


async def test_instance_exit_fails_fast_with_the_status_message(sim: Simulator, vast: VastClient) -> None:
    sim.faults.inject("instance_exit")
    instance_id = await rent(vast, "exits")
    step = Lockstep(sim)
    outcome = await wait_for_state(
        vast, instance_id, "running", timeout_s=900, poll_s=5, sleep=step.sleep, clock=step.clock
    )
    assert not outcome.reached
    assert outcome.state == "exited"
    assert outcome.failure == f"the instance is exited: <untrusted>{EXIT_MSG}</untrusted>"
    assert outcome.waited_s <= 35  # at the first exited poll (boot takes 30 s), not at the deadline


async def test_stuck_unknown_fails_after_the_unknown_grace(sim: Simulator, vast: VastClient) -> None:
    sim.faults.inject("stuck_unknown")
    instance_id = await rent(vast, "stuck")
    step = Lockstep(sim)
    poll = 5.0
    outcome = await wait_for_state(
        vast, instance_id, "running", timeout_s=900, poll_s=poll, sleep=step.sleep, clock=step.clock
    )
    assert not outcome.reached and outcome.state == "unknown"
    assert outcome.failure is not None and "(status unknown)" in outcome.failure
    # unknown from the end of "created" (10 s); failed once the grace had passed, not before
    assert 10 + UNKNOWN_GRACE_S <= outcome.waited_s <= 10 + UNKNOWN_GRACE_S + 2 * poll


# -- slow_ssh ---------------------------------------------------------------------------------------

BANNER_DELAY = 1.0  # real seconds the simulated sshd waits before its banner


async def running_endpoints(sim: Simulator, vast: VastClient, label: str) -> list[Any]:
    instance_id = await rent(vast, label)
    sim.clock.advance(31)  # boot: 10 s created + 20 s loading
    inst = await vast.instances.get(instance_id)  # this request also opens the sshd ports
    assert inst.actual_status == "running"
    endpoints = ssh_endpoints(inst, allow_private=True)  # the simulator advertises loopback
    assert endpoints
    return endpoints


async def test_slow_ssh_probe_succeeds_only_after_the_delay(sim: Simulator, vast: VastClient) -> None:
    sim.faults.inject("slow_ssh", seconds=BANNER_DELAY)
    endpoints = await running_endpoints(sim, vast, "slow-ssh")
    early = await probe_ssh(endpoints, timeout_s=0.5, interval_s=0.1, connect_timeout_s=0.3)
    assert not early.ready and early.errors  # connected, but no banner yet
    late = await probe_ssh(endpoints, timeout_s=10, interval_s=0.1)
    assert late.ready and late.banner is not None and late.banner.startswith("SSH-2.0-")
    assert late.waited_s >= BANNER_DELAY * 0.9


async def test_ssh_without_the_fault_answers_at_once(sim: Simulator, vast: VastClient) -> None:
    endpoints = await running_endpoints(sim, vast, "quick-ssh")
    probe = await probe_ssh(endpoints, timeout_s=5, interval_s=0.1)
    assert probe.ready and probe.waited_s < BANNER_DELAY / 2


async def test_slow_ssh_longer_than_one_attempt_is_still_found_within_the_deadline(
    sim: Simulator, vast: VastClient
) -> None:
    sim.faults.inject("slow_ssh", seconds=BANNER_DELAY)
    endpoints = await running_endpoints(sim, vast, "slower-ssh")
    probe = await probe_ssh(endpoints, timeout_s=2.5, interval_s=0.1, connect_timeout_s=BANNER_DELAY / 2)
    assert probe.ready


# -- a bad key -------------------------------------------------------------------------------------

WRONG_KEY = ApiKey("wrong-fidelity-key-0000-9876", "file", "keys/.vast_env")
BAD_KEY_CALLS: dict[str, Callable[[VastClient, Simulator], Awaitable[object]]] = {
    "ssh": lambda vast, sim: vast.ssh.list_keys(),
    "search": lambda vast, sim: vast.offers.search(OfferFilters()),
    "show": lambda vast, sim: vast.instances.get(1),
    "create": lambda vast, sim: vast.instances.create(sim.state.offers[0].id, create_request("bad-key")),
}


@pytest.mark.parametrize(
    ("call", "method", "path", "status"),
    [
        ("ssh", "GET", SSH, 401),
        ("search", "POST", SEARCH, 404),  # the real API answers a bad key on search with 404 auth_error
        ("show", "GET", INSTANCE, 401),
        ("create", "PUT", CREATE, 401),
    ],
)
async def test_bad_key_is_an_auth_error_naming_the_source_never_retried(
    sim: Simulator, tap: Tap, waits: RecordedSleeps, call: str, method: str, path: str, status: int
) -> None:
    async with connect(sim, tap, waits, key=WRONG_KEY) as vast:
        with pytest.raises(AuthError) as caught:
            await BAD_KEY_CALLS[call](vast, sim)
    message = str(caught.value)
    assert "keys/.vast_env" in message and WRONG_KEY.fingerprint in message
    assert WRONG_KEY.reveal() not in message and SIM_KEY not in message
    assert sim_statuses(sim, method, path) == [status]  # one request, no retry
    assert b"auth_error" in tap.seen[0].body
    assert waits.waits == []
    with sim.state.lock:
        assert sim.state.instances == {}


# -- the simulator's own rate limiter, met by an unpaced client ------------------------------------


async def test_unpaced_client_waits_out_the_simulators_budget_429() -> None:
    """Without its budget the client draws the simulator's recorded-shape 429, and waits it out."""
    limiter = Simulator(api_key=SIM_KEY, seed=7, offer_count=20, rate_limit=(2, 1.0))
    tap, slept = Tap(), RecordedSleeps()

    async def real_sleep(seconds: float) -> None:
        await slept(seconds)
        await anyio.sleep(seconds)

    with limiter.serve() as url:
        http = VastHttp(GOOD_KEY, url, budget=None, transport=tap, sleep=real_sleep)
        async with VastClient(http) as vast:
            for _ in range(3):
                assert await vast.ssh.list_keys() == []
    assert tap.statuses() == [200, 200, 429, 200]
    limited = tap.seen[2]
    assert limited.headers["retry-after"] == "1" and b'"retry_after": 1' in limited.body
    assert slept.waits == [1.0]


# -- coverage --------------------------------------------------------------------------------------

#: fault kind -> the tests above that show the client's reaction to it.
COVERED: dict[str, str] = {
    "rate_limit": "test_rate_limit_is_waited_out_on_a_safe_request, ..._on_a_create_is_not_resent, ..._persists",
    "search_quota": "test_search_quota_fails_at_once_and_says_when_it_resets",
    "server_error": "test_server_error_on_a_safe_request_is_retried, test_server_error_on_a_create_is_not_resent",
    "empty_body": "test_unreadable_body_* (empty)",
    "malformed_body": "test_unreadable_body_* (malformed json and html)",
    "slow": "test_slow_answer_*, test_slow_create_*, test_slow_destroy_*, test_dud_*, test_destroy_tool_*",
    "offer_taken": "test_offer_taken_is_offer_unavailable",
    "price_move": "test_price_move_shows_in_the_next_search",
    "drop_after_commit": "test_drop_after_commit_is_outcome_unknown_and_the_instance_exists",
    "instance_exit": "test_instance_exit_fails_fast_with_the_status_message",
    "stuck_unknown": "test_stuck_unknown_fails_after_the_unknown_grace",
    "slow_ssh": "test_slow_ssh_probe_succeeds_only_after_the_delay",
    # §11 reproductions: met in test_seen_live_sim.py
    "odd_records": "test_seen_live_sim.test_sim_odd_records_never_fail_a_search_or_a_list",
    "oci_failure": "test_seen_live_sim.test_sim_oci_failure_is_fatal_at_once",
    "pending_null": "test_seen_live_sim.test_sim_pending_null_then_running",
    "redirect": "test_seen_live_sim.test_sim_redirect_off_vast_ai_is_refused",
}


def test_every_fault_kind_has_a_client_test() -> None:
    missing = sorted(set(FAULT_KINDS) - set(COVERED))
    assert not missing, f"fault kind(s) {missing} have no client-reaction test in {__name__}: add one"
    assert not sorted(set(COVERED) - set(FAULT_KINDS)), "COVERED names a fault kind the simulator no longer has"
