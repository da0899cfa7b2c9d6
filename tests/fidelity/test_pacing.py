"""The paced client completes the whole dialog-first workflow inside Vast's real budget.

The real 429 (bundles-429-nikitatsym.json) shows about 5 requests per 10 s for the
whole account. The simulator enforces exactly that here; the server runs with its
DEFAULT pacing (one shared token bucket) and a poll interval of a few seconds. The
workflow -- plan, confirmed create, wait for running and SSH, destroy, verify gone --
must finish without drawing a single 429.

The served simulator forgives requests that arrive up to ``RateLimiter.JITTER`` (50 ms)
before their token is due; nothing says real Vast does. So the in-process tests below
run the same client budget against an *exact* server bucket on one fake clock, with
chosen network latencies: they are what pins the client's own margin
(``RateBudget.MARGIN``, b50f5e8), which the end-to-end run would no longer notice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from mcp import Client

import vast_mcp.simulator.core as simulator_core
from tests.helpers import SIM_KEY, ScriptedUser, data, served_simulator, server_for, ssh_dir_with_key
from vast_mcp.credentials import ApiKey
from vast_mcp.settings import Settings
from vast_mcp.simulator import Simulator
from vast_mcp.simulator.wire import Request
from vast_mcp.vast import RateBudget, VastClient, VastHttp

pytestmark = pytest.mark.anyio

REAL_BUDGET = (5, 10.0)  # requests per seconds, from the recorded 429 (limit 5.0, retry_after 10)


async def test_paced_workflow_completes_with_zero_429s(tmp_path: Path) -> None:
    default_pacing = Settings().rate_limit
    assert default_pacing == REAL_BUDGET  # the server's own default, not a test value
    # speed 60: created -> running (30 simulated s) in half a real second, so within a poll or two.
    with served_simulator(rate_limit=REAL_BUDGET, speed=60.0) as (sim, url):
        server = server_for(url, ssh_dir_with_key(tmp_path), rate_limit=default_pacing, poll_interval=3.0)
        user = ScriptedUser()
        started = time.monotonic()
        async with Client(server, elicitation_callback=user) as client:
            planned = data(await client.call_tool("plan_instance", {}))
            assert planned["quote_id"], planned
            created = data(await client.call_tool("create_instance", {"quote_id": planned["quote_id"]}))
            assert created["ok"], created
            [instance] = created["instances"]
            assert instance["state"] == "running" and instance["ssh_ready"], instance
            destroyed = data(await client.call_tool("destroy_instance", {"instance_id": instance["instance_id"]}))
            assert destroyed["reached"] and destroyed["state"] == "gone", destroyed
        elapsed = time.monotonic() - started

        requests = sim.requests  # read before anything else talks to the simulator
        with sim.state.lock:
            left = dict(sim.state.instances)
    statuses = [r.status for r in requests]
    assert None not in statuses  # nothing dropped
    assert left == {}  # destroyed, verified gone
    assert len(user.asked) == 2  # the create and the destroy were both confirmed by the human
    # The budget really was exercised: more requests than one burst, spread at the refill rate.
    burst, period = REAL_BUDGET
    assert len(requests) > burst, [f"{r.method} {r.path}" for r in requests]
    assert elapsed >= (len(requests) - burst) * period / burst * 0.9
    limited = [f"{r.method} {r.path}" for r in requests if r.status == 429]
    assert limited == [], f"the paced workflow drew {len(limited)} 429(s): {limited}"


# -- the same budgets, in-process on one fake clock: why a 429 can still slip through ---------------


class InProcess:
    """The simulator's request pipeline as an httpx transport, on a fake clock.

    Each request reaches the simulator ``latency`` seconds after the client sent it,
    like a network would; the client's budget and the simulator's bucket both read
    the same fake clock, so the outcome is deterministic.
    """

    def __init__(self, sim: Simulator, latencies: Iterator[float]) -> None:
        self.sim = sim
        self.latencies = latencies
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # A real sleep always takes some time; an exact fake one can stall a float clock at 1e-14 s steps.
        self.now += max(seconds, 1e-6)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.now += next(self.latencies)
        raw = request.content
        try:
            body, is_json = (json.loads(raw) if raw else None), True
        except ValueError:
            body, is_json = raw.decode("utf-8", "replace"), False
        values = {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.url.params),
            "body": body,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "base_url": "http://127.0.0.1:9",
            "raw_body": raw,
            "body_is_json": is_json,
        }
        known = {f.name for f in fields(Request)}  # the simulator's Request is still evolving
        answer = self.sim.handle(Request(**{k: v for k, v in values.items() if k in known}))
        headers = dict(answer.headers)
        if answer.content_type:
            headers["content-type"] = answer.content_type
        return httpx.Response(answer.status, headers=headers, content=answer.body)


def first_then(first: float, rest: float) -> Iterator[float]:
    yield first
    while True:
        yield rest


async def paced_burst(monkeypatch: pytest.MonkeyPatch, latencies: Iterator[float], requests: int = 9) -> list[int]:
    # An exact server bucket: the simulator forgives requests up to RateLimiter.JITTER early, but
    # nothing says real Vast does, so the client's own margin must be what keeps it clear.
    monkeypatch.setattr(simulator_core.RateLimiter, "JITTER", 0.0)
    sim = Simulator(api_key=SIM_KEY, seed=0, offer_count=20, rate_limit=REAL_BUDGET)
    wire = InProcess(sim, latencies)
    # the simulator's bucket reads time.monotonic() in its own module: point it at the fake clock
    monkeypatch.setattr(simulator_core, "time", SimpleNamespace(monotonic=wire.monotonic, time=time.time))
    http = VastHttp(
        ApiKey(SIM_KEY, "env", "$VAST_API_KEY"),
        "http://127.0.0.1:9",
        transport=httpx.MockTransport(wire.handler),
        sleep=wire.sleep,
        budget=RateBudget(*Settings().rate_limit, clock=wire.monotonic),  # type: ignore[misc]
    )
    async with VastClient(http) as vast:
        for _ in range(requests):
            assert await vast.ssh.list_keys() == []
    return [r.status for r in sim.requests if r.status is not None]


async def test_default_budget_stays_clear_of_the_server_bucket_at_steady_latency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    statuses = await paced_burst(monkeypatch, first_then(0.005, 0.005))
    assert statuses == [200] * 9


async def test_default_budget_stays_clear_of_the_server_bucket_when_latency_drops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first request pays for the connection; later ones reach the server sooner after sending.

    Regression test for b50f5e8 (RateBudget.MARGIN): with the budget exactly the server's, the
    server's bucket was a fraction of a token short at the first paced request and answered 429
    (the paced-workflow test below drew one on most runs).
    """
    statuses = await paced_burst(monkeypatch, first_then(0.100, 0.001))  # 99 ms less than the first
    assert statuses == [200] * 9


async def test_without_a_margin_the_same_jitter_draws_a_429(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scenario above has teeth: a budget exactly the server's is tipped over by 9 ms."""
    monkeypatch.setattr(RateBudget, "MARGIN", 1.0)
    statuses = await paced_burst(monkeypatch, first_then(0.010, 0.001))
    assert 429 in statuses
    assert statuses[-1] == 200  # and the client still waited it out
