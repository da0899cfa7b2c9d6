"""Anticipated failures reach the model as isError results that say what to do next, and never
carry the key (issue 4: bad key, rate limited with wait time, instance not found, offer gone)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.core
import pytest
from keyring.backends import null
from mcp import Client
from mcp.types import CallToolResult

from tests.conftest import LEAK_CANARY
from tests.helpers import SIM_KEY, ScriptedUser, data, fast_settings, served_simulator, text_of
from tests.server.rig import Rig, call, leaks, make_home
from vast_mcp.credentials import ApiKey
from vast_mcp.server import create_server

pytestmark = pytest.mark.anyio

INSTANCES = r"^/api/v1/instances/$"
SEARCH = r"^/api/v0/bundles/$"


def _error(result: CallToolResult, *secrets: str) -> str:
    assert result.is_error, text_of(result)
    assert not leaks(result, *secrets), "the key leaked into an error"
    return text_of(result)


@pytest.fixture
def wrong_key_rig(tmp_path: Path) -> Iterator[Rig]:
    """A simulator that knows a different key than the one the server sends (LEAK_CANARY)."""
    with served_simulator(api_key="the-right-key-0000", speed=120.0) as (sim, url):
        yield Rig(sim, url, make_home(tmp_path / "home"))


async def test_bad_key_says_which_source_and_what_to_do(wrong_key_rig: Rig, era: str) -> None:
    rig = wrong_key_rig
    server = create_server(
        fast_settings(rig.url, rig.ssh_dir), api_key=ApiKey(LEAK_CANARY, "file", "file /home/me/keys/.vast_env")
    )
    async with Client(server, mode=era) as client:
        results = {
            name: await client.call_tool(name, args)
            for name, args in [
                ("get_account", {}),
                ("list_instances", {}),
                ("search_offers", {}),
                ("get_billing", {}),
                ("stop_instance", {"instance_id": 31000000}),
            ]
        }
    for name, result in results.items():
        text = _error(result, LEAK_CANARY)
        assert "refused the API key" in text, name
        assert "file /home/me/keys/.vast_env" in text and "…" + LEAK_CANARY[-4:] in text, f"{name}: which key"
        assert "set_api_key_source" in text or "vast-mcp key set" in text, f"{name}: what to do next"
    assert rig.sim.count("GET", INSTANCES) == 1, "an auth failure is not retried"


async def test_no_key_at_all_sends_nothing(rig: Rig, era: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAST_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(rig.home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(rig.home / ".config"))
    previous = keyring.core._keyring_backend
    keyring.set_keyring(null.Keyring())  # type: ignore[no-untyped-call]
    try:
        async with Client(create_server(fast_settings(rig.url, rig.ssh_dir)), mode=era) as client:
            result = await client.call_tool("list_instances", {})
    finally:
        keyring.core._keyring_backend = previous
    text = _error(result)
    assert "No usable Vast API key" in text and "VAST_API_KEY" in text
    assert rig.sim.requests == []


async def test_rate_limited_beyond_the_wait_policy_says_when_to_retry(rig: Rig, era: str) -> None:
    rig.sim.faults.inject("rate_limit", method="GET", path=INSTANCES, retry_after_body=600)
    async with rig.client(era) as client:
        text = _error(await call(client, "list_instances"), SIM_KEY)
    assert "rate limit" in text and "600 s" in text
    assert rig.sim.count("GET", INSTANCES) == 1, "a 10-minute wait is not sat out inside a tool call"


async def test_a_short_rate_limit_is_waited_out(rig: Rig, era: str) -> None:
    rig.sim.faults.inject("rate_limit", method="GET", path=INSTANCES, retry_after_header=0.2)
    async with rig.client(era) as client:
        listed = data(await call(client, "list_instances"))
    assert listed["count"] == 0
    assert rig.sim.count("GET", INSTANCES) == 2


async def test_search_quota_is_not_retried_and_says_when_it_resets(rig: Rig, era: str) -> None:
    rig.sim.faults.inject("search_quota")
    async with rig.client(era) as client:
        text = _error(await call(client, "search_offers"), SIM_KEY)
    assert "quota" in text and re.search(r"resets at \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert rig.sim.count("POST", SEARCH) == 1


ON_A_MISSING_INSTANCE: list[tuple[str, dict[str, Any]]] = [
    ("get_instance", {}),
    ("check_ssh", {"timeout_seconds": 0}),
    ("attach_ssh_key", {}),
    ("label_instance", {"label": "x"}),
    ("stop_instance", {}),
    ("wait_for_instance", {}),
]


async def test_instance_not_found(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    async with rig.client(era, user=ScriptedUser()) as client:
        data(await call(client, "destroy_instance", {"instance_id": instance_id}))
        rig.sim.reset_requests()
        results = {
            name: await call(client, name, {"instance_id": instance_id, **extra})
            for name, extra in ON_A_MISSING_INSTANCE
        }
        again = data(await call(client, "destroy_instance", {"instance_id": instance_id}))
    for name in ("get_instance", "check_ssh", "attach_ssh_key"):
        text = _error(results[name], SIM_KEY)
        assert f"Instance {instance_id} does not exist" in text and "list_instances" in text, name
    for name in ("label_instance", "stop_instance"):
        text = _error(results[name], SIM_KEY)
        assert "list_instances" in text, name
    waited = data(results["wait_for_instance"])
    assert not waited["reached"] and "no longer exists" in waited["detail"]
    assert again["reached"] and again["state"] == "gone", "destroying a destroyed instance is idempotent"
    assert again["detail"].startswith("already gone"), "but it does not claim to have destroyed it now"
    assert rig.sim.count("POST", r"/ssh/$") == 0, "no key was registered for a missing instance"


def _check_and_remove_saved(saved: Path) -> None:
    try:
        assert saved.stat().st_mode & 0o077 == 0, "private temp file"
        assert SIM_KEY not in saved.read_text()
    finally:
        saved.unlink()


async def test_unreadable_answers_are_saved_without_the_key(rig: Rig, era: str) -> None:
    rig.sim.faults.inject("malformed_body", method="GET", path=r"^/api/v0/users/current", times=2)
    async with rig.client(era) as client:
        text = _error(await call(client, "get_account"), SIM_KEY)
    match = re.search(r"saved in (\S+) \(key redacted\)", text)
    assert match, text
    _check_and_remove_saved(Path(match.group(1)))
    assert rig.sim.count("GET", r"^/api/v0/users/current") == 2, "retried once, then given up"


async def test_invalid_arguments_are_tool_errors_naming_the_field(rig: Rig, era: str) -> None:
    async with rig.client(era) as client:
        results = [
            await call(client, "search_offers", {"limit": 500}),
            await call(client, "search_offers", {"gpu_name": "RTX 4090; rm -rf /"}),
            await call(client, "get_instance", {"instance_id": -3}),
            await call(client, "wait_for_instance", {"instance_id": 1, "target": "exploded"}),
        ]
    for result, field in zip(results, ["limit", "gpu_name", "instance_id", "target"], strict=True):
        text = _error(result, SIM_KEY)
        assert field in text and "Invalid arguments" in text and "Nothing was done" in text
        for internal in ("pydantic", "validation error for", "Arguments", "input_value", "type="):
            assert internal not in text, f"validator internals in {text!r}"
    assert "rm -rf" not in text_of(results[1]), "the value given is never echoed (it may be a secret)"
    assert "at most 50" in text_of(results[0]) or "less than or equal to 50" in text_of(results[0])
    assert rig.sim.requests == [], "rejected before anything reached Vast"


async def test_an_unknown_argument_names_the_allowed_ones(rig: Rig, era: str) -> None:
    async with rig.client(era) as client:
        result = await call(client, "get_instance", {"instance_id": 1, "api_key": "sk-live-123456789"})
    text = _error(result, SIM_KEY)
    assert "'api_key' is not an argument of this tool (allowed: instance_id, raw)" in text
    assert "sk-live-123456789" not in text and rig.sim.requests == []
