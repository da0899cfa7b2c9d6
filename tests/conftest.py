"""Shared fixtures: anyio on asyncio, no way to the real Vast, and a recognisable fake key that tests hunt for."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Where a test's Vast requests go when it names no simulator: a closed loopback port.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real state directory (deadlines, the HTTP token)."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("VAST_MCP_STATE_DIR", str(path))
    return path


def host_name(host: object) -> str:
    return (host.decode() if isinstance(host, bytes) else str(host or "")).rstrip(".").lower()


@pytest.fixture(autouse=True)
def vast_unreachable(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """No test can reach the real Vast. A child process that inherits the environment talks to a
    closed loopback port unless the test names a simulator; in this process, resolving any name
    under vast.ai fails, and the test fails at teardown even if the code under test swallowed the
    error. Yields the names that were tried (a test of this guard clears it)."""
    monkeypatch.setenv("VAST_URL", NOWHERE)
    tried: list[str] = []
    resolve = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host_name(host)
        if name == "vast.ai" or name.endswith(".vast.ai"):
            tried.append(name)
            raise socket.gaierror(socket.EAI_NONAME, "tests never reach the real Vast")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield tried
    assert not tried, f"a test tried to reach the real Vast: {tried}"


# A key no real account has; every leak assertion greps for it (and its URL-encoded form).
LEAK_CANARY = "vk-CANARY+leak/0123456789abcdef"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home directory (tests point HOME at it, never at the real one)."""
    path = tmp_path / "home"
    path.mkdir()
    return path
