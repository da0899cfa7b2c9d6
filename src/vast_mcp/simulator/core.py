"""``Simulator``: state + clock + faults + request log, and the request pipeline.

The pipeline is transport-neutral (``handle(Request) -> Response``); ``serve()``
puts the stdlib HTTP server in front of it. The admin API under ``/_sim/`` calls
the same methods tests call from Python.
"""

from __future__ import annotations

import hmac
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from .api import Call, Route, find_route
from .clock import SimClock
from .errors import ApiError
from .faults import FaultContext, Faults, parse_admin_fault
from .http import SimHTTPServer
from .inventory import DEFAULT_ALLOCATED_STORAGE, offer_view
from .query import OfferFieldTypes
from .state import Instance, SimState, Timings
from .wire import Request, Response, json_response, text_response

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
T = TypeVar("T")


@dataclass
class RecordedRequest:
    """One request the simulator received (admin calls under ``/_sim/`` are not recorded)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int | None = None  # None when the connection was dropped without an answer
    dropped: bool = False
    #: Lower-case header names; the Authorization value is reduced to its scheme.
    headers: dict[str, str] = field(default_factory=dict)


class RateLimiter:
    """Token bucket per API key: ``capacity`` requests, refilled evenly over ``period`` seconds.

    ``JITTER`` would let a request through that many seconds before its token is due.
    It is 0: nothing shows the real API is lenient, and a lenient simulator would hide a
    client that paces itself too close to the budget.
    """

    JITTER = 0.0

    def __init__(self, capacity: int, period: float) -> None:
        if capacity < 1 or period <= 0:
            raise ValueError("rate_limit must be (requests >= 1, seconds > 0)")
        self.capacity = capacity
        self.rate = capacity / period
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time)
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """None when allowed; otherwise the seconds until a request would be."""
        with self._lock:
            now = time.monotonic()
            tokens, then = self._buckets.get(key, (float(self.capacity), now))
            tokens = min(float(self.capacity), tokens + (now - then) * self.rate)
            if tokens >= 1.0 - self.JITTER * self.rate:
                self._buckets[key] = (max(tokens - 1.0, 0.0), now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def answer(self, wait: float) -> Response:
        # Same headers and body as the recorded real 429 (bundles-429-nikitatsym.json).
        retry = max(1, math.ceil(wait))
        limit = float(self.capacity)
        return json_response(
            429,
            {
                "error": "HTTPTooManyRequests",
                "msg": "API requests too frequent",
                "retry_after": retry,
                "limit": limit,
                "remaining": 0,
            },
            {
                "x-ratelimit-limit": str(limit),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(int(time.time() + retry)),
                "retry-after": str(retry),
            },
        )


#: What a scoped instance key hears when it asks for anything beyond its own instance.
SCOPED_KEY_MSG = "This instance key may only read, start, stop or destroy its own instance."


def _auth_error(status: int, msg: str) -> ApiError:
    return ApiError(status, {"success": False, "error": "auth_error", "msg": msg})


_LOGS = re.compile(r"^/_sim/logs/([0-9a-f]+)\.log$")


class Simulator:
    """A stateful, fault-injecting Vast.ai API simulator (see DESIGN.md §7)."""

    def __init__(
        self,
        api_key: str = "sim-key",
        seed: int = 0,
        offer_count: int = 300,
        speed: float = 0.0,
        *,
        rate_limit: tuple[int, float] | None = None,
        timings: Timings | None = None,
        start: float | None = None,
        username: str | None = "simuser",
        email: str | None = "sim-user@example.com",
        credit: float = 100.0,
    ) -> None:
        self.api_key = api_key
        self.clock = SimClock(speed, start)
        self.state = SimState(
            clock=self.clock,
            seed=seed,
            offer_count=offer_count,
            timings=timings or Timings(),
            username=username,
            email=email,
            credit=credit,
        )
        self.faults = Faults(self.state)
        self.rate_limiter = RateLimiter(*rate_limit) if rate_limit else None
        self._requests: list[RecordedRequest] = []
        now = self.clock.now()
        sample = offer_view(self.state.offers[0], DEFAULT_ALLOCATED_STORAGE, now) if self.state.offers else {}
        self._offer_types = OfferFieldTypes(sample)
        self._server: SimHTTPServer | None = None
        self.url: str | None = None

    # ------------------------------------------------------------ python API

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every recorded request, oldest first."""
        with self.state.lock:
            return list(self._requests)

    def count(self, method: str, path: str) -> int:
        """How many recorded requests have this method and a path matching the ``path`` regex."""
        rx = re.compile(path)
        return sum(1 for r in self.requests if r.method == method.upper() and rx.search(r.path))

    def reset_requests(self) -> None:
        with self.state.lock:
            self._requests.clear()

    def instance_key(self, instance_id: int) -> str:
        """The scoped key the create answer gave as ``instance_api_key`` (also for a destroyed instance)."""
        with self.state.lock:
            inst = self.state.instances.get(instance_id) or self.state.destroyed.get(instance_id)
            if inst is None:
                raise KeyError(f"no instance {instance_id}")
            return inst.instance_api_key

    def _on_instance(self, instance_id: int, act: Callable[[Instance, float], T]) -> T:
        """Run ``act(instance, now)`` on a live instance under the state lock."""
        with self.state.lock:
            inst = self.state.instances.get(instance_id)
            if inst is None:
                raise KeyError(f"no live instance {instance_id}")
            return act(inst, self.clock.now())

    def instance_ssh_keys(self, instance_id: int) -> list[str]:
        """Public keys installed on a live instance (account keys at create + attached ones)."""
        return self._on_instance(instance_id, lambda inst, now: [k["public_key"] for k in inst.ssh_keys])

    def relet(self, instance_id: int) -> None:
        """A stopped instance's GPUs go to another renter: a start answers HTTP 200
        ``success: false`` "... state change queued." and happens at :meth:`free`."""
        self._on_instance(instance_id, self.state.relet)

    def free(self, instance_id: int) -> None:
        """The re-let GPUs are free again: a queued start happens now (GPU billing starts)."""
        self._on_instance(instance_id, self.state.free)

    def set_min_bid(self, instance_id: int, price: float) -> None:
        """The instance's machine's minimum bid ($/h) moves: a bid rental below it is outbid
        (stopped by Vast, storage still billed); one at or above it runs again."""
        self._on_instance(instance_id, lambda inst, now: self.state.set_min_bid(inst, price, now))

    def raise_price(self, instance_id: int, factor: float) -> int:
        """The host raises an on-demand instance's GPU and disk prices by ``factor`` (> 1): a
        pending increase to accept or reject; returns its ``pending_price_increase_id``."""
        return self._on_instance(instance_id, lambda inst, now: self.state.raise_price(inst, factor, now))

    def summary(self) -> dict[str, Any]:
        summary = self.state.summary(self.clock.now())
        summary["faults"] = self.faults.describe()
        summary["requests"] = len(self.requests)
        return summary

    # ------------------------------------------------------------ serving

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start the HTTP server thread and the sshd loop; returns the base URL."""
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the simulator only binds loopback, not {host!r}")
        if self._server is not None:
            raise RuntimeError("already serving")
        server = SimHTTPServer((host, port), self.handle)
        self._server = server
        self.url = server.base_url
        self.state.start_serving()
        server.start()
        return self.url

    def stop(self) -> None:
        """Stop serving: HTTP server, open connections, every sshd port. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self.state.stop_serving()
        self.url = None

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        url = self.start(host, port)
        try:
            yield url
        finally:
            self.stop()

    # ------------------------------------------------------------ pipeline

    def handle(self, req: Request) -> Response:
        """Answer one request (the HTTP layer delivers it, honouring ``drop``/``delay``)."""
        if req.path.startswith("/_sim/") and not _LOGS.match(req.path):
            try:
                return self._admin(req)
            except (ValueError, TypeError, KeyError) as exc:
                return json_response(400, {"success": False, "error": "invalid_args", "msg": str(exc)})
        headers = {k: v for k, v in req.headers.items()}
        if "authorization" in headers:
            headers["authorization"] = headers["authorization"].split(" ", 1)[0] + " <redacted>"
        record = RecordedRequest(req.method, req.path, dict(req.query), req.body, headers=headers)
        with self.state.lock:
            self._requests.append(record)
        try:
            resp = self._answer(req)
        except ApiError as exc:
            resp = json_response(exc.status, exc.body)
        record.status = None if resp.drop else resp.status
        record.dropped = resp.drop
        return resp

    def _answer(self, req: Request) -> Response:
        logs = _LOGS.match(req.path)
        if logs is not None:
            with self.state.lock:
                text = self.state.logs.get(logs.group(1))
            if text is None or req.method != "GET":
                return text_response(404, "Not Found")
            return text_response(200, text)

        now = self.clock.now()
        ctx = FaultContext(req, self.state, now, offer_types=self._offer_types)
        resp = self.faults.fire("respond", ctx)
        if resp is None:
            resp = self._route(req, ctx)
        ctx.response = resp
        self.faults.fire("after", ctx)
        return resp

    def _route(self, req: Request, ctx: FaultContext) -> Response:
        found = find_route(req.method, req.path)
        if found is None:
            raise ApiError(
                404, {"success": False, "error": "not_found", "msg": f"No API endpoint {req.method} {req.path}"}
            )
        route, args = found
        if route.bad_key_status is not None:
            key = self._authenticate(req, route, args, route.bad_key_status)
            wait = self.rate_limiter.take(key) if self.rate_limiter is not None else None
            if self.rate_limiter is not None and wait is not None:
                return self.rate_limiter.answer(wait)
        with self.state.lock:
            self.state.sync_listeners(ctx.now)
            self.faults.fire("before", ctx)
            try:
                return route.handler(Call(req, self.state, self.faults, ctx.now, args, self._offer_types))
            except ApiError as exc:
                return json_response(exc.status, exc.body)

    def _authenticate(self, req: Request, route: Route, args: tuple[str, ...], bad_key_status: int) -> str:
        """The caller's key: the account key, or a live instance's scoped key this route allows."""
        # Only the header counts: a key in the URL query string is deliberately not accepted.
        scheme, _, key = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise _auth_error(403, "This action requires login.")
        key = key.strip()
        if hmac.compare_digest(key.encode(), self.api_key.encode()):
            return key
        with self.state.lock:
            inst = self.state.instance_for_key(key)
        if inst is None:
            raise _auth_error(bad_key_status, "Invalid user key")
        if not route.allows_instance_key(inst.id, args, req.body):
            raise _auth_error(401, SCOPED_KEY_MSG)
        return key

    # ------------------------------------------------------------ admin API

    def _admin(self, req: Request) -> Response:
        body = req.body if isinstance(req.body, dict) else {}
        admin: dict[tuple[str, str], Callable[[], Any]] = {
            ("POST", "/_sim/clock/advance"): lambda: {"now": self.clock.advance(float(body["seconds"]))},
            ("GET", "/_sim/clock"): lambda: {"now": self.clock.now(), "speed": self.clock.speed},
            ("POST", "/_sim/faults"): lambda: {"fault": self._inject(req.body).describe()},
            ("GET", "/_sim/faults"): self.faults.describe,
            ("DELETE", "/_sim/faults"): lambda: self.faults.clear(),
            ("GET", "/_sim/requests"): lambda: {"requests": [asdict(r) for r in self.requests]},
            ("POST", "/_sim/reset_requests"): self.reset_requests,
            ("GET", "/_sim/state"): self.summary,
            ("POST", "/_sim/instance_key"): lambda: {"instance_api_key": self.instance_key(int(body["instance_id"]))},
            ("POST", "/_sim/relet"): lambda: self.relet(int(body["instance_id"])),
            ("POST", "/_sim/free"): lambda: self.free(int(body["instance_id"])),
            ("POST", "/_sim/set_min_bid"): lambda: self.set_min_bid(int(body["instance_id"]), float(body["price"])),
            ("POST", "/_sim/raise_price"): lambda: {
                "pending_price_increase_id": self.raise_price(int(body["instance_id"]), float(body["factor"]))
            },
        }
        action = admin.get((req.method, req.path.rstrip("/")))
        if action is None:
            return json_response(404, {"success": False, "error": "not_found", "msg": f"No admin endpoint {req.path}"})
        result = action()
        payload = {"success": True}
        if isinstance(result, dict):
            payload.update(result)
        return json_response(200, payload)

    def _inject(self, payload: Any) -> Any:
        kind, kwargs = parse_admin_fault(payload)
        return self.faults.inject(kind, **kwargs)
