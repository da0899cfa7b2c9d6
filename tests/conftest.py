"""Shared fixtures: anyio on asyncio, and a recognisable fake key that tests hunt for."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real state directory (deadlines, the HTTP token)."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("VAST_MCP_STATE_DIR", str(path))
    return path


# A key no real account has; every leak assertion greps for it (and its URL-encoded form).
LEAK_CANARY = "vk-CANARY+leak/0123456789abcdef"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home directory (tests point HOME at it, never at the real one)."""
    path = tmp_path / "home"
    path.mkdir()
    return path
