"""Quotes: signed, single-use, expiring, bound to their terms and to this server."""

from __future__ import annotations

import pytest

from vast_mcp.provisioning.errors import QuoteError
from vast_mcp.provisioning.quote import QuoteBook, QuoteTerms
from vast_mcp.provisioning.rental import RentalOptions
from vast_mcp.vast import OfferFilters


def terms(expires_at: float = 1_000.0, disk: float = 64) -> QuoteTerms:
    return QuoteTerms(
        offer_ids=(11,),
        fallback_ids=(12, 13),
        filters=OfferFilters(gpu_name="RTX 4090", disk_gb=disk),
        objective="price",
        image="pytorch/pytorch:latest",
        disk_gb=disk,
        count=1,
        label="alice",
        price_ceiling=0.5,
        total_per_hour=0.41,
        storage_per_hour=0.02,
        options=RentalOptions(max_hours=24),
        ssh_key_fingerprint="SHA256:abc",
        ssh_key_text="ssh-ed25519 AAAA",
        ssh_key_origin="from ~/.ssh/id_ed25519.pub",
        api_key_origin="$VAST_API_KEY",
        api_key_fingerprint="…cdef",
        api_key_id="k1",
        account_id=7,
        expires_at=expires_at,
    )


def book(now: list[float]) -> QuoteBook:
    return QuoteBook(ttl_s=600, clock=lambda: now[0])


def test_mint_then_redeem_once() -> None:
    now = [0.0]
    quotes = book(now)
    quote_id = quotes.mint(terms())
    assert quote_id.startswith("q-")
    assert quotes.redeem(quote_id) == terms()
    with pytest.raises(QuoteError, match="already used"):
        quotes.redeem(quote_id)


def test_peek_does_not_use_it() -> None:
    quotes = book([0.0])
    quote_id = quotes.mint(terms())
    quotes.peek(quote_id)
    quotes.peek(quote_id)
    assert quotes.redeem(quote_id).label == "alice"


def test_expired() -> None:
    now = [0.0]
    quotes = book(now)
    quote_id = quotes.mint(terms(expires_at=quotes.expires_at()))
    now[0] = 599.0
    quotes.peek(quote_id)
    now[0] = 600.0
    with pytest.raises(QuoteError, match="expired"):
        quotes.redeem(quote_id)


def test_altered_signature_refused() -> None:
    quotes = book([0.0])
    quote_id = quotes.mint(terms())
    flipped = quote_id[:-1] + ("0" if quote_id[-1] != "0" else "1")
    with pytest.raises(QuoteError, match="altered"):
        quotes.redeem(flipped)
    assert quotes.redeem(quote_id).count == 1  # the real one is untouched


def test_altered_terms_refused() -> None:
    quotes = book([0.0])
    quote_id = quotes.mint(terms())
    nonce = quote_id.split("-", 1)[1].rsplit("-", 1)[0]
    stored = quotes._tokens._issued
    stored[nonce] = (terms(disk=640), stored[nonce][1])  # what tampering with the stored terms would look like
    with pytest.raises(QuoteError, match="altered"):
        quotes.redeem(quote_id)


def test_quote_from_another_server_refused() -> None:
    mine, theirs = book([0.0]), book([0.0])
    quote_id = theirs.mint(terms())
    with pytest.raises(QuoteError, match="not issued by this server"):
        mine.redeem(quote_id)


@pytest.mark.parametrize("bad", ["", "q-", "hello", "q--", "x-abc-def"])
def test_not_a_quote(bad: str) -> None:
    with pytest.raises(QuoteError):
        book([0.0]).redeem(bad)


def test_expired_quotes_are_pruned_but_still_refused() -> None:
    now = [0.0]
    quotes = book(now)
    old = quotes.mint(terms(expires_at=quotes.expires_at()))
    now[0] = 700.0
    fresh = quotes.mint(terms(expires_at=quotes.expires_at()))  # minting prunes what has expired
    assert len(quotes) == 1
    with pytest.raises(QuoteError, match="not issued by this server"):
        quotes.redeem(old)
    assert quotes.redeem(fresh).count == 1
