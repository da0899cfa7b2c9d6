"""Shared fixtures: anyio on asyncio, and a recognisable fake key that tests hunt for."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# A key no real account has; every leak assertion greps for it (and its URL-encoded form).
LEAK_CANARY = "vk-CANARY+leak/0123456789abcdef"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home directory (tests point HOME at it, never at the real one)."""
    path = tmp_path / "home"
    path.mkdir()
    return path
