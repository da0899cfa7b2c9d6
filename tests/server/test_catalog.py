"""The prepared tool catalog (src/vast_mcp/catalog.json) is exactly what the tools build to (issue 17).

tools/list is served from the catalog so that start-up builds no tool; each tool is built at its
first call. Regenerate after a deliberate change: ``uv run python -m vast_mcp.catalog``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import files

import pytest

from vast_mcp.catalog import CATALOG, CatalogTool, build_catalog, built_tool, catalog_tools


def test_the_catalog_is_what_the_tools_build_to() -> None:
    shipped = json.loads(files("vast_mcp").joinpath(CATALOG).read_text(encoding="utf-8"))
    assert shipped == build_catalog(), "the tools changed: run `uv run python -m vast_mcp.catalog` and commit"


def test_start_up_builds_no_tool() -> None:
    tools = catalog_tools(read_only=False)
    assert tools and all(isinstance(t, CatalogTool) for t in tools)
    assert "fn_metadata" not in tools[0].__dict__


@pytest.mark.parametrize("read_only", [False, True])
def test_each_listed_tool_builds_to_what_it_lists(read_only: bool) -> None:
    for listed in catalog_tools(read_only=read_only):
        tool = built_tool(listed.name)
        assert (listed.parameters, listed.output_schema) == (tool.parameters, tool.output_schema)
        assert not (read_only and listed.kind == "write")


def test_a_tool_is_built_once() -> None:
    assert built_tool("search_offers") is built_tool("search_offers")


def test_listing_tools_imports_no_domain_module() -> None:
    # A fresh interpreter: the server is made and lists its tools without the tool modules,
    # the Vast client or the planner being imported (what keeps cold start at the floor).
    script = """
import asyncio, sys
from vast_mcp.server import create_server
from vast_mcp.settings import Settings
server = create_server(Settings(api_url="http://127.0.0.1:9"))
listed = asyncio.run(server.list_tools())
heavy = sorted(m for m in sys.modules if m.startswith(("vast_mcp.tools", "vast_mcp.vast", "vast_mcp.provisioning")))
print(len(listed), heavy)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    count, heavy = out.stdout.strip().split(" ", 1)
    assert int(count) == len(catalog_tools(read_only=False)) and heavy == "[]"
