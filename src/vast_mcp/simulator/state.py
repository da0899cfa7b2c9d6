"""Simulated account state: offers, instances and their lifecycle, SSH keys, billing.

Nothing ticks in the background: an instance's status is computed from its list
of lifecycle actions and the clock whenever it is read. The only side effect of
time passing is the sshd ports (see ``sync_listeners``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeGuard

from .clock import SimClock
from .errors import ApiError, invalid_args, no_such_instance
from .inventory import HOURS_PER_MONTH, LOOPBACK, Offer, build_offers, storage_hourly
from .sshd import BannerHub


@dataclass(frozen=True)
class Timings:
    """Simulated seconds each lifecycle step takes."""

    created: float = 10.0  # created -> loading
    loading: float = 20.0  # loading -> running (after create)
    stop: float = 5.0  # running -> stopped
    start: float = 10.0  # stopped -> running (loading meanwhile)
    reboot: float = 10.0  # rebooting -> running


@dataclass
class Action:
    #: create | start | stop | reboot | recycle, or what Vast does on its own:
    #: queued (a start waiting for GPUs) | outbid (a bid below the machine's minimum).
    kind: str
    at: float
    was_running: bool = False  # stop and outbid: the container was up, so it takes a while to stop


#: How a runtype the API accepts maps to the tokens it echoes in ``image_runtype``.
_RUNTYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "ssh_direct": ("ssh_direc", "ssh_proxy"),
    "jupyter_direct": ("jupyter_direc", "ssh_direc", "ssh_proxy"),
    "jupyter": ("jupyter_proxy", "ssh_proxy"),
}
_RUNTYPE_TOKENS = frozenset({"ssh", "ssh_proxy", "ssh_direc", "jupyter_proxy", "jupyter_direc", "args"})

EXIT_MSG = "Error response from daemon: container exited with code 1"
OCI_MSG = (
    "OCI runtime create failed: runc create failed: unable to start container process: "
    'exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown'
)
#: The live answer to a start whose GPUs were re-let (reference §11).
QUEUED_MSG = "Required resources are currently unavailable, state change queued."
#: ``status_msg`` of an instance Vast holds stopped although it is meant to run.
WAITING_MSGS = {
    "queued": "Waiting for resources: " + QUEUED_MSG,
    "outbid": "Stopped: outbid (the bid is below the machine's current minimum bid).",
}


def normalize_runtype(raw: Any) -> str:
    if raw is None or raw == "":
        return "ssh"
    if not isinstance(raw, str):
        raise invalid_args(f"Invalid runtype {raw!r}.")
    tokens: list[str] = []
    for tok in raw.split():
        for t in _RUNTYPE_ALIASES.get(tok, (tok,)):
            if t not in _RUNTYPE_TOKENS:
                raise invalid_args(f"Invalid runtype {raw!r}.")
            if t not in tokens:
                tokens.append(t)
    return " ".join(tokens) or "ssh"


def env_pairs(env: Any) -> list[list[str]]:
    """The create body's ``env`` (object, or docker-flag string) as ``extra_env`` pairs."""
    if env is None or env == "":
        return []
    if isinstance(env, dict):
        return [[str(k), str(v)] for k, v in env.items()]
    if isinstance(env, str):
        pairs: list[list[str]] = []
        words = env.split()
        i = 0
        while i < len(words):
            word = words[i]
            if word == "-e" and i + 1 < len(words):
                key, _, value = words[i + 1].partition("=")
                pairs.append([key, value.strip('"')])
                i += 2
            elif word in ("-p", "-h", "-v", "-n") and i + 1 < len(words):
                pairs.append([f"{word} {words[i + 1]}", "1"] if word == "-p" else [word, words[i + 1]])
                i += 2
            else:
                i += 1
        return pairs
    raise invalid_args("env must be an object of NAME: value.")


@dataclass(frozen=True)
class Rate:
    """What an instance costs from ``at`` on: GPU $/h (the bid, for a bid rental) and disk $/GB/month."""

    at: float
    gpu: float
    storage_cost: float


class Usage(NamedTuple):
    hours: float
    amount: float  # dollars


_PORT_SPEC = re.compile(r"(?:(\d+):)?(\d+)(?:/(tcp|udp))?")


def published_ports(pairs: list[list[str]]) -> list[str]:
    """Container ports (``"8888/tcp"``) the ``-p [HOST:]PORT[/PROTO]`` entries of ``extra_env`` publish.

    Vast picks the host port itself, so the HOST part only has to be valid.
    """
    ports: list[str] = []
    for key, _value in pairs:
        if not key.startswith("-p "):
            continue
        m = _PORT_SPEC.fullmatch(key[3:].strip())
        if m is None or not all(1 <= int(n) <= 65535 for n in m.group(1, 2) if n is not None):
            raise invalid_args(f"Invalid port mapping {key!r}: use -p [HOST:]PORT[/tcp|/udp], ports 1 to 65535.")
        port = f"{int(m.group(2))}/{m.group(3) or 'tcp'}"
        if port not in ports:
            ports.append(port)
    return ports


_ENV_REF = re.compile(r"\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))")


