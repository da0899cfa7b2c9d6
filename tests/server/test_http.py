"""Streamable HTTP at /mcp (DESIGN §3): `vast-mcp serve --transport http` as a subprocess on
loopback, the Origin allow-list, the bearer token, and the refusal to bind a non-loopback
address without a token. Every server started here is stopped (terminate, then kill)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.helpers import SIM_KEY, data, served_simulator
from tests.server.rig import ERAS, Rig, call, make_home
from tests.server.test_stdio import server_env

pytestmark = pytest.mark.anyio

TOKEN = "tok-" + "7" * 28
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"},
    },
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def _script() -> list[str]:
    """The console script when installed (what users run), else the module."""
    script = Path(sys.executable).parent / "vast-mcp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vast_mcp"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@contextmanager
def http_server(rig: Rig, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [*_script(), "serve", "--transport", "http", "--port", str(port), *args],
        env={"PATH": os.environ.get("PATH", ""), **server_env(rig), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            if proc.poll() is not None:
                raise AssertionError(
                    f"server exited {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            if time.monotonic() > deadline:
                raise AssertionError("server did not listen within 30 s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()
    assert not _listening(port), "the server is still listening"


@pytest.fixture
def http_rig(tmp_path: Path) -> Iterator[Rig]:
    with served_simulator(speed=120.0) as (sim, url):
        yield Rig(sim, url, make_home(tmp_path / "home"))


@pytest.fixture(scope="module")
def raw() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, trust_env=False) as client:  # one client: its TLS set-up is paid once
        yield client


def _post(raw: httpx.Client, base: str, headers: dict[str, str]) -> httpx.Response:
    """A raw JSON-RPC initialize, as a browser page or a curl user would send it."""
    return raw.post(f"{base}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})


async def test_loopback_http_in_both_eras_and_the_origin_rule(http_rig: Rig, raw: httpx.Client) -> None:
    rig = http_rig
    with http_server(rig) as base:
        for era, version in ERAS.items():
            async with Client(f"{base}/mcp", mode=era) as client:
                assert client.protocol_version == version
                names = {t.name for t in (await client.list_tools()).tools}
                offers = data(await call(client, "search_offers", {"limit": 3}))
            assert "destroy_instance" in names and len(names) == 16
            assert len(offers["offers"]) == 3
        foreign = _post(raw, base, {"Origin": "http://evil.example"})
        lookalike = _post(raw, base, {"Origin": f"{base}.evil.example"})
        own = _post(raw, base, {"Origin": base})
        without = _post(raw, base, {})
    assert foreign.status_code == 403 and lookalike.status_code == 403
    assert own.status_code == 200 and without.status_code == 200, "the rule rejects foreign origins only"
    assert "protocolVersion" in own.text


async def test_bearer_token_is_required_when_configured(http_rig: Rig, raw: httpx.Client) -> None:
    rig = http_rig
    with http_server(rig, "--auth-token-env", "VAST_MCP_TEST_TOKEN", env={"VAST_MCP_TEST_TOKEN": TOKEN}) as base:
        missing = _post(raw, base, {})
        wrong = _post(raw, base, {"Authorization": "Bearer not-the-token"})
        bare = _post(raw, base, {"Authorization": TOKEN})
        right = _post(raw, base, {"Authorization": f"Bearer {TOKEN}"})
        lower = _post(raw, base, {"Authorization": f"bearer {TOKEN}"})
        basic = _post(raw, base, {"Authorization": f"Basic {TOKEN}"})
        right_but_foreign = _post(raw, base, {"Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"})
        authed = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        async with authed, Client(streamable_http_client(f"{base}/mcp", http_client=authed)) as client:
            account = data(await call(client, "get_account"))
        with pytest.raises(ExceptionGroup) as refused:  # the SDK client without the token
            async with Client(f"{base}/mcp") as unauthenticated:
                await unauthenticated.list_tools()
    assert refused.group_contains(MCPError)
    assert missing.status_code == wrong.status_code == bare.status_code == 401
    assert missing.headers.get("www-authenticate") == "Bearer"
    assert right.status_code == lower.status_code == 200 and basic.status_code == 401
    assert right_but_foreign.status_code == 403
    assert account["api_key"]["fingerprint"] == "…" + SIM_KEY[-4:]
    assert TOKEN not in missing.text + wrong.text


def _refused(cmd: list[str], env: dict[str, str], port: int) -> subprocess.CompletedProcess[str]:
    """Run a server that must refuse to start; kill it (and fail) if it listens instead."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while proc.poll() is None:
            assert not _listening(port), "it bound the port instead of refusing"
            assert time.monotonic() < deadline, "it neither refused nor listened"
            time.sleep(0.05)
        out, err = proc.communicate(timeout=5)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def test_non_loopback_bind_without_a_token_refuses_before_listening(http_rig: Rig) -> None:
    env = {"PATH": os.environ.get("PATH", ""), **server_env(http_rig)}
    port = free_port()
    serve = [*_script(), "serve", "--transport", "http", "--port", str(port)]
    no_token = _refused([*serve, "--host", "0.0.0.0"], env, port)
    assert no_token.returncode != 0
    assert "needs a bearer token" in no_token.stderr and "--auth-token-env" in no_token.stderr
    empty_token = _refused([*serve, "--auth-token-env", "UNSET_TOKEN_VAR"], env, port)
    assert empty_token.returncode != 0 and "UNSET_TOKEN_VAR" in empty_token.stderr
