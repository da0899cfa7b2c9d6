"""What every tool call can reach: settings, the Vast client, quotes, confirm tokens, deadlines.

Built once per server lifespan (per process for HTTP and stdio, per connection in-process) by
:func:`vast_mcp.server.create_server`. The Vast client, the books and the deadline store are made
at their first use: their modules (the Vast models, pydantic validators) stay off the start-up
path, so a client's first tools/list does not wait for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from vast_mcp.settings import Settings

if TYPE_CHECKING:
    from vast_mcp.consent import ConsentBook, Proposal
    from vast_mcp.provisioning.quote import QuoteBook
    from vast_mcp.spending.deadlines import DeadlineStore
    from vast_mcp.vast import VastClient


@dataclass
class Services:
    settings: Settings
    connect: Callable[[], VastClient]  # makes the (open) Vast client
    books: Callable[[], tuple[QuoteBook, ConsentBook]]  # the server's quote and consent books
    # proposals being confirmed: (tool, arguments, key) -> (proposal, monotonic time built)
    proposals: dict[str, tuple[Proposal, float]] = field(default_factory=dict)

    @cached_property
    def vast(self) -> VastClient:
        return self.connect()

    @cached_property
    def quotes(self) -> QuoteBook:
        return self.books()[0]

    @cached_property
    def consent(self) -> ConsentBook:
        return self.books()[1]

    @cached_property
    def deadlines(self) -> DeadlineStore:
        from vast_mcp.spending.deadlines import DeadlineStore

        return DeadlineStore(self.settings.state_dir)

    async def aclose(self) -> None:
        """Close the Vast client's connections, if it was made."""
        if "vast" in self.__dict__:
            await self.vast.__aexit__(None, None, None)
