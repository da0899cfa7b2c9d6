"""MCP tools: thin, strict wrappers over the domain (one module per area)."""

from __future__ import annotations

from vast_mcp.tools import account, billing, instances, offers, provision, spending, ssh
from vast_mcp.tools.base import ToolSpec

ALL_TOOLS: list[ToolSpec] = [
    *offers.TOOLS,
    *provision.TOOLS,
    *instances.TOOLS,
    *ssh.TOOLS,
    *billing.TOOLS,
    *spending.TOOLS,
    *account.TOOLS,
]
