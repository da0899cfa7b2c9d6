"""Quotes: what the human confirmed, minted and signed by this server.

A quote binds every field of a plan (offers, image, disk, label, count, filters,
SSH key, API-key source, price ceiling) under an HMAC with a per-process secret.
``create_instance`` takes only the quote id, so the model cannot change what was
confirmed; a quote is single-use and expires.

The id is short on purpose (a model has to copy it): the terms stay on the
server, and the id carries the HMAC of nonce + terms, so a stored quote that was
changed, an id that was edited, and an id from another server all fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from vast_mcp.consent import TokenBook, TokenError, TokenProblem
from vast_mcp.credentials import ApiKey
from vast_mcp.provisioning.errors import QuoteError
from vast_mcp.provisioning.rental import RentalOptions
from vast_mcp.vast import OfferFilters
from vast_mcp.vast.query import Objective


class QuoteTerms(BaseModel):
    """Everything a create will do. Frozen: nothing may change it after signing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offer_ids: tuple[int, ...]  # one per instance, in order
    fallback_ids: tuple[int, ...]
    filters: OfferFilters
    objective: Objective
    image: str
    disk_gb: float
    count: int
    label: str
    price_ceiling: float  # $/h per instance, storage included: never rent above it
    total_per_hour: float  # what the plan showed for all instances
    storage_per_hour: float  # the storage part of total_per_hour (what a stop deadline leaves billing)
    options: RentalOptions  # bid, env, ports, onstart, registry login, lifetime
    ssh_key_fingerprint: str | None
    ssh_key_text: str | None
    ssh_key_origin: str | None  # "from <path>" or text the assistant supplied (the human must see which)
    api_key_origin: str  # e.g. "$VAST_API_KEY", shown to the human
    api_key_fingerprint: str
    api_key_id: str  # QuoteBook.key_id of the key planned with: a create on another key is refused
    account_id: int | None  # the account's user id (deadlines are recorded per account)
    expires_at: float  # unix seconds
    confirm_text: str = ""  # the question the human answers (set once the terms are complete)


_QUOTE_WORDS = {
    TokenProblem.MALFORMED: "That is not a quote id. Call plan_instance and pass its quote_id unchanged.",
    TokenProblem.UNKNOWN: (
        "This quote was not issued by this server (or the server restarted). "
        "Call plan_instance again and confirm the new plan."
    ),
    TokenProblem.ALTERED: "This quote id has been altered. Call plan_instance again; quote ids must be copied exactly.",
    TokenProblem.USED: "This quote was already used: one quote rents once. Call plan_instance for a new one.",
    TokenProblem.EXPIRED: "This quote has expired. Call plan_instance again to get current prices.",
}


class QuoteBook:
    """Mints and redeems quotes for one server process (a quote is the create's confirm token)."""

    def __init__(self, ttl_s: float = 600.0, clock: Callable[[], float] = time.time) -> None:
        self._tokens: TokenBook[QuoteTerms] = TokenBook(
            "q", ttl_s=ttl_s, clock=clock, serialize=lambda terms: terms.model_dump_json().encode()
        )

    @property
    def ttl_s(self) -> float:
        return self._tokens.ttl_s

    def expires_at(self) -> float:
        return self._tokens.expires_at()

    def key_id(self, key: ApiKey | None) -> str:
        """What binds a quote to the key it was planned with."""
        return self._tokens.key_id(key)

    def mint(self, terms: QuoteTerms) -> str:
        return self._tokens.mint(terms, terms.expires_at)

    def peek(self, quote_id: str) -> QuoteTerms:
        """The terms of a valid, unused, unexpired quote (without using it)."""
        return self._checked(self._tokens.peek, quote_id)

    def redeem(self, quote_id: str) -> QuoteTerms:
        """Validate and mark used, atomically (no await between check and mark)."""
        return self._checked(self._tokens.redeem, quote_id)

    def release(self, quote_id: str) -> None:
        """Give a redeemed quote back when nothing was rented with it."""
        self._tokens.release(quote_id)

    def __len__(self) -> int:
        return len(self._tokens)

    @staticmethod
    def _checked(use: Callable[[str], QuoteTerms], quote_id: str) -> QuoteTerms:
        try:
            return use(quote_id)
        except TokenError as exc:
            raise QuoteError(_QUOTE_WORDS[exc.problem]) from None
