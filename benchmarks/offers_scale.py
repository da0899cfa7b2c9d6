"""Offer handling at scale: parse, filter and rank 10,000 offers with the project's code path.

The payload is what the simulator's `POST /api/v0/bundles/` handler would answer for
10,000 offers: the same `offer_view()` objects, serialised by the same `json.dumps`.
(Its HTTP API caps a search at 1,000 offers, like Vast; one real 1,000-offer answer is
fetched over loopback to check the built payload has the same fields.)

The project's path (`OffersApi.search`): `json.loads` of the body (the transport), then
`TypeAdapter(list[Offer]).validate_python`, then `vast_mcp.vast.query.rank` (local
re-filtering + sort). Reported per 1,000 offers and as a ratio to a bare `json.loads` of
the same bytes; medians of several runs. Alternatives are timed for comparison.

    uv run python benchmarks/offers_scale.py [--offers 10000] [--runs 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel, TypeAdapter

from _common import header, median, verdict
from vast_mcp.provisioning.plan import DEFAULT_DISK_GB, DEFAULT_GPU
from vast_mcp.simulator import Simulator
from vast_mcp.simulator.inventory import offer_view
from vast_mcp.vast.models import Offer
from vast_mcp.vast.query import OfferFilters, build_query, rank

SIM_KEY = "sim-key-offers-scale"
DISK_GB = 64.0  # priced into every offer (allocated_storage), as the dialog's default disk
TARGET_RATIO = 3.0
OFFERS = TypeAdapter(list[Offer])  # the adapter vast_mcp.vast.offers uses


class Bundles(BaseModel):
    offers: list[Offer]


def build_payload(count: int) -> tuple[bytes, int]:
    sim = Simulator(api_key=SIM_KEY, seed=0, offer_count=count, speed=0.0)
    now = sim.clock.now()
    payload = json.dumps({"offers": [offer_view(o, DISK_GB, now) for o in sim.state.offers]}).encode()
    # Cross-check against a real answer of the simulator's HTTP API (capped at 1,000 offers).
    loose = OfferFilters.model_validate({"gpu_name": None, "verified": None, "disk_gb": DISK_GB})
    query = build_query(loose, limit=1000)
    with sim.serve() as url:
        answer = httpx.post(
            f"{url}/api/v0/bundles/", json=query, headers={"Authorization": f"Bearer {SIM_KEY}"}, timeout=60
        )
    answer.raise_for_status()
    served = answer.json()["offers"]
    built = json.loads(payload)["offers"]
    if set(served[0]) != set(built[0]):
        raise RuntimeError("the built payload's offers differ in fields from the served ones")
    per_offer_served = len(answer.content) / len(served)
    return payload, round(per_offer_served)


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    fn()  # warm-up
    times = []
    result = None
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    header(f"offers at scale: parse + filter + rank {args.offers:,} offers")
    payload, served_per_offer = build_payload(args.offers)
    n = args.offers
    per_k = 1000 / n
    print(
        f"  payload: {len(payload):,} B ({len(payload) / n:.0f} B per offer; the simulator's HTTP answer: "
        f"{served_per_offer} B per offer), median of {args.runs} runs after a warm-up"
    )
    data = json.loads(payload)
    raw = data["offers"]
    loose = OfferFilters.model_validate({"gpu_name": None, "verified": None, "disk_gb": DISK_GB})
    # The create dialog's defaults: RTX 4090, verified, 64 GB.
    dialog = OfferFilters.model_validate({"gpu_name": DEFAULT_GPU, "disk_gb": DEFAULT_DISK_GB})
    offers = OFFERS.validate_python(raw)

    t_loads, _ = timed(lambda: json.loads(payload), args.runs)
    t_validate, _ = timed(lambda: OFFERS.validate_python(raw), args.runs)
    t_rank_loose, ranked_loose = timed(lambda: rank(offers, loose, "price"), args.runs)
    t_rank_dialog, ranked_dialog = timed(lambda: rank(offers, dialog, "price"), args.runs)
    t_path, _ = timed(lambda: rank(OFFERS.validate_python(json.loads(payload)["offers"]), loose, "price"), args.runs)
    t_validate_json, _ = timed(lambda: Bundles.model_validate_json(payload), args.runs)
    t_loop, _ = timed(lambda: [Offer.model_validate(o) for o in raw], args.runs)

    def row(label: str, seconds: float, note: str = "") -> None:
        print(
            f"    {label:<52} {seconds * 1000:8.1f} ms  {seconds * 1000 * per_k:6.2f} ms/1k  "
            f"{seconds / t_loads:5.2f}x json.loads{note}"
        )

    print("  the project's path, step by step:")
    row("json.loads (the transport)", t_loads)
    row("TypeAdapter(list[Offer]).validate_python", t_validate)
    row(f"rank, loose filters ({len(ranked_loose):,} valid offers sorted)", t_rank_loose)
    row(f"rank, dialog defaults ({len(ranked_dialog):,} valid)", t_rank_dialog)
    row("whole path: loads + validate + rank (loose), one go", t_path)
    ratio = t_path / t_loads
    print(
        f"  parse+filter+rank = {t_path * 1000 * per_k:.2f} ms per 1,000 offers; {ratio:.2f}x json.loads; "
        f"target <= {TARGET_RATIO:g}x: {verdict(ratio <= TARGET_RATIO)}"
    )
    print("  alternatives:")
    row("Bundles.model_validate_json(bytes) (parse in pydantic-core)", t_validate_json)
    row("[Offer.model_validate(o) for o in raw] (search_offers' loop)", t_loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
