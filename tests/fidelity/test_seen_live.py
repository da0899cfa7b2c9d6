"""reference/vast-api.md §11 "Seen live", row by row, at the client layer.

Each test serves the real answer's shape (a recorded fixture where one exists, reshaped
as the row describes) through ``httpx.MockTransport`` and checks what the client makes
of it. :data:`ROWS` maps every §11 row to the tests that guard it, here and elsewhere
(the simulator reproductions live in ``test_seen_live_sim.py``); a new row in §11 fails
:func:`test_every_seen_live_row_has_a_test` until it is mapped.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.fidelity.recorded import KEY, KEY_SECRET, load
from tests.helpers import RecordedSleeps
from tests.vast.fake import FakeVast, reply
from vast_mcp.provisioning.readiness import SshEndpoint, ssh_endpoints, wait_for_state
from vast_mcp.vast import (
    MAX_OFFERS,
    AuthError,
    CreateRequest,
    Instance,
    OfferFilters,
    OfferUnavailableError,
    OutcomeUnknownError,
    VastClient,
    VastError,
    VastHttp,
)
from vast_mcp.vast.query import build_query

pytestmark = pytest.mark.anyio

SEARCH = "search_asks-200-jdziat.json"
STOPPED = "instance-200-stopped-jdziat.json"
STOPPED_ID = 49983543
INSTANCE = r"/api/v0/instances/\d+/"
V1_LIST = "/api/v1/instances/"
QUEUED_MSG = "Required resources are currently unavailable, state change queued."
INSTANCE_KEY = "instance-scoped-CANARY-9f8e7d6c5b4a"


@asynccontextmanager
async def client(fake: FakeVast, sleeps: RecordedSleeps | None = None) -> AsyncIterator[VastClient]:
    http = VastHttp(KEY, "https://vast.test", transport=fake.transport(), budget=None, sleep=sleeps or RecordedSleeps())
    async with VastClient(http) as vast:
        yield vast


def recorded_instance(**changes: Any) -> dict[str, Any]:
    """The recorded stopped instance, reshaped (the real record's every field and type)."""
    record: dict[str, Any] = load(STOPPED).body["instances"]
    record.update(changes)
    return record


def running(**changes: Any) -> dict[str, Any]:
    meant = {"actual_status": "running", "intended_status": "running", "cur_state": "running", "next_state": "running"}
    return recorded_instance(**{**meant, **changes})


def recorded_offers() -> list[dict[str, Any]]:
    offers: list[dict[str, Any]] = load(SEARCH).body["offers"]
    return offers


# -- the queued start -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [{"success": False, "msg": QUEUED_MSG}, {"msg": QUEUED_MSG}],
    ids=["success-false", "success-absent"],
)
async def test_queued_start_reads_as_queued_not_as_a_rejection(answer: dict[str, Any]) -> None:
    fake = FakeVast().on("PUT", INSTANCE, reply(body=answer))
    async with client(fake) as vast:
        assert await vast.instances.set_state(STOPPED_ID, "running") == "queued"
    assert fake.count("PUT", INSTANCE) == 1 and fake.body() == {"state": "running"}


async def test_queued_start_is_cancelled_by_stopping_and_a_plain_start_is_done() -> None:
    fake = FakeVast().on("PUT", INSTANCE, reply(body={"success": True}))
    async with client(fake) as vast:
        assert await vast.instances.set_state(STOPPED_ID, "stopped") == "done"
        assert await vast.instances.set_state(STOPPED_ID, "running") == "done"
    assert [json.loads(r.content) for r in fake.requests] == [{"state": "stopped"}, {"state": "running"}]


async def test_waiting_on_a_queued_start_fails_fast_and_says_it_will_bill() -> None:
    queued = running(actual_status="exited", cur_state="stopped", status_msg=QUEUED_MSG)
    outcome = await wait_running(queued, running())
    assert not outcome.reached and outcome.polls == 1
    assert "queued" in outcome.failure and "bill" in outcome.failure and "stop it to cancel" in outcome.failure


