"""The Vast REST endpoints: one routing table, one small function per endpoint.

Paths, bodies, answers and error shapes follow reference/vast-api.md (what CLI
1.9.1 sends and the real API answers). Handlers run under the state lock with one
``now`` per request and raise ``ApiError`` for error answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any

from .errors import ApiError, invalid_args, invalid_request
from .faults import FaultContext, Faults
from .inventory import offer_view
from .query import (
    Clause,
    OfferFieldTypes,
    QueryError,
    compare,
    parse_clauses,
    parse_limit,
    parse_offer_query,
    search_offers,
)
from .state import QUEUED_MSG, Instance, SimState, decode_token, encode_token, valid_public_key
from .wire import Request, Response, json_response


@dataclass
class Call:
    """One request as an endpoint sees it."""

    req: Request
    state: SimState
    faults: Faults
    now: float
    args: tuple[str, ...]
    offer_types: OfferFieldTypes

    def body_object(self, error: Callable[[str], ApiError] = invalid_args) -> dict[str, Any]:
        body = self.req.body
        if body is None:
            return {}
        if not isinstance(body, dict) or not self.req.body_is_json:
            raise error("Invalid json body")
        return body

    def instance(self) -> Instance:
        return self.state.get_instance(int(self.args[0]))

    def query_json(self, name: str, default: Any) -> Any:
        """A query parameter the client JSON-encoded (reference §1)."""
        raw = self.req.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            return json.loads(raw)
        except ValueError:
            raise invalid_request(f"Error in query parameters: {name} is not valid JSON") from None

    def query_flag(self, name: str) -> bool:
        return self.req.query.get(name, "").strip().lower() in ("true", "1", "yes")


def ok(payload: Any = None) -> Response:
    return json_response(200, {"success": True} if payload is None else payload)


# ------------------------------------------------------------------ offers


def _offers_answer(call: Call, query_body: dict[str, Any], select_cols: Any = None) -> Response:
    try:
        q = parse_offer_query(query_body, call.offer_types)
    except QueryError as exc:
        raise invalid_request(str(exc)) from exc
    bid = q.offer_type == "bid"
    offers = [offer_view(o, q.storage_gb, call.now, bid=bid) for o in search_offers(call.state.offers, q, call.now)]
    if isinstance(select_cols, list) and select_cols and "*" not in select_cols:
        offers = [{k: v for k, v in o.items() if k in select_cols} for o in offers]
    return json_response(200, {"offers": offers})


def search_bundles(call: Call) -> Response:
    return _offers_answer(call, call.body_object(invalid_request))


def search_asks(call: Call) -> Response:
    body = call.body_object(invalid_request)
    q = body.get("q", {})
    if not isinstance(q, dict):
        raise invalid_request("q must be a query object")
    return _offers_answer(call, q, body.get("select_cols"))


def gpu_names(call: Call) -> Response:
    return json_response(200, {"gpu_names": sorted({o.static["gpu_name"] for o in call.state.offers})})


# --------------------------------------------------------------- instances


def create_instance(call: Call) -> Response:
    inst = call.state.create_instance(int(call.args[0]), call.body_object(), call.now)
    call.faults.fire("create", FaultContext(call.req, call.state, call.now, instance=inst))
    return ok({"success": True, "new_contract": inst.id, "instance_api_key": inst.instance_api_key})


def show_instance(call: Call) -> Response:
    inst = call.state.instances.get(int(call.args[0]))
    view = call.state.instance_view(inst, call.now) if inst is not None else None
    return json_response(200, {"instances": view})


#: Columns the v1 list can filter and order on (computed ones such as dph_total are refused).
_LIST_COLUMNS: dict[str, type] = {
    "id": int,
    "actual_status": str,
    "intended_status": str,
    "cur_state": str,
    "next_state": str,
    "label": str,
    "gpu_name": str,
    "verification": str,
    "machine_id": int,
    "host_id": int,
    "image_uuid": str,
    "start_date": float,
    "geolocation": str,
    "template_id": int,
    "template_hash_id": str,
    "is_bid": bool,
    "disk_space": float,
}
MAX_LIST_LIMIT = 25


def _cmp_values(a: list[Any], b: list[Any], desc: list[bool]) -> int:
    for va, vb, d in zip(a, b, desc, strict=True):
        if va == vb:
            continue
        if va is None:  # nulls last in either direction
            return 1
        if vb is None:
            return -1
        c = -1 if va < vb else 1
        return -c if d else c
    return 0


def list_instances(call: Call) -> Response:
    filters = call.query_json("select_filters", {})
    order_by = call.query_json("order_by", [{"col": "id", "dir": "asc"}])
    if not isinstance(filters, dict) or not isinstance(order_by, list):
        raise invalid_request("Error in query parameters: select_filters must be an object, order_by a list")
    try:
        clauses: list[Clause] = parse_clauses(filters, _LIST_COLUMNS.get, strict=True)
        limit = parse_limit(call.req.query.get("limit"), MAX_LIST_LIMIT, MAX_LIST_LIMIT, 5)
    except QueryError as exc:
        raise invalid_request(str(exc)) from exc
    order: list[tuple[str, bool]] = []
    for entry in order_by:
        col = entry.get("col") if isinstance(entry, dict) else None
        direction = str(entry.get("dir", "asc")).lower() if isinstance(entry, dict) else ""
        if col not in _LIST_COLUMNS or direction not in ("asc", "desc"):
            raise invalid_request(f"Error in query parameters: invalid order_by entry {entry!r}")
        order.append((col, direction == "desc"))
    if "id" not in [c for c, _ in order]:
        order.append(("id", False))  # the server always breaks ties on id

    views = [call.state.instance_view(i, call.now) for i in call.state.instances.values()]
    rows = [v for v in views if all(compare(c.op, v.get(c.field), c.value) for c in clauses)]
    cols = [c for c, _ in order]
    desc = [d for _, d in order]
    rows.sort(key=cmp_to_key(lambda a, b: _cmp_values([a[c] for c in cols], [b[c] for c in cols], desc)))
    label_counts: dict[str, int] = {}
    for row in rows:
        key = row["label"] or ""
        label_counts[key] = label_counts.get(key, 0) + 1

    after = call.req.query.get("after_token")
    start = 0
    if after:
        values = decode_token(after).get("values")
        if not isinstance(values, dict) or set(values) != set(cols):
            raise ApiError(400, {"success": False, "error": "invalid_token", "msg": "Invalid pagination token."})
        mark = [values[c] for c in cols]
        start = next((i for i, r in enumerate(rows) if _cmp_values([r[c] for c in cols], mark, desc) > 0), len(rows))
    page = rows[start : start + limit]
    more = start + limit < len(rows)
    next_token = encode_token({"values": {c: page[-1][c] for c in cols}}) if more and page else None

    select_cols = call.query_json("select_cols", ["*"])
    if isinstance(select_cols, list) and select_cols and "*" not in select_cols:
        page = [{k: r[k] for k in select_cols if k in r} for r in page]
    return ok(
        {
            "success": True,
            "instances_found": len(page),
            "total_instances": len(rows),
            "label_counts": label_counts,
            "next_token": next_token,
            "instances": page,
        }
    )


def instance_filters(call: Call) -> Response:
    combos: list[dict[str, Any]] = []
    for inst in call.state.instances.values():
        combo = {
            "actual_status": inst.status(call.now, call.state.timings),
            "verification": inst.machine["verification"],
            "gpu_name": inst.machine["gpu_name"],
        }
        if combo not in combos:
            combos.append(combo)
    return ok({"success": True, "filters": combos})


def deprecated_list(call: Call) -> Response:
    raise ApiError(
        410,
        {
            "success": False,
            "error": "deprecated_endpoint",
            "msg": "/api/v0/instances/ is deprecated. Use /api/v1/instances/ instead.",
        },
    )


def _apply_update(call: Call, inst: Instance, body: dict[str, Any]) -> bool:
    """Apply a label and/or state change; False when a start had to be queued."""
    if "state" not in body and "label" not in body:
        raise invalid_args("Nothing to update: send state or label.")
    state = body.get("state")
    if "state" in body and state not in ("running", "stopped"):
        raise invalid_args(f"Invalid state {state!r}: use running or stopped.")
    label = body.get("label")
    if "label" in body and label is not None and (not isinstance(label, str) or len(label) > 1024):
        raise invalid_args("label must be a string of at most 1024 characters.")
    if "label" in body:
        inst.label = label
    return not isinstance(state, str) or call.state.set_state(inst, state, call.now)


def _update_answer(done: bool) -> Response:
    # A queued start is HTTP 200 with success false (reference §11), not an error status.
    return ok() if done else json_response(200, {"success": False, "msg": QUEUED_MSG})


def update_instance(call: Call) -> Response:
    return _update_answer(_apply_update(call, call.instance(), call.body_object()))


def bulk_update(call: Call) -> Response:
    body = call.body_object()
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids:
        raise invalid_args("ids must be a non-empty list of instance ids.")
    targets = [call.state.get_instance(int(i)) for i in ids]
    change = {k: v for k, v in body.items() if k != "ids"}
    done = [_apply_update(call, inst, change) for inst in targets]  # every one, queued or not
    return _update_answer(all(done))


def destroy_instance(call: Call) -> Response:
    call.state.destroy(call.instance(), call.now)
    return ok()


def bulk_destroy(call: Call) -> Response:
    ids = call.body_object().get("instance_ids")
    if not isinstance(ids, list) or not ids:
        raise invalid_args("instance_ids must be a non-empty list of instance ids.")
    for inst in [call.state.get_instance(int(i)) for i in ids]:
        call.state.destroy(inst, call.now)
    return ok()


def _lifecycle(kind: str) -> Callable[[Call], Response]:
    def handler(call: Call) -> Response:
        inst = call.state.instances.get(int(call.args[0]))
        if inst is None:  # documented as 400 invalid_args for these two endpoints
            raise invalid_args(f"No such instance {call.args[0]}.")
        call.state.reboot(inst, call.now, kind)
        return ok()

    return handler


def change_bid(call: Call) -> Response:
    inst = call.instance()
    price = call.body_object().get("price")
    if isinstance(price, bool) or not isinstance(price, int | float) or price < 0.001:
        raise invalid_args("Please set a bid price >= 0.001.")
    call.state.change_bid(inst, float(price), call.now)
    return ok()


def pending_price_increases(call: Call) -> Response:
    rows = [call.state.price_increase_view(r) for r in call.state.price_increases.values()]
    return ok({"success": True, "count": len(rows), "truncated": False, "pending_price_increases": rows})


def _settle_price_increase(accept: bool) -> Callable[[Call], Response]:
    def handler(call: Call) -> Response:
        body = call.body_object()
        increase_id = body.get("pending_price_increase_id")
        # The backend forbids any other key (CLI 1.9.1 vastai/api/price_increase.py).
        if (
            set(body) != {"pending_price_increase_id"}
            or isinstance(increase_id, bool)
            or not isinstance(increase_id, int)
        ):
            raise invalid_args('Send exactly {"pending_price_increase_id": <int>}.')
        row = call.state.settle_price_increase(increase_id, accept, call.now)
        return ok({"success": True, "pending_price_increase_id": row.id, "contract_id": row.instance_id})

    return handler


def request_logs(call: Call) -> Response:
    inst = call.state.instances.get(int(call.args[0]))
    if inst is None:
        raise ApiError(404, {"error": "invalid_id", "msg": "Invalid instance id."})
    token = call.state.request_logs(inst, call.body_object(), call.now)
    return ok(
        {
            "success": True,
            "result_url": f"{call.req.base_url}/_sim/logs/{token}.log",
            "msg": "Logs are being uploaded; fetch result_url.",
        }
    )


# --------------------------------------------------------------- ssh keys


def _no_ssh_key() -> ApiError:
    return ApiError(
        400,
        {
            "success": False,
            "error": "no_ssh_key",
            "msg": "Please provide a public ssh key (ssh-ed25519, ssh-rsa or ecdsa-...).",
        },
    )


def list_keys(call: Call) -> Response:
    return json_response(200, [dict(k) for k in call.state.account.ssh_keys])


def create_key(call: Call) -> Response:
    key = call.body_object().get("ssh_key")
    if not valid_public_key(key):
        raise _no_ssh_key()
    return ok({"success": True, "key": dict(call.state.add_account_key(key, call.now))})


def _account_key(call: Call) -> dict[str, Any]:
    key_id = int(call.args[0])
    for entry in call.state.account.ssh_keys:
        if entry["id"] == key_id:
            return entry
    raise ApiError(400, {"success": False, "error": "no_ssh_key", "msg": f"No ssh key with id {key_id}."})


def update_key(call: Call) -> Response:
    entry = _account_key(call)
    key = call.body_object().get("ssh_key")
    if not valid_public_key(key):
        raise _no_ssh_key()
    entry["public_key"] = key.strip()
    return ok({"success": True, "key": dict(entry)})


def delete_key(call: Call) -> Response:
    entry = _account_key(call)
    call.state.account.ssh_keys.remove(entry)
    return ok()


def attach_key(call: Call) -> Response:
    inst = call.instance()
    key = call.body_object().get("ssh_key")
    if not valid_public_key(key):
        raise _no_ssh_key()
    call.state.attach_key(inst, key)
    return ok({"success": True, "msg": "SSH key added to instance."})


def instance_keys(call: Call) -> Response:
    keys = [{"id": k["id"], "name": None, "public_key": k["public_key"]} for k in call.instance().ssh_keys]
    return ok({"success": True, "ssh_keys": json.dumps(keys)})


def detach_key(call: Call) -> Response:
    inst = call.instance()
    key_id = int(call.args[1])
    before = len(inst.ssh_keys)
    inst.ssh_keys = [k for k in inst.ssh_keys if k["id"] != key_id]
    if len(inst.ssh_keys) == before:
        raise ApiError(
            404, {"success": False, "error": "no_such_ssh_key", "msg": f"No ssh key {key_id} on this instance."}
        )
    return ok({"success": True, "msg": "SSH key removed from instance."})


# ------------------------------------------------------------ user/billing


def current_user(call: Call) -> Response:
    if "owner" in call.req.query:  # the real endpoint rejects owner=me (reference §4.11)
        raise invalid_args("Unexpected query parameter owner.")
    return json_response(200, call.state.user_view(call.now))


def _page(call: Call, rows: list[dict[str, Any]], default_limit: int, max_limit: int) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: r["start"], reverse=call.query_flag("latest_first"))
    try:
        limit = parse_limit(call.req.query.get("limit"), default_limit, max_limit, default_limit)
    except QueryError as exc:
        raise invalid_args(str(exc)) from exc
    offset = 0
    token = call.req.query.get("after_token")
    if token:
        offset = decode_token(token).get("offset", -1)
        if not isinstance(offset, int) or offset < 0:
            raise ApiError(400, {"success": False, "error": "invalid_token", "msg": "Invalid pagination token."})
    page = rows[offset : offset + limit]
    more = offset + limit < len(rows)
    return {
        "success": True,
        "count": len(page),
        "total": len(rows),
        "next_token": encode_token({"offset": offset + limit}) if more else None,
        "results": page,
    }


def _range(filters: Any, col: str) -> tuple[float, float] | None:
    spec = filters.get(col) if isinstance(filters, dict) else None
    if not isinstance(spec, dict):
        return None
    try:
        return float(spec["gte"]), float(spec["lte"])
    except (KeyError, TypeError, ValueError):
        return None


def charges(call: Call) -> Response:
    filters = call.query_json("select_filters", {})
    window = _range(filters, "day")
    if window is None:
        raise invalid_args("Must provide both 'day' gte and lte filters")
    if call.req.query.get("format", "table") not in ("table", "tree"):
        raise invalid_args("format must be table or tree")
    # `day` is day-granular: the range covers whole UTC days from gte's day through lte's day.
    lo = window[0] - window[0] % 86400
    hi = window[1] - window[1] % 86400 + 86400
    rows = call.state.charges(lo, hi, call.now)
    kinds = filters.get("type", {}).get("in") if isinstance(filters.get("type"), dict) else None
    if isinstance(kinds, list):
        rows = [r for r in rows if r["type"] in kinds]
    return ok(_page(call, rows, 20, 500))


def invoices(call: Call) -> Response:
    filters = call.query_json("select_filters", {})
    window = _range(filters, "when")
    if window is None:
        return json_response(
            200,
            {
                "success": False,
                "error": "Invalid date range",
                "count": 0,
                "total": 0,
                "results": [],
                "next_token": None,
            },
        )
    rows = [r for r in call.state.invoices() if window[0] <= r["start"] <= window[1]]
    services = filters.get("service", {}).get("in") if isinstance(filters.get("service"), dict) else None
    if isinstance(services, list):
        rows = [r for r in rows if r["metadata"]["service"] in services]
    return ok(_page(call, rows, 60, 100))


# ------------------------------------------------------------------ routes


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[Call], Response]
    #: Status for a wrong key (None: no auth). The real API answers 404 on some endpoints.
    bad_key_status: int | None = 401
    #: An instance's scoped key may use this route on its own instance (first path argument).
    scoped: bool = False

    def allows_instance_key(self, instance_id: int, args: tuple[str, ...], body: Any) -> bool:
        """Whether the scoped key of ``instance_id`` may make this request.

        It may read, change the state of (a body with ``state`` and nothing else) and
        destroy its own instance; nothing else.
        """
        if not self.scoped or int(args[0]) != instance_id:
            return False
        return self.method != "PUT" or (isinstance(body, dict) and set(body) == {"state"})


def _r(
    method: str,
    path: str,
    handler: Callable[[Call], Response],
    bad_key_status: int | None = 401,
    *,
    scoped: bool = False,
) -> Route:
    return Route(method, re.compile(f"^{path}$"), handler, bad_key_status, scoped)


_ID = r"(\d+)"
ROUTES: tuple[Route, ...] = (
    _r("POST", "/api/v0/bundles/", search_bundles, 404),
    _r("PUT", "/api/v0/search/asks/", search_asks, 404),
    _r("GET", "/api/v0/gpu_names/unique/", gpu_names, None),
    _r("PUT", f"/api/v0/asks/{_ID}/", create_instance),
    _r("GET", "/api/v1/instances/", list_instances, 404),  # seen live: 404 auth_error (§11)
    _r("GET", "/api/v0/instances/", deprecated_list),
    _r("PUT", "/api/v0/instances/", bulk_update),
    _r("DELETE", "/api/v0/instances/", bulk_destroy),
    _r("GET", "/api/v0/instances/filters/", instance_filters),
    _r("GET", f"/api/v0/instances/{_ID}/", show_instance, scoped=True),
    _r("PUT", f"/api/v0/instances/{_ID}/", update_instance, scoped=True),
    _r("DELETE", f"/api/v0/instances/{_ID}/", destroy_instance, scoped=True),
    _r("PUT", f"/api/v0/instances/reboot/{_ID}/", _lifecycle("reboot")),
    _r("PUT", f"/api/v0/instances/recycle/{_ID}/", _lifecycle("recycle")),
    _r("PUT", f"/api/v0/instances/request_logs/{_ID}/", request_logs),
    _r("PUT", f"/api/v0/instances/bid_price/{_ID}/", change_bid),
    _r("GET", "/api/v0/instances/pending-price-increases/", pending_price_increases),
    _r("PUT", "/api/v0/instances/accept-price-increase/", _settle_price_increase(accept=True)),
    _r("PUT", "/api/v0/instances/reject-price-increase/", _settle_price_increase(accept=False)),
    _r("GET", "/api/v0/ssh/", list_keys),
    _r("POST", "/api/v0/ssh/", create_key),
    _r("PUT", f"/api/v0/ssh/{_ID}/", update_key),
    _r("DELETE", f"/api/v0/ssh/{_ID}/", delete_key),
    _r("GET", f"/api/v0/instances/{_ID}/ssh/", instance_keys),
    _r("POST", f"/api/v0/instances/{_ID}/ssh/", attach_key),
    _r("DELETE", f"/api/v0/instances/{_ID}/ssh/{_ID}/", detach_key),
    _r("GET", "/api/v0/users/current/?", current_user),
    _r("GET", "/api/v0/charges/", charges, 404),
    _r("GET", "/api/v1/invoices/", invoices, 404),
)


def find_route(method: str, path: str) -> tuple[Route, tuple[str, ...]] | None:
    """The route for ``method path``; raises 405 when only the method is wrong."""
    path_known = False
    for route in ROUTES:
        m = route.pattern.match(path)
        if m is None:
            continue
        path_known = True
        if route.method == method:
            return route, m.groups()
    if path_known:
        raise ApiError(405, {"success": False, "error": "method_not_allowed", "msg": f"{method} not allowed here."})
    return None
