"""The Vast.ai REST API client (no MCP in here)."""

from vast_mcp.vast.client import VastClient
from vast_mcp.vast.errors import (
    AuthError,
    BadRequestError,
    BadResponseError,
    NotFoundError,
    OfferUnavailableError,
    OutcomeUnknownError,
    RateLimitError,
    RedirectRefusedError,
    SearchQuotaError,
    ServerError,
    VastConnectionError,
    VastError,
)
from vast_mcp.vast.instances import CreateRequest
from vast_mcp.vast.models import Charge, Instance, Oddity, Offer, PriceIncrease, SshKey, User
from vast_mcp.vast.query import MAX_OFFERS, Objective, OfferFilters
from vast_mcp.vast.transport import DEFAULT_BASE_URL, RateBudget, RetryPolicy, VastHttp

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_OFFERS",
    "AuthError",
    "BadRequestError",
    "BadResponseError",
    "Charge",
    "CreateRequest",
    "Instance",
    "NotFoundError",
    "Objective",
    "Oddity",
    "Offer",
    "OfferFilters",
    "OfferUnavailableError",
    "OutcomeUnknownError",
    "PriceIncrease",
    "RateBudget",
    "RateLimitError",
    "RedirectRefusedError",
    "RetryPolicy",
    "SearchQuotaError",
    "ServerError",
    "SshKey",
    "User",
    "VastClient",
    "VastConnectionError",
    "VastError",
    "VastHttp",
]