# -- 404 auth_error on the v1 list ------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 401, 403, 429, 500, 200])
async def test_bad_key_404_auth_error_on_the_v1_list_is_a_key_problem(status: int) -> None:
    body = {"success": False, "error": "auth_error", "msg": "Invalid user key"}
    sleeps = RecordedSleeps()
    fake = FakeVast().on("GET", V1_LIST, reply(status, body))
    async with client(fake, sleeps) as vast:
        with pytest.raises(AuthError) as caught:
            await vast.instances.list()
    message = str(caught.value)
    assert "$VAST_API_KEY" in message and KEY.fingerprint in message and KEY_SECRET not in message
    assert caught.value.status == status
    assert fake.count("GET", V1_LIST) == 1 and sleeps.waits == []  # a key problem is never retried


# -- the v0 list is retired -------------------------------------------------------------------------


async def test_instances_are_listed_only_through_v1() -> None:
    retired = reply(410, {"success": False, "error": "deprecated_endpoint", "msg": "Use /api/v1/instances/ instead."})
    fake = FakeVast().on("GET", "/api/v0/instances/", retired).on("GET", V1_LIST, reply(body={"instances": []}))
    async with client(fake) as vast:
        assert await vast.instances.list() == []
        with pytest.raises(VastError, match="retired"):
            await vast.http.request("GET", "/api/v0/instances/", safe=True)
    assert fake.count("GET", V1_LIST) == 1


# -- a real search answer: nulls, deverified, extra keys, unrentable offers -------------------------


async def test_real_search_answer_with_nulls_and_deverified_offers_never_fails_the_search() -> None:
    a, b = recorded_offers()
    a.update(external=None, dph_total_adj=0.41, discounted_dph_total=0.4, reliability_mult=0.99, gpu_ids=[1])
    b.update(verification="deverified")
    nulls = {**a, "id": 1, "ask_contract_id": 1, "dlperf": None, "cuda_max_good": None, "inet_up": None}
    nulls["num_gpus"] = None
    unrentable = {**a, "id": 2, "ask_contract_id": 2, "rentable": False}
    priceless = {**a, "id": 3, "ask_contract_id": 3, "dph_base": None}
    fake = FakeVast().on("POST", "/api/v0/bundles/", reply(body={"offers": [a, b, nulls, unrentable, priceless]}))
    async with client(fake) as vast:
        anything = await vast.offers.search(OfferFilters(verified=None, disk_gb=8))
        verified = await vast.offers.search(OfferFilters(disk_gb=8))
        oddities = [str(o) for o in vast.http.oddities]
    by_id = {o.id: o for o in anything}
    assert set(by_id) == {a["id"], b["id"], 1}  # unrentable dropped; an unreadable price is never offered
    assert by_id[1].unreadable == ("cuda_max_good", "dlperf", "inet_up", "num_gpus")
    assert (by_id[1].dlperf, by_id[1].num_gpus, by_id[1].gpu_name) == (0, 0, a["gpu_name"])
    assert by_id[b["id"]].verification == "deverified"
    assert {o.id for o in verified} == {a["id"], 1}  # deverified is not verified
    assert "offer 3: field dph_base could not be read (null)" in oddities


# -- an exporter's lessons: whitespace, Inf/NaN, duplicate keys -------------------------------------


async def test_host_whitespace_is_trimmed_and_an_odd_host_never_reaches_ssh() -> None:
    ports = {"22/tcp": [{"HostIp": "0.0.0.0", "HostPort": "40311"}]}
    record = running(public_ipaddr=" 203.0.113.13 \n", ssh_host="\tssh4.vast.ai ", ssh_port=35610, ports=ports)
    odd = running(public_ipaddr="203.0.113.13 -oProxyCommand=x", ssh_host="ssh4.vast.ai;id", ports=ports)
    fake = FakeVast().on("GET", INSTANCE, reply(body={"instances": record}), reply(body={"instances": odd}))
    async with client(fake) as vast:
        clean = await vast.instances.get(STOPPED_ID)
        hostile = await vast.instances.get(STOPPED_ID)
    assert clean.direct_ssh == ("203.0.113.13", 40311) and clean.proxy_ssh == ("ssh4.vast.ai", 35610)
    assert clean.unreadable == ()
    assert (hostile.public_ipaddr, hostile.ssh_host, hostile.direct_ssh, hostile.proxy_ssh) == (None,) * 4
    assert hostile.unreadable == ("public_ipaddr", "ssh_host")