def expand_env(text: str, env: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced by ``env``'s value; names it lacks stay as written."""
    return _ENV_REF.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), text)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Instance:
    id: int
    offer: Offer
    rates: list[Rate]  # oldest first; the last one applies now
    disk: float
    image: str
    label: str | None
    runtype: str
    extra_env: list[list[str]]
    onstart: str | None
    image_args: list[str]
    template_hash_id: str | None
    is_bid: bool
    created_at: float
    instance_api_key: str
    jupyter_token: str
    actions: list[Action]
    ssh_keys: list[dict[str, Any]] = field(default_factory=list)
    fault: str | None = None  # "exit" | "unknown" | "oci"
    fault_at: float = 0.0
    ssh_delay: float = 0.0
    pending_until: float = 0.0  # actual_status reads null before this (the pending_null fault)
    relet: bool = False  # its GPUs went to another renter while it was stopped
    destroyed_at: float | None = None
    ssh_port: int = 0  # advertised proxy port
    direct_port: int = 0
    published: list[str] = field(default_factory=list)  # container ports from -p env entries: "8888/tcp"
    host_ports: dict[str, int] = field(default_factory=dict)  # their loopback host ports
    image_login: str | None = None  # "-u USER -p TOKEN HOST": stored, never shown

    @property
    def machine(self) -> dict[str, Any]:
        return self.offer.static

    @property
    def env(self) -> dict[str, str]:
        """The container's environment variables (``extra_env`` without the docker options)."""
        return {k: v for k, v in self.extra_env if not k.startswith("-")}

    @property
    def direct(self) -> bool:
        return "direc" in self.runtype and self.machine["direct_port_count"] > 0

    @property
    def has_sshd(self) -> bool:
        return self.runtype != "args"

    @property
    def proxy_listen_port(self) -> int:
        # The CLI's ssh-url adds 1 to ssh_port for jupyter images; the sshd is there.
        return self.ssh_port + 1 if "jupyter" in self.runtype else self.ssh_port

    @property
    def dph_base(self) -> float:
        return self.rates[-1].gpu

    @property
    def storage_total_cost(self) -> float:
        return storage_hourly(self.rates[-1].storage_cost, self.disk)

    @property
    def dph_total(self) -> float:
        return self.dph_base + self.storage_total_cost

    @property
    def intended(self) -> str:
        return "stopped" if self.actions[-1].kind == "stop" else "running"

    @property
    def waiting(self) -> bool:
        """Meant to run, but Vast holds it stopped (a queued start, or outbid)."""
        return self.actions[-1].kind in WAITING_MSGS

    @property
    def cur_state(self) -> str:
        """The contract's state: whether it holds its GPUs now."""
        return "stopped" if self.waiting or self.intended == "stopped" else "running"

    # -------------------------------------------------------------- lifecycle

    def _running_from(self, action: Action, t: Timings) -> float | None:
        if action.kind == "create":
            return action.at + t.created + t.loading
        if action.kind in ("start", "recycle"):
            return action.at + t.start
        if action.kind == "reboot":
            return action.at + t.reboot
        return None

    def phase(self, now: float, t: Timings) -> str:
        """Lifecycle phase ignoring faults: created/loading/running/rebooting/stopping/stopped."""
        action = self.actions[-1]
        dt = now - action.at
        if action.kind == "create":
            if dt < t.created:
                return "created"
            return "loading" if dt < t.created + t.loading else "running"
        if action.kind in ("start", "recycle"):
            return "loading" if dt < t.start else "running"
        if action.kind == "reboot":
            return "rebooting" if dt < t.reboot else "running"
        return "stopping" if action.was_running and dt < t.stop else "stopped"

    def status(self, now: float, t: Timings) -> str:
        """``actual_status`` as the API reports it."""
        phase = self.phase(now, t)
        if phase == "stopped":
            return "exited"  # what the real API reports for a stopped instance
        container = "running" if phase == "stopping" else phase
        if self.fault is not None and now >= self.fault_at:
            if self.fault == "oci" or (self.fault == "exit" and container == "running"):
                return "exited"
            if self.fault == "unknown" and container in ("loading", "running", "rebooting"):
                return "unknown"
        return container

    def running_intervals(self, end: float, t: Timings) -> list[tuple[float, float]]:
        """Simulated time spans when the container was up (GPU billed), up to ``end``."""
        spans: list[tuple[float, float]] = []
        for i, action in enumerate(self.actions):
            seg_end = self.actions[i + 1].at if i + 1 < len(self.actions) else end
            seg_end = min(seg_end, end)
            start = self._running_from(action, t)
            if start is not None:
                lo, hi = start, seg_end
            elif action.was_running:
                lo, hi = action.at, min(action.at + t.stop, seg_end)
            else:
                continue
            if self.fault is not None:
                hi = min(hi, max(self.fault_at, lo))
            if hi > lo:
                spans.append((lo, hi))
        return spans

    @property
    def exit_msg(self) -> str:
        """Why an instance meant to run is not running."""
        if self.waiting:
            return WAITING_MSGS[self.actions[-1].kind]
        return OCI_MSG if self.fault == "oci" else EXIT_MSG

    def usage(self, spans: list[tuple[float, float]], lo: float, hi: float, per_hour: Callable[[Rate], float]) -> Usage:
        """Hours of ``spans`` inside [lo, hi) and what they cost at the rates in force then."""
        amount = 0.0
        ends = [r.at for r in self.rates[1:]] + [math.inf]
        for rate, until in zip(self.rates, ends, strict=True):
            amount += _overlap(spans, max(lo, rate.at), min(hi, until)) / 3600 * per_hour(rate)
        return Usage(_overlap(spans, lo, hi) / 3600, amount)

    def status_msg(self, now: float, t: Timings) -> str | None:
        status = self.status(now, t)
        tag = self.image.replace(":", "_")
        return {
            "created": f"Creating container for {self.image}",
            "loading": f"Pulling image {self.image}",
            "running": f"success, running {tag}/ssh",
            "rebooting": "Rebooting container",
            "unknown": None,
            "exited": self.exit_msg if self.intended == "running" else f"success, running {tag}/ssh",
        }.get(status)


