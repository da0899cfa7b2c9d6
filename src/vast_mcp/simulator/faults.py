"""Fault injection: one table of kinds, each with the hook where it acts and its handler.

``inject(kind, method=..., path=..., times=N, **params)`` arms a fault for the next
``N`` requests whose method (regex, full match, case-insensitive) and path (regex,
search) match. Hooks, in request order:

- ``respond``: answer instead of the endpoint (the request never reached the app);
- ``before``: change state just before the endpoint runs (offer taken, price moved);
- ``create``: applied to the instance a matching create makes (or at once to
  ``instance_id`` when given);
- ``after``: change how the endpoint's answer is delivered (dropped, delayed).

Kinds (params, default selection): ``rate_limit`` (retry_after_header, retry_after_body,
plain_text, detail); ``search_quota`` (searches); ``server_error`` (status 500/502/503/504,
html); ``empty_body``; ``malformed_body`` (html); ``slow`` (seconds); ``offer_taken``
(creates); ``price_move`` (factor, offer_ids; searches, or creates when the path says
so); ``drop_after_commit`` (creates); ``instance_exit``, ``stuck_unknown`` (instance_id;
creates); ``slow_ssh`` (seconds, instance_id; creates): the sshd accepts at once but
sends its banner ``seconds`` later.

What the live API is known to do (reference §11):
``odd_records`` (every; searches, instance reads and the v1 list, any method): every
``every``-th record of the answer (from the first) gets ``null`` in numeric fields
(``dlperf``, ``cuda_max_good``, ``inet_up``, ``num_gpus``, ``dph_base``, ...),
``external: null``, ``verification: "deverified"``, whitespace around
``public_ipaddr`` (``" 127.0.0.1\n"``) and, on instances, ``ports`` as a list of host
port numbers; only the answer changes, never the state. ``oci_failure`` (creates): the
instance dies halfway through loading, ``actual_status`` exited and ``status_msg``
"OCI runtime create failed: ...". ``pending_null`` (seconds, default 10; creates):
``actual_status`` and ``status_msg`` read ``null`` for the first ``seconds`` after the
create. ``redirect`` (location, required; status 301/302/307/308, default 307):
answers that status with an empty body and ``Location: <location>``; the test gives
the location (keep it loopback or a host nobody follows).

Without a method/path the others match any request outside ``/_sim/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .inventory import Offer
from .query import OfferFieldTypes, QueryError, offer_matches, parse_offer_query
from .state import Instance, SimState
from .wire import JSON, Request, Response, json_response, text_response

SEARCH_PATHS = r"^/api/v0/(bundles|search/asks)/$"
CREATE_PATH = r"^/api/v0/asks/\d+/$"
#: Answers that carry offer or instance records.
RECORD_PATHS = r"^/api/v0/(bundles|search/asks|instances/\d+)/$|^/api/v1/instances/$"


@dataclass
class Fault:
    kind: str
    method: str | None
    path: str | None
    remaining: int
    params: dict[str, Any]
    hits: int = 0

    def matches(self, req: Request) -> bool:
        if self.method is not None and not re.fullmatch(self.method, req.method, re.IGNORECASE):
            return False
        return self.path is None or re.search(self.path, req.path) is not None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "remaining": self.remaining,
            "hits": self.hits,
            "params": self.params,
        }


@dataclass
class FaultContext:
    req: Request
    state: SimState
    now: float
    instance: Instance | None = None  # the instance a create just made
    response: Response | None = None  # the endpoint's answer (``after`` hook)
    offer_types: OfferFieldTypes | None = None


Handler = Callable[[Fault, FaultContext], Response | None]


# ------------------------------------------------------------------ handlers


def _seconds_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _rate_limit(f: Fault, ctx: FaultContext) -> Response:
    p = f.params
    if p["plain_text"]:
        resp = text_response(429, "API requests too frequent endpoint threshold=2.0", "text/plain")
    elif p["detail"]:
        resp = json_response(429, {"detail": "API requests too frequent endpoint threshold=4.5"})
    else:
        body: dict[str, Any] = {
            "success": False,
            "error": "rate_limit_exceeded",
            "msg": "API requests too frequent endpoint threshold=2.0",
        }
        if p["retry_after_body"] is not None:
            body["retry_after"] = p["retry_after_body"]
        resp = json_response(429, body)
    if p["retry_after_header"] is not None:
        resp.headers["Retry-After"] = _seconds_text(p["retry_after_header"])
    return resp


def _search_quota(f: Fault, ctx: FaultContext) -> Response:
    today = datetime.fromtimestamp(ctx.now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    reset = int((today + timedelta(days=1)).timestamp())
    return json_response(
        429,
        {"success": False, "error": "search_quota_exceeded", "msg": "Daily search quota exceeded"},
        {"X-RateLimit-Reset": str(reset)},
    )


_GATEWAY_TEXT = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def _server_error(f: Fault, ctx: FaultContext) -> Response:
    status = int(f.params["status"])
    reason = _GATEWAY_TEXT[status]
    if f.params["html"]:
        page = f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        page += f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        return text_response(status, page, "text/html")
    return json_response(status, {"success": False, "error": "server_error", "msg": reason})


def _empty_body(f: Fault, ctx: FaultContext) -> Response:
    return Response(200, b"", JSON)


def _malformed_body(f: Fault, ctx: FaultContext) -> Response:
    if f.params["html"]:
        return text_response(200, "<html><body><h1>Vast.ai</h1><p>Loading...</p></body></html>", "text/html")
    return Response(200, b'{"offers": [', JSON)


def _offer_from_path(ctx: FaultContext) -> Offer | None:
    m = re.search(r"/asks/(\d+)/", ctx.req.path)
    return ctx.state.offers_by_id.get(int(m.group(1))) if m else None


def _offer_taken(f: Fault, ctx: FaultContext) -> None:
    offer = _offer_from_path(ctx)
    if offer is not None:
        offer.rented = True  # by another renter: no instance of ours holds it


def _price_move(f: Fault, ctx: FaultContext) -> None:
    factor = float(f.params["factor"])
    only = f.params["offer_ids"]
    if re.search(CREATE_PATH, ctx.req.path):
        offer = _offer_from_path(ctx)
        moved = [offer] if offer is not None else []
    else:
        body = ctx.req.body
        if isinstance(body, dict) and isinstance(body.get("q"), dict):
            body = body["q"]
        if not isinstance(body, dict) or ctx.offer_types is None:
            return
        try:
            q = parse_offer_query(body, ctx.offer_types)
        except QueryError:
            return
        moved = [o for o in ctx.state.offers if offer_matches(o, q.clauses, q.storage_gb, ctx.now)]
    for offer in moved:
        if only is None or offer.id in only:
            offer.dph_base *= factor


def _instance_fault(f: Fault, ctx: FaultContext) -> None:
    if ctx.instance is not None:
        ctx.state.apply_instance_fault(ctx.instance, f.kind, f.params, ctx.now)


def _drop(f: Fault, ctx: FaultContext) -> None:
    if ctx.response is not None:
        ctx.response.drop = True


def _slow(f: Fault, ctx: FaultContext) -> None:
    if ctx.response is not None:
        ctx.response.delay += float(f.params["seconds"])


#: Numeric fields ``odd_records`` nulls wherever a record has them.
ODD_NULL_FIELDS = (
    "dlperf",
    "dlperf_per_dphtotal",
    "cuda_max_good",
    "inet_up",
    "inet_down",
    "num_gpus",
    "dph_base",
    "gpu_ram",
    "cpu_ram",
    "disk_bw",
    "pcie_bw",
    "total_flops",
)


def _make_odd(record: dict[str, Any]) -> None:
    for name in ODD_NULL_FIELDS:
        if name in record:
            record[name] = None
    for name, value in (("external", None), ("verification", "deverified")):
        if name in record:
            record[name] = value
    if isinstance(record.get("public_ipaddr"), str):
        record["public_ipaddr"] = f" {record['public_ipaddr']}\n"  # still loopback inside
    ports = record.get("ports")
    if isinstance(ports, dict):
        record["ports"] = [int(m["HostPort"]) for maps in ports.values() for m in maps]


def _odd_records(f: Fault, ctx: FaultContext) -> None:
    resp = ctx.response
    if resp is None or resp.status != 200 or resp.content_type != JSON:
        return
    try:
        payload = json.loads(resp.body)
    except ValueError:  # another fault already spoiled the body
        return
    if not isinstance(payload, dict):
        return
    records: list[Any] = []
    for key in ("offers", "instances"):
        value = payload.get(key)
        records += value if isinstance(value, list) else [value]
    for record in records[:: int(f.params["every"])]:
        if isinstance(record, dict):
            _make_odd(record)
    resp.body = json.dumps(payload).encode()


def _redirect(f: Fault, ctx: FaultContext) -> Response:
    return Response(int(f.params["status"]), b"", None, {"Location": f.params["location"]})


def _check_server_error(params: dict[str, Any]) -> None:
    if int(params["status"]) not in _GATEWAY_TEXT:
        raise ValueError("server_error status must be one of 500, 502, 503, 504")


def _check_redirect(params: dict[str, Any]) -> None:
    if int(params["status"]) not in (301, 302, 307, 308):
        raise ValueError("redirect status must be one of 301, 302, 307, 308")
    if not isinstance(params["location"], str) or not params["location"]:
        raise ValueError("redirect needs a location")


def _check_every(params: dict[str, Any]) -> None:
    if int(params["every"]) < 1:
        raise ValueError("every must be >= 1")


@dataclass(frozen=True)
class Kind:
    hook: str
    handler: Handler
    params: dict[str, Any] = field(default_factory=dict)  # allowed params and their defaults
    method: str | None = None  # default request selection
    path: str | None = None
    check: Callable[[dict[str, Any]], None] | None = None  # raises ValueError on bad params


#: Every fault kind. ``params`` lists what ``inject`` accepts (anything else is a typo).
KINDS: dict[str, Kind] = {
    "rate_limit": Kind(
        "respond",
        _rate_limit,
        {"retry_after_header": None, "retry_after_body": None, "plain_text": False, "detail": False},
    ),
    "search_quota": Kind("respond", _search_quota, path=SEARCH_PATHS),
    "server_error": Kind("respond", _server_error, {"status": 500, "html": False}, check=_check_server_error),
    "empty_body": Kind("respond", _empty_body),
    "malformed_body": Kind("respond", _malformed_body, {"html": False}),
    "offer_taken": Kind("before", _offer_taken, method="PUT", path=CREATE_PATH),
    "price_move": Kind("before", _price_move, {"factor": 1.5, "offer_ids": None}, path=SEARCH_PATHS),
    "instance_exit": Kind("create", _instance_fault, {"instance_id": None}, method="PUT", path=CREATE_PATH),
    "stuck_unknown": Kind("create", _instance_fault, {"instance_id": None}, method="PUT", path=CREATE_PATH),
    "slow_ssh": Kind("create", _instance_fault, {"instance_id": None, "seconds": 5.0}, method="PUT", path=CREATE_PATH),
    "drop_after_commit": Kind("after", _drop, method="PUT", path=CREATE_PATH),
    "slow": Kind("after", _slow, {"seconds": 5.0}),
    "odd_records": Kind("after", _odd_records, {"every": 1}, path=RECORD_PATHS, check=_check_every),
    "oci_failure": Kind("create", _instance_fault, method="PUT", path=CREATE_PATH),
    "pending_null": Kind("create", _instance_fault, {"seconds": 10.0}, method="PUT", path=CREATE_PATH),
    "redirect": Kind("respond", _redirect, {"location": None, "status": 307}, check=_check_redirect),
}


class Faults:
    """Armed faults and how often each kind has fired; shares the state's lock."""

    def __init__(self, state: SimState) -> None:
        self._state = state
        self._armed: list[Fault] = []
        self.injected: dict[str, int] = {}

    def inject(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        **params: Any,
    ) -> Fault:
        """Arm ``kind`` for the next ``times`` matching requests (see the module doc)."""
        spec = KINDS.get(kind)
        if spec is None:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(KINDS))}")
        unknown = set(params) - set(spec.params)
        if unknown:
            raise ValueError(f"fault {kind!r} takes no parameter(s) {sorted(unknown)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        if spec.check is not None:
            spec.check({**spec.params, **params})
        for pattern in (method, path):
            if pattern is not None:
                re.compile(pattern)
        fault = Fault(
            kind=kind,
            method=method if method is not None else spec.method,
            path=path if path is not None else spec.path,
            remaining=times,
            params={**spec.params, **params},
        )
        with self._state.lock:
            target = fault.params.get("instance_id")
            if spec.hook == "create" and target is not None:
                inst = self._state.instances.get(int(target))
                if inst is None:
                    raise ValueError(f"no live instance {target}")
                self._state.apply_instance_fault(inst, kind, fault.params, self._state.clock.now())
                fault.remaining = 0
                fault.hits = 1
                self.injected[kind] = self.injected.get(kind, 0) + 1
                return fault
            self._armed.append(fault)
        return fault

    def fire(self, hook: str, ctx: FaultContext) -> Response | None:
        """Run every armed fault of ``hook`` that matches ``ctx.req``; the first answer wins."""
        with self._state.lock:
            for fault in list(self._armed):
                spec = KINDS[fault.kind]
                if spec.hook != hook or not fault.matches(ctx.req):
                    continue
                fault.remaining -= 1
                fault.hits += 1
                self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
                if fault.remaining <= 0:
                    self._armed.remove(fault)
                answer = spec.handler(fault, ctx)
                if answer is not None:
                    return answer
        return None

    def armed(self) -> list[dict[str, Any]]:
        with self._state.lock:
            return [f.describe() for f in self._armed]

    def clear(self) -> None:
        with self._state.lock:
            self._armed.clear()

    def describe(self) -> dict[str, Any]:
        with self._state.lock:
            return {"armed": self.armed(), "injected": dict(self.injected)}


def parse_admin_fault(payload: Any) -> tuple[str, dict[str, Any]]:
    """Split a ``POST /_sim/faults`` body into (kind, inject kwargs)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("kind"), str):
        raise ValueError('body must be a JSON object with a "kind"')
    kwargs = dict(payload)
    kind = kwargs.pop("kind")
    if "times" in kwargs:
        kwargs["times"] = int(kwargs["times"])
    return kind, kwargs