async def test_inf_nan_and_duplicate_keys_in_an_answer_are_tolerated() -> None:
    a, b = recorded_offers()
    text = json.dumps({"offers": [a, b]})
    # json.dumps writes NaN/Infinity as bare words; the duplicated key's last value wins, as in json.loads.
    first = json.dumps(a)
    hostile = first.replace('"dlperf": ', '"dlperf": NaN, "dlperf": ', 1)
    hostile = hostile.replace('"inet_down": ', '"inet_down": -Infinity, "inet_down": ', 1)
    hostile = re.sub(r'("dlperf_per_dphtotal": [^,]+)', r'\1, "dlperf_per_dphtotal": Infinity', hostile, count=1)
    text = text.replace(first, hostile)
    assert "NaN" in text
    fake = FakeVast().on("POST", "/api/v0/bundles/", reply(200, text=text))
    async with client(fake) as vast:
        offers = {o.id: o for o in await vast.offers.search(OfferFilters(disk_gb=8))}
    assert set(offers) == {a["id"], b["id"]}
    parsed = offers[a["id"]]
    assert parsed.dlperf == a["dlperf"] and parsed.inet_down == a["inet_down"]  # the last duplicate wins
    assert parsed.unreadable == ("dlperf_per_dphtotal",)  # Infinity is not a value


# -- at most 64 offers; renting twice ---------------------------------------------------------------


async def test_a_search_asks_for_at_most_64_offers() -> None:
    fake = FakeVast().on("POST", "/api/v0/bundles/", reply(body={"offers": recorded_offers()}))
    async with client(fake) as vast:
        await vast.offers.search(OfferFilters(disk_gb=8), limit=500)
        await vast.offers.search(OfferFilters(disk_gb=8), limit=5)
    assert MAX_OFFERS == 64
    assert [json.loads(r.content)["limit"] for r in fake.requests] == [64, 5]
    with pytest.raises(ValueError, match="at least 1"):
        build_query(OfferFilters(), limit=0)


async def test_renting_the_same_offer_twice_is_offer_unavailable() -> None:
    gone = {"success": False, "error": "no_such_ask", "msg": "error 410/3907: no_such_ask Instance type 1 is gone."}
    fake = FakeVast().on(
        "PUT", r"/api/v0/asks/\d+/", reply(body={"success": True, "new_contract": 9}), reply(410, gone)
    )
    async with client(fake) as vast:
        request = CreateRequest(image="ubuntu:22.04", disk=10, label="twice")
        assert await vast.instances.create(1, request) == 9
        with pytest.raises(OfferUnavailableError):
            await vast.instances.create(1, request)


def test_offers_are_never_looked_up_by_id() -> None:
    # {"id": {"eq": N}} finds nothing live; the client never filters on it (ask_contract_id would).
    query = build_query(OfferFilters(gpu_name="RTX 4090", num_gpus=1, direct_ports=True))
    assert "id" not in query and "ask_contract_id" not in query


# -- the create answer's instance_api_key ----------------------------------------------------------


