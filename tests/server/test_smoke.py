from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from tests.helpers import ScriptedUser, data, served_simulator, server_for, ssh_dir_with_key

pytestmark = pytest.mark.anyio


async def test_happy_path(tmp_path: Path) -> None:
    with served_simulator() as (_sim, url):
        server = server_for(url, ssh_dir_with_key(tmp_path))
        user = ScriptedUser()
        async with Client(server, elicitation_callback=user) as client:
            plan = data(await client.call_tool("plan_instance", {}))
            print(plan["confirm_text"])
            result = data(await client.call_tool("create_instance", {"quote_id": plan["quote_id"]}))
            print(result)
            assert result["ok"]
