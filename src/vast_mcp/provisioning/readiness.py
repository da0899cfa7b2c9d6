"""Waiting for an instance to reach a state, and proving SSH answers.

"Running" on Vast is reported before sshd answers, so readiness is a real TCP
connect that reads the server's ``SSH-2.0-`` banner, tried on the direct port
and on the proxy, until a deadline.

The live API's rules (reference §11, as SkyPilot applies them): ``actual_status: null``
is still pending; a ``status_msg`` saying "OCI runtime create failed" (or "error" /
"failed" while loading) will never run; SSH is ready only when the instance is
running *and* its SSH port is set.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import anyio

from vast_mcp.vast import Instance, NotFoundError, VastClient
from vast_mcp.vast.models import is_public_host, parse_host
from vast_mcp.views import untrusted

Target = Literal["running", "stopped", "gone"]
Progress = Callable[[float, str], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]

# The instance will not reach "running" from these without someone acting (Vast docs).
DEAD_STATES = frozenset({"exited", "offline"})
UNKNOWN_GRACE_S = 60.0  # "unknown" = no heartbeat; give a host this long to report in
EXITED_GRACE_S = 30.0  # right after a start, actual_status may still show the old "exited"
FATAL_STATUS_TEXT = "oci runtime create failed"  # the container can never start
FATAL_WHILE_LOADING = ("error", "failed")


async def _no_progress(_: float, __: str) -> None:
    return None


@dataclass
class WaitOutcome:
    reached: bool
    state: str  # last actual_status, or "gone"
    waited_s: float
    polls: int
    instance: Instance | None
    failure: str | None = None  # why it will not get there (fail fast), None on timeout/success


def _is_stopped(inst: Instance) -> bool:
    # Recorded: a stopped instance reads actual_status "exited" + intended_status "stopped".
    # cur_state flips the moment a stop is requested, so it says nothing about the container.
    return inst.intended_status == "stopped" and inst.actual_status in {"exited", "stopped", None}


async def wait_for_state(
    vast: VastClient,
    instance_id: int,
    target: Target,
    *,
    timeout_s: float,
    poll_s: float,
    progress: Progress = _no_progress,
    sleep: Sleep = anyio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> WaitOutcome:
    """Poll until ``target`` or a state that cannot lead there, or until ``timeout_s``."""
    start = clock()
    polls = 0
    seen_progress = False
    unknown_since: float | None = None
    instance: Instance | None = None
    while True:
        polls += 1
        elapsed = clock() - start
        try:
            instance = await vast.instances.get(instance_id)
        except NotFoundError:
            if target == "gone":
                return WaitOutcome(True, "gone", elapsed, polls, None)
            return WaitOutcome(False, "gone", elapsed, polls, None, failure="the instance no longer exists")
        status = instance.actual_status or "provisioning"
        await progress(float(polls), f"instance {instance_id}: {status} after {elapsed:.0f}s")

        if target == "running" and status == "running":
            return WaitOutcome(True, status, elapsed, polls, instance)
        if target == "stopped" and _is_stopped(instance):
            return WaitOutcome(True, status, elapsed, polls, instance)
        if target == "running":
            failure = _running_failure(instance, seen_progress, elapsed, unknown_since, clock())
            if failure:
                return WaitOutcome(False, status, elapsed, polls, instance, failure=failure)
            seen_progress = seen_progress or status in {"created", "loading", "scheduling", "rebooting"}
            unknown_since = (unknown_since or clock()) if status == "unknown" else None

        if elapsed + poll_s > timeout_s:
            return WaitOutcome(False, status, elapsed, polls, instance)
        # Poll on a fixed cadence (start + k * poll_s), so a round trip never stretches the gap
        # and "running" is seen within one interval.
        await sleep(max(0.0, start + polls * poll_s - clock()))


def _running_failure(
    inst: Instance, seen_progress: bool, elapsed: float, unknown_since: float | None, now: float
) -> str | None:
    status = inst.actual_status
    if inst.intended_status == "stopped":
        return "the instance is meant to be stopped (start it first)"
    message = (inst.status_msg or "").lower()
    if FATAL_STATUS_TEXT in message or (status == "loading" and any(w in message for w in FATAL_WHILE_LOADING)):
        return f"the instance cannot start: {untrusted(inst.status_msg, 300)}"
    if status in DEAD_STATES and (seen_progress or elapsed >= EXITED_GRACE_S or status == "offline"):
        detail = f": {untrusted(inst.status_msg, 300)}" if inst.status_msg else ""
        return f"the instance is {status}{detail}"
    if status == "unknown" and unknown_since is not None and now - unknown_since >= UNKNOWN_GRACE_S:
        return f"the host has not reported for {now - unknown_since:.0f}s (status unknown)"
    return None


@dataclass(frozen=True)
class SshEndpoint:
    kind: Literal["direct", "proxy"]
    host: str
    port: int

    @property
    def command(self) -> str:
        return f"ssh -p {self.port} {shlex.quote(f'root@{self.host}')}"


def ssh_endpoints(inst: Instance, *, allow_private: bool) -> list[SshEndpoint]:
    """Direct first (faster, no proxy hop), then the Vast proxy; none until the instance runs.

    Only a valid IP address or DNS name passes, and unless ``allow_private`` (the simulator
    on loopback) never a loopback, private, link-local, unspecified or multicast one.
    """
    if inst.actual_status != "running":
        return []
    candidates = [SshEndpoint("direct", *inst.direct_ssh)] if inst.direct_ssh else []
    candidates += [SshEndpoint("proxy", *inst.proxy_ssh)] if inst.proxy_ssh else []
    return [SshEndpoint(e.kind, host, e.port) for e in candidates if (host := _usable_host(e.host, allow_private))]


def _usable_host(host: str, allow_private: bool) -> str | None:
    try:
        host = parse_host(host)  # again: an Instance built without validation must not slip through
    except ValueError:
        return None
    return host if allow_private or is_public_host(host) else None


@dataclass
class SshProbe:
    ready: bool
    endpoint: SshEndpoint | None
    banner: str | None
    attempts: int
    waited_s: float
    errors: dict[str, str] = field(default_factory=dict)  # last error per endpoint


async def read_banner(endpoint: SshEndpoint, connect_timeout_s: float = 5.0, read_timeout_s: float = 5.0) -> str:
    """Connect and read the first line; it must be an SSH identification string.

    The connect is kept short; once connected, a slow sshd may take ``read_timeout_s`` to speak.
    """
    with anyio.fail_after(connect_timeout_s):
        stream = await anyio.connect_tcp(endpoint.host, endpoint.port)
    async with stream:
        data = b""
        with anyio.fail_after(read_timeout_s):
            while b"\n" not in data and len(data) < 255:
                data += await stream.receive(255)
    line = data.split(b"\n", 1)[0].decode("ascii", "replace").strip()
    if not line.startswith("SSH-2.0-"):
        raise ValueError(f"not an SSH server (it said {untrusted(line, 40)})")
    return line


async def probe_ssh(
    endpoints: list[SshEndpoint],
    *,
    timeout_s: float,
    interval_s: float = 3.0,
    connect_timeout_s: float = 5.0,
    progress: Progress = _no_progress,
    sleep: Sleep = anyio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SshProbe:
    """Try every endpoint until one answers with an SSH banner or ``timeout_s`` passes."""
    start = clock()
    attempts = 0
    errors: dict[str, str] = {}
    while endpoints:
        for endpoint in endpoints:
            attempts += 1
            remaining = max(timeout_s - (clock() - start), 0.5)
            try:
                banner = await read_banner(endpoint, min(connect_timeout_s, remaining), remaining)
            except (OSError, TimeoutError, ValueError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                errors[f"{endpoint.kind} {endpoint.host}:{endpoint.port}"] = str(exc) or type(exc).__name__
                continue
            return SshProbe(True, endpoint, banner, attempts, clock() - start, errors)
        waited = clock() - start
        if waited + interval_s > timeout_s:
            break
        await progress(float(attempts), f"SSH not answering yet after {waited:.0f}s")
        await sleep(interval_s)
    return SshProbe(False, None, None, attempts, clock() - start, errors)