async def test_instance_api_key_is_dropped_on_arrival(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    created = {"success": True, "new_contract": 7835610, "instance_api_key": INSTANCE_KEY}
    lost = {"success": True, "instance_api_key": INSTANCE_KEY}  # no new_contract: outcome unknown
    fake = FakeVast().on("PUT", r"/api/v0/asks/\d+/", reply(body=created), reply(body=lost))
    async with client(fake) as vast:
        request = CreateRequest(image="ubuntu:22.04", disk=10, label="k")
        assert await vast.instances.create(1, request) == 7835610
        with pytest.raises(OutcomeUnknownError) as caught:
            await vast.instances.create(1, request)
        seen = repr(list(vast.http.history)) + repr(list(vast.http.oddities))
    assert INSTANCE_KEY not in seen + caplog.text + str(caught.value) + repr(caught.value.__dict__)


async def test_the_account_key_in_users_current_is_dropped_on_arrival() -> None:
    fake = FakeVast().on("GET", "/api/v0/users/current", reply(body={"id": 1, "api_key": KEY_SECRET, "credit": 2.0}))
    async with client(fake) as vast:
        data = await vast.http.request("GET", "/api/v0/users/current", safe=True)
        user = await vast.account.current_user()
    assert "api_key" not in data and KEY_SECRET not in repr(user.model_dump())


# -- onstart is limited to 4,048 characters ---------------------------------------------------------


def test_onstart_over_4048_characters_is_refused_before_anything_is_sent() -> None:
    assert CreateRequest(image="i", disk=10, label="l", onstart="x" * 4048).onstart
    with pytest.raises(ValidationError, match="4048"):
        CreateRequest(image="i", disk=10, label="l", onstart="x" * 4049)


# -- pending, fatal, SSH ready (SkyPilot's rules) ----------------------------------------------------


async def wait_running(*records: dict[str, Any]) -> Any:
    fake = FakeVast().on("GET", INSTANCE, *(reply(body={"instances": r}) for r in records))
    sleeps = RecordedSleeps()
    now = [0.0]

    async def sleep(seconds: float) -> None:
        await sleeps(seconds)
        now[0] += seconds

    async with client(fake) as vast:
        return await wait_for_state(
            vast, STOPPED_ID, "running", timeout_s=600, poll_s=5, sleep=sleep, clock=lambda: now[0]
        )


async def test_actual_status_null_is_pending() -> None:
    pending = running(actual_status=None, status_msg=None)
    outcome = await wait_running(pending, pending, running())
    assert outcome.reached and outcome.polls == 3


@pytest.mark.parametrize(
    ("status", "msg"),
    [
        (None, "OCI runtime create failed: runc create failed: unable to start container process"),
        ("loading", "OCI runtime create failed: container_linux.go:380"),
        ("created", "Error response from daemon: OCI runtime create failed: nvidia-container-cli"),
        ("loading", "Error: pull access denied for private/image"),
        ("loading", "image pull failed"),
    ],
)
async def test_oci_runtime_failure_or_an_error_while_loading_is_fatal_at_once(status: str | None, msg: str) -> None:
    outcome = await wait_running(running(actual_status=status, status_msg=msg), running())
    assert not outcome.reached and outcome.polls == 1
    assert "cannot start" in outcome.failure and "untrusted" in outcome.failure


async def test_error_words_outside_loading_are_not_fatal() -> None:
    outcome = await wait_running(running(actual_status="created", status_msg="retrying after error"), running())
    assert outcome.reached


SSH_PORTS = {"22/tcp": [{"HostIp": "0.0.0.0", "HostPort": "40311"}]}


def test_ssh_is_ready_only_when_running_and_the_port_is_set() -> None:
    proxy = {"ssh_host": "ssh4.vast.ai", "ssh_port": 35610}
    loading = Instance.model_validate(running(actual_status="loading", ports=SSH_PORTS, **proxy))
    assert ssh_endpoints(loading, allow_private=False) == []
    no_port = Instance.model_validate(running(ssh_host="ssh4.vast.ai"))  # recorded: ssh_port 0, no ports
    assert ssh_endpoints(no_port, allow_private=False) == []
    ready = Instance.model_validate(running(ports=SSH_PORTS, **proxy))
    assert [(e.kind, e.host, e.port) for e in ssh_endpoints(ready, allow_private=False)] == [
        ("direct", "203.0.113.13", 40311),
        ("proxy", "ssh4.vast.ai", 35610),
    ]


def test_ssh_endpoints_refuse_private_hosts_unless_allowed() -> None:
    inst = Instance.model_validate(
        running(public_ipaddr="10.0.0.5", ports=SSH_PORTS, ssh_host="127.0.0.1", ssh_port=22)
    )
    assert ssh_endpoints(inst, allow_private=False) == []
    assert [e.host for e in ssh_endpoints(inst, allow_private=True)] == ["10.0.0.5", "127.0.0.1"]


def test_ssh_command_quotes_its_target_and_never_trusts_an_unvalidated_host() -> None:
    assert SshEndpoint("direct", "203.0.113.5", 40311).command == "ssh -p 40311 root@203.0.113.5"
    assert SshEndpoint("proxy", "a b;c", 22).command == "ssh -p 22 'root@a b;c'"
    # Built without validation (model_construct): ssh_endpoints checks the host again.
    unchecked = Instance.model_construct(
        id=1, actual_status="running", public_ipaddr="x;id", ssh_host="$(id)", ssh_port=22, ports={}
    )
    assert ssh_endpoints(unchecked, allow_private=True) == []


# -- invoices signed as the CLI shows them ----------------------------------------------------------


async def test_invoice_amounts_are_signed_as_the_official_cli_shows_them() -> None:
    wire = [
        {"type": "credit", "amount": -25.0},
        {"type": "refund", "amount": -3.0},
        {"type": "reserved", "amount": 4.0},
        {"type": "transfer", "amount": -5.0},
        {"type": "payout", "amount": 10.0},
        {"type": None, "amount": -1.0},
    ]
    fake = FakeVast().on("GET", "/api/v1/invoices/", reply(body={"success": True, "results": wire}))
    async with client(fake) as vast:
        shown = await vast.account.invoices(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 31, tzinfo=UTC))
    assert [(i.type, i.amount) for i in shown] == [
        ("credit", 25.0),
        ("refund", 3.0),
        ("reserved", -4.0),
        ("transfer", -5.0),
        ("payout", 10.0),
        (None, 1.0),
    ]


