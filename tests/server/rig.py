"""The rig for wire-level tests: a served simulator, a home with an SSH key,
instances made cheaply (a direct create on the simulator), and MCP clients in either era."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import anyio
from mcp import Client
from mcp.client.session import ElicitationFnT
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from tests.helpers import SIM_KEY, make_public_key, server_for, text_of
from vast_mcp.simulator import Simulator

# The two protocol eras SDK 2.3 speaks: Client(mode=...) -> negotiated version.
ERAS = {"auto": "2026-07-28", "legacy": "2025-11-25"}
GPU = "RTX 4090"
# A raw JSON-RPC initialize, as a curl user, a browser page or another local process sends it.
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


@dataclass
class Rig:
    sim: Simulator
    url: str
    home: Path

    @property
    def ssh_dir(self) -> Path:
        return self.home / ".ssh"

    @property
    def public_key(self) -> str:
        return (self.ssh_dir / "id_ed25519.pub").read_text().strip()

    def offer_id(self, *, skip: int = 0) -> int:
        """A rentable, verified RTX 4090 with open ports (direct SSH), straight from the inventory."""
        found = [
            o.id
            for o in self.sim.state.offers
            if o.rentable
            and o.static["gpu_name"] == GPU
            and o.static["direct_port_count"] > 0
            and o.static["disk_space"] >= 64
        ]
        return found[skip]

    def rent(self, *, label: str = "wire-test", running: bool = True, skip: int = 0) -> int:
        """Create an instance with a direct PUT to the simulator (the cheap way; create_instance is
        covered by the provisioning tests) and, by default, move the clock until it runs."""
        body = {"image": "pytorch/pytorch:latest", "disk": 64, "label": label, "runtype": "ssh_direc ssh_proxy"}
        address = urlsplit(self.url)
        conn = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
        try:  # plain http.client: no TLS context built per call (httpx's costs ~0.1 s)
            conn.request(
                "PUT",
                f"/api/v0/asks/{self.offer_id(skip=skip)}/",
                body=json.dumps(body),
                headers={"Authorization": f"Bearer {SIM_KEY}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            assert response.status == 200, response.read()
            instance_id = int(json.loads(response.read())["new_contract"])
        finally:
            conn.close()
        if running:
            self.sim.clock.advance(60)
            assert self.status(instance_id) == "running"
        return instance_id

    def instance(self, instance_id: int) -> dict[str, Any] | None:
        """What the simulator itself says about an instance (None once destroyed)."""
        for inst in self.sim.summary()["instances"]:
            if inst["id"] == instance_id:
                return dict(inst)
        return None

    def status(self, instance_id: int) -> str | None:
        inst = self.instance(instance_id)
        return None if inst is None else str(inst["actual_status"])

    def account_keys(self) -> list[str]:
        return [k["public_key"] for k in self.sim.state.account.ssh_keys]

    @asynccontextmanager
    async def client(
        self, era: str = "auto", *, user: ElicitationFnT | None = None, **settings: Any
    ) -> AsyncIterator[Client]:
        server = server_for(self.url, self.ssh_dir, **settings)
        async with Client(server, mode=era, elicitation_callback=user) as client:
            assert client.protocol_version == ERAS[era]
            yield client


def make_home(root: Path) -> Path:
    ssh = root / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    (ssh / "id_ed25519.pub").write_text(make_public_key(comment="wire@test") + "\n")
    return root


def leaks(result: CallToolResult, *secrets: str) -> list[str]:
    """Which secrets (or their URL-encoded forms) appear anywhere in a tool result."""
    blob = result.model_dump_json(by_alias=True)
    text = json.dumps(blob)  # also catch JSON-escaped forms
    found = []
    for secret in secrets:
        forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
        if any(form in blob or form in text for form in forms):
            found.append(secret)
    return found


async def call(client: Client, name: str, args: dict[str, Any] | None = None, **kw: Any) -> CallToolResult:
    """Call a tool and check the key shows nowhere in what came back."""
    result = await client.call_tool(name, args or {}, **kw)
    assert not leaks(result, SIM_KEY), f"{name} leaked the API key"
    return result


CONFIRM_TOKEN = re.compile(r'confirm_token="(ct-[A-Za-z0-9_\-]+)"')


def confirm_token_of(result: CallToolResult) -> str:
    """The confirm token a gated tool hands a client without forms (its first call did nothing)."""
    assert result.is_error, "a gated call without a yes must not succeed"
    found = CONFIRM_TOKEN.search(text_of(result))
    assert found, text_of(result)
    return found.group(1)


async def confirmed(client: Client, name: str, args: dict[str, Any], **kw: Any) -> CallToolResult:
    """The two-step consent of a client without forms: ask, (the human says yes), call with the token."""
    first = await call(client, name, args, **kw)
    return await call(client, name, {**args, "confirm_token": confirm_token_of(first)}, **kw)


async def ticking(rig: Rig, *, seconds: float, every: float = 0.05, after: float = 0.0) -> None:
    """Advance the simulated clock by ``seconds`` every ``every`` real seconds (run in a task group)."""
    await anyio.sleep(after)
    while True:
        rig.sim.clock.advance(seconds)
        await anyio.sleep(every)


async def protocol_error(request: Awaitable[object]) -> MCPError | None:
    """The JSON-RPC error a request ended with, or None. Asserting outside the client's ``async with``
    keeps a failure readable (inside, it would surface wrapped in an exception group)."""
    try:
        await request
    except MCPError as exc:
        return exc
    return None
