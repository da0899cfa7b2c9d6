"""What every tool call can reach: settings, the Vast client, quotes, confirm tokens, deadlines.

Built once per server lifespan (per process for HTTP and stdio, per connection
in-process) by :func:`vast_mcp.server.create_server`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vast_mcp.consent import ConsentBook, Proposal
from vast_mcp.provisioning.quote import QuoteBook
from vast_mcp.settings import Settings
from vast_mcp.spending.deadlines import DeadlineStore
from vast_mcp.vast import VastClient


@dataclass
class Services:
    settings: Settings
    vast: VastClient
    quotes: QuoteBook
    consent: ConsentBook
    deadlines: DeadlineStore
    # proposals being confirmed: (tool, arguments, key) -> (proposal, monotonic time built)
    proposals: dict[str, tuple[Proposal, float]] = field(default_factory=dict)