# -- interruptible rentals ---------------------------------------------------------------------------


async def test_interruptible_search_bid_create_change_bid_and_outbid() -> None:
    bid_ok = reply(body={"success": True})
    fake = (
        FakeVast()
        .on("POST", "/api/v0/bundles/", reply(body={"offers": recorded_offers()}))
        .on("PUT", r"/api/v0/asks/\d+/", reply(body={"success": True, "new_contract": 5}))
        .on("PUT", r"/api/v0/instances/bid_price/\d+/", bid_ok)
    )
    async with client(fake) as vast:
        [cheapest, *_] = await vast.offers.search(OfferFilters(disk_gb=8, interruptible=True))
        await vast.instances.create(cheapest.id, CreateRequest(image="i", disk=8, label="l", price=cheapest.min_bid))
        await vast.instances.change_bid(5, 0.35)
        for bad in (0.0, -1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match="at least"):
                await vast.instances.change_bid(5, bad)
    search, create, change = (json.loads(r.content) for r in fake.requests)
    assert search["type"] == "bid" and cheapest.min_bid > 0
    assert create["price"] == cheapest.min_bid
    assert (fake.requests[2].url.path, change) == ("/api/v0/instances/bid_price/5/", {"client_id": "me", "price": 0.35})
    assert len(fake.requests) == 3  # a bad bid sends nothing
    outbid_record = recorded_instance(is_bid=True, intended_status="running")
    outbid = Instance.model_validate(outbid_record)
    assert outbid.outbid and outbid.min_bid == pytest.approx(0.06666666666666667)
    waited = await wait_running(outbid_record)
    assert not waited.reached and waited.polls == 1 and "outbid" in waited.failure and "$0.0667/h" in waited.failure
    with pytest.raises(ValidationError):
        CreateRequest(image="i", disk=8, label="l", price=0)


# -- pending host price increases -------------------------------------------------------------------


async def test_pending_price_increases_are_read_before_and_after_per_hour() -> None:
    row = {
        "pending_price_increase_id": 31,
        "contract_id": STOPPED_ID,
        "old_gpu_costpersec": 0.0001,
        "new_gpu_costpersec": 0.0002,
        "old_disk_ram_costpersec": 0.00001,
        "new_disk_ram_costpersec": 0.00002,
        "contract_end_date": 1790000000.0,
        "created_at": 1788000000.0,
    }
    odd = {**row, "pending_price_increase_id": 32, "created_at": "yesterday"}
    body = {"success": True, "count": 2, "truncated": False, "pending_price_increases": [row, odd]}
    fake = FakeVast().on("GET", "/api/v0/instances/pending-price-increases/", reply(body=body))
    async with client(fake) as vast:
        first, second = await vast.instances.pending_price_increases()
    assert (first.id, first.instance_id) == (31, STOPPED_ID)
    assert (first.old_per_hour, first.new_per_hour) == (pytest.approx(0.396), pytest.approx(0.792))
    assert (second.id, second.created_at, second.unreadable) == (32, None, ("created_at",))


