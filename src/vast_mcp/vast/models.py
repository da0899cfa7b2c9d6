"""Typed views of Vast's JSON, exact about the fields we use and tolerant of the rest.

Units follow the REST API (reference/vast-api.md §5-§6): RAM fields are MB,
``disk_space`` is GB, ``dph_*`` are $/hour, ``storage_cost`` is $/GB/month,
times are unix seconds (``users/current.created_at`` is milliseconds).

One odd field never costs a record, and one odd record never costs a list
(reference §11: real answers carry ``null`` in numeric fields, ``ports`` as a
list, hosts with stray whitespace). :func:`parse_records` reads a field it cannot
read as its default, and the record lists that field's wire name in
``unreadable``; what it tolerated comes back as :class:`Oddity` notes. Unknown
fields are ignored.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    TypeAdapter,
    ValidationError,
    computed_field,
    model_validator,
)

# -- hosts -------------------------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# RFC 1918, carrier-grade NAT and IPv6 unique-local. Documentation ranges (203.0.113.0/24, ...)
# are deliberately absent: recordings use them in place of public addresses.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def parse_host(value: str) -> str:
    """``value`` trimmed, if it is an IP address or a DNS name; ValueError for anything else.

    Hosts end up in SSH targets and commands: nothing but an address or a name may pass.
    """
    host = value.strip()
    if "%" not in host:  # an IPv6 scope id is free text
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            pass
    labels = host.split(".")
    # An all-digit last label would be read as a (short-form) IPv4 address by the resolver.
    if len(host) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit():
        return host.lower()
    raise ValueError("not an IP address or a DNS name")


def is_public_host(host: str) -> bool:
    """False for loopback, private, link-local, unspecified and multicast addresses (and localhost)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host != "localhost" and not host.endswith(".localhost")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return False
    return not any(ip in network for network in _PRIVATE_NETWORKS if network.version == ip.version)


# -- field readers (a ValueError makes the field unreadable, never the record) ------------------------


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError("not text")


