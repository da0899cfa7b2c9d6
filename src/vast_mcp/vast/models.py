"""Typed views of Vast's JSON, exact about the fields we use and tolerant of the rest.

Units follow the REST API (reference/vast-api.md §5-§6): RAM fields are MB,
``disk_space`` is GB, ``dph_*`` are $/hour, ``storage_cost`` is $/GB/month,
times are unix seconds (``users/current.created_at`` is milliseconds).
Unknown fields are ignored; recorded responses scrub some strings to ``0`` or
``null``, so free-text fields accept anything and keep only real strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _float_or_zero(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _env_pairs(value: Any) -> dict[str, str]:
    """``extra_env`` arrives as ``[[k, v], ...]`` (wire) or a dict (CLI output)."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {str(p[0]): str(p[1]) for p in value if isinstance(p, list | tuple) and len(p) == 2}
    return {}


Text = Annotated[str | None, BeforeValidator(_text_or_none)]
Env = Annotated[dict[str, str], BeforeValidator(_env_pairs)]
Money = Annotated[float, BeforeValidator(_float_or_zero)]


class VastModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Offer(VastModel):
    """A rentable machine slice from `POST /api/v0/bundles/`."""

    id: int
    ask_contract_id: int | None = None
    machine_id: int | None = None
    host_id: int | None = None
    num_gpus: int = 0
    gpu_name: str = ""
    gpu_ram: float = Field(0, description="MB per GPU")
    gpu_total_ram: float = Field(0, description="MB, all GPUs")
    cpu_cores_effective: float = 0
    cpu_ram: float = Field(0, description="MB")
    disk_space: float = Field(0, description="GB available to allocate")
    cuda_max_good: float = 0
    dlperf: float = 0
    dlperf_per_dphtotal: float = 0
    reliability: float = Field(0, description="0-1")
    verification: str | None = None
    geolocation: str | None = None
    inet_up: float = Field(0, description="Mb/s")
    inet_down: float = Field(0, description="Mb/s")
    direct_port_count: int = 0
    dph_base: float = Field(0, description="$/h for the GPUs alone")
    dph_total: float = Field(0, description="$/h including storage for the searched allocated_storage")
    storage_cost: float = Field(0, description="$/GB/month")
    storage_total_cost: float = Field(0, description="$/h for the searched allocated_storage")
    min_bid: float = 0
    rentable: bool = True
    rented: bool = False

    @property
    def country(self) -> str | None:
        """Two-letter code at the end of the display string ("Ohio, US" -> "US")."""
        if not self.geolocation:
            return None
        tail = self.geolocation.rsplit(",", 1)[-1].strip()
        return tail.upper() if len(tail) == 2 and tail.isalpha() else None

    def price_per_hour(self, disk_gb: float) -> float:
        """Storage-inclusive $/h for this offer with ``disk_gb`` of disk (30-day month)."""
        return self.dph_base + self.storage_cost * disk_gb / 720


class PortBinding(VastModel):
    HostIp: Text = None
    HostPort: Text = None


class Instance(VastModel):
    """A rented instance (contract), from v0 show or the v1 list."""

    id: int
    machine_id: int | None = None
    actual_status: Text = None
    intended_status: Text = None
    cur_state: Text = None
    next_state: Text = None
    status_msg: Text = None
    label: Text = None
    image_uuid: Text = None
    image_runtype: Text = None
    extra_env: Env = Field(default_factory=dict)
    num_gpus: int | None = None
    gpu_name: Text = None
    gpu_ram: float | None = Field(None, description="MB per GPU")
    gpu_totalram: float | None = Field(None, description="MB, all GPUs (note: not gpu_total_ram)")
    disk_space: float | None = Field(None, description="GB allocated")
    dph_base: Money = 0
    dph_total: Money = Field(0, description="$/h including storage")
    storage_total_cost: Money = Field(0, description="$/h for the disk, billed even when stopped")
    ssh_host: Text = None
    ssh_port: int | None = None
    public_ipaddr: Text = None
    ports: dict[str, list[PortBinding] | None] | None = None
    geolocation: Text = None
    start_date: float | None = None
    reliability2: float | None = None

    @property
    def direct_ssh(self) -> tuple[str, int] | None:
        bindings = (self.ports or {}).get("22/tcp") or []
        if not bindings or not self.public_ipaddr or not bindings[0].HostPort:
            return None
        try:
            return self.public_ipaddr, int(bindings[0].HostPort)
        except ValueError:
            return None

    @property
    def proxy_ssh(self) -> tuple[str, int] | None:
        if not self.ssh_host or not self.ssh_port:
            return None
        # The official CLI adds one to the proxy port for jupyter runtypes.
        bump = 1 if "jupyter" in (self.image_runtype or "") else 0
        return self.ssh_host, self.ssh_port + bump


class SshKey(VastModel):
    """An account SSH key. The list also carries ``private_key: null``; we never keep it."""

    id: int
    public_key: str = ""
    created_at: float | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> SshKey:
        text = data.get("public_key") or data.get("key") or data.get("ssh_key") or ""
        return cls(id=data["id"], public_key=text, created_at=data.get("created_at"))


class User(VastModel):
    """`GET /api/v0/users/current` without its ``api_key`` field (dropped before parsing)."""

    id: int | None = None
    username: Text = None
    email: Text = None
    fullname: Text = None
    credit: Money = Field(0, description="$ of spendable credit")
    balance: Money = 0
    created_at: datetime | None = Field(None, description="account creation (API sends milliseconds)")

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> User:
        clean = {k: v for k, v in data.items() if k != "api_key"}
        created = clean.get("created_at")
        if isinstance(created, int | float):
            # users/current sends milliseconds; anything smaller is already seconds.
            seconds = created / 1000 if created > 10**11 else created
            clean["created_at"] = datetime.fromtimestamp(seconds, UTC)
        return cls.model_validate(clean)


class ChargeItem(VastModel):
    type: Text = None
    description: Text = None
    amount: Money = 0


class Charge(VastModel):
    """One billed line from `/api/v0/charges/` or `/api/v1/invoices/` (``amount`` in $)."""

    start: float | None = None
    end: float | None = None
    type: Text = None
    source: Text = None
    description: Text = None
    amount: Money = 0
    items: list[ChargeItem] = Field(default_factory=list)
