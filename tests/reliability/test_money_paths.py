"""The create's lost-answer paths, one by one (the soak meets them at random; here each is forced).

Every case confirms one quote and checks the money invariants: at most one instance carries the
quote's create markers, one create PUT per attempt marker, every instance that exists is in the
result by id, and a result never says nothing bills while something does.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.helpers import ScriptedUser, fast_settings, ssh_dir_with_key
from tests.reliability.support import (
    CREATE,
    INSTANCES_V1,
    Inner,
    Recorder,
    every_instance,
    live_instances,
    recorded_simulator,
    result_problem,
    text_of,
)
from vast_mcp.credentials import ApiKey
from vast_mcp.server import create_server
from vast_mcp.simulator import Simulator
from vast_mcp.simulator.wire import Request, Response, json_response, text_response

pytestmark = pytest.mark.anyio

KEY = "vk-money-paths+/0123456789"
HTTP_TIMEOUT = 0.6


@pytest.fixture
def served() -> Iterator[tuple[Simulator, Recorder, str]]:
    with recorded_simulator(api_key=KEY, seed=3, speed=120.0) as trio:
        yield trio


@asynccontextmanager
async def client_for(url: str, home: Path) -> AsyncIterator[Client]:
    settings = fast_settings(url, ssh_dir_with_key(home), http_timeout=HTTP_TIMEOUT, ready_timeout=3.0)
    server = create_server(settings, api_key=ApiKey(KEY, "env", "$VAST_API_KEY"))
    async with Client(server, elicitation_callback=ScriptedUser()) as client:
        yield client


def committed_then(answer: Callable[[Response], Response], *, skip: int = 0) -> Callable[[Request, Inner], Response]:
    """Let the simulator answer (and commit) the create, then deliver ``answer(its response)``
    instead; the first ``skip`` matching requests are answered normally (arm with times=skip+1)."""
    seen = [0]

    def deliver(req: Request, inner: Inner) -> Response:
        seen[0] += 1
        resp = inner(req)
        return resp if seen[0] <= skip else answer(resp)

    return deliver


def _dropped(resp: Response) -> Response:
    resp.drop = True
    return resp


def _garbled(resp: Response) -> Response:
    return Response(200, b'{"success": true, "new_contr', "application/json")


def _gateway(resp: Response) -> Response:
    return text_response(504, "<html><body>504 Gateway Time-out</body></html>", "text/html")


def _without_contract(resp: Response) -> Response:
    return json_response(200, {"success": True})


Arm = Callable[[Simulator, Recorder], None]


def inject(kind: str, **params: Any) -> Arm:
    def arm(sim: Simulator, rec: Recorder) -> None:
        sim.faults.inject(kind, **params)

    return arm


def _taken_then_retry_dropped(sim: Simulator, rec: Recorder) -> None:
    sim.faults.inject("offer_taken")
    rec.echo(committed_then(_dropped, skip=1), path=CREATE, times=2)


def _dropped_and_reads_fail(times: int) -> Arm:
    def arm(sim: Simulator, rec: Recorder) -> None:
        sim.faults.inject("drop_after_commit")
        sim.faults.inject("server_error", method="GET", path=INSTANCES_V1, times=times)

    return arm


CASES: dict[str, tuple[Arm, int]] = {
    # name: (arm the faults, instances that must exist afterwards)
    "dropped after commit": (inject("drop_after_commit"), 1),
    "answer slower than the client timeout": (
        inject("slow", method="PUT", path=CREATE, seconds=HTTP_TIMEOUT + 0.4),
        1,
    ),
    "5xx before commit": (inject("server_error", method="PUT", path=CREATE, status=502), 0),
    "empty body before commit": (inject("empty_body", method="PUT", path=CREATE), 0),
    "429 with a wait hint on the create": (inject("rate_limit", method="PUT", path=CREATE, retry_after_header=0.1), 0),
    "committed, then a garbled body": (lambda s, r: r.echo(committed_then(_garbled), path=CREATE), 1),
    "committed, then a gateway 504": (lambda s, r: r.echo(committed_then(_gateway), path=CREATE), 1),
    "offer taken, then the retry's answer dropped": (_taken_then_retry_dropped, 1),
    "dropped, and the reconcile read needs its retries": (_dropped_and_reads_fail(2), 1),
    "dropped, and the first reconcile read fails through its retries": (_dropped_and_reads_fail(4), 1),
    "committed, answer without new_contract": (lambda s, r: r.echo(committed_then(_without_contract), path=CREATE), 1),
}


async def _confirm_one_quote(sim: Simulator, rec: Recorder, url: str, home: Path, arm: Arm, expect: int) -> None:
    async with client_for(url, home) as client:
        planned = await client.call_tool("plan_instance", {})
        assert not planned.is_error, text_of(planned)
        quote = planned.structured_content["quote_id"]  # type: ignore[index]
        mark = rec.mark()
        arm(sim, rec)
        result = await client.call_tool("create_instance", {"quote_id": quote})
        sim.faults.clear()
    problem = result_problem("create_instance", result)
    assert problem is None, problem
    seen = rec.since(mark)
    markers = [s.marker for s in seen if s.marker]
    assert all(n == 1 for n in Counter(markers).values()), f"a create was sent twice: {markers}"
    assert len(markers) <= 2, f"{len(markers)} create PUTs for one quote"
    mine = [iid for iid, env in every_instance(sim).items() if env.get("VAST_MCP_REQUEST") in set(markers)]
    assert len(mine) == expect, f"expected {expect} instance(s) for the quote, found {mine}"
    data: dict[str, Any] = result.structured_content if isinstance(result.structured_content, dict) else {}
    reported = {int(i["instance_id"]) for i in data.get("instances", [])}
    alive = set(live_instances(sim))
    assert alive <= reported, f"instances {sorted(alive - reported)} exist but the result does not name them"
    if alive:
        said = text_of(result)
        assert "Nothing is billing" not in said and data.get("billing_per_hour", 0) > 0, said
    # a 429 on the create is never retried, hint or not
    assert not any(s.method == "PUT" and s.status == 429 for s in seen) or len(markers) == 1 or expect == 0


@pytest.mark.parametrize("case", list(CASES))
async def test_lost_answer_never_rents_twice_and_is_reported(
    served: tuple[Simulator, Recorder, str], tmp_path: Path, case: str
) -> None:
    sim, rec, url = served
    arm, expect = CASES[case]
    await _confirm_one_quote(sim, rec, url, tmp_path, arm, expect)


async def test_rate_limited_create_is_not_resent(served: tuple[Simulator, Recorder, str], tmp_path: Path) -> None:
    sim, rec, url = served
    async with client_for(url, tmp_path) as client:
        quote = (await client.call_tool("plan_instance", {})).structured_content["quote_id"]  # type: ignore[index]
        mark = rec.mark()
        sim.faults.inject("rate_limit", method="PUT", path=CREATE, retry_after_header=0.1, times=3)
        result = await client.call_tool("create_instance", {"quote_id": quote})
    puts = [s for s in rec.since(mark) if s.method == "PUT" and re.search(CREATE, s.path)]
    assert len(puts) == 1, [p.status for p in puts]
    assert "rate limit" in text_of(result).lower()
    assert live_instances(sim) == {}


async def test_stop_is_verified_only_once_the_container_stopped(tmp_path: Path) -> None:
    """ "Verified stopped" must mean the container stopped (GPU billing ended), not just that the stop
    was accepted (cur_state flips at once). Found by this suite; fixed in readiness._is_stopped."""
    # speed 10: stopping takes 0.5 real seconds, so the first poll sees the container still running
    with recorded_simulator(api_key=KEY, seed=4, speed=10.0) as (sim, _rec, url):
        with sim.state.lock:
            offer = next(o for o in sim.state.offers if o.rentable and o.static["disk_space"] >= 16)
            body = {"image": "ubuntu:22.04", "disk": 16, "label": "stop-me", "runtype": "ssh_direc ssh_proxy"}
            instance_id = sim.state.create_instance(offer.id, body, sim.clock.now()).id
        sim.clock.advance(60)
        async with client_for(url, tmp_path) as client:
            result = await client.call_tool("stop_instance", {"instance_id": instance_id, "timeout_seconds": 5})
    data: dict[str, Any] = result.structured_content if isinstance(result.structured_content, dict) else {}
    assert data.get("reached"), data
    assert data["state"] != "running", f"'verified stopped' while actual_status is running: {data}"
