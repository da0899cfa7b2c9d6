"""The cold-start floor: the smallest MCPServer there is, one trivial tool, on stdio.

cold_start.py spawns it exactly like ``vast-mcp serve`` (a fresh interpreter running
one script) and compares the two in the same run.
"""

from __future__ import annotations

from mcp.server import MCPServer

mcp = MCPServer("floor")


@mcp.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


if __name__ == "__main__":
    mcp.run()