def _overlap(spans: Iterable[tuple[float, float]], lo: float, hi: float) -> float:
    return sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in spans)


def encode_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def decode_token(token: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError) as exc:
        raise ApiError(400, {"success": False, "error": "invalid_token", "msg": "Invalid pagination token."}) from exc
    if not isinstance(value, dict):
        raise ApiError(400, {"success": False, "error": "invalid_token", "msg": "Invalid pagination token."})
    return value


@dataclass(frozen=True)
class PriceIncrease:
    """A host's pending price increase on one instance (``pending_price_increase_id`` = ``id``)."""

    id: int
    instance_id: int
    old: Rate
    new: Rate  # ``at`` = when the host asked


@dataclass
class Account:
    user_id: int
    username: str | None
    email: str | None
    initial_credit: float
    created_at: float
    fake_api_key: str  # what users/current shows in api_key; never the bearer key
    ssh_keys: list[dict[str, Any]] = field(default_factory=list)


def valid_public_key(key: Any) -> TypeGuard[str]:
    return isinstance(key, str) and key.strip().startswith(("ssh-", "ecdsa-"))


class SimState:
    """All mutable simulator state.

    Callers hold ``self.lock`` (the API does, per request); ``sync_listeners`` and
    ``summary`` take it themselves because the sshd loop and admin calls use them.
    """

    def __init__(
        self,
        *,
        clock: SimClock,
        seed: int,
        offer_count: int,
        timings: Timings,
        username: str | None,
        email: str | None,
        credit: float,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.timings = timings
        self.hub = BannerHub()
        self.serving = False
        start = clock.now()
        self.offers = build_offers(seed, offer_count, start)
        self.offers_by_id = {o.id: o for o in self.offers}
        self.instances: dict[int, Instance] = {}
        self.destroyed: dict[int, Instance] = {}
        self._next_instance_id = 31_000_000 + seed % 1000 * 1000
        self._next_key_id = 20_000
        self.account = Account(
            user_id=417_000 + seed % 1000,
            username=username,
            email=email,
            initial_credit=credit,
            created_at=start - 90 * 86400,
            fake_api_key="simfake" + secrets.token_hex(28),
        )
        self.logs: dict[str, str] = {}
        self.price_increases: dict[int, PriceIncrease] = {}
        self._next_increase_id = 5_000

    # ------------------------------------------------------------------ ports

    def _ensure_ports(self, inst: Instance) -> None:
        hub = self.hub
        if inst.has_sshd:
            listen = inst.proxy_listen_port
            if not (inst.ssh_port and hub.reserved(listen)):
                try:
                    if not inst.ssh_port:
                        raise OSError
                    hub.reserve(listen)
                    if listen != inst.ssh_port:
                        hub.reserve(inst.ssh_port)
                except OSError:
                    inst.ssh_port = hub.reserve_pair() if "jupyter" in inst.runtype else hub.reserve()
        elif not inst.ssh_port:
            inst.ssh_port = hub.reserve()
        if inst.direct:
            inst.direct_port = self._keep(inst.direct_port)
        if inst.machine["direct_port_count"] > 0:  # -p ports need host ports, like direct SSH
            inst.host_ports = {p: self._keep(inst.host_ports.get(p, 0)) for p in inst.published}

    def _keep(self, port: int) -> int:
        """``port`` reserved (again, after a restart of serving) when it can be, else a new one."""
        if port and self.hub.reserved(port):
            return port
        try:
            if port:
                return self.hub.reserve(port)
        except OSError:
            pass
        return self.hub.reserve()

    def _release_ports(self, inst: Instance) -> None:
        for port in {inst.ssh_port, inst.proxy_listen_port, inst.direct_port, *inst.host_ports.values()} - {0}:
            self.hub.release(port)

    def sync_listeners(self, now: float | None = None) -> None:
        """Make every running instance's sshd ports answer and every other one refuse."""
        with self.lock:
            if not self.serving:
                return
            now = self.clock.now() if now is None else now
            for inst in self.instances.values():
                self._ensure_ports(inst)
                up = inst.status(now, self.timings) == "running"
                if inst.has_sshd:
                    self.hub.set_listening(inst.proxy_listen_port, up, inst.ssh_delay)
                if inst.direct:
                    self.hub.set_listening(inst.direct_port, up, inst.ssh_delay)

    def start_serving(self) -> None:
        with self.lock:
            self.serving = True
        self.hub.start(self.sync_listeners)

    def stop_serving(self) -> None:
        with self.lock:
            self.serving = False
        self.hub.stop()

    # -------------------------------------------------------------- instances

    def instance_for_key(self, key: str) -> Instance | None:
        """The live instance whose scoped key (``instance_api_key``) this is."""
        for inst in self.instances.values():
            if hmac.compare_digest(inst.instance_api_key.encode(), key.encode()):
                return inst
        return None

    def get_instance(self, instance_id: int) -> Instance:
        inst = self.instances.get(instance_id)
        if inst is None:
            raise no_such_instance(instance_id)
        return inst

    def no_such_ask(self, offer_id: int, cancel_unavail: bool) -> ApiError:
        if cancel_unavail:
            return ApiError(
                410,
                {
                    "success": False,
                    "error": "no_such_ask",
                    "msg": f"error 410/3907: no_such_ask Instance type {offer_id} is no longer available.",
                    "ask_id": offer_id,
                },
            )
        return ApiError(
            404,
            {
                "success": False,
                "error": "invalid_args",
                "msg": f"error 404/3603: no_such_ask Instance type by id {offer_id} is not available.",
                "ask_id": offer_id,
            },
        )

    def create_instance(self, offer_id: int, body: dict[str, Any], now: float) -> Instance:
        cancel_unavail = bool(body.get("cancel_unavail"))
        offer = self.offers_by_id.get(offer_id)
        if offer is None or not offer.rentable:
            raise self.no_such_ask(offer_id, cancel_unavail)
        image = body.get("image")
        if not isinstance(image, str) or not image.strip():
            if body.get("template_hash_id"):
                raise invalid_args(f"Unknown template_hash_id {body['template_hash_id']!r}.")
            raise invalid_args("Please specify a docker image (image) or a template (template_hash_id).")
        try:
            disk = float(body.get("disk", 8.0) if body.get("disk") is not None else 8.0)
        except (TypeError, ValueError) as exc:
            raise invalid_args(f"Invalid disk size {body.get('disk')!r}.") from exc
        if not 0 < disk <= offer.static["disk_space"]:
            raise invalid_args(
                f"Requested disk {disk:g} GB is not available on this machine (1 to {offer.static['disk_space']:g} GB)."
            )
        label = body.get("label")
        if label is not None and (not isinstance(label, str) or len(label) > 1024):
            raise invalid_args("label must be a string of at most 1024 characters.")
        price = body.get("price")
        if price is not None:
            try:
                price = float(price)
            except (TypeError, ValueError) as exc:
                raise ApiError(400, {"success": False, "error": "invalid_price", "msg": "Invalid bid price."}) from exc
            if price < 0.001:
                raise ApiError(
                    400,
                    {"success": False, "error": "invalid_price", "msg": "Please set a bid price >= 0.001."},
                )
            if price < offer.min_bid and cancel_unavail:  # it could not start now
                raise self.no_such_ask(offer_id, cancel_unavail)
        image_login = body.get("image_login")
        if image_login is not None and not isinstance(image_login, str):
            raise invalid_args("image_login must be a string: -u USER -p TOKEN HOST.")
        extra_env = env_pairs(body.get("env"))
        onstart = body.get("onstart")
        args = body.get("args")
        inst = Instance(
            id=self._next_instance_id,
            offer=offer,
            rates=[Rate(now, offer.dph_base if price is None else price, offer.static["storage_cost"])],
            disk=disk,
            image=image.strip(),
            label=label,
            runtype=normalize_runtype(body.get("runtype")),
            extra_env=extra_env,
            onstart=onstart if isinstance(onstart, str) else None,
            image_args=[str(a) for a in args] if isinstance(args, list) else [],
            template_hash_id=body.get("template_hash_id") if isinstance(body.get("template_hash_id"), str) else None,
            is_bid=price is not None,
            created_at=now,
            instance_api_key=secrets.token_hex(32),
            jupyter_token=secrets.token_hex(32),
            actions=[Action("create", now)],
            # Docs: the account's keys are installed on new instances.
            ssh_keys=[{"id": k["id"], "public_key": k["public_key"]} for k in self.account.ssh_keys],
            published=published_ports(extra_env),
            image_login=image_login,
        )
        self._next_instance_id += 1
        offer.rented = True
        self.instances[inst.id] = inst
        self._reconcile(inst, now)  # a bid below the minimum is outbid at once
        if self.serving:
            self._ensure_ports(inst)
        return inst

    def apply_instance_fault(self, inst: Instance, kind: str, params: dict[str, Any], now: float) -> None:
        if kind == "slow_ssh":
            inst.ssh_delay = float(params["seconds"])
        elif kind == "pending_null":
            inst.pending_until = inst.created_at + float(params["seconds"])
        elif kind == "oci_failure":  # dies halfway through loading the image
            inst.fault = "oci"
            inst.fault_at = now + self.timings.created + self.timings.loading / 2
        else:
            inst.fault = "exit" if kind == "instance_exit" else "unknown"
            inst.fault_at = now

    def _hold(self, inst: Instance) -> str | None:
        """Why Vast cannot run the instance now: ``queued`` (GPUs re-let), ``outbid``, or None."""
        if inst.relet:
            return "queued"
        if inst.is_bid and inst.dph_base < inst.offer.min_bid:
            return "outbid"
        return None

    def _reconcile(self, inst: Instance, now: float) -> None:
        """Vast's side: stop an instance meant to run that it must hold, start one it no longer must."""
        if inst.intended != "running":
            return
        hold = self._hold(inst)
        if hold is not None and not inst.waiting:
            up = inst.status(now, self.timings) == "running"
            inst.actions.append(Action(hold, now, was_running=up))
        elif hold is None and inst.waiting:
            inst.actions.append(Action("start", now))

    def set_state(self, inst: Instance, state: str, now: float) -> bool:
        """Apply a state change; False when a start is queued (resources unavailable)."""
        if state == "stopped":
            if inst.intended != "stopped":
                up = inst.status(now, self.timings) == "running"
                inst.actions.append(Action("stop", now, was_running=up))
            return True
        hold = self._hold(inst)
        if hold is not None:
            if not inst.waiting:
                inst.actions.append(Action(hold, now))
            return False
        if inst.cur_state != "running":
            inst.actions.append(Action("start", now))
        return True

    def relet(self, inst: Instance, now: float) -> None:
        """Another renter takes the GPUs of a stopped instance: a start is queued until :meth:`free`."""
        if inst.cur_state != "stopped":
            raise ValueError(f"instance {inst.id} holds its GPUs ({inst.cur_state}); stop it first")
        inst.relet = True

    def free(self, inst: Instance, now: float) -> None:
        """The GPUs are free again: a queued start happens now."""
        inst.relet = False
        self._reconcile(inst, now)

    def set_min_bid(self, inst: Instance, price: float, now: float) -> None:
        """The instance's machine's minimum bid moves: a bid below it is outbid, one at or above it runs."""
        if price < 0:
            raise ValueError("a minimum bid is >= 0")
        inst.offer.min_bid = price
        self._reconcile(inst, now)

    def change_bid(self, inst: Instance, price: float, now: float) -> None:
        """``PUT bid_price``: the new bid applies from now; an outbid instance at or above the minimum runs."""
        if not inst.is_bid:
            raise invalid_args(f"Instance {inst.id} is on-demand; only an interruptible (bid) instance has a bid.")
        inst.rates.append(Rate(now, price, inst.rates[-1].storage_cost))
        self._reconcile(inst, now)

    # --------------------------------------------------------- price increases

    def raise_price(self, inst: Instance, factor: float, now: float) -> int:
        """The host raises the instance's GPU and disk prices by ``factor``: a pending increase.

        It replaces any earlier pending row for the instance (that one turns stale).
        """
        if inst.is_bid:
            raise ValueError(f"instance {inst.id} is a bid rental: its price is its bid (see set_min_bid)")
        if factor <= 1:
            raise ValueError("a price increase needs a factor > 1")
        self._drop_price_increases(inst.id)
        old = inst.rates[-1]
        row = PriceIncrease(
            self._next_increase_id, inst.id, old, Rate(now, old.gpu * factor, old.storage_cost * factor)
        )
        self._next_increase_id += 1
        self.price_increases[row.id] = row
        return row.id

    def _drop_price_increases(self, instance_id: int) -> None:
        for row in [r for r in self.price_increases.values() if r.instance_id == instance_id]:
            del self.price_increases[row.id]

    def settle_price_increase(self, increase_id: int, accept: bool, now: float) -> PriceIncrease:
        """Accept (the new prices apply from now) or reject (the old ones stay) a pending increase."""
        row = self.price_increases.pop(increase_id, None)
        if row is None:
            raise ApiError(404, {"success": False, "error": "no_pending_price_increase"})
        if accept:
            self.instances[row.instance_id].rates.append(replace(row.new, at=now))
        return row

    def price_increase_view(self, row: PriceIncrease) -> dict[str, Any]:
        inst = self.instances[row.instance_id]
        m = inst.machine
        per_second = {
            f"{age}_{name}": cost / 3600
            for age, rate in (("old", row.old), ("new", row.new))
            for name, cost in (
                ("gpu_costpersec", rate.gpu),
                ("disk_ram_costpersec", storage_hourly(rate.storage_cost, inst.disk)),
            )
        }
        return {
            "pending_price_increase_id": row.id,
            "contract_id": row.instance_id,
            "host_id": m["host_id"],
            **per_second,
            "old_bwu_cost": m["inet_up_cost"],
            "new_bwu_cost": m["inet_up_cost"],
            "old_bwd_cost": m["inet_down_cost"],
            "new_bwd_cost": m["inet_down_cost"],
            "old_platform_fee": 0.0,
            "new_platform_fee": 0.0,
            "contract_end_date": m["end_date"],
            "ask_end_date": m["end_date"],
            "created_at": row.new.at,
        }

    def reboot(self, inst: Instance, now: float, kind: str = "reboot") -> None:
        if inst.cur_state != "running":
            raise invalid_args(f"Instance {inst.id} is stopped; start it instead of rebooting it.")
        inst.actions.append(Action(kind, now))

    def destroy(self, inst: Instance, now: float) -> None:
        inst.destroyed_at = now
        self._drop_price_increases(inst.id)
        del self.instances[inst.id]
        self.destroyed[inst.id] = inst
        inst.offer.rented = False
        self._release_ports(inst)

    # ------------------------------------------------------------------ views

    def instance_view(self, inst: Instance, now: float) -> dict[str, Any]:
        t = self.timings
        m = inst.machine
        status = inst.status(now, t)
        up = status == "running"
        intended = inst.intended
        gpu_now = inst.dph_base if inst.cur_state == "running" else 0
        running_since = inst._running_from(inst.actions[-1], t)
        dph_total = inst.dph_total
        stc = inst.storage_total_cost
        ports: dict[str, Any] = {p: [{"HostIp": "0.0.0.0", "HostPort": str(n)}] for p, n in inst.host_ports.items()}
        if inst.direct and inst.direct_port:
            ports["22/tcp"] = [{"HostIp": "0.0.0.0", "HostPort": str(inst.direct_port)}]
        disk_usage = min(inst.disk, 2.5) if inst.phase(now, t) != "created" else 0.0
        current = {
            "gpuCostPerHour": gpu_now,
            "diskHour": stc,
            "slaPremiumPerHour": 0,
            "totalHour": gpu_now + stc,
            "discountTotalHour": 0,
            "discountedTotalPerHour": gpu_now + stc,
        }
        pending = now < inst.pending_until
        return {
            "actual_status": None if pending else status,
            "bundle_id": m["bundle_id"],
            "bw_nvlink": m["bw_nvlink"],
            "client_run_time": 1.1,
            "compute_cap": m["compute_cap"],
            "cpu_arch": m["cpu_arch"],
            "cpu_cores": m["cpu_cores"],
            "cpu_cores_effective": m["cpu_cores_effective"],
            "cpu_name": m["cpu_name"],
            "cpu_ram": m["cpu_ram"],
            "cpu_util": 0.6 if up else 0.0,
            "credit_balance": None,
            "credit_discount": None,
            "credit_discount_max": m["credit_discount_max"],
            "cuda_max_good": m["cuda_max_good"],
            "cur_state": inst.cur_state,
            "direct_port_count": m["direct_port_count"],
            "direct_port_end": inst.direct_port if inst.direct else -1,
            "direct_port_start": inst.direct_port if inst.direct else -1,
            "disk_bw": m["disk_bw"],
            "disk_name": m["disk_name"],
            "disk_space": inst.disk,
            "disk_usage": disk_usage,
            "disk_util": disk_usage / inst.disk,
            "dlperf": m["dlperf"],
            "dlperf_per_dphtotal": m["dlperf"] / dph_total,
            "dph_base": inst.dph_base,
            "dph_total": dph_total,
            "driver_version": m["driver_version"],
            "duration": m["end_date"] - inst.created_at,
            "end_date": m["end_date"],
            "external": m["external"],
            "extra_env": [list(p) for p in inst.extra_env],
            "flops_per_dphtotal": m["total_flops"] / dph_total,
            "geolocation": m["geolocation"],
            "gpu_arch": m["gpu_arch"],
            "gpu_display_active": m["gpu_display_active"],
            "gpu_frac": m["gpu_frac"],
            "gpu_lanes": m["gpu_lanes"],
            "gpu_mem_bw": m["gpu_mem_bw"],
            "gpu_name": m["gpu_name"],
            "gpu_ram": m["gpu_ram"],
            "gpu_temp": 34.0 if up else 0.0,
            "gpu_totalram": m["gpu_total_ram"],
            "gpu_util": 0.0,
            "has_avx": m["has_avx"],
            "host_id": m["host_id"],
            "host_run_time": 2592000.0,
            "hosting_type": m["hosting_type"],
            "id": inst.id,
            "image_args": list(inst.image_args),
            "image_runtype": inst.runtype,
            "image_uuid": inst.image,
            "inet_down": m["inet_down"],
            "inet_down_billed": 0.0,
            "inet_down_cost": m["inet_down_cost"],
            "inet_up": m["inet_up"],
            "inet_up_billed": 0.0,
            "inet_up_cost": m["inet_up_cost"],
            "instance": current,
            "intended_status": intended,
            "internet_down_cost_per_tb": m["internet_down_cost_per_tb"],
            "internet_up_cost_per_tb": m["internet_up_cost_per_tb"],
            "is_bid": inst.is_bid,
            "jupyter_token": inst.jupyter_token,
            "label": inst.label,
            "local_ipaddrs": f"{LOOPBACK}\n",
            "logo": m["logo"],
            "machine_dir_ssh_port": inst.direct_port if inst.direct else inst.ssh_port,
            "machine_id": m["machine_id"],
            "mem_limit": m["cpu_ram"] / 1000.0,
            "mem_usage": 0.85 if up else 0.0,
            "min_bid": inst.offer.min_bid,
            "mobo_name": m["mobo_name"],
            "next_state": intended,
            "num_gpus": m["num_gpus"],
            "onstart": inst.onstart,
            "os_version": m["os_version"],
            "pci_gen": m["pci_gen"],
            "pcie_bw": m["pcie_bw"],
            "public_ipaddr": LOOPBACK,
            "reliability2": m["reliability2"],
            "rentable": True,
            "score": m["dlperf"] / dph_total * m["reliability"] ** 30,
            "search": {
                "gpuCostPerHour": inst.dph_base,
                "diskHour": stc,
                "slaPremiumPerHour": 0.0,
                "totalHour": dph_total,
                "discountTotalHour": 0,
                "discountedTotalPerHour": dph_total,
            },
            "sla_r_claim": None,
            "sla_sigma_x": None,
            "ssh_host": LOOPBACK,
            "ssh_idx": "1",
            "ssh_port": inst.ssh_port,
            "start_date": inst.created_at,
            "static_ip": m["static_ip"],
            "status_msg": None if pending else inst.status_msg(now, t),
            "storage_cost": inst.rates[-1].storage_cost,
            "storage_total_cost": stc,
            "target_reliability": 0.0,
            "template_hash_id": inst.template_hash_id,
            "template_id": None,
            "time_remaining": "",
            "time_remaining_isbid": "",
            "total_flops": m["total_flops"],
            "uptime_mins": (now - running_since) / 60.0 if up and running_since is not None else None,
            "verification": m["verification"],
            "vmem_usage": 0.3 if up else 0.0,
            "vram_costperhour": dph_total / (m["gpu_total_ram"] / 1000.0),
            "webpage": m["webpage"],
            "template_name": None,
            # Documented in the reference but absent from the recorded stopped instance:
            "ports": ports,
            "country_code": m["geolocation"].rsplit(",", 1)[-1].strip(),
            "volume_info": [],
        }

    # ------------------------------------------------------------------- logs

    def log_lines(self, inst: Instance, now: float, daemon: bool) -> list[str]:
        """The container log (or the host daemon's) up to ``now``.

        Each start shows the onstart script's first line as ``onstart: <line>`` with the
        instance's env expanded in it (``echo $HF_TOKEN`` shows the token's value), the way
        a shell tracing its commands would; a registry login shows only "Login Succeeded".
        """
        t = self.timings
        m = inst.machine
        events: list[tuple[float, str]] = []
        if daemon:
            events.append((inst.created_at, f"vastd: contract {inst.id} assigned to machine {m['machine_id']}"))
            events.append((inst.created_at + 1, f"vastd: reserving {m['num_gpus']}x {m['gpu_name']}"))
            events.extend((a.at, f"vastd: {a.kind} requested") for a in inst.actions)
        else:
            for action in inst.actions:
                if action.kind == "create":
                    if inst.image_login is not None:
                        events.append((action.at + t.created, "Login Succeeded"))
                    events.append((action.at + t.created, f"Pulling image {inst.image}"))
                    events.append((action.at + t.created + 1, f"Status: Downloaded newer image for {inst.image}"))
                elif action.kind in ("stop", "outbid"):
                    events.append((action.at, "Stopping container"))
                elif action.kind == "reboot":
                    events.append((action.at, "Restarting container"))
                up_at = inst._running_from(action, t)
                if up_at is not None:
                    events.append((up_at, "Starting container"))
                    events.append((up_at, "sshd: Server listening on 0.0.0.0 port 22."))
                    if inst.onstart:
                        events.append((up_at, f"onstart: {expand_env(inst.onstart.splitlines()[0], inst.env)}"))
            if inst.fault == "exit":
                first_up = min((s for s, _ in inst.running_intervals(now + 1e9, t)), default=inst.fault_at)
                events.append((max(inst.fault_at, first_up), EXIT_MSG))
            elif inst.fault == "oci":
                events.append((inst.fault_at, OCI_MSG))
        events.sort(key=lambda e: e[0])
        return [f"{_iso(ts)} {text}" for ts, text in events if ts <= now]

    def request_logs(self, inst: Instance, body: dict[str, Any], now: float) -> str:
        lines = self.log_lines(inst, now, daemon=str(body.get("daemon_logs", "")).lower() == "true")
        pattern = body.get("filter")
        if isinstance(pattern, str) and pattern:
            try:
                rx = re.compile(pattern)
            except re.error:
                rx = re.compile(re.escape(pattern))
            lines = [line for line in lines if rx.search(line)]
        tail = body.get("tail")
        if tail is not None:
            try:
                lines = lines[-int(tail) :] if int(tail) > 0 else []
            except (TypeError, ValueError) as exc:
                raise invalid_args(f"Invalid tail {tail!r}.") from exc
        token = secrets.token_hex(16)
        self.logs[token] = "".join(line + "\n" for line in lines)
        return token

    # ------------------------------------------------------------------- keys

    def add_account_key(self, key: str, now: float) -> dict[str, Any]:
        key = key.strip()
        for existing in self.account.ssh_keys:
            if existing["public_key"] == key:
                return existing
        entry = {
            "id": self._next_key_id,
            "user_id": self.account.user_id,
            "default": None,
            "public_key": key,
            "private_key": None,
            "created_at": now,
            "deleted_at": None,
        }
        self._next_key_id += 1
        self.account.ssh_keys.append(entry)
        return entry

    def attach_key(self, inst: Instance, key: str) -> None:
        key = key.strip()
        if any(k["public_key"] == key for k in inst.ssh_keys):
            return
        account_key = next((k for k in self.account.ssh_keys if k["public_key"] == key), None)
        if account_key is not None:
            key_id = account_key["id"]
        else:
            key_id = self._next_key_id
            self._next_key_id += 1
        inst.ssh_keys.append({"id": key_id, "public_key": key})

    # ---------------------------------------------------------------- billing

    def _charge_parts(self, inst: Instance, lo: float, hi: float, now: float) -> tuple[Usage, Usage]:
        """(GPU, disk) use of ``inst`` inside [lo, hi): GPU while the container runs, disk while it exists."""
        end = inst.destroyed_at if inst.destroyed_at is not None else now
        gpu = inst.usage(inst.running_intervals(end, self.timings), lo, hi, lambda r: r.gpu)
        disk = inst.usage([(inst.created_at, end)], lo, hi, lambda r: storage_hourly(r.storage_cost, inst.disk))
        return gpu, disk

    def total_spent(self, now: float) -> float:
        total = 0.0
        for inst in [*self.instances.values(), *self.destroyed.values()]:
            gpu, disk = self._charge_parts(inst, inst.created_at, now, now)
            total += gpu.amount + disk.amount
        return total

    def charges(self, lo: float, hi: float, now: float) -> list[dict[str, Any]]:
        """One charge per instance alive in [lo, hi): GPU while running, disk while it exists."""
        results: list[dict[str, Any]] = []
        every = sorted([*self.instances.values(), *self.destroyed.values()], key=lambda i: i.id)
        for inst in every:
            end = inst.destroyed_at if inst.destroyed_at is not None else now
            start, stop = max(lo, inst.created_at), min(hi, end)
            if stop <= start:
                continue
            gpu, disk = self._charge_parts(inst, lo, hi, now)
            # The rate an item shows is its average when a price changed inside the range.
            gpu_rate = gpu.amount / gpu.hours if gpu.hours else inst.dph_base
            disk_rate = disk.amount / disk.hours if disk.hours else inst.storage_total_cost
            m = inst.machine
            item_common: dict[str, Any] = {"start": start, "end": stop, "source": None, "items": []}
            results.append(
                {
                    "start": start,
                    "end": stop,
                    "type": "instance",
                    "source": f"instance-{inst.id}",
                    "description": f"Instance {inst.id}: {m['num_gpus']}x {m['gpu_name']}",
                    "amount": gpu.amount + disk.amount,
                    "metadata": {
                        "template_id": None,
                        "label": inst.label,
                        "endpoint_id": None,
                        "workergroup_id": None,
                    },
                    "items": [
                        {
                            **item_common,
                            "type": "gpu",
                            "description": f"{gpu.hours:.3f} hours at ${gpu_rate:.3f}/hour",
                            "amount": gpu.amount,
                            "quantity": gpu.hours,
                            "rate": gpu_rate,
                        },
                        {
                            **item_common,
                            "type": "disk",
                            "description": (
                                f"{inst.disk:g} GB for {disk.hours:.3f} hours at "
                                f"${disk_rate * HOURS_PER_MONTH / inst.disk:.3f}/GB/month"
                            ),
                            "amount": disk.amount,
                            "quantity": disk.hours,
                            "rate": disk_rate,
                        },
                    ],
                }
            )
        return results

    def invoices(self) -> list[dict[str, Any]]:
        """The account's payments: a card top-up when the account was opened, a transfer a month later.

        Together they make the initial credit. Amounts carry the API's sign: the official
        CLI flips every type but transfer/payout for display, so a credit purchase is
        negative on the wire while a transfer received is positive (reference §11).
        """
        acct = self.account
        transfer = round(acct.initial_credit * 0.2, 2)
        invoice_id = 9_100_000 + acct.user_id % 1000 * 10
        return [
            {
                "start": acct.created_at,
                "end": None,
                "type": "credit",
                "source": "stripe",
                "description": "Credit purchase (card ending 4242)",
                "amount": -(acct.initial_credit - transfer),
                "metadata": {"invoice_id": invoice_id, "service": "stripe_payments"},
                "items": [],
            },
            {
                "start": acct.created_at + 30 * 86400,
                "end": None,
                "type": "transfer",
                "source": "transfer",
                "description": f"Transfer from user {acct.user_id + 1}",
                "amount": transfer,
                "metadata": {"invoice_id": invoice_id + 1, "service": "transfer"},
                "items": [],
            },
        ]

    def user_view(self, now: float) -> dict[str, Any]:
        acct = self.account
        spent = self.total_spent(now)
        return {
            "can_pay": True,
            "id": acct.user_id,
            "created_at": int(acct.created_at * 1000),  # milliseconds, unlike everything else
            "api_key": acct.fake_api_key,
            "key_id": acct.user_id * 10 + 1,
            "username": acct.username,
            "ssh_key": acct.ssh_keys[0]["public_key"] if acct.ssh_keys else None,
            "phone_number": None,
            "paypal_email": None,
            "wise_email": None,
            "fullname": None,
            "balance_threshold": -0.01,
            "balance_threshold_enabled": True,
            "autobill_threshold": None,
            "total_spend": spent,
            "autobill_amount": None,
            "billaddress_line1": None,
            "billaddress_line2": None,
            "billaddress_city": None,
            "billaddress_zip": None,
            "billaddress_country": None,
            "billing_creditonly": 1,
            "billaddress_taxinfo": None,
            "password_resettable": None,
            "email": acct.email,
            "tfa_status": "disabled",
            "has_billing": 0,
            "has_payout": 0,
            "has_stripe_payout": 0,
            "payout_enabled": 0,
            "host_only": 0,
            "host_agreement_accepted": 0,
            "email_verified": 1,
            "last4": None,
            "balance": 0,
            "credit": acct.initial_credit - spent,
            "got_signup_credit": 0,
            "paid_verified": 0,
            "paid_expected": 0,
            "billed_verified": 0.0,
            "billed_expected": 0.0,
            "has_rented": 1 if (self.instances or self.destroyed) else 0,
            "balance_referrals": 0,
            "is_subject_to_unpaid_deletion": 0,
            "discord_id": None,
            "huggingface_cloud_sync_enabled": 0,
            "oauth_provider": None,
            "rights": None,
            "tfa_login": 0,
            "crisp_hmac": hashlib.sha256(f"crisp-{acct.user_id}".encode()).hexdigest(),
            "sid": f"sim-session-{acct.user_id}",
        }

    def summary(self, now: float) -> dict[str, Any]:
        with self.lock:
            return {
                "now": now,
                "serving": self.serving,
                "offers": {
                    "total": len(self.offers),
                    "rentable": sum(1 for o in self.offers if o.rentable),
                    "rented": sum(1 for o in self.offers if o.rented),
                },
                "instances": [
                    {
                        "id": i.id,
                        "label": i.label,
                        "actual_status": i.status(now, self.timings),
                        "intended_status": i.intended,
                        "cur_state": i.cur_state,
                        "ssh_port": i.ssh_port,
                        "direct_port": i.direct_port or None,
                        "ssh_keys": [k["public_key"] for k in i.ssh_keys],
                        "fault": i.fault,
                    }
                    for i in self.instances.values()
                ],
                "destroyed": sorted(self.destroyed),
                "ssh_keys": len(self.account.ssh_keys),
                "credit": self.account.initial_credit - self.total_spent(now),
                "listening_ports": self.hub.listening_ports(),
            }
