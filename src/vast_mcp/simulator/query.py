"""Filter and order evaluation: the offer search body and the v1 instance list filters.

A filter is ``field -> {op: value}`` with ops eq/neq/gt/gte/lt/lte/in/notin. Values may
arrive as strings (the CLI sends numbers as ``"2"``); they are coerced to the field's type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .inventory import DEFAULT_ALLOCATED_STORAGE, Offer, offer_value

OPS = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "in", "notin"})
#: Spellings some clients use for the same operators.
_OP_ALIASES = {"ne": "neq", "noteq": "neq", "nin": "notin", "=": "eq", "==": "eq", "!=": "neq"}

#: Offer search keys that are not filters.
_SEARCH_META = frozenset(
    {
        "order",
        "type",
        "limit",
        "allocated_storage",
        "disable_bundling",
        "extra_ids",
        "target_reliability",
        "has_avx_check",
        "gpu_option",
        "show_incompatible",
        "sort_option",
        "template_id",
        "select_cols",
    }
)
#: Names the CLI maps client-side; accepted here too for clients that send them raw.
OFFER_ALIASES = {
    "cuda_vers": "cuda_max_good",
    "dph": "dph_total",
    "dlperf_usd": "dlperf_per_dphtotal",
    "flops_usd": "flops_per_dphtotal",
    "display_active": "gpu_display_active",
    "ubuntu_version": "os_version",
}
#: Results when the body has no ``limit`` (the real default is undocumented), and the cap:
#: the live API returns at most 64 offers whatever ``limit`` says (reference §11).
DEFAULT_OFFER_LIMIT = 64
MAX_OFFER_LIMIT = 64


class QueryError(ValueError):
    """A filter, order or limit the server rejects (answered as 400 invalid_request)."""


def coerce(value: Any, kind: type) -> Any:
    """Convert a filter value to ``kind`` the lenient way the API does ("2" -> 2)."""
    if value is None:
        return None
    try:
        if kind is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("true", "1", "yes"):
                    return True
                if low in ("false", "0", "no"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind is int:
            if isinstance(value, str):
                return int(float(value))
            return int(value)
        if kind is float:
            return float(value)
        if kind is str:
            return value if isinstance(value, str) else json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"Invalid value {value!r} for a {kind.__name__} field") from exc
    return value


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def compare(op: str, actual: Any, expected: Any) -> bool:
    """Evaluate ``actual <op> expected``; strings compare case-insensitively, nulls only equal nulls."""
    if op in ("in", "notin"):
        members = [_fold(v) for v in expected]
        found = _fold(actual) in members
        return found if op == "in" else not found
    if op == "eq":
        return bool(_fold(actual) == _fold(expected))
    if op == "neq":
        return bool(_fold(actual) != _fold(expected))
    if actual is None or expected is None:
        return False
    try:
        if op == "gt":
            return bool(actual > expected)
        if op == "gte":
            return bool(actual >= expected)
        if op == "lt":
            return bool(actual < expected)
        return bool(actual <= expected)
    except TypeError:
        return False


def normalize_op(op: str) -> str:
    op = _OP_ALIASES.get(op, op)
    if op not in OPS:
        raise QueryError(f"Invalid operator '{op}'")
    return op


@dataclass(frozen=True)
class Clause:
    field: str
    op: str
    value: Any  # already coerced; a list for in/notin


def parse_clauses(filters: dict[str, Any], types: Callable[[str], type | None], *, strict: bool) -> list[Clause]:
    """Turn ``{field: {op: value}}`` into clauses.

    ``types(field)`` gives the field's Python type, or None when the field is unknown:
    unknown fields are skipped (offer search) or rejected (``strict``, instance list).
    A bare value (``{"rentable": true}``) means ``eq``.
    """
    clauses: list[Clause] = []
    for name, spec in filters.items():
        kind = types(name)
        if kind is None:
            if strict:
                raise QueryError(f"Error in query parameters: {name} is not a valid search key")
            continue
        ops = spec if isinstance(spec, dict) else {"eq": spec}
        for raw_op, raw_value in ops.items():
            op = normalize_op(str(raw_op))
            if op in ("in", "notin"):
                values = raw_value if isinstance(raw_value, list) else [raw_value]
                clauses.append(Clause(name, op, [coerce(v, kind) for v in values]))
            else:
                clauses.append(Clause(name, op, coerce(raw_value, kind)))
    return clauses


def parse_limit(raw: Any, default: int, maximum: int, floor: int) -> int:
    if raw is None:
        return default
    try:
        value = int(float(raw))
    except (TypeError, ValueError) as exc:
        raise QueryError(f"Invalid limit {raw!r}") from exc
    if value <= 0:
        return floor
    return min(value, maximum)


def sort_rows(rows: list[Any], order: Sequence[tuple[str, bool]], key: Callable[[Any, str], Any]) -> None:
    """Stable multi-key sort in place; ``order`` is (field, descending); nulls always last."""
    for name, descending in reversed(order):
        present = [r for r in rows if key(r, name) is not None]
        absent = [r for r in rows if key(r, name) is None]
        present.sort(key=lambda r, n=name: key(r, n), reverse=descending)  # type: ignore[misc]
        rows[:] = present + absent


# ---------------------------------------------------------------- offer search


@dataclass
class OfferQuery:
    clauses: list[Clause] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=lambda: [("score", True)])
    limit: int = DEFAULT_OFFER_LIMIT
    storage_gb: float = DEFAULT_ALLOCATED_STORAGE
    offer_type: str = "on-demand"


#: Filter fields that are computed from other offer fields.
_VIRTUAL: dict[str, type] = {"verified": bool, "datacenter": bool}


class OfferFieldTypes:
    """Types of the searchable offer fields, learned from a sample offer view."""

    def __init__(self, sample: dict[str, Any]) -> None:
        self._types: dict[str, type] = {}
        for name, value in sample.items():
            if isinstance(value, bool | int | float | str):
                self._types[name] = type(value)
        # Nullable in real data; their type when present.
        self._types.update({"external": bool, "start_date": float, "hostname": str, "cluster_id": int})
        self._types.update(_VIRTUAL)

    def __call__(self, name: str) -> type | None:
        return self._types.get(OFFER_ALIASES.get(name, name))


def parse_offer_query(body: dict[str, Any], types: OfferFieldTypes) -> OfferQuery:
    filters = {OFFER_ALIASES.get(k, k): v for k, v in body.items() if k not in _SEARCH_META}
    q = OfferQuery(clauses=parse_clauses(filters, types, strict=False))
    raw_order = body.get("order")
    if raw_order is not None:
        if not isinstance(raw_order, list):
            raise QueryError("order must be a list of [field, direction]")
        order: list[tuple[str, bool]] = []
        for item in raw_order:
            if isinstance(item, str):
                item = [item, "asc"]
            if not isinstance(item, list) or not item or not isinstance(item[0], str):
                raise QueryError(f"Invalid order entry {item!r}")
            name = OFFER_ALIASES.get(item[0], item[0])
            direction = str(item[1]).lower() if len(item) > 1 else "asc"
            if direction not in ("asc", "desc"):
                raise QueryError(f"Invalid order direction {item[1]!r}")
            if types(name) is not None:
                order.append((name, direction == "desc"))
        q.order = order
    q.limit = parse_limit(body.get("limit"), DEFAULT_OFFER_LIMIT, MAX_OFFER_LIMIT, 1)
    raw_storage = body.get("allocated_storage")
    if raw_storage is not None:
        try:
            q.storage_gb = float(raw_storage)
        except (TypeError, ValueError) as exc:
            raise QueryError(f"Invalid allocated_storage {raw_storage!r}") from exc
        if q.storage_gb < 0:
            raise QueryError("allocated_storage must be >= 0")
    q.offer_type = str(body.get("type") or "on-demand")
    return q


def _country(geolocation: Any) -> str | None:
    if not isinstance(geolocation, str):
        return None
    return geolocation.rsplit(",", 1)[-1].strip()


def offer_field(offer: Offer, name: str, storage_gb: float, now: float) -> Any:
    if name == "verified":
        return offer.static["verification"] == "verified"
    if name == "datacenter":
        return offer.static["hosting_type"] == 1
    try:
        return offer_value(offer, name, storage_gb, now)
    except KeyError:
        return None


def _numeric(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(isinstance(v, str) and v.isdigit() for v in values)


def offer_matches(offer: Offer, clauses: Iterable[Clause], storage_gb: float, now: float) -> bool:
    for c in clauses:
        if c.field == "id":
            # Recorded real behaviour: filtering offers on `id` returns nothing;
            # `ask_contract_id` is the key that works.
            return False
        if c.field == "geolocation":
            actual: Any = _country(offer.static["geolocation"])
        elif c.field == "driver_version" and _numeric(c.value):
            # The CLI turns "535.86.05" into 535086005; compare that with driver_vers.
            actual = offer.static["driver_vers"]
            c = Clause(c.field, c.op, [int(v) for v in c.value] if isinstance(c.value, list) else int(c.value))
        else:
            actual = offer_field(offer, c.field, storage_gb, now)
        if not compare(c.op, actual, c.value):
            return False
    return True


def search_offers(offers: Iterable[Offer], q: OfferQuery, now: float) -> list[Offer]:
    """Matching offers, ordered, limited."""
    hits = [o for o in offers if offer_matches(o, q.clauses, q.storage_gb, now)]
    sort_rows(hits, q.order, lambda o, n: offer_field(o, n, q.storage_gb, now))
    return hits[: q.limit]