# -- env and ports the CLI's parse_env way ----------------------------------------------------------


async def test_env_and_ports_travel_in_the_cli_parse_env_form() -> None:
    env = {"-p 8888:8888": "1", "-p 8081:8081/udp": "1", "HF_HOME": "/workspace/hf"}
    ports = {"8888/tcp": [{"HostIp": "0.0.0.0", "HostPort": "40312"}], "22/tcp": [{"HostPort": "40311"}]}
    fake = (
        FakeVast()
        .on("PUT", r"/api/v0/asks/\d+/", reply(body={"success": True, "new_contract": 5}))
        .on(
            "GET", INSTANCE, reply(body={"instances": running(ports=ports, extra_env=[[k, v] for k, v in env.items()])})
        )
    )
    async with client(fake) as vast:
        await vast.instances.create(1, CreateRequest(image="i", disk=8, label="l", env=env))
        inst = await vast.instances.get(5)
    assert fake.body(0)["env"] == env
    assert inst.extra_env == env
    assert inst.mapped_ports == {"8888/tcp": "203.0.113.13:40312", "22/tcp": "203.0.113.13:40311"}


async def test_registry_login_never_reaches_the_history_or_an_error() -> None:
    login = "-u robot -p registry-CANARY-token-42 ghcr.io"
    echo = {"success": False, "error": "invalid_args", "msg": f"bad login {login}"}
    fake = FakeVast().on("PUT", r"/api/v0/asks/\d+/", reply(400, echo))
    async with client(fake) as vast:
        with pytest.raises(VastError) as caught:
            await vast.instances.create(1, CreateRequest(image="i", disk=8, label="l", image_login=login))
        history = repr(list(vast.http.history))
    assert fake.body()["image_login"] == login  # sent to Vast, as the CLI does
    assert "registry-CANARY-token-42" not in history + str(caught.value)


# -- which test guards which row --------------------------------------------------------------------

HERE = "tests.fidelity.test_seen_live"
SIM = "tests.fidelity.test_seen_live_sim"
TRANSPORT = "tests.vast.test_transport"

