"""Test helpers shared across layers: SSH keys, a scripted human, a served simulator + MCP server."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.errors
from mcp.client import ClientRequestContext
from mcp.types import CallToolResult, ElicitRequestFormParams, ElicitRequestParams, ElicitResult, TextContent

from vast_mcp.credentials import ApiKey
from vast_mcp.server import create_server
from vast_mcp.settings import Settings
from vast_mcp.simulator import Simulator

SIM_KEY = "sim-key-for-tests-0123"


def make_public_key(key_type: str = "ssh-ed25519", comment: str = "me@laptop") -> str:
    name = key_type.encode()
    blob = struct.pack(">I", len(name)) + name + struct.pack(">I", 32) + b"k" * 32
    return f"{key_type} {base64.b64encode(blob).decode()} {comment}"


def ssh_dir_with_key(root: Path) -> Path:
    ssh = root / ".ssh"
    ssh.mkdir(exist_ok=True)
    (ssh / "id_ed25519.pub").write_text(make_public_key() + "\n")
    return ssh


def fast_settings(url: str, ssh_dir: Path, **overrides: Any) -> Settings:
    """Settings for a simulator running fast: short polls, no pacing."""
    base = Settings(
        api_url=url,
        rate_limit=None,
        poll_interval=0.05,
        ready_timeout=30.0,
        ssh_timeout=5.0,
        ssh_interval=0.1,
        ssh_dir=ssh_dir,
        state_dir=ssh_dir.parent / ".state",
    )
    return replace(base, **overrides)


@dataclass
class ScriptedUser:
    """The human answering elicitation forms: a fixed action, and a record of what was asked."""

    action: str = "accept"
    content: dict[str, Any] | None = field(default_factory=lambda: {"confirm": True})
    asked: list[ElicitRequestFormParams] = field(default_factory=list)

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        assert isinstance(params, ElicitRequestFormParams)
        self.asked.append(params)
        return ElicitResult(action=self.action, content=self.content if self.action == "accept" else None)  # type: ignore[arg-type]


@contextmanager
def served_simulator(**kwargs: Any) -> Iterator[tuple[Simulator, str]]:
    options: dict[str, Any] = {"api_key": SIM_KEY, "seed": 0, "offer_count": 300, "speed": 120.0}
    options.update(kwargs)
    sim = Simulator(**options)
    with sim.serve() as url:
        yield sim, url


def server_for(url: str, ssh_dir: Path, **overrides: Any) -> Any:
    return create_server(fast_settings(url, ssh_dir, **overrides), api_key=ApiKey(SIM_KEY, "env", "$VAST_API_KEY"))


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    if isinstance(result.structured_content, dict):
        return result.structured_content
    return dict(json.loads(text_of(result)))


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An in-memory keyring backend: no test ever touches the real OS keyring."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.store:
            raise keyring.errors.PasswordDeleteError("not found")
        del self.store[(service, username)]


class RecordedSleeps:
    """Records the waits a client asks for instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@contextmanager
def isolated_key_sources(monkeypatch: Any, home: Path) -> Iterator[MemoryKeyring]:
    """A fake HOME/XDG, no key in the environment and an in-memory keyring (restored after)."""
    import keyring.core

    monkeypatch.delenv("VAST_API_KEY", raising=False)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    previous = keyring.core._keyring_backend  # may be None (not detected yet); never trigger detection
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    try:
        yield memory
    finally:
        keyring.core._keyring_backend = previous
