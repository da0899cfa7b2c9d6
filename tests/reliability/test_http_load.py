"""Streamable HTTP under load: `vast-mcp serve --transport http --auth-token-env ...` as a real
subprocess against a served simulator.

* 50 concurrent MCP clients (both protocol eras) each call search_offers and list_instances and
  get correct answers;
* at the same time, requests without the token, with a wrong token, and with a foreign Origin
  (with or without the token) are refused with 401/403 every single time, and none of them
  reaches Vast;
* a client that disconnects in the middle of a long wait_for_instance does not stop the server
  from serving the next calls.

The server runs in its own session and is stopped in a finally (terminate, then kill) by its id.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.helpers import ssh_dir_with_key
from tests.reliability.support import (
    Recorder,
    children_of,
    find_secret,
    free_port,
    listening,
    recorded_simulator,
    result_problem,
    server_env,
    stop_process,
    wait_listening,
)
from vast_mcp.simulator import Simulator

pytestmark = pytest.mark.anyio

KEY = "vk-http-load+/0123456789"
TOKEN = "tok-load-" + "9" * 24
CLIENTS = 50
REFUSALS_PER_KIND = 25
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
CALL = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "intruder", "version": "0"}},
}


@contextmanager
def http_server(url: str, home: Path, logs: Path) -> Iterator[str]:
    port = free_port()
    script = Path(sys.executable).parent / "vast-mcp"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "vast_mcp"]
    env = server_env(url, home, KEY, VAST_MCP_LOAD_TOKEN=TOKEN)
    with (logs / "server-stdout.txt").open("wb") as out, (logs / "server-stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            [*command, "serve", "--transport", "http", "--port", str(port), "--auth-token-env", "VAST_MCP_LOAD_TOKEN"],
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group: stopped by its id, with anything it spawned
        )
        try:
            wait_listening(proc, port)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(proc, group=True)
    assert not listening(port), "the server still listens after being stopped"
    assert not children_of(proc.pid), "the server left processes behind"


def _rent(sim: Simulator, label: str) -> int:
    with sim.state.lock:
        offer = next(o for o in sim.state.offers if o.rentable and o.static["disk_space"] >= 16)
        body = {"image": "ubuntu:22.04", "disk": 16, "label": label, "runtype": "ssh_direc ssh_proxy"}
        inst = sim.state.create_instance(offer.id, body, sim.clock.now())
    sim.clock.advance(60)
    return inst.id


async def _one_client(base: str, number: int, expected_instances: int, results: Counter[str]) -> None:
    mode = "legacy" if number % 2 else "auto"
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as client:
        offers = await client.call_tool("search_offers", {"limit": 3})
        listed = await client.call_tool("list_instances", {})
    for name, result in (("search_offers", offers), ("list_instances", listed)):
        problem = result_problem(name, result)
        assert problem is None and not result.is_error, f"client {number}: {problem or result}"
        assert find_secret(result.model_dump_json(by_alias=True), KEY) is None, f"client {number}: {name} shows the key"
    assert isinstance(offers.structured_content, dict) and len(offers.structured_content["offers"]) == 3
    assert isinstance(listed.structured_content, dict) and listed.structured_content["count"] == expected_instances
    results[mode] += 1


async def _intruders(base: str, statuses: Counter[str]) -> None:
    kinds: dict[str, dict[str, str]] = {
        "no token": {},
        "wrong token": {"Authorization": "Bearer tok-guess-0000"},
        "token without Bearer": {"Authorization": TOKEN},
        "foreign Origin": {"Origin": "http://evil.example"},
        "foreign Origin with the token": {"Origin": "http://evil.example", "Authorization": f"Bearer {TOKEN}"},
        "lookalike Origin with the token": {
            "Origin": f"{base}.evil.example",
            "Authorization": f"Bearer {TOKEN}",
        },
        "null Origin with the token": {"Origin": "null", "Authorization": f"Bearer {TOKEN}"},
    }
    async with httpx.AsyncClient(timeout=10) as http:

        async def hit(kind: str, headers: dict[str, str]) -> None:
            response = await http.post(f"{base}/mcp", json=CALL, headers={**MCP_HEADERS, **headers})
            statuses[f"{kind} -> {response.status_code}"] += 1

        async with anyio.create_task_group() as tg:
            for _ in range(REFUSALS_PER_KIND):
                for kind, headers in kinds.items():
                    tg.start_soon(hit, kind, headers)
                await anyio.sleep(0.01)


async def test_fifty_clients_the_token_and_origin_rules_and_a_disconnect(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    ssh_dir_with_key(home)
    with recorded_simulator(api_key=KEY, seed=21, offer_count=150, speed=120.0) as (sim, rec, url):
        instance_id = _rent(sim, "load-target")
        with http_server(url, home, tmp_path) as base:
            started = time.monotonic()
            done: Counter[str] = Counter()
            refused: Counter[str] = Counter()
            with anyio.fail_after(90):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_intruders, base, refused)
                    for number in range(CLIENTS):
                        tg.start_soon(_one_client, base, number, 1, done)
            load_s = time.monotonic() - started
            polls_after, served_after = await _disconnect_mid_wait(base, rec, instance_id)
    ok_kinds = {k for k in refused if not k.endswith((" -> 401", " -> 403"))}
    summary = (
        f"http load: {sum(done.values())}/{CLIENTS} clients ({dict(done)}) in {load_s:.1f}s; "
        f"refusals {dict(sorted(refused.items()))}; after a mid-call disconnect the server answered "
        f"{served_after} calls; the abandoned wait polled Vast {polls_after} more times"
    )
    print("\n" + summary)
    assert sum(done.values()) == CLIENTS, summary
    assert not ok_kinds, f"requests that should be refused were not: {ok_kinds}\n{summary}"
    assert sum(refused.values()) == REFUSALS_PER_KIND * 7, summary
    for kind in ("no token", "wrong token", "token without Bearer"):
        assert refused[f"{kind} -> 401"] == REFUSALS_PER_KIND, summary
    assert not any(s.method == "DELETE" for s in rec.seen), "a refused request reached Vast"
    assert served_after == 3, summary


async def _disconnect_mid_wait(base: str, rec: Recorder, instance_id: int) -> tuple[int, int]:
    """Start a long wait, drop the client mid-call, then check the server still serves."""
    path = f"/api/v0/instances/{instance_id}/"
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    with anyio.move_on_after(1.5):  # the client gives up and disconnects mid-call
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            await client.call_tool(
                "wait_for_instance", {"instance_id": instance_id, "target": "stopped", "timeout_seconds": 60}
            )
    polling = sum(1 for s in rec.seen if s.path == path)
    assert polling > 0, "the wait never polled: the disconnect did not happen mid-call"
    served = 0
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    with anyio.fail_after(20):
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode="legacy") as client:
            for name, args in (
                ("get_account", {}),
                ("list_instances", {}),
                ("get_instance", {"instance_id": instance_id}),
            ):
                result = await client.call_tool(name, args)
                assert not result.is_error, result
                served += 1
    await anyio.sleep(1.0)
    mark = rec.mark()
    await anyio.sleep(1.0)
    polls_after = sum(1 for s in rec.since(mark) if s.path == path)
    return polls_after, served
