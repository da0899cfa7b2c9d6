"""Streamable HTTP at /mcp (DESIGN §3): `vast-mcp serve --transport http` as a subprocess on
loopback, the Origin allow-list, and the bearer token that is always required (given, or
generated into the state directory). Every server started here is stopped (terminate, then kill)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.helpers import SIM_KEY, data, served_simulator
from tests.server.rig import ERAS, INITIALIZE, Rig, call, make_home
from tests.server.test_stdio import server_env

pytestmark = pytest.mark.anyio

TOKEN = "tok-" + "7" * 28
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


@dataclass
class Served:
    base: str
    token: str
    stderr: str  # what the server printed while starting


@contextmanager
def http_server(rig: Rig, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """`vast-mcp serve --transport http` as a real process; its token is the one it was given or,
    without one, the one it generated into its state directory."""
    port = free_port()
    full_env = {"PATH": os.environ.get("PATH", ""), **server_env(rig), **(env or {})}
    proc = subprocess.Popen(
        [*_script(), "serve", "--transport", "http", "--port", str(port), *args],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            if proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
            if time.monotonic() > deadline:
                raise AssertionError("server did not listen within 30 s")
            time.sleep(0.05)
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        generated = Path(full_env["VAST_MCP_STATE_DIR"]) / "http-token"
        token = TOKEN if "--auth-token-env" in args or "--auth-token-file" in args else generated.read_text().strip()
        yield Served(f"http://127.0.0.1:{port}", token, banner)
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
    """A raw JSON-RPC initialize, as a browser page, a curl user or another local process would send it."""
    return raw.post(f"{base}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})


def _authed(token: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def test_loopback_http_needs_the_generated_token_in_both_eras(http_rig: Rig, raw: httpx.Client) -> None:
    rig = http_rig
    with http_server(rig) as served:
        base, token = served.base, served.token
        for era, version in ERAS.items():
            async with (
                _authed(token) as http,
                Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era) as client,
            ):
                assert client.protocol_version == version
                names = {t.name for t in (await client.list_tools()).tools}
                offers = data(await call(client, "search_offers", {"limit": 3}))
            assert "destroy_instance" in names
            assert len(offers["offers"]) == 3
        with pytest.raises(ExceptionGroup) as refused:  # another local process without the token
            async with Client(f"{base}/mcp") as intruder:
                await intruder.list_tools()
        without = _post(raw, base, {})
        authed = {"Authorization": f"Bearer {token}"}
        foreign = _post(raw, base, {**authed, "Origin": "http://evil.example"})
        lookalike = _post(raw, base, {**authed, "Origin": f"{base}.evil.example"})
        own = _post(raw, base, {**authed, "Origin": base})
        no_origin = _post(raw, base, authed)
    assert refused.group_contains(MCPError)
    assert without.status_code == 401, "loopback is not trusted: no token, no access"
    assert foreign.status_code == 403 and lookalike.status_code == 403
    assert own.status_code == 200 and no_origin.status_code == 200, "the rule rejects foreign origins only"
    token_file = rig.home / ".state" / "http-token"
    assert str(token_file) in served.stderr and token not in served.stderr, "it says where the token is, not what"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(token) >= 32


async def test_the_generated_token_is_kept_across_restarts_and_an_open_file_is_refused(http_rig: Rig) -> None:
    with http_server(http_rig) as first:
        pass
    with http_server(http_rig) as second:
        pass
    assert first.token == second.token, "client configurations keep working after a restart"
    token_file = http_rig.home / ".state" / "http-token"
    token_file.chmod(0o644)
    env = {"PATH": os.environ.get("PATH", ""), **server_env(http_rig)}
    port = free_port()
    refused = _refused([*_script(), "serve", "--transport", "http", "--port", str(port)], env, port)
    assert refused.returncode == 2 and "chmod 600" in refused.stderr
    assert first.token not in refused.stderr


async def test_bearer_token_from_env_or_file(http_rig: Rig, raw: httpx.Client, tmp_path: Path) -> None:
    rig = http_rig
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    for args, env in (
        (("--auth-token-env", "VAST_MCP_TEST_TOKEN"), {"VAST_MCP_TEST_TOKEN": TOKEN}),
        (("--auth-token-file", str(token_file)), {}),
    ):
        with http_server(rig, *args, env=env) as served:
            base = served.base
            missing = _post(raw, base, {})
            wrong = _post(raw, base, {"Authorization": "Bearer not-the-token"})
            bare = _post(raw, base, {"Authorization": TOKEN})
            right = _post(raw, base, {"Authorization": f"Bearer {TOKEN}"})
            lower = _post(raw, base, {"Authorization": f"bearer {TOKEN}"})
            basic = _post(raw, base, {"Authorization": f"Basic {TOKEN}"})
            right_but_foreign = _post(raw, base, {"Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"})
            async with (
                _authed(TOKEN) as http,
                Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
            ):
                account = data(await call(client, "get_account"))
        assert missing.status_code == wrong.status_code == bare.status_code == 401
        assert missing.headers.get("www-authenticate") == "Bearer"
        assert right.status_code == lower.status_code == 200 and basic.status_code == 401
        assert right_but_foreign.status_code == 403
        assert account["api_key"]["fingerprint"] == "…" + SIM_KEY[-4:]
        assert TOKEN not in missing.text + wrong.text + served.stderr
        assert not (rig.home / ".state" / "http-token").exists(), "a given token generates nothing"


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


def test_a_bad_token_source_or_vast_url_refuses_before_listening(http_rig: Rig, tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), **server_env(http_rig)}
    port = free_port()
    serve = [*_script(), "serve", "--transport", "http", "--port", str(port)]
    empty_token = _refused([*serve, "--auth-token-env", "UNSET_TOKEN_VAR"], env, port)
    assert empty_token.returncode == 2 and "UNSET_TOKEN_VAR" in empty_token.stderr
    short = tmp_path / "short"
    short.write_text("abc")
    too_short = _refused([*serve, "--auth-token-file", str(short)], env, port)
    assert too_short.returncode == 2 and "at least 16" in too_short.stderr
    missing = _refused([*serve, "--auth-token-file", str(tmp_path / "nope")], env, port)
    assert missing.returncode == 2 and "cannot read the token file" in missing.stderr
    cleartext = _refused(serve, {**env, "VAST_URL": "http://vast.test"}, port)
    assert cleartext.returncode == 2 and "clear text" in cleartext.stderr