#: a phrase unique to one §11 row's "what" cell -> the tests that guard that row.
ROWS: dict[str, list[str]] = {
    "state change queued": [
        f"{HERE}::test_queued_start_reads_as_queued_not_as_a_rejection",
        f"{HERE}::test_queued_start_is_cancelled_by_stopping_and_a_plain_start_is_done",
        f"{HERE}::test_waiting_on_a_queued_start_fails_fast_and_says_it_will_bill",
        f"{SIM}::test_sim_relet_gpus_make_a_start_queued_and_a_stop_cancels_it",
    ],
    "wrong or revoked key": [
        f"{HERE}::test_bad_key_404_auth_error_on_the_v1_list_is_a_key_problem",
        f"{SIM}::test_sim_bad_key_on_the_v1_list_answers_404_auth_error",
    ],
    "v0 list": [f"{HERE}::test_instances_are_listed_only_through_v1"],
    "real offer search answer": [
        f"{HERE}::test_real_search_answer_with_nulls_and_deverified_offers_never_fails_the_search",
        f"{SIM}::test_sim_odd_records_never_fail_a_search_or_a_list",
    ],
    "long-running exporter": [
        f"{HERE}::test_host_whitespace_is_trimmed_and_an_odd_host_never_reaches_ssh",
        f"{HERE}::test_inf_nan_and_duplicate_keys_in_an_answer_are_tolerated",
        f"{SIM}::test_sim_odd_records_never_fail_a_search_or_a_list",
    ],
    "at most 64 offers": [
        f"{HERE}::test_a_search_asks_for_at_most_64_offers",
        f"{HERE}::test_renting_the_same_offer_twice_is_offer_unavailable",
        f"{SIM}::test_sim_search_returns_at_most_64_offers",
    ],
    "ask_contract_id": [f"{HERE}::test_offers_are_never_looked_up_by_id"],
    "create answer is": [
        f"{HERE}::test_instance_api_key_is_dropped_on_arrival",
        f"{HERE}::test_the_account_key_in_users_current_is_dropped_on_arrival",
        f"{HERE}::test_registry_login_never_reaches_the_history_or_an_error",
    ],
    "CONTAINER_API_KEY": [f"{SIM}::test_sim_instance_key_can_stop_only_its_own_instance"],
    "4,048 characters": [f"{HERE}::test_onstart_over_4048_characters_is_refused_before_anything_is_sent"],
    "SSH is ready only": [
        f"{HERE}::test_actual_status_null_is_pending",
        f"{HERE}::test_oci_runtime_failure_or_an_error_while_loading_is_fatal_at_once",
        f"{HERE}::test_error_words_outside_loading_are_not_fatal",
        f"{HERE}::test_ssh_is_ready_only_when_running_and_the_port_is_set",
        f"{HERE}::test_ssh_endpoints_refuse_private_hosts_unless_allowed",
        f"{HERE}::test_ssh_command_quotes_its_target_and_never_trusts_an_unvalidated_host",
        f"{SIM}::test_sim_pending_null_then_running",
        f"{SIM}::test_sim_oci_failure_is_fatal_at_once",
    ],
    "flips the sign": [
        f"{HERE}::test_invoice_amounts_are_signed_as_the_official_cli_shows_them",
        f"{SIM}::test_sim_credit_purchase_shows_positive",
    ],
    "interruptible": [
        f"{HERE}::test_interruptible_search_bid_create_change_bid_and_outbid",
        f"{SIM}::test_sim_outbid_instance_reads_outbid_and_a_higher_bid_resumes_it",
    ],
    "pending host price increases": [
        f"{HERE}::test_pending_price_increases_are_read_before_and_after_per_hour",
        f"{SIM}::test_sim_price_increase_is_listed_per_hour",
    ],
    "parse_env": [
        f"{HERE}::test_env_and_ports_travel_in_the_cli_parse_env_form",
        f"{SIM}::test_sim_env_and_onstart_travel_in_the_cli_form",
        f"{SIM}::test_sim_ports_from_env_read_as_mapped_ports",
    ],
    "redirect between hosts": [
        f"{TRANSPORT}::test_redirect_to_an_https_host_under_vast_ai_is_followed_with_the_key",
        f"{TRANSPORT}::test_redirect_anywhere_else_is_refused_and_the_key_goes_nowhere",
        f"{TRANSPORT}::test_redirect_loops_stop_after_a_few_hops",
        f"{SIM}::test_sim_redirect_off_vast_ai_is_refused",
    ],
}

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "vast-api.md"


def seen_live_rows() -> list[str]:
    """The "what" cell of every row of §11."""
    text = REFERENCE.read_text(encoding="utf-8")
    section = text.split("## 11. Seen live", 1)[1]
    lines = [ln for ln in section.splitlines() if ln.startswith("| ")]
    return [ln.strip("|").split(" | ")[0].strip() for ln in lines[1:]]  # skip the header row


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"no reference at {REFERENCE}")
def test_every_seen_live_row_has_a_test() -> None:
    rows = seen_live_rows()
    assert len(rows) >= 16
    for row in rows:
        phrases = [p for p in ROWS if p in row]
        assert len(phrases) == 1, f"§11 row {row[:80]!r} is guarded by {phrases}: map it to its tests in ROWS"
    for phrase in ROWS:
        assert sum(phrase in row for row in rows) == 1, f"ROWS phrase {phrase!r} matches no single §11 row"


@pytest.mark.parametrize("node", sorted({n for tests in ROWS.values() for n in tests}))
def test_every_guard_named_exists(node: str) -> None:
    module, _, name = node.partition("::")
    assert callable(getattr(importlib.import_module(module), name, None)), f"{node} does not exist"
