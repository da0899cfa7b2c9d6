"""The real entry point: `python -m vast_mcp serve` as a subprocess over stdio, configured only
through its environment (as an MCP client launches it), against a served simulator, in both
protocol eras. One spawn per era; a representative call of each kind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import INVALID_PARAMS

from tests.helpers import SIM_KEY, ScriptedUser, data, served_simulator, text_of
from tests.server.rig import ERAS, INITIALIZE, Rig, call, make_home, protocol_error
from tests.server.test_protocol import LOCAL_TOOLS, READ_TOOLS, WRITE_TOOLS
from vast_mcp.cli import _parser
from vast_mcp.serve import settings_from_args
from vast_mcp.settings import Settings

pytestmark = pytest.mark.anyio


def processes_mentioning(marker: str) -> list[int]:
    """PIDs whose command line contains ``marker`` (to prove nothing was left running)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def server_env(rig: Rig) -> dict[str, str]:
    return {
        "VAST_URL": rig.url,
        "VAST_API_KEY": SIM_KEY,
        "VAST_MCP_RATE_LIMIT": "off",
        "VAST_MCP_POLL_INTERVAL": "0.05",
        "HOME": str(rig.home),  # no real keyring, ~/.ssh or vastai key file is read
        "XDG_CONFIG_HOME": str(rig.home / ".config"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "VAST_MCP_STATE_DIR": str(rig.home / ".state"),
    }


@asynccontextmanager
async def stdio_session(rig: Rig, era: str, stderr: Path, **kw: object) -> AsyncIterator[Client]:
    """`python -m vast_mcp --log-level DEBUG serve` with its stderr (the server's log) kept in a file.
    The simulator's URL (a unique port) marks this server's command line."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "vast_mcp", "--log-level", "DEBUG", "serve", "--api-url", rig.url],
        env=server_env(rig),
    )
    try:
        with stderr.open("w") as errlog:
            async with Client(stdio_client(params, errlog=errlog), mode=era, **kw) as client:  # type: ignore[arg-type]
                assert client.protocol_version == ERAS[era]
                yield client
    finally:
        assert processes_mentioning(rig.url) == [], "the server process outlived its client"


@pytest.fixture
def stdio_rig(tmp_path: Path) -> Iterator[Rig]:
    with served_simulator(speed=120.0) as (sim, url):
        yield Rig(sim, url, make_home(tmp_path / "home"))


async def test_stdio_server_in_both_eras(stdio_rig: Rig, era: str) -> None:
    rig = stdio_rig
    kept, doomed = rig.rent(label="kept"), rig.rent(label="doomed", skip=1)
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    user = ScriptedUser()
    log = rig.home / "server.log"
    async with stdio_session(rig, era, log, elicitation_callback=user) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        offers = data(await call(client, "search_offers"))
        account = data(await call(client, "get_account"))
        listed = data(await call(client, "list_instances", {"label": "kept"}))
        attached = data(await call(client, "attach_ssh_key", {"instance_id": kept}))
        ssh = data(await call(client, "check_ssh", {"instance_id": kept, "timeout_seconds": 5}))
        stopped = data(await call(client, "stop_instance", {"instance_id": kept}))
        rig.sim.clock.advance(30)
        started = data(
            await call(
                client, "start_instance", {"instance_id": kept, "timeout_seconds": 30}, progress_callback=on_progress
            )
        )
        destroyed = data(await call(client, "destroy_instance", {"instance_id": doomed}))
        missing = await call(client, "get_instance", {"instance_id": doomed})
        unknown = await protocol_error(client.call_tool("no_such_tool", {}))
        recent = await client.read_resource("vast://requests/recent")

    assert tools == READ_TOOLS | LOCAL_TOOLS | WRITE_TOOLS
    assert offers["offers"] and all(o["gpu"].endswith("RTX 4090") for o in offers["offers"])
    assert account["api_key"] == {"source": "env", "origin": "$VAST_API_KEY", "fingerprint": "…" + SIM_KEY[-4:]}
    assert [i["id"] for i in listed["instances"]] == [kept]
    assert attached["key_source"] == str(rig.ssh_dir / "id_ed25519.pub"), "the default key comes from $HOME/.ssh"
    assert rig.public_key in rig.sim.instance_ssh_keys(kept)
    assert ssh["ready"] and ssh["banner"].startswith("<untrusted>SSH-2.0-")
    assert stopped["reached"] and started["reached"] and rig.status(kept) == "running"
    assert seen, "progress notifications cross the stdio transport"
    assert destroyed["reached"] and rig.instance(doomed) is None
    asked = [q.message.split(" ", 1)[0] for q in user.asked]
    assert asked == ["Give", "Start", "Destroy"], "access, spending and destruction each asked the human once"
    assert missing.is_error and "does not exist" in text_of(missing)
    assert unknown is not None and unknown.code == INVALID_PARAMS
    assert SIM_KEY not in str(recent)
    logged = log.read_text()
    assert "/api/v0/instances/" in logged, "the debug log records the Vast requests"
    assert SIM_KEY not in logged, "the key never appears in a log line"


def test_serve_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAST_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("VAST_MCP_CONFIRM", "auto")
    monkeypatch.delenv("VAST_MCP_READ_ONLY", raising=False)
    parse = _parser().parse_args
    assert settings_from_args(parse(["serve"])) == Settings.from_env()
    flagged = settings_from_args(
        parse(["serve", "--read-only", "--confirm", "elicit", "--api-url", "http://127.0.0.1:2"])
    )
    assert (flagged.read_only, flagged.confirm, flagged.api_url) == (True, "elicit", "http://127.0.0.1:2")
    monkeypatch.setenv("VAST_MCP_READ_ONLY", "1")
    monkeypatch.setenv("VAST_MCP_CONFIRM", "elicit")
    from_env = settings_from_args(parse(["serve"]))
    assert (from_env.read_only, from_env.confirm, from_env.api_url) == (True, "elicit", "http://127.0.0.1:1")


def test_entry_points() -> None:
    module = subprocess.run([sys.executable, "-m", "vast_mcp", "--version"], capture_output=True, text=True, timeout=30)
    assert module.returncode == 0 and module.stdout.startswith("vast-mcp ")
    script = Path(sys.executable).parent / "vast-mcp"
    if not script.exists():
        pytest.skip("no console script in this environment")
    console = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert console.returncode == 0 and console.stdout == module.stdout


def test_ctrl_c_ends_the_stdio_server_promptly_while_its_input_stays_open(rig: Rig) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vast_mcp", "serve"],
        env={"PATH": os.environ.get("PATH", ""), **server_env(rig)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(INITIALIZE) + "\n").encode())
        proc.stdin.flush()
        assert b'"protocolVersion"' in proc.stdout.readline(), "the server answered: it is up and reading stdin"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)  # stdin stays open, as when a user presses Ctrl-C in a terminal
        proc.wait(timeout=10)
        assert time.monotonic() - started < 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
