"""The tools as listed, from a prepared catalog: the server starts without building a tool.

Building a tool (the SDK's ``Tool.from_function`` plus ``tools.base.strict_tool``: an argument
model and its JSON schemas) costs 5-10 ms each, and importing the tool modules pulls in the
whole domain; a client's first ``tools/list`` needs neither. ``catalog.json`` holds each tool's
published entry exactly as built, and each tool is built on its first call, which then runs
and validates exactly as before (arguments against the argument model, results against the
output model). tests/server/test_catalog.py checks the catalog against freshly built tools;
regenerate it with ``uv run python -m vast_mcp.catalog``.

Only the SDK's public surface is used: a subclass of its ``Tool`` model, handed to
``MCPServer(tools=...)``; no private server state is touched.
"""

from __future__ import annotations

import json
import sys
from functools import cache, cached_property
from importlib.resources import files
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations

CATALOG = "catalog.json"
ENTRY_KEYS = ("name", "kind", "title", "description", "inputSchema", "outputSchema", "annotations")


class CatalogTool(Tool):
    """A tool listed from the catalog; built (argument model, validation) at its first call."""

    kind: str
    listed_output_schema: dict[str, Any] | None = None

    @cached_property
    def output_schema(self) -> dict[str, Any] | None:
        return self.listed_output_schema

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        return await built_tool(self.name).run(arguments, context, convert_result)


def catalog_tools(*, read_only: bool) -> list[Tool]:
    """The catalog's tools (all but the write tools when ``read_only``), none of them built yet."""
    entries: list[dict[str, Any]] = json.loads(files("vast_mcp").joinpath(CATALOG).read_text(encoding="utf-8"))
    return [
        CatalogTool.model_construct(
            fn=_built_on_first_call,
            name=e["name"],
            kind=e["kind"],
            title=e["title"],
            description=e["description"],
            parameters=e["inputSchema"],
            listed_output_schema=e["outputSchema"],
            annotations=ToolAnnotations.model_validate(e["annotations"]),
            is_async=True,
        )
        for e in entries
        if not (read_only and e["kind"] == "write")
    ]


@cache  # built once per process, at its first call
def built_tool(name: str) -> Tool:
    from vast_mcp.tools import ALL_TOOLS  # the domain is imported on the first call, not at start
    from vast_mcp.tools.base import strict_tool

    return strict_tool(next(spec for spec in ALL_TOOLS if spec.fn.__name__ == name))


def build_catalog() -> list[dict[str, Any]]:
    """Every tool's published entry, built now (what catalog.json must hold)."""
    from vast_mcp.tools import ALL_TOOLS
    from vast_mcp.tools.base import strict_tool

    entries = []
    for spec in ALL_TOOLS:
        tool = strict_tool(spec)
        assert tool.annotations is not None  # every tool sets all four (DESIGN §4)
        annotations = tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True)
        values = (tool.name, spec.kind, tool.title, tool.description, tool.parameters, tool.output_schema, annotations)
        entries.append(dict(zip(ENTRY_KEYS, values, strict=True)))
    return entries


def _built_on_first_call(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("a catalog tool runs through its built tool")


def main() -> int:
    path = files("vast_mcp").joinpath(CATALOG)
    text = json.dumps(build_catalog(), indent=1, ensure_ascii=False) + "\n"
    with open(str(path), "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
