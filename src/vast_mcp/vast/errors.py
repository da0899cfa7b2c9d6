"""One error taxonomy for everything that can go wrong talking to Vast.

Every message is written for the person (or model) who has to act on it: it says
what happened and what to do next, and it never contains the API key.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from vast_mcp.credentials import redact_known


class VastError(Exception):
    """Base of every anticipated failure of a Vast request."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        message = redact_known(message)  # Vast sometimes echoes what it was sent
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.method = method
        self.path = path

    def __str__(self) -> str:
        return self.message


class AuthError(VastError):
    """The key is missing, invalid, or lacks the permission this call needs."""


class RateLimitError(VastError):
    """Vast answered 429 and we could not (or must not) wait it out."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class SearchQuotaError(VastError):
    """The daily offer-search quota is used up; retrying before the reset is pointless."""

    def __init__(self, message: str, *, resets_at: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.resets_at = resets_at


class NotFoundError(VastError):
    """The instance, key or offer does not exist (or is not this account's)."""

    # True when an earlier attempt of the same request may have taken effect (its answer was
    # lost): a repeated DELETE answering 404 then means "done", not "never existed".
    after_lost_answer: bool = False


class OfferUnavailableError(VastError):
    """The offer was taken or withdrawn between search and create (`no_such_ask`)."""

    def __init__(self, message: str, *, offer_id: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.offer_id = offer_id


class BadRequestError(VastError):
    """Vast rejected a parameter; the message names it."""


class ServerError(VastError):
    """Vast failed (5xx) and retries did not help."""


class VastConnectionError(VastError):
    """The network failed (timeout, refused, reset) and retries did not help."""


class RedirectRefusedError(VastError):
    """Vast's answer redirected somewhere the key must not go (not an https:// host under vast.ai)."""


class BadResponseError(VastError):
    """Vast answered with an empty or unparsable body; the raw answer was saved."""

    def __init__(self, message: str, *, saved_to: Path | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.saved_to = saved_to


class OutcomeUnknownError(VastError):
    """A non-repeatable request (a create) was sent but its answer was lost.

    It may or may not have taken effect. Callers must reconcile by *reading*
    state, never by sending it again.
    """
