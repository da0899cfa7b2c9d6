"""What every tool call can reach: settings, the Vast client, the quote book.

Built once per server lifespan (per process for HTTP and stdio, per connection
in-process) by :func:`vast_mcp.server.create_server`.
"""

from __future__ import annotations

from dataclasses import dataclass

from vast_mcp.provisioning.quote import QuoteBook
from vast_mcp.settings import Settings
from vast_mcp.vast import VastClient


@dataclass
class Services:
    settings: Settings
    vast: VastClient
    quotes: QuoteBook
