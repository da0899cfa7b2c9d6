"""Seeded, realistic GPU offers (the marketplace the simulator rents from).

Offer objects carry every key, with the same JSON types, as real offers
(fixtures/real/search_asks-200-jdziat.json). Prices that depend on the search
(``allocated_storage``) or on state (``rented``, moved prices) are computed when
an offer is viewed; everything else is drawn once from ``random.Random(seed)``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

#: Hours in the month Vast uses to turn $/GB/month into $/hour (storage_cost * GB / 720).
HOURS_PER_MONTH = 720.0
#: Server-side default when a search does not say how much disk to price. The real
#: fixtures' storage_total_cost equals storage_cost * 8 / 720 for a query without
#: allocated_storage (the docs also say 8); the CLI always sends 5.0 explicitly.
DEFAULT_ALLOCATED_STORAGE = 8.0
#: Every address the simulator advertises is loopback, so nothing ever leaves the machine.
LOOPBACK = "127.0.0.1"
LOGO = "/static/logos/vastai_small2.png"


class GpuModel(NamedTuple):
    name: str
    vram_mb: int
    compute_cap: int
    tflops: float  # per GPU
    dlperf: float  # per GPU
    mem_bw: float  # GB/s
    max_power: float  # W
    price: float  # typical on-demand $/h per GPU
    weight: float  # share of the marketplace
    min_cuda: float
    multi: tuple[int, ...]  # num_gpus choices


GPU_MODELS: tuple[GpuModel, ...] = (
    GpuModel("RTX 3060", 12288, 860, 12.7, 9.5, 360.0, 170.0, 0.07, 0.6, 11.8, (1, 1, 2)),
    GpuModel("RTX 3090", 24576, 860, 35.6, 27.0, 936.2, 350.0, 0.20, 1.6, 11.8, (1, 1, 2, 4, 8)),
    GpuModel("RTX 4080", 16376, 890, 48.7, 38.0, 716.8, 320.0, 0.17, 0.8, 12.0, (1, 1, 2)),
    GpuModel("RTX 4090", 24564, 890, 82.6, 60.0, 1008.0, 450.0, 0.34, 2.4, 12.0, (1, 1, 1, 2, 4, 8)),
    GpuModel("RTX 5090", 32607, 1200, 108.1, 99.5, 1792.0, 575.0, 0.55, 1.4, 12.8, (1, 1, 2, 4, 8)),
    GpuModel("RTX A6000", 49140, 860, 38.7, 33.0, 768.0, 300.0, 0.45, 0.7, 11.8, (1, 2, 4, 8)),
    GpuModel("L40S", 46068, 890, 91.6, 70.0, 864.0, 350.0, 0.75, 0.6, 12.0, (1, 2, 4, 8)),
    GpuModel("A100 PCIE", 40960, 800, 19.5, 55.0, 1555.0, 250.0, 0.85, 0.5, 11.8, (1, 2, 4, 8)),
    GpuModel("A100 SXM4", 81920, 800, 19.5, 62.0, 2039.0, 400.0, 1.10, 0.6, 11.8, (1, 2, 4, 8, 8)),
    GpuModel("H100 PCIE", 81559, 900, 51.2, 105.0, 2039.0, 350.0, 1.80, 0.4, 12.0, (1, 2, 4, 8)),
    GpuModel("H100 SXM", 81559, 900, 66.9, 130.0, 3350.0, 700.0, 2.20, 0.7, 12.0, (1, 8, 8)),
    GpuModel("Tesla V100", 16384, 700, 15.7, 18.0, 897.0, 300.0, 0.22, 0.3, 11.8, (1, 2, 4, 8)),
)

#: Geolocation display strings as the API shows them ("Region, CC") and a numeric geolocode.
REGIONS: tuple[tuple[str, int], ...] = (
    ("Ohio, US", 9216),
    ("California, US", 9217),
    ("Texas, US", 9218),
    ("Nevada, US", 9219),
    ("Virginia, US", 9220),
    ("Quebec, CA", 8704),
    ("Ontario, CA", 8705),
    ("Bavaria, DE", 17408),
    ("Hesse, DE", 17409),
    ("Netherlands, NL", 33280),
    ("Sweden, SE", 38144),
    ("Poland, PL", 36864),
    ("South Korea, KR", 296503878),
    ("Japan, JP", 57088895),
    ("Taiwan, TW", 41984),
)

_CPUS: tuple[tuple[str, int, float], ...] = (
    ("AMD EPYC 7543 32-Core Processor", 64, 3.7),
    ("AMD EPYC 9334 32-Core Processor", 64, 3.9),
    ("AMD Ryzen 9 7950X 16-Core Processor", 32, 5.1),
    ("AMD Ryzen 7 7800X3D 8-Core Processor", 16, 5.05),
    ("Intel Xeon Gold 6342", 96, 3.5),
    ("Intel Core i9-13900K", 32, 5.8),
)
_MOBOS = ("H12SSL-i", "ROMED8-2T", "B850 EAGLE ICE", "X13SWA-TF", "PRO WS WRX80E-SAGE SE", "GENOAD12M3-2Q")
_DISKS = ("nvme", "Samsung SSD 990 PRO 2TB", "WD_BLACK SN850X 8000GB", "KIOXIA KCD8XPUG7T68")
_CUDA_DRIVERS: tuple[tuple[float, str], ...] = (
    (11.8, "520.61.05"),
    (12.2, "535.183.01"),
    (12.4, "550.127.05"),
    (12.6, "560.35.03"),
    (12.8, "570.124.04"),
    (13.0, "580.105.08"),
)


def driver_vers(version: str) -> int:
    """``"570.124.04"`` -> ``570124004`` (3-digit groups), as the API reports it."""
    major, minor, patch = [*version.split("."), "0", "0"][:3]
    return int(major) * 1_000_000 + int(minor) * 1000 + int(patch)


def storage_hourly(storage_cost: float, gb: float) -> float:
    """$/hour for ``gb`` of disk at ``storage_cost`` $/GB/month."""
    return storage_cost * gb / HOURS_PER_MONTH


@dataclass(slots=True)
class Offer:
    """One marketplace offer. ``static`` holds the public fields that never change."""

    id: int
    static: dict[str, Any]
    dph_base: float
    min_bid: float  # $/h: the machine's current minimum bid for an interruptible rental
    listed: bool  # the host lists it as rentable at all
    rented: bool = False

    @property
    def rentable(self) -> bool:
        return self.listed and not self.rented


def _cost_block(gpu: float, disk: float) -> dict[str, Any]:
    total = gpu + disk
    return {
        "gpuCostPerHour": gpu,
        "diskHour": disk,
        "slaPremiumPerHour": 0.0,
        "totalHour": total,
        "discountTotalHour": 0,
        "discountedTotalPerHour": total,
    }


def _derived(offer: Offer, storage_gb: float) -> dict[str, float]:
    s = offer.static
    stc = storage_hourly(s["storage_cost"], storage_gb)
    total = offer.dph_base + stc
    return {
        "storage_total_cost": stc,
        "dph_total": total,
        # The real offers' dph_total_adj = dph_total + 2 GB/h of download traffic.
        "dph_total_adj": total + 2 * s["inet_down_cost"],
        "discounted_dph_total": total,
        "dlperf_per_dphtotal": s["dlperf"] / total,
        "flops_per_dphtotal": s["total_flops"] / total,
        "vram_costperhour": total / (s["gpu_total_ram"] / 1000.0),
        "score": s["dlperf"] / total * s["reliability"] ** 30,
        "min_bid": offer.min_bid,
    }


def _priced(name: str) -> Callable[[Offer, float, float], Any]:
    return lambda o, gb, now: _derived(o, gb)[name]


#: Fields whose value depends on state or on the search; everything else is in ``Offer.static``.
_DYNAMIC: dict[str, Callable[[Offer, float, float], Any]] = {
    "dph_base": lambda o, gb, now: o.dph_base,
    "rented": lambda o, gb, now: o.rented,
    "rentable": lambda o, gb, now: o.rentable,
    "duration": lambda o, gb, now: o.static["end_date"] - now,
    **{
        name: _priced(name)
        for name in (
            "storage_total_cost",
            "dph_total",
            "dph_total_adj",
            "discounted_dph_total",
            "dlperf_per_dphtotal",
            "flops_per_dphtotal",
            "vram_costperhour",
            "score",
            "min_bid",
        )
    },
}


def offer_value(offer: Offer, field: str, storage_gb: float, now: float) -> Any:
    """The value a search sees for ``field`` (``KeyError`` when the offer has no such field)."""
    dyn = _DYNAMIC.get(field)
    if dyn is not None:
        return dyn(offer, storage_gb, now)
    return offer.static[field]


def offer_view(offer: Offer, storage_gb: float, now: float, *, bid: bool = False) -> dict[str, Any]:
    """The offer as the API returns it, priced for ``storage_gb`` of disk.

    ``bid``: answering a ``"type": "bid"`` search. Every simulated machine takes bids
    (``min_bid``), so the same offers come back, marked ``is_bid``.
    """
    view = dict(offer.static)
    view["is_bid"] = bid
    view.update(_derived(offer, storage_gb))
    view["dph_base"] = offer.dph_base
    view["rented"] = offer.rented
    view["rentable"] = offer.rentable
    view["duration"] = offer.static["end_date"] - now
    # Real offers show the on-demand total under "search" and, under "instance",
    # what a stopped instance on it costs (storage only).
    view["search"] = _cost_block(offer.dph_base, view["storage_total_cost"])
    instance = _cost_block(0.0, view["storage_total_cost"])
    instance["gpuCostPerHour"] = 0
    instance["slaPremiumPerHour"] = 0
    view["instance"] = instance
    return view


T = TypeVar("T")


# random.choice/randrange are slow (rejection sampling); plain scaling of random() is
# plenty for synthetic inventory and keeps 10,000 offers well under a second.
def _pick(r: Callable[[], float], seq: Sequence[T]) -> T:
    return seq[int(r() * len(seq))]


def _between(r: Callable[[], float], lo: int, hi: int) -> int:
    return lo + int(r() * (hi - lo))


def _uniform(r: Callable[[], float], lo: float, hi: float) -> float:
    return lo + (hi - lo) * r()


def _make_offer(
    rng: random.Random,
    offer_id: int,
    machine_id: int,
    now: float,
    model: GpuModel,
    num_gpus: int,
    verified: bool,
    min_reliability: float,
    direct: bool,
) -> Offer:
    r = rng.random
    region, geocode = _pick(r, REGIONS)
    cpu_name, cpu_cores, cpu_ghz = _pick(r, _CPUS)
    cuda, driver = _pick(r, [c for c in _CUDA_DRIVERS if c[0] >= model.min_cuda])
    machine_gpus = max(num_gpus, _pick(r, (num_gpus, 8 if num_gpus <= 8 else num_gpus)))
    frac = num_gpus / machine_gpus
    reliability = round(_uniform(r, min_reliability, 0.999), 7)
    price_per_gpu = model.price * _uniform(r, 0.8, 1.35) * (1.0 if verified else 0.85)
    storage_cost = _pick(r, (0.1, 0.15, 0.2, 0.25, 0.3, 1 / 3))
    inet_up_cost = _pick(r, (0.0026041666666666665, 0.00390625, 0.005208333333333333, 0.0078125))
    inet_down_cost = _pick(r, (0.0026041666666666665, 0.00390625, 0.005208333333333333))
    start_date = now - _uniform(r, 3600, 30 * 86400)
    end_date = now + _uniform(r, 7 * 86400, 120 * 86400)
    static: dict[str, Any] = {
        "id": offer_id,
        "ask_contract_id": offer_id,
        "bundle_id": _between(r, 1_000_000_000, 1_999_999_999),
        "bundled_results": None,
        "bw_nvlink": 0.0 if num_gpus == 1 or "RTX" in model.name else 450.0,
        "compute_cap": model.compute_cap,
        "cpu_arch": "amd64",
        "cpu_cores": cpu_cores,
        "cpu_cores_effective": float(max(1, round(cpu_cores * frac))),
        "cpu_ghz": cpu_ghz,
        "cpu_name": cpu_name,
        "cpu_ram": int(_pick(r, (32, 64, 128, 256, 512)) * 1000 * max(frac, 0.25)) + _between(r, 0, 999),
        "credit_discount_max": 0.0,
        "cuda_max_good": cuda,
        "direct_port_count": _between(r, 8, 500) if direct else 0,
        "disk_bw": round(_uniform(r, 300.0, 7000.0), 1),
        "disk_name": _pick(r, _DISKS),
        "disk_space": float(_pick(r, (128, 256, 512, 1024, 2048, 4096)) + _between(r, 0, 100)),
        "dlperf": model.dlperf * num_gpus * _uniform(r, 0.9, 1.05),
        "driver_version": driver,
        "driver_vers": driver_vers(driver),
        "end_date": end_date,
        "external": False,
        "geolocation": region,
        "geolocode": geocode,
        "gpu_arch": "nvidia",
        "gpu_display_active": False,
        "gpu_frac": frac,
        "gpu_ids": [_between(r, 100_000, 999_999) for _ in range(num_gpus)],
        "gpu_lanes": _pick(r, (8, 16, 16)),
        "gpu_mem_bw": round(model.mem_bw * _uniform(r, 0.95, 1.0), 1),
        "gpu_name": model.name,
        "gpu_ram": model.vram_mb,
        "gpu_total_ram": model.vram_mb * num_gpus,
        "gpu_max_power": model.max_power,
        "gpu_max_temp": float(_between(r, 30, 85)),
        "has_avx": 1,
        "host_id": 100_000 + machine_id % 9973,
        "hosting_type": 1 if r() < 0.3 else 0,
        "hostname": None,
        "inet_down": round(_uniform(r, 100.0, 8000.0), 1),
        "inet_down_cost": inet_down_cost,
        "inet_up": round(_uniform(r, 100.0, 8000.0), 1),
        "inet_up_cost": inet_up_cost,
        "is_bid": False,
        "logo": LOGO,
        "machine_id": machine_id,
        "mobo_name": _pick(r, _MOBOS),
        "num_gpus": num_gpus,
        "os_version": _pick(r, ("22.04", "24.04")),
        "pci_gen": _pick(r, (3.0, 4.0, 5.0)),
        "pcie_bw": round(_uniform(r, 5.0, 55.0), 1),
        "public_ipaddr": LOOPBACK,
        "reliability": reliability,
        "reliability_mult": round(reliability * _uniform(r, 0.95, 1.0), 7),
        "start_date": start_date,
        "static_ip": r() < 0.7,
        "storage_cost": storage_cost,
        "total_flops": model.tflops * num_gpus,
        "verification": "verified" if verified else "unverified",
        "vericode": 1 if verified else 0,
        "webpage": None,
        "vms_enabled": False,
        "expected_reliability": 0.0,
        "sla_sigma_x": None,
        "sla_broker_rate": None,
        "is_vm_deverified": False,
        "resource_type": "gpu",
        "cluster_id": None,
        "avail_vol_ask_id": offer_id + 1 + _between(r, 0, 8),
        "avail_vol_dph": storage_cost / HOURS_PER_MONTH,
        "avail_vol_size": float(_between(r, 5, 800)),
        "nw_disk_min_bw": None,
        "nw_disk_max_bw": None,
        "nw_disk_avg_bw": None,
        "rn": 1,
        "reliability2": reliability,
        "target_reliability": 0.0,
        "sla_r_claim": 0.0,
        "discount_rate": 0.0,
        "discounted_hourly": 0.0,
        "time_remaining": "",
        "time_remaining_isbid": "",
        "internet_up_cost_per_tb": inet_up_cost * 1024,
        "internet_down_cost_per_tb": inet_down_cost * 1024,
    }
    return Offer(
        id=offer_id,
        static=static,
        dph_base=price_per_gpu * num_gpus,
        min_bid=price_per_gpu * num_gpus * _uniform(r, 0.35, 0.9),
        listed=r() > 0.03,
    )


def build_offers(seed: int, count: int, now: float) -> list[Offer]:
    """``count`` offers drawn from ``random.Random(seed)``.

    The first ``min(20, count // 15)`` offers are verified, rentable, single-GPU
    RTX 4090s with direct ports, so the default create dialog always has choices.
    """
    rng = random.Random(seed)
    r = rng.random
    cum_weights = list(itertools.accumulate(m.weight for m in GPU_MODELS))
    rtx4090 = next(m for m in GPU_MODELS if m.name == "RTX 4090")
    guaranteed = min(20, count // 15)
    offers: list[Offer] = []
    next_id = _between(r, 20_000_000, 30_000_000)
    for i in range(count):
        next_id += _between(r, 1, 400)
        machine_id = 10_000 + i * 7 + _between(r, 0, 7)
        if i < guaranteed:
            offer = _make_offer(rng, next_id, machine_id, now, rtx4090, 1, True, 0.95, True)
            offer.listed = True
        else:
            model = rng.choices(GPU_MODELS, cum_weights=cum_weights)[0]
            num_gpus = _pick(r, model.multi)
            verified = r() < 0.75
            direct = r() < 0.9
            offer = _make_offer(
                rng, next_id, machine_id, now, model, num_gpus, verified, 0.93 if verified else 0.9, direct
            )
            # A few offers are already taken by other renters.
            offer.rented = r() < 0.04
        offers.append(offer)
    return offers
