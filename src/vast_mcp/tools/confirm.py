"""MCP glue for the one consent policy (:mod:`vast_mcp.consent`, DESIGN §5a).

Every tool that spends money, destroys data, grants access or changes which account pays has
two extra parameters and makes one call:

    consent: Annotated[ElicitationResult[Confirm], Resolve(ask_x)]   # filled before the body
    confirm_token: ConfirmToken = None
    ...
    await gate(ctx, consent, _x(args), confirm_token)

``ask_x`` asks the human through a form when the client can show one (the question is the
proposal's text); when it cannot, it answers :class:`NotAsked` and :func:`gate` falls back to a
confirm token (refused outright under ``--confirm elicit``). On protocol 2026-07-28 a resolver
runs once per round and the SDK accepts an answer only for the exact question it was shown, so a
proposal is built once and cached per (tool, arguments, key) until it is used or expires.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import (
    AcceptedElicitation,
    CancelledElicitation,
    Context,
    DeclinedElicitation,
    Elicit,
    ElicitationResult,
)
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from vast_mcp.consent import ConsentRefused, Proposal
from vast_mcp.credentials import ApiKey, KeyUnavailableError
from vast_mcp.provisioning.errors import UserFacingError
from vast_mcp.services import Services
from vast_mcp.tools.base import services
from vast_mcp.vast import VastError

# Its form is checked by the token book (a malformed token gets a plain refusal and a fresh one).
ConfirmToken = Annotated[str | None, Field(max_length=80, description="only after the user's yes")]

# The form's only field. It renders as a boolean, but any answer is accepted here so that
# "yes", 1 or "true" reach gate() and are refused in plain words: only a JSON true is a yes.
_Answer = Annotated[
    bool | int | float | str | None,
    WithJsonSchema({"type": "boolean", "title": "Approve", "description": "Approve exactly what is described above."}),
]


class Confirm(BaseModel):
    model_config = ConfigDict(title="Confirm")  # no docstring: the form shows nothing but the question

    confirm: _Answer = False


class NotAsked(Confirm):
    # The resolver did not ask the human (and why); never counts as a yes by itself.
    reason: str


@dataclass(frozen=True)
class Ask:
    """A gated action: the tool, its arguments, and how to describe it to the human."""

    tool: str
    arguments: Mapping[str, Any]
    describe: Callable[[Services], Awaitable[str]]


def can_elicit(ctx: Context) -> bool:
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def key_phrase(key: ApiKey | None) -> str:
    """How every confirmation names the account that pays."""
    return f"API key from {key.origin} ({key.fingerprint})." if key else "No API key is configured."


async def ask(ctx: Context, action: Ask) -> Elicit[Confirm] | NotAsked:
    """The resolver body every gated tool shares: a form when the client can show one."""
    if not can_elicit(ctx):
        return NotAsked(reason="this client cannot show a confirmation form")
    try:
        proposal = await _proposal(services(ctx), action)
    except (UserFacingError, VastError, KeyUnavailableError):
        # Nothing to ask about; the tool body builds it again and reports the precise reason.
        return NotAsked(reason="the action could not be described")
    return Elicit(proposal.text, Confirm)


async def gate(
    ctx: Context,
    answer: ElicitationResult[Confirm],
    action: Ask,
    confirm_token: str | None = None,
    *,
    confirmed_in_chat: bool = False,
) -> Proposal:
    """Return the proposal the human approved, or raise: nothing may happen before this returns.

    ``confirmed_in_chat``: the caller already holds a token of its own the human approved in chat
    (a create's quote), so a client without forms needs no confirm token on top.
    """
    state = services(ctx)
    what = f"nothing was done ({action.tool})"
    match answer:
        case AcceptedElicitation(data=NotAsked(reason=reason)):
            proposal = await _proposal(state, action)  # first: an action that cannot be described says why
            if state.settings.confirm == "elicit":
                raise ConsentRefused(
                    f"Refused: this server requires a human confirmation through an elicitation form, and "
                    f"{reason}; {what}. Use an MCP client that supports elicitation, or restart the "
                    "server without --confirm elicit."
                )
            if not confirmed_in_chat:
                key = state.vast.api_key
                if confirm_token is None:
                    raise state.consent.ask(proposal, key)
                state.consent.redeem(confirm_token, proposal, key)
        case AcceptedElicitation(data=Confirm(confirm=value)) if value is True:
            proposal = await _proposal(state, action)
        case AcceptedElicitation():
            raise ConsentRefused(f"The user did not approve (only a ticked box counts as yes); {what}.")
        case DeclinedElicitation():
            raise ConsentRefused(f"The user declined; {what}.")
        case CancelledElicitation():
            raise ConsentRefused(f"The user cancelled; {what}.")
        case _:
            raise ConsentRefused(f"No confirmation; {what}.")
    state.proposals.pop(_cache_key(state, action), None)  # one yes, one action
    return proposal


def _cache_key(state: Services, action: Ask) -> str:
    arguments = json.dumps(dict(action.arguments), sort_keys=True, default=str)
    return f"{action.tool}\x00{arguments}\x00{state.consent.key_id(state.vast.api_key)}"


async def _proposal(state: Services, action: Ask) -> Proposal:
    now = time.monotonic()
    for stale in [k for k, (_, at) in state.proposals.items() if now - at >= state.consent.ttl_s]:
        del state.proposals[stale]
    key = _cache_key(state, action)
    cached = state.proposals.get(key)
    if cached is not None:
        return cached[0]
    proposal = Proposal(action.tool, dict(action.arguments), await action.describe(state))
    state.proposals[key] = (proposal, now)
    return proposal
