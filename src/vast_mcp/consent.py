"""The one consent policy (DESIGN §5a): every action that spends money, destroys data, grants
access or changes which account pays needs a human yes, and this module holds what that yes
is bound to.

* A :class:`Proposal` is one such action as the human sees it (``text``: instance, price, image,
  SSH key, API-key source, deadline) and as it will run (the tool and its arguments).
* A client that can show forms gets ``text`` in an elicitation form; only a JSON ``true`` is yes.
* A client that cannot gets a *confirm token* instead: the first call changes nothing and returns
  ``text`` + token; the same call again with the token acts. The token is signed, single-use,
  expires, and is bound to the tool, its arguments, the text and the active API key, so it
  cannot authorise anything else, or the same thing on another account.
* For a create, the plan's quote is its token (:mod:`vast_mcp.provisioning.quote`).

:class:`TokenBook` is the machinery both share: short signed ids, single use, expiry, pruning.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from vast_mcp.credentials import ApiKey
from vast_mcp.provisioning.errors import UserFacingError

T = TypeVar("T")


class TokenProblem(Enum):
    MALFORMED = "malformed"
    UNKNOWN = "unknown"  # not issued here (or the server restarted)
    ALTERED = "altered"
    USED = "used"
    EXPIRED = "expired"


class TokenError(Exception):
    def __init__(self, problem: TokenProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass
class TokenBook(Generic[T]):
    """Signed, single-use, expiring ids, each bound to a payload kept here (never in the id).

    The id is short (a model copies it): ``<prefix>-<nonce>-<hmac>``; the HMAC covers the nonce
    and the payload, so an edited id, a changed payload and an id from another process all fail.
    """

    prefix: str
    ttl_s: float = 600.0
    clock: Callable[[], float] = time.time
    serialize: Callable[[T], bytes] = field(default=lambda payload: repr(payload).encode())
    _secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _issued: dict[str, tuple[T, float]] = field(default_factory=dict)  # nonce -> (payload, expires_at)
    _used: set[str] = field(default_factory=set)

    def expires_at(self) -> float:
        return self.clock() + self.ttl_s

    def mint(self, payload: T, expires_at: float | None = None) -> str:
        self.prune()
        nonce = secrets.token_hex(8)  # hex: no "-" inside, easy for a model to copy exactly
        self._issued[nonce] = (payload, self.expires_at() if expires_at is None else expires_at)
        return f"{self.prefix}-{nonce}-{self._sign(nonce, payload)}"

    def peek(self, token: str) -> T:
        """The payload of a valid, unused, unexpired id (without using it)."""
        nonce, signature = self._split(token)
        entry = self._issued.get(nonce)
        if entry is None:
            raise TokenError(TokenProblem.UNKNOWN)
        payload, expires_at = entry
        if not hmac.compare_digest(signature, self._sign(nonce, payload)):
            raise TokenError(TokenProblem.ALTERED)
        if nonce in self._used:
            raise TokenError(TokenProblem.USED)
        if self.clock() >= expires_at:
            raise TokenError(TokenProblem.EXPIRED)
        return payload

    def redeem(self, token: str) -> T:
        """Validate and mark used, atomically (no await between check and mark)."""
        payload = self.peek(token)
        self._used.add(self._split(token)[0])
        return payload

    def release(self, token: str) -> None:
        """Give a redeemed id back (when nothing was done with it)."""
        self._used.discard(self._split(token)[0])

    def prune(self) -> None:
        """Forget expired ids (used ones too: once expired they fail as unknown, still refused)."""
        now = self.clock()
        for nonce in [n for n, (_, expires_at) in self._issued.items() if now >= expires_at]:
            del self._issued[nonce]
            self._used.discard(nonce)

    def __len__(self) -> int:
        return len(self._issued)

    def _sign(self, nonce: str, payload: T) -> str:
        message = nonce.encode() + b"\x00" + self.serialize(payload)
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:20]

    def _split(self, token: str) -> tuple[str, str]:
        head = f"{self.prefix}-"
        nonce, _, signature = token[len(head) :].rpartition("-") if token.startswith(head) else ("", "", "")
        if not nonce or not signature:
            raise TokenError(TokenProblem.MALFORMED)
        return nonce, signature

    def key_id(self, key: ApiKey | None) -> str:
        """A per-process fingerprint of the key itself (not its source): binds a yes to one account."""
        if key is None:
            return "no-key"
        return hmac.new(self._secret, b"key\x00" + key.reveal().encode(), hashlib.sha256).hexdigest()[:24]


@dataclass(frozen=True)
class Proposal:
    """One action that needs a human yes: what the human is shown, and what the yes binds."""

    tool: str
    arguments: Mapping[str, Any]  # the tool's own arguments, without the token itself
    text: str  # confirm_text: names everything that matters (instance, price, key, deadline, ...)

    def binding(self, key_id: str) -> str:
        canonical = json.dumps(
            {"tool": self.tool, "arguments": dict(self.arguments), "text": self.text, "key": key_id},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


class ConsentRequired(UserFacingError):
    """Nothing was done: the human must say yes to ``proposal.text`` first (confirm-token path)."""

    def __init__(self, message: str, *, text: str, token: str) -> None:
        super().__init__(message)
        self.text = text
        self.token = token


class ConsentRefused(UserFacingError):
    """The human said no, or could not be asked in the way this server requires."""


_TOKEN_WORDS = {
    TokenProblem.MALFORMED: "is not a confirm token",
    TokenProblem.UNKNOWN: "was not issued by this server (or the server restarted)",
    TokenProblem.ALTERED: "has been altered",
    TokenProblem.USED: "was already used (one yes, one action)",
    TokenProblem.EXPIRED: "has expired",
}


class ConsentBook:
    """Confirm tokens for clients without forms: bound to tool, arguments, text and API key."""

    PREFIX = "ct"

    def __init__(self, ttl_s: float = 600.0, clock: Callable[[], float] = time.time) -> None:
        self._tokens: TokenBook[str] = TokenBook(self.PREFIX, ttl_s=ttl_s, clock=clock, serialize=str.encode)

    @property
    def ttl_s(self) -> float:
        return self._tokens.ttl_s

    def key_id(self, key: ApiKey | None) -> str:
        return self._tokens.key_id(key)

    def ask(self, proposal: Proposal, key: ApiKey | None, why: str = "") -> ConsentRequired:
        """The refusal that carries a fresh token: show ``text``, then call again with the token."""
        token = self._tokens.mint(proposal.binding(self.key_id(key)))
        minutes = max(1, round(self._tokens.ttl_s / 60))
        return ConsentRequired(
            f"{why}Nothing was done yet: this needs the user's yes. Show the user exactly this and ask "
            f'yes or no: "{proposal.text}" Only after a clear yes, call {proposal.tool} again with the '
            f'same arguments plus confirm_token="{token}" (valid {minutes} min, once).',
            text=proposal.text,
            token=token,
        )

    def redeem(self, token: str, proposal: Proposal, key: ApiKey | None) -> None:
        """Accept ``token`` for exactly this proposal on this key, once; else raise a fresh ask."""
        try:
            binding = self._tokens.peek(token)
        except TokenError as exc:
            raise self.ask(proposal, key, f"That confirm_token {_TOKEN_WORDS[exc.problem]}. ") from None
        if not hmac.compare_digest(binding, proposal.binding(self.key_id(key))):
            raise self.ask(
                proposal,
                key,
                "That confirm_token was given for a different action, different arguments, a different "
                "description or another API key. ",
            )
        self._tokens.redeem(token)

    def __len__(self) -> int:
        return len(self._tokens)
