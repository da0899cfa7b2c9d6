"""What any MCP client sees of the tool surface: the tools/list snapshot, strict schemas, explicit
annotations, -32602 for unknown tools, and --read-only (DESIGN §4, issue 4).

Regenerate the snapshot after a deliberate change with ``UPDATE_SNAPSHOTS=1 uv run pytest
tests/server/test_protocol.py`` and review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import INVALID_PARAMS

from tests.helpers import text_of
from tests.server.rig import Rig, call, protocol_error
from vast_mcp.server import create_server
from vast_mcp.settings import Settings

pytestmark = pytest.mark.anyio

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools_list.json"
READ_TOOLS = {
    "search_offers",
    "list_instances",
    "get_instance",
    "get_account",
    "get_billing",
    "plan_instance",
    "check_ssh",
    "wait_for_instance",
    "get_instance_logs",
    "audit_spend",
}
LOCAL_TOOLS = {"set_api_key_source"}
WRITE_TOOLS = {
    "create_instance",
    "attach_ssh_key",
    "start_instance",
    "stop_instance",
    "reboot_instance",
    "destroy_instance",
    "label_instance",
    "set_deadline",
}
DESTRUCTIVE = {"create_instance", "destroy_instance"}
# The smallest valid arguments for each tool, to show unknown arguments are what gets refused.
MINIMAL_ARGS: dict[str, dict[str, Any]] = {
    "get_instance": {"instance_id": 1},
    "wait_for_instance": {"instance_id": 1},
    "check_ssh": {"instance_id": 1},
    "attach_ssh_key": {"instance_id": 1},
    "start_instance": {"instance_id": 1},
    "stop_instance": {"instance_id": 1},
    "reboot_instance": {"instance_id": 1},
    "destroy_instance": {"instance_id": 1},
    "label_instance": {"instance_id": 1, "label": "x"},
    "create_instance": {"quote_id": "q-0"},
    "set_api_key_source": {"source": "env"},
    "get_instance_logs": {"instance_id": 1},
    "set_deadline": {"instance_id": 1},
}


def _server(**settings: Any) -> Any:
    # Listing tools needs no Vast at all: the URL is never contacted.
    return create_server(Settings(api_url="http://127.0.0.1:9", rate_limit=None, **settings))


async def _tools(era: str = "auto", **settings: Any) -> list[dict[str, Any]]:
    async with Client(_server(**settings), mode=era) as client:
        listed = await client.list_tools()
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]


def _snapshot_view(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
    return [{k: t.get(k) for k in keys} for t in sorted(tools, key=lambda t: t["name"])]


async def test_tools_list_matches_the_committed_snapshot() -> None:
    current = _snapshot_view(await _tools())
    rendered = json.dumps(current, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(rendered, encoding="utf-8")
    assert SNAPSHOT.exists(), "no snapshot yet: run with UPDATE_SNAPSHOTS=1 and commit it"
    committed = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert current == committed, "tools/list changed: review, then UPDATE_SNAPSHOTS=1 to accept"


async def test_both_eras_list_the_same_tools() -> None:
    assert _snapshot_view(await _tools("auto")) == _snapshot_view(await _tools("legacy"))


async def test_every_tool_is_strict_annotated_and_structured() -> None:
    tools = await _tools()
    assert {t["name"] for t in tools} == READ_TOOLS | LOCAL_TOOLS | WRITE_TOOLS
    for tool in tools:
        name = tool["name"]
        assert tool["inputSchema"].get("additionalProperties") is False, name
        for sub in tool["inputSchema"].get("$defs", {}).values():
            if sub.get("type") == "object":
                assert sub.get("additionalProperties") is False, f"{name}: nested input model not strict"
        assert tool.get("outputSchema", {}).get("type") == "object", f"{name}: no output schema"
        assert tool.get("title"), name
        assert len(tool.get("description", "")) > 40, f"{name}: say when to use it"
        hints = tool.get("annotations", {})
        for hint in ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"):
            assert isinstance(hints.get(hint), bool), f"{name}: {hint} not set explicitly"
        assert hints["readOnlyHint"] is (name in READ_TOOLS), name
        assert hints["destructiveHint"] is (name in DESTRUCTIVE), name
        assert hints["openWorldHint"] is (name not in LOCAL_TOOLS), name


async def test_numbers_are_bounded() -> None:
    for tool in await _tools():
        for prop, schema in tool["inputSchema"].get("properties", {}).items():
            types = schema.get("type")
            types = types if isinstance(types, list) else [types]
            if "integer" in types or "number" in types:
                low = "minimum" in schema or "exclusiveMinimum" in schema
                assert low and "maximum" in schema, f"{tool['name']}.{prop} is unbounded"


async def test_unknown_arguments_are_rejected(era: str) -> None:
    async with Client(_server(), mode=era) as client:
        for tool in (await client.list_tools()).tools:
            args = {**MINIMAL_ARGS.get(tool.name, {}), "bogus_argument": 1}
            result = await client.call_tool(tool.name, args)
            assert result.is_error, tool.name
            assert "bogus_argument" in text_of(result), tool.name


async def test_unknown_tool_is_a_jsonrpc_invalid_params_error(era: str) -> None:
    async with Client(_server(), mode=era) as client:
        error = await protocol_error(client.call_tool("no_such_tool", {}))
    assert error is not None, "an unknown tool must be a JSON-RPC error, not a tool result"
    assert error.code == INVALID_PARAMS == -32602
    assert "no_such_tool" in str(error)


async def test_read_only_registers_no_write_tool(rig: Rig, era: str) -> None:
    instance_id = rig.rent()
    rig.sim.reset_requests()
    async with rig.client(era, read_only=True) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == READ_TOOLS | LOCAL_TOOLS
        errors = {w: await protocol_error(client.call_tool(w, {"instance_id": instance_id})) for w in WRITE_TOOLS}
        listed = await call(client, "list_instances")  # reads still work against Vast
    assert not listed.is_error
    assert {w: e.code if e else None for w, e in errors.items()} == dict.fromkeys(WRITE_TOOLS, INVALID_PARAMS)
    mutating = [
        r for r in rig.sim.requests if r.method != "GET" and not r.path.endswith(("/bundles/", "/search/asks/"))
    ]
    assert [r.path for r in mutating] == [], "nothing but reads reached Vast"
    assert rig.status(instance_id) == "running"


def test_read_only_comes_from_the_environment_too() -> None:
    assert Settings.from_env({"VAST_MCP_READ_ONLY": "1"}).read_only
    assert not Settings.from_env({}).read_only
