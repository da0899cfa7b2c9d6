"""Asking the human before money is spent or data destroyed.

A resolver runs before the tool body: when the client can show a form it asks
(flat schema: the question + yes/no); when it cannot, it answers ``NotAsked``
and the tool decides by the server's ``--confirm`` mode. On 2026-07-28 the
resolver may run once per round, so its question depends only on the tool's
arguments (and the stored quote), never on the clock or live state.
"""

from __future__ import annotations

from mcp.server.mcpserver import (
    AcceptedElicitation,
    CancelledElicitation,
    Context,
    DeclinedElicitation,
    ElicitationResult,
)
from pydantic import BaseModel, Field

from vast_mcp.provisioning.errors import ConfirmationRefused


class Confirm(BaseModel):
    """The form: one boolean, as the elicitation spec wants (flat, primitive)."""

    confirm: bool = Field(description="Yes, go ahead")


class NotAsked(Confirm):
    """The resolver did not ask the human (and why); never counts as a yes by itself."""

    confirm: bool = False
    reason: str


def can_elicit(ctx: Context) -> bool:
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def require_consent(answer: ElicitationResult[Confirm], *, confirm_mode: str, action: str) -> str:
    """Raise unless the human said yes (or the server allows the quote alone). Returns how."""
    match answer:
        case AcceptedElicitation(data=NotAsked(reason=reason)):
            if confirm_mode == "elicit":
                raise ConfirmationRefused(
                    f"Refused to {action}: this server requires a human confirmation through an "
                    f"elicitation form, and {reason}. Use an MCP client that supports elicitation, "
                    "or restart the server without --confirm elicit."
                )
            return f"not asked ({reason}); authorised by the quote the user confirmed in the dialog"
        case AcceptedElicitation(data=Confirm(confirm=True)):
            return "confirmed by the human in an elicitation form"
        case AcceptedElicitation():
            raise ConfirmationRefused(f"The user did not tick the confirmation; nothing was done ({action}).")
        case DeclinedElicitation():
            raise ConfirmationRefused(f"The user declined; nothing was done ({action}).")
        case CancelledElicitation():
            raise ConfirmationRefused(f"The user cancelled; nothing was done ({action}).")
    raise ConfirmationRefused(f"No confirmation; nothing was done ({action}).")
