"""How the spending modules write money and times in the sentences they return."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["money", "utc"]


def money(amount: float) -> str:
    """``$1,234.50``; amounts under 10 cents keep up to four decimals (``$0.0083``, ``$0.01``)."""
    sign, amount = ("-" if amount < 0 else ""), abs(amount)
    if amount >= 0.1:
        return f"{sign}${amount:,.2f}"
    whole, _, cents = f"{amount:.4f}".partition(".")
    return f"{sign}${whole}.{cents.rstrip('0').ljust(2, '0')}"


def utc(ts: float) -> str:
    """``2026-11-30 18:00 UTC``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
