"""The one place where Vast requests are sent.

Auth header, pacing, retries, error mapping and the request history all live
here, so every API area behaves the same way (DESIGN §6):

* safe (repeatable) requests are retried on 429 (honouring ``Retry-After`` and a
  body ``retry_after``), on 5xx and on connection errors, with jittered backoff;
* a non-repeatable request (a create) is sent exactly once; if its answer is
  lost it raises :class:`OutcomeUnknownError` so the caller reconciles by reading;
* ``search_quota_exceeded`` is never retried;
* an empty or unparsable body is retried once (safe requests), then saved to a
  private temp file with the key redacted;
* one shared token bucket paces all requests so normal use never draws a 429;
* any ``auth_error`` body is a key problem, whatever the status (401, 403, even 404);
* a redirect is followed only to an ``https://`` host under ``vast.ai`` (the key goes
  nowhere else), for at most a few hops;
* secrets in answers (``instance_api_key``, ``users/current``'s ``api_key``) are dropped
  on arrival, and anything odd in an answer is noted in :attr:`VastHttp.oddities`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from vast_mcp import __version__
from vast_mcp.credentials import ApiKey, redact, redact_known
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
from vast_mcp.vast.models import Oddity, VastModel, parse_record, parse_records

if TYPE_CHECKING:  # httpx is imported on the first request: MCP clients spawn this server per session
    import httpx

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://console.vast.ai"
USER_AGENT = f"vast-mcp/{__version__}"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 3
# Secrets an answer may carry; nothing after the transport ever sees them.
SECRET_ANSWER_FIELDS = ("api_key", "instance_api_key")
# Secrets a request body may carry (a registry login); the request history keeps "***" instead.
SECRET_BODY_FIELDS = ("image_login",)
Sleep = Callable[[float], Awaitable[None]]
M = TypeVar("M", bound=VastModel)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard safe requests try. Unsafe requests are never retried."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_wait: float = 60.0  # longest server-requested wait we sit out before giving up


class RateBudget:
    """A token bucket shared by every request of one client.

    Vast's real 429 shows about 5 requests per 10 s per account, so that is the
    default; a 429 empties the bucket until the server's wait has passed.
    """

    # Pace a little under the server's budget: requests reach Vast with jitter, and a
    # request that arrives a few ms "early" by the server's clock must not tip it over.
    MARGIN = 1.1

    def __init__(self, capacity: int = 5, period: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.capacity = capacity
        self.rate = capacity / (period * self.MARGIN)
        self._clock = clock
        self._tokens = float(capacity)
        self._stamp = clock()
        self._not_before = 0.0
        self._lock = anyio.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, sleep: Sleep) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._not_before:
                    await sleep(self._not_before - now)
                    continue
                self._refill(now)
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await sleep((1 - self._tokens) / self.rate)

    def penalize(self, seconds: float) -> None:
        now = self._clock()
        self._refill(now)
        self._tokens = 0.0
        self._not_before = max(self._not_before, now + seconds)


@dataclass(frozen=True)
class RequestRecord:
    """One request as it went out (never the key), for `vast://requests/recent`."""

    at: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int | None
    outcome: str
    duration_ms: int


@dataclass
class _Attempt:
    response: httpx.Response | None = None
    error: Exception | None = None  # the network failed
    refusal: RedirectRefusedError | None = None  # a redirect we would not follow
    data: Any = None
    parsed: bool = False


@dataclass
class VastHttp:
    """Sends requests to Vast. One per server process; the key can be swapped."""

    api_key: ApiKey | None
    base_url: str = DEFAULT_BASE_URL
    timeout: float | httpx.Timeout = 60.0  # seconds per answer; a float connects within min(10 s, it)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    budget: RateBudget | None = field(default_factory=RateBudget)
    transport: httpx.AsyncBaseTransport | None = None
    sleep: Sleep = anyio.sleep
    history: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=50))
    key_problem: str | None = None  # why a configured key could not be used, for the "no key" error
    oddities: deque[Oddity] = field(default_factory=lambda: deque(maxlen=200))  # what answers held unexpectedly
    strict: bool = False  # also note fields a model reads that an answer lacks (`vast-mcp doctor`)
    # httpx event hooks on every exchange, redirect hops included (`vast-mcp doctor` guards and records)
    event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None
    _client: httpx.AsyncClient | None = None
    _open: bool = False

    def open(self) -> VastHttp:
        """What ``async with`` does on entry (nothing is connected before the first request)."""
        self._open = True
        return self

    async def __aenter__(self) -> VastHttp:
        return self.open()

    async def __aexit__(self, *exc: object) -> None:
        self._open = False
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http_client(self) -> httpx.AsyncClient:
        """The one connection pool, built on first use (keeps httpx off the start-up path)."""
        if not self._open:
            raise RuntimeError("VastHttp used outside 'async with'")
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                base_url=self.base_url.rstrip("/"),
                timeout=self._timeout(),
                transport=self.transport,
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                follow_redirects=False,  # followed here, only where the key may go (see _send_once)
                event_hooks=dict(self.event_hooks or {}),
            )
        return self._client

    def _timeout(self) -> httpx.Timeout:
        import httpx

        if isinstance(self.timeout, int | float):
            return httpx.Timeout(float(self.timeout), connect=min(10.0, float(self.timeout)))
        return self.timeout

    # -- public -----------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        safe: bool,
        unsuccessful_ok: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Any:
        """Send one API call and return its parsed JSON body.

        ``safe`` says whether sending it twice is harmless; only then is it retried.
        An HTTP 200 ``success: false`` answer is an error unless ``unsuccessful_ok`` accepts it.
        """
        self._http_client()  # fails outside 'async with'
        if self.api_key is None:
            why = f" ({self.key_problem})" if self.key_problem else ""
            raise AuthError(
                f"No usable Vast API key is configured{why}. Set VAST_API_KEY, run `vast-mcp key set`, "
                "or choose a key file with set_api_key_source.",
                method=method,
                path=path,
            )
        query = _encode_query(params)
        # PUT/POST/DELETE always carry a JSON body, `{}` when empty (as the official CLI does).
        body = json_body if json_body is not None or method == "GET" else {}
        attempts = self.retry.attempts if safe else 1
        bad_body_retried = False
        maybe_applied = False  # an earlier attempt may have reached Vast and taken effect
        attempt_no = 0
        while True:
            attempt_no += 1
            if self.budget is not None:
                await self.budget.acquire(self.sleep)
            started = time.monotonic()
            result = await self._send_once(method, path, query, body)
            self._record(method, path, query, body, result, started)
            if result.refusal is not None:
                raise result.refusal
            response = result.response

            if result.error is not None:
                if not safe:
                    raise self._lost_answer(method, path, result.error)
                maybe_applied = maybe_applied or not _never_sent(result.error)
                if attempt_no < attempts:
                    await self.sleep(self._backoff(attempt_no))
                    continue
                raise VastConnectionError(
                    f"Could not reach Vast at {self.base_url} ({type(result.error).__name__}) "
                    f"after {attempt_no} attempts. Check the network or VAST_URL, then try again.",
                    method=method,
                    path=path,
                ) from None

            assert response is not None
            status = response.status_code
            if status >= 400 and _is_auth_error(response):
                raise self._client_error(response, method, path)  # a key problem, whatever the status
            if status == 429:
                data = _try_json(response)
                if isinstance(data, dict) and data.get("error") == "search_quota_exceeded":
                    raise _quota_error(response, method, path)
                wait = _retry_after(response, data)
                if self.budget is not None:
                    self.budget.penalize(wait if wait is not None else self._backoff(attempt_no))
                if safe and attempt_no < attempts and (wait is None or wait <= self.retry.max_wait):
                    logger.info("Vast rate limit on %s %s; waiting %.1fs", method, path, wait or 0)
                    await self.sleep(wait if wait is not None else self._backoff(attempt_no))
                    continue
                raise _rate_limit_error(wait, method, path, safe)
            if status >= 500:
                if not safe:
                    raise OutcomeUnknownError(
                        f"Vast answered {status} to {method} {path}; the request may or may not have "
                        "taken effect. Check the instance list before doing anything else.",
                        status=status,
                        method=method,
                        path=path,
                    )
                maybe_applied = True
                if attempt_no < attempts:
                    await self.sleep(self._backoff(attempt_no))
                    continue
                raise ServerError(
                    f"Vast failed with HTTP {status} on {method} {path} after {attempt_no} attempts "
                    f"({_detail(_try_json(response), response.text)}). Try again in a minute.",
                    status=status,
                    method=method,
                    path=path,
                )
            if status >= 400:
                error = self._client_error(response, method, path)
                if isinstance(error, NotFoundError):
                    error.after_lost_answer = maybe_applied
                raise error

            if not result.parsed:
                if not safe:
                    raise OutcomeUnknownError(
                        f"Vast answered {method} {path} with an unreadable body; it may have taken "
                        "effect. Check the instance list before doing anything else.",
                        status=status,
                        method=method,
                        path=path,
                    )
                if not bad_body_retried:
                    bad_body_retried = True
                    maybe_applied = True
                    continue
                saved = self._save_bad_body(method, path, response)
                raise BadResponseError(
                    f"Vast answered {method} {path} with an empty or unreadable body twice. "
                    f"The raw answer is saved in {saved} (key redacted). Try again later.",
                    saved_to=saved,
                    status=status,
                    method=method,
                    path=path,
                )
            data = result.data
            unsuccessful = isinstance(data, dict) and data.get("success") is False
            if unsuccessful and (unsuccessful_ok is None or not unsuccessful_ok(data)):
                raise self._failure_in_body(data, status, method, path)
            return data

    async def get_all_pages(
        self, path: str, params: Mapping[str, Any], items_key: str, *, max_pages: int = 40
    ) -> list[Any]:
        """Follow Vast's keyset paging (``next_token`` -> ``after_token``) and collect every item."""
        query = dict(params)
        found: list[Any] = []
        for _ in range(max_pages):
            data = await self.request("GET", path, params=query, safe=True)
            if not isinstance(data, dict):
                self.note(f"GET {path}", "the answer is not an object")
                break
            items = data.get(items_key)
            if isinstance(items, list):
                found.extend(items)
            elif items is not None:
                self.note(f"GET {path}", f"{items_key} is not a list")
            token = data.get("next_token")
            if not token:
                break
            query["after_token"] = token
        return found

    def parse(self, model: type[M], items: Iterable[Any], what: str) -> list[M]:
        """Records as ``model``, tolerantly (see ``models.parse_records``); oddities are noted."""
        records, notes = parse_records(model, items, what, strict=self.strict)
        self._remember(notes)
        return records

    def parse_one(self, model: type[M], record: Any, what: str) -> M | None:
        parsed, notes = parse_record(model, record, what, strict=self.strict)
        self._remember(notes)
        return parsed

    def note(self, where: str, detail: str) -> None:
        """An answer's shape was not what the client expects (it coped)."""
        self._remember([Oddity("shape", where, detail)])

    def _remember(self, notes: Iterable[Oddity]) -> None:
        for oddity in notes:
            logger.info("unexpected in Vast's answer: %s", oddity)
            self.oddities.append(oddity)

    async def fetch_text(self, url: str, *, max_bytes: int = 256_000) -> str:
        """GET a URL Vast handed us (log files) without the Authorization header."""
        import httpx

        self._http_client()  # fails outside 'async with'
        async with httpx.AsyncClient(timeout=self._timeout(), transport=self.transport) as plain:
            for attempt in range(1, 11):
                try:
                    response = await plain.get(url)
                except httpx.HTTPError as exc:
                    raise VastConnectionError(f"Could not fetch the log file ({type(exc).__name__}).") from None
                if response.status_code == 200:
                    return response.content[-max_bytes:].decode("utf-8", "replace")
                # The log is written asynchronously; the official CLI polls for it too.
                await self.sleep(min(0.3 * attempt, 2.0))
        raise VastError("The instance log was not ready in time. Try again in a few seconds.")

    # -- internals ----------------------------------------------------------------

    async def _send_once(self, method: str, path: str, query: dict[str, str], body: Any) -> _Attempt:
        import httpx

        assert self.api_key is not None
        headers = {"Authorization": f"Bearer {self.api_key.reveal()}"}
        client = self._http_client()
        url: str | httpx.URL = path
        params: dict[str, str] | None = query or None
        try:
            for _ in range(MAX_REDIRECTS + 1):
                response = await client.request(method, url, params=params, json=body, headers=headers)
                if response.status_code not in REDIRECT_STATUS:
                    break
                # Checked before the next hop is sent: the key only ever goes to an allowed host.
                target, why_not = _redirect_target(response)
                if target is None:
                    return _Attempt(response=response, refusal=self._refused(method, path, why_not, response))
                url, params = target, None
                if response.status_code == 303:  # "see other": fetch it, do not resend the body
                    method, body = "GET", None
            else:
                why_not = f"more than {MAX_REDIRECTS} redirects"
                return _Attempt(response=response, refusal=self._refused(method, path, why_not, response))
        except httpx.HTTPError as exc:
            return _Attempt(error=exc)
        attempt = _Attempt(response=response)
        if response.status_code < 400:
            try:
                attempt.data = json.loads(response.content) if response.content.strip() else None
                attempt.parsed = response.content.strip() != b""
            except ValueError:
                attempt.parsed = False
            if isinstance(attempt.data, dict):
                for name in SECRET_ANSWER_FIELDS:
                    attempt.data.pop(name, None)
        return attempt

    def _refused(self, method: str, path: str, why_not: str, response: httpx.Response) -> RedirectRefusedError:
        return RedirectRefusedError(
            f"Vast's answer to {method} {path} redirected {why_not}. Only https:// hosts under vast.ai are "
            "followed, so it was not followed and the key was not sent there. Check VAST_URL.",
            status=response.status_code,
            method=method,
            path=path,
        )

    def _backoff(self, attempt_no: int) -> float:
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2.0 ** (attempt_no - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _record(
        self, method: str, path: str, query: dict[str, str], body: Any, result: _Attempt, started: float
    ) -> None:
        status = result.response.status_code if result.response is not None else None
        outcome = type(result.error).__name__ if result.error is not None else str(status)
        if result.refusal is not None:
            outcome = "redirect refused"
        if isinstance(body, dict) and any(name in body for name in SECRET_BODY_FIELDS):
            body = {k: "***" if k in SECRET_BODY_FIELDS and v is not None else v for k, v in body.items()}
        self.history.append(
            RequestRecord(
                at=datetime.now(UTC).isoformat(timespec="seconds"),
                method=method,
                path=path,
                query=query,
                body=body,
                status=status,
                outcome=outcome,
                duration_ms=int((time.monotonic() - started) * 1000),
            )
        )

    def _lost_answer(self, method: str, path: str, error: Exception) -> VastError:
        if _never_sent(error):
            # The connection never opened, so the request cannot have reached Vast.
            return VastConnectionError(
                f"Could not connect to Vast at {self.base_url} ({type(error).__name__}); nothing was "
                "sent. Check the network or VAST_URL, then try again.",
                method=method,
                path=path,
            )
        return OutcomeUnknownError(
            f"The answer to {method} {path} was lost ({type(error).__name__}); the request may have "
            "taken effect. Check the instance list before doing anything else.",
            method=method,
            path=path,
        )

    def _key_hint(self) -> str:
        key = self.api_key
        return "no key" if key is None else f"key from {key.origin}, fingerprint {key.fingerprint}"

    def _client_error(self, response: httpx.Response, method: str, path: str) -> VastError:
        data = _try_json(response)
        return self._failure_in_body(
            data if isinstance(data, dict) else {"msg": _detail(data, response.text)},
            response.status_code,
            method,
            path,
        )

    def _failure_in_body(self, data: dict[str, Any], status: int, method: str, path: str) -> VastError:
        code = str(data.get("error") or "") or None
        detail = _detail(data, "")
        kw: dict[str, Any] = {"status": status, "code": code, "method": method, "path": path}
        if status in (401, 403) or code == "auth_error":
            return AuthError(
                f"Vast refused the API key ({self._key_hint()}): {detail}. Check that the key is valid "
                "and allowed to do this, or pick another key source (set_api_key_source, "
                "`vast-mcp key set`).",
                **kw,
            )
        if "no_such_ask" in f"{code} {detail}" or (status == 410 and code != "deprecated_endpoint"):
            offer_id = data.get("ask_id")
            return OfferUnavailableError(
                f"The offer is no longer available ({detail}). Search again or plan again.",
                offer_id=offer_id if isinstance(offer_id, int) else None,
                **kw,
            )
        if status == 404 or code in {"no_such_instance", "not_found", "invalid_id", "no_such_ssh_key"}:
            return NotFoundError(f"Not found on Vast: {detail.rstrip('.')}. Check the id with list_instances.", **kw)
        if code == "deprecated_endpoint":
            return VastError(f"Vast retired this endpoint: {detail}", **kw)
        return BadRequestError(f"Vast rejected {method} {path}: {detail}. Check the parameters named there.", **kw)

    def _save_bad_body(self, method: str, path: str, response: httpx.Response) -> Path:
        secrets = [self.api_key.reveal()] if self.api_key is not None else []
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items() if k.lower() != "authorization")
        text = f"{method} {path} -> HTTP {response.status_code}\n{headers}\n\n{response.text}"
        fd, name = tempfile.mkstemp(prefix="vast-mcp-response-", suffix=".txt")  # created 0600
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(redact(text, *secrets))
        return Path(name)


