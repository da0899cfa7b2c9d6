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
    SearchQuotaError,
    ServerError,
    VastConnectionError,
    VastError,
)
from vast_mcp.vast.instances import CreateRequest
from vast_mcp.vast.models import Charge, Instance, Offer, SshKey, User
from vast_mcp.vast.query import Objective, OfferFilters
from vast_mcp.vast.transport import DEFAULT_BASE_URL, RateBudget, RetryPolicy, VastHttp

__all__ = [
    "DEFAULT_BASE_URL",
    "AuthError",
    "BadRequestError",
    "BadResponseError",
    "Charge",
    "CreateRequest",
    "Instance",
    "NotFoundError",
    "Objective",
    "Offer",
    "OfferFilters",
    "OfferUnavailableError",
    "OutcomeUnknownError",
    "RateBudget",
    "RateLimitError",
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
