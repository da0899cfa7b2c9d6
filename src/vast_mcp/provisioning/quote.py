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

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from vast_mcp.provisioning.errors import QuoteError
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
    ssh_key_fingerprint: str | None
    ssh_key_text: str | None
    api_key_source: str
    api_key_fingerprint: str | None
    expires_at: float  # unix seconds


@dataclass
class QuoteBook:
    """Mints and redeems quotes for one server process."""

    ttl_s: float = 600.0
    clock: Callable[[], float] = time.time
    _secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _issued: dict[str, QuoteTerms] = field(default_factory=dict)
    _used: set[str] = field(default_factory=set)

    def mint(self, terms: QuoteTerms) -> str:
        nonce = secrets.token_urlsafe(9)
        quote_id = f"q-{nonce}-{self._sign(nonce, terms)}"
        self._issued[nonce] = terms
        return quote_id

    def expires_at(self) -> float:
        return self.clock() + self.ttl_s

    def peek(self, quote_id: str) -> QuoteTerms:
        """The terms of a valid, unused, unexpired quote (without using it)."""
        nonce, signature = _split(quote_id)
        terms = self._issued.get(nonce)
        if terms is None:
            raise QuoteError(
                "This quote was not issued by this server (or the server restarted). "
                "Call plan_instance again and confirm the new plan."
            )
        if not hmac.compare_digest(signature, self._sign(nonce, terms)):
            raise QuoteError(
                "This quote id has been altered. Call plan_instance again; quote ids must be copied exactly."
            )
        if quote_id in self._used:
            raise QuoteError("This quote was already used: one quote rents once. Call plan_instance for a new one.")
        if self.clock() >= terms.expires_at:
            raise QuoteError("This quote has expired. Call plan_instance again to get current prices.")
        return terms

    def redeem(self, quote_id: str) -> QuoteTerms:
        """Validate and mark used, atomically (no await between check and mark)."""
        terms = self.peek(quote_id)
        self._used.add(quote_id)
        return terms

    def release(self, quote_id: str) -> None:
        """Give a redeemed quote back when nothing was rented with it."""
        self._used.discard(quote_id)

    def _sign(self, nonce: str, terms: QuoteTerms) -> str:
        message = nonce.encode() + b"\x00" + terms.model_dump_json().encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:20]


def _split(quote_id: str) -> tuple[str, str]:
    parts = quote_id.split("-") if quote_id.startswith("q-") else []
    # nonce is urlsafe base64 and may itself contain "-": the signature is the last part
    if len(parts) < 3 or not parts[-1]:
        raise QuoteError("That is not a quote id. Call plan_instance and pass its quote_id unchanged.")
    return "-".join(parts[1:-1]), parts[-1]
