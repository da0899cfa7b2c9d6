"""Domain failures the caller can act on (the MCP layer shows their text as a tool error)."""

from __future__ import annotations


class UserFacingError(Exception):
    """An anticipated failure whose message says what to do next."""


class QuoteError(UserFacingError):
    """The quote is missing, expired, used, altered, or from another server."""


class NothingRented(UserFacingError):
    """Failed before any create was sent: the quote may be used again."""


class MaybeRented(UserFacingError):
    """A create's outcome is unknown and could not be checked: something may be billing."""