def _host(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None  # not assigned yet
    if not isinstance(value, str):
        raise ValueError("not text")
    return parse_host(value)


def _env_pairs(value: Any) -> dict[str, str]:
    """``extra_env`` arrives as ``[[k, v], ...]`` (wire) or a dict (CLI output)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
        return {str(k): str(v) for k, v in value}
    raise ValueError("not a list of [name, value] pairs")


def _port_map(value: Any) -> Any:
    """``{"22/tcp": [{"HostIp", "HostPort"}]}``; null means no ports, a list is not a mapping."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return {name: [] if bindings is None else bindings for name, bindings in value.items()}


def _port_text(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # HostPort is a string on the wire; an int means the same
    return _text(value)


Text = Annotated[str | None, BeforeValidator(_text)]
Host = Annotated[str | None, BeforeValidator(_host)]
Env = Annotated[dict[str, str], BeforeValidator(_env_pairs)]


class VastModel(BaseModel):
    """Tolerant: a field that cannot be read takes its default and is named in ``unreadable``.

    Only a required field (``id``) that cannot be read still fails the record.
    """

    # NaN or Infinity in a price would poison every comparison: unreadable instead.
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    unreadable: tuple[str, ...] = Field(default=(), description="wire names of fields that could not be read")

    @model_validator(mode="wrap")
    @classmethod
    def _tolerate(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        try:
            return handler(data)
        except ValidationError as exc:
            if not isinstance(data, dict):
                raise
            bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
            kept = {name: value for name, value in data.items() if name not in bad}
            kept["unreadable"] = tuple(sorted(bad))
            return handler(kept)  # fails again only for a required field


M = TypeVar("M", bound=VastModel)


# -- parsing answers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Oddity:
    """Something in an answer the client did not expect, and tolerated."""

    kind: Literal["shape", "unreadable", "skipped", "absent"]
    where: str  # "offer 123", "GET /api/v0/ssh/"
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


_ADAPTERS: dict[type[VastModel], TypeAdapter[Any]] = {}


def _adapter(model: type[M]) -> TypeAdapter[list[M]]:
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    return _ADAPTERS[model]


def _json_kind(record: Mapping[str, Any], name: str) -> str:
    """The JSON type of a field, never its value (it may be host-controlled or secret)."""
    if name not in record:
        return "missing"
    value = record[name]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _wire_names(model: type[VastModel]) -> list[str]:
    names = []
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        if name != "unreadable":
            names.append(alias if isinstance(alias, str) else name)
    return names


def _label(record: Mapping[str, Any], what: str, index: int) -> str:
    return f"{what} {record['id']}" if isinstance(record.get("id"), int) else f"{what} #{index + 1}"


def parse_records(
    model: type[M], items: Iterable[Any], what: str, *, strict: bool = False
) -> tuple[list[M], list[Oddity]]:
    """Every usable record of ``items`` as ``model``, and notes on what was tolerated.

    One validation of the whole list (fast); a record whose required field (``id``) cannot
    be read is skipped and noted. ``strict`` also notes fields the model reads that the
    answer lacks (for ``vast-mcp doctor``).
    """
    items = list(items)
    records: list[dict[str, Any]] = [item for item in items if isinstance(item, dict)]
    notes: list[Oddity] = []
    if len(records) != len(items):
        notes.append(Oddity("shape", what, f"{len(items) - len(records)} entries were not objects and were skipped"))
    if strict:
        notes.extend(_absent_fields(model, records, what))
    adapter = _adapter(model)
    try:
        parsed = adapter.validate_python(records)
    except ValidationError as exc:
        unusable = {int(e["loc"][0]): str(e["loc"][1]) for e in exc.errors() if len(e["loc"]) >= 2}
        for index, name in sorted(unusable.items()):
            kind = _json_kind(records[index], name)
            notes.append(Oddity("skipped", _label(records[index], what, index), f"skipped: {name} is {kind}"))
        records = [record for index, record in enumerate(records) if index not in unusable]
        parsed = adapter.validate_python(records)
    for index, (record, raw) in enumerate(zip(parsed, records, strict=True)):
        for name in record.unreadable:
            detail = f"field {name} could not be read ({_json_kind(raw, name)})"
            notes.append(Oddity("unreadable", _label(raw, what, index), detail))
    return parsed, notes


def _absent_fields(model: type[VastModel], records: list[dict[str, Any]], what: str) -> list[Oddity]:
    notes = []
    for name in _wire_names(model):
        missing = sum(1 for record in records if name not in record)
        if missing:
            notes.append(Oddity("absent", what, f"field {name} absent in {missing} of {len(records)}"))
    return notes


def parse_record(model: type[M], record: Any, what: str, *, strict: bool = False) -> tuple[M | None, list[Oddity]]:
    """One record (see :func:`parse_records`); None when it is not an object or cannot be used."""
    if not isinstance(record, dict):
        return None, [Oddity("shape", what, f"expected an object, got {type(record).__name__}")]
    parsed, notes = parse_records(model, [record], what, strict=strict)
    return (parsed[0] if parsed else None), notes


# -- offers ------------------------------------------------------------------------------------------


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
    min_bid: float = Field(0, description="$/h, the current minimum bid (interruptible)")
    rentable: bool = True
    rented: bool = False

    @property
    def country(self) -> str | None:
        """Two-letter code at the end of the display string ("Ohio, US" -> "US")."""
        if not self.geolocation:
            return None
        tail = self.geolocation.rsplit(",", 1)[-1].strip()
        return tail.upper() if len(tail) == 2 and tail.isalpha() else None

    def price_per_hour(self, disk_gb: float, *, bid: float | None = None) -> float:
        """Storage-inclusive $/h for this offer with ``disk_gb`` of disk (30-day month); with a
        ``bid`` (an interruptible rental) the GPUs cost the bid instead of the on-demand price."""
        return (self.dph_base if bid is None else bid) + self.storage_cost * disk_gb / 720


# -- instances ---------------------------------------------------------------------------------------


class PortBinding(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    HostIp: Text = None
    HostPort: Annotated[str | None, BeforeValidator(_port_text)] = None


def _port(text: str | None) -> int | None:
    port = int(text) if text and text.isascii() and text.isdigit() else 0
    return port if 0 < port < 65536 else None


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Instance(VastModel):
    """A rented instance (contract), from v0 show or the v1 list."""

    id: int
    machine_id: int | None = None
    actual_status: Text = None
    intended_status: Text = None
    cur_state: Text = Field(None, description="the contract: running, stopped, unloaded")
    next_state: Text = None
    status_msg: Text = None
    label: Text = None
    image_uuid: Text = None
    image_runtype: Text = None
    onstart: Text = None
    extra_env: Env = Field(default_factory=dict)
    is_bid: bool | None = Field(None, description="an interruptible (bid) rental")
    min_bid: float | None = Field(None, description="$/h, the machine's current minimum bid")
    num_gpus: int | None = None
    gpu_name: Text = None
    gpu_ram: float | None = Field(None, description="MB per GPU")
    gpu_totalram: float | None = Field(None, description="MB, all GPUs (note: not gpu_total_ram)")
    disk_space: float | None = Field(None, description="GB allocated")
    dph_base: float = 0
    dph_total: float = Field(0, description="$/h including storage")
    storage_total_cost: float = Field(0, description="$/h for the disk, billed even when stopped")
    ssh_host: Host = None
    ssh_port: int | None = None
    public_ipaddr: Host = None
    ports: Annotated[dict[str, list[PortBinding]], BeforeValidator(_port_map)] = Field(
        default_factory=dict, description='"8888/tcp" -> [{"HostIp", "HostPort"}]'
    )
    geolocation: Text = None
    start_date: float | None = Field(None, description="unix seconds")
    reliability2: float | None = None

    def _host_port_of(self, container_port: str) -> int | None:
        bindings = self.ports.get(container_port) or []
        return _port(bindings[0].HostPort) if bindings else None

    @property
    def direct_ssh(self) -> tuple[str, int] | None:
        port = self._host_port_of("22/tcp")
        return (self.public_ipaddr, port) if self.public_ipaddr and port else None

    @property
    def proxy_ssh(self) -> tuple[str, int] | None:
        if not self.ssh_host or not self.ssh_port:
            return None
        # The official CLI adds one to the proxy port for jupyter runtypes.
        port = self.ssh_port + (1 if "jupyter" in (self.image_runtype or "") else 0)
        return (self.ssh_host, port) if 0 < port < 65536 else None

    @property
    def mapped_ports(self) -> dict[str, str]:
        """``"8888/tcp" -> "host:port"`` for every port published on the host's public address."""
        if not self.public_ipaddr:
            return {}
        found = {name: self._host_port_of(name) for name in self.ports}
        return {name: _host_port(self.public_ipaddr, port) for name, port in found.items() if port}

    @property
    def held_by_vast(self) -> bool:
        """Meant to run, but Vast holds it stopped: outbid, or a start queued for the host's GPUs."""
        return self.intended_status == "running" and self.cur_state == "stopped"

    @property
    def outbid(self) -> bool:
        """A bid rental Vast stopped because its bid fell below the machine's minimum."""
        return bool(self.is_bid) and self.held_by_vast


class PriceIncrease(VastModel):
    """A host's pending price increase (`GET /api/v0/instances/pending-price-increases/`)."""

    id: int = Field(validation_alias="pending_price_increase_id")
    instance_id: int = Field(validation_alias="contract_id")
    old_gpu_costpersec: float | None = None
    new_gpu_costpersec: float | None = None
    old_disk_ram_costpersec: float | None = None
    new_disk_ram_costpersec: float | None = None
    created_at: float | None = Field(None, description="unix seconds")

    @computed_field(description="$/h before the increase")  # type: ignore[prop-decorator]
    @property
    def old_per_hour(self) -> float | None:
        return _per_hour(self.old_gpu_costpersec, self.old_disk_ram_costpersec)

    @computed_field(description="$/h after the increase")  # type: ignore[prop-decorator]
    @property
    def new_per_hour(self) -> float | None:
        return _per_hour(self.new_gpu_costpersec, self.new_disk_ram_costpersec)


def _per_hour(gpu: float | None, disk_ram: float | None) -> float | None:
    return None if gpu is None or disk_ram is None else (gpu + disk_ram) * 3600


# -- account -----------------------------------------------------------------------------------------


class SshKey(VastModel):
    """An account SSH key. The list also carries ``private_key: null``; we never keep it."""

    id: int
    public_key: str = ""
    created_at: float | None = None

    @staticmethod
    def wire_record(data: Mapping[str, Any]) -> dict[str, Any]:
        """The fields we keep, with the key text under one name (Vast uses three)."""
        text = data.get("public_key") or data.get("key") or data.get("ssh_key") or ""
        return {"id": data.get("id"), "public_key": text, "created_at": data.get("created_at")}


class User(VastModel):
    """`GET /api/v0/users/current` (the transport drops its ``api_key`` field on arrival)."""

    id: int | None = None
    username: Text = None
    email: Text = None
    fullname: Text = None
    credit: float = Field(default=0, description="$ of spendable credit")
    balance: float = 0
    created_at: datetime | None = Field(default=None, description="account creation (API sends milliseconds)")

    @staticmethod
    def wire_record(data: Mapping[str, Any]) -> dict[str, Any]:
        """The answer with ``created_at`` as a datetime."""
        clean = dict(data)
        created = clean.get("created_at")
        if isinstance(created, int | float) and not isinstance(created, bool):
            # users/current sends milliseconds; anything smaller is already seconds.
            seconds = created / 1000 if created > 10**11 else created
            try:
                clean["created_at"] = datetime.fromtimestamp(seconds, UTC)
            except (OverflowError, OSError, ValueError):
                pass  # left as it is: the model reports it unreadable
        return clean


class ChargeItem(VastModel):
    type: Text = None
    description: Text = None
    amount: float = 0


class Charge(VastModel):
    """One billed line from `/api/v0/charges/` or `/api/v1/invoices/` (``amount`` in $)."""

    start: float | None = None
    end: float | None = None
    type: Text = None
    source: Text = None
    description: Text = None
    amount: float = 0
    items: list[ChargeItem] = Field(default_factory=list)