def _never_sent(error: Exception) -> bool:
    """The connection never opened, so the request cannot have reached Vast."""
    import httpx

    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)


def _encode_query(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Encode values the way the official CLI does: JSON unless already a string."""
    if not params:
        return {}
    return {
        k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in params.items() if v is not None
    }


def _try_json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _is_auth_error(response: httpx.Response) -> bool:
    data = _try_json(response)
    return isinstance(data, dict) and data.get("error") == "auth_error"


def _redirect_target(response: httpx.Response) -> tuple[httpx.URL | None, str]:
    """Where a redirect may be followed, or None and why it may not.

    (httpx itself rejects a Location it cannot parse, as a broken answer.)
    """
    location = response.headers.get("location")
    if location is None:
        return None, "without saying where to"
    target = response.url.join(location)
    host = target.host
    allowed = target.scheme == "https" and target.port in (None, 443) and not target.userinfo
    if allowed and (host == "vast.ai" or host.endswith(".vast.ai")):
        return target, ""
    return None, f"to {target.scheme}://{host}"


def _detail(data: Any, text: str) -> str:
    """Vast's own words about a failure, secrets redacted before it is cut to length."""
    if isinstance(data, dict):
        for key in ("msg", "message", "detail", "error"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return redact_known(value)[:300]
    text = " ".join(text.split())
    return redact_known(text)[:300] if text else "no detail given"


def _retry_after(response: httpx.Response, data: Any) -> float | None:
    candidates: list[Any] = [response.headers.get("retry-after")]
    if isinstance(data, dict):
        candidates.append(data.get("retry_after"))
    waits: list[float] = []
    for value in candidates:
        try:
            waits.append(float(value))
        except (TypeError, ValueError):
            continue
    return max(waits) if waits else None


def _rate_limit_error(wait: float | None, method: str, path: str, safe: bool) -> RateLimitError:
    when = f"in {wait:.0f} s" if wait is not None else "in a few seconds"
    nothing = "" if safe else " Nothing was done."
    return RateLimitError(
        f"Vast is rate limiting requests ({method} {path}).{nothing} Try again {when}.",
        retry_after=wait,
        status=429,
        method=method,
        path=path,
    )


def _quota_error(response: httpx.Response, method: str, path: str) -> SearchQuotaError:
    resets_at = None
    try:
        resets_at = datetime.fromtimestamp(float(response.headers["x-ratelimit-reset"]), UTC)
    except (KeyError, ValueError, OverflowError):
        pass
    when = f" It resets at {resets_at:%Y-%m-%d %H:%M} UTC." if resets_at else " It resets at UTC midnight."
    return SearchQuotaError(
        f"The daily Vast offer-search quota is used up.{when} Reuse the offers you already have until then.",
        resets_at=resets_at,
        status=429,
        code="search_quota_exceeded",
        method=method,
        path=path,
    )
