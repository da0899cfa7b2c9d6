"""The guard in tests/conftest.py: no test, and no process a test starts, can reach the real Vast."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.conftest import NOWHERE
from vast_mcp.settings import DEFAULT_API_URL


@pytest.mark.anyio
async def test_a_request_to_the_real_vast_fails_here_and_is_caught(vast_unreachable: list[str]) -> None:
    async with httpx.AsyncClient() as plain:
        with pytest.raises(httpx.ConnectError):
            await plain.get(f"{DEFAULT_API_URL}/api/v0/users/current/")
    assert vast_unreachable == ["console.vast.ai"]
    vast_unreachable.clear()  # seen; the guard's own teardown check would fail this test otherwise


def test_a_child_that_inherits_the_environment_talks_to_a_closed_loopback_port() -> None:
    script = "from vast_mcp.settings import Settings; print(Settings.from_env().api_url)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == NOWHERE != DEFAULT_API_URL
