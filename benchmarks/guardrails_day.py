"""A simulated day with and without guardrails: the dollars Vast bills (issue 13).

    uv run python benchmarks/guardrails_day.py

On the embedded simulator, on its clock, the same day runs twice:

* 00:00 three rentals: one that will be forgotten, one the user stops at 01:00 (its disk keeps
  billing), and an interruptible one that is outbid at 02:00 and resumes at 08:00 when the
  minimum bid falls; at 06:00 the assistant rents a 4x GPU machine that is then forgotten too.
* without guardrails nothing else happens until 24:00.
* with guardrails every rental has a deadline: the forgotten one stop@04:00, the stopped one
  destroy@03:00, the bid one stop@04:00; the 4x rental, planned with the default 24 h, is refused
  by the daily budget and planned again with 6 h (stop@12:00). Each running container runs the
  real in-instance guard (``guard_script``, a real ``dash`` process with the instance's scoped
  key); a container that stops takes its guard with it. ``vast-mcp reap`` runs from cron every
  15 minutes. Caps: max burn $2.00/h, daily budget $20.

The guard reads the time with ``date`` and waits with ``sleep``: here both are stand-ins that
follow the simulated clock, which moves in 5-minute steps only once every guard is waiting, so
every action lands at an exact simulated time and the output is the same on every run.
Dollars are what the simulator's charges endpoint bills for the day.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from vast_mcp.credentials import ApiKey
from vast_mcp.provisioning.rental import MARKER_ENV
from vast_mcp.simulator import Simulator, Timings
from vast_mcp.simulator.inventory import Offer as SimOffer
from vast_mcp.spending.caps import Caps, check, new_rental
from vast_mcp.spending.deadlines import Deadline, DeadlineStore
from vast_mcp.spending.guard import (
    GUARD_ENV_FILE_ENV,
    GUARD_EVERY_ENV,
    GUARD_URL_ENV,
    DeadlineAction,
    compose_onstart,
    guard_script,
    tag_label,
)
from vast_mcp.spending.reaper import reap
from vast_mcp.vast import CreateRequest, VastClient, VastHttp

KEY = "bench-account-key"
HOUR = 3600
STEP = 300  # simulated seconds per clock move: the guard's check interval here
REAP_EVERY = 900  # cron
CAPS = Caps(max_burn=2.0, daily_budget=20.0)
DEFAULT_TTL_HOURS = 24  # the deadline a plan proposes when none is named
DISK_GB = 32
IMAGE = "pytorch/pytorch:latest"

# The guard's clock and pause, following the benchmark's simulated clock (see the module docstring).
DATE_SHIM = '#!/bin/sh\nexec {cat} "$BENCH_DIR/now"\n'
SLEEP_SHIM = """#!/bin/sh
n=$(( $({cat} "$BENCH_DIR/ticks") + 1 ))
echo "$n" > "$BENCH_DIR/ticks.new" && {mv} "$BENCH_DIR/ticks.new" "$BENCH_DIR/ticks"
while [ ! -e "$BENCH_DIR/go.$n" ]; do {sleep} 0.002; done
"""
GUARD_TOOLS = ("tr", "sed", "head", "curl")


@dataclass
class Rental:
    name: str
    offer_id: int
    gpu_per_hour: float
    storage_per_hour: float  # for DISK_GB
    deadline: int | None = None  # hours after the day starts
    action: DeadlineAction = "stop"
    bid: float | None = None
    instance_id: int = 0


@dataclass
class Day:
    """One run of the day: the simulator, the account's client, and what happened."""

    sim: Simulator
    url: str
    vast: VastClient
    work: Path
    guardrails: bool
    start: float
    store: DeadlineStore
    guards: dict[str, Guard] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    @property
    def now(self) -> float:
        return self.sim.clock.now()

    def note(self, text: str) -> None:
        self.log.append(f"{clock(self.now - self.start)}  {text}")


class Guard:
    """The real guard script as a real process, on the simulated clock."""

    def __init__(self, day: Day, rental: Rental) -> None:
        assert rental.deadline is not None
        self.dir = day.work / f"guard-{rental.instance_id}"
        self.dir.mkdir()
        (self.dir / "ticks").write_text("0")
        (self.dir / "now").write_text(str(int(day.now)))
        environ = self.dir / "environ"
        entries = [
            f"CONTAINER_ID={rental.instance_id}",
            f"CONTAINER_API_KEY={day.sim.instance_key(rental.instance_id)}",
        ]
        environ.write_bytes(("\0".join(entries) + "\0").encode())
        script = guard_script(int(day.start + rental.deadline * HOUR), rental.action)
        env = {
            "PATH": str(_shim_bin(day.work)),
            GUARD_URL_ENV: day.url,
            GUARD_ENV_FILE_ENV: str(environ),
            GUARD_EVERY_ENV: str(STEP),
            "BENCH_DIR": str(self.dir),
        }
        dash = shutil.which("dash") or "sh"
        self.process = subprocess.Popen(
            [dash, "-c", script], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        self.tick = 0

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    async def wait_idle(self) -> None:
        """Until the guard waits in its k-th pause (or has exited)."""
        while self.alive:
            try:
                if int((self.dir / "ticks").read_text()) > self.tick:
                    return
            except ValueError:
                pass
            await anyio.sleep(0.002)

    def release(self, now: float) -> None:
        """Move its clock on and let it run one more check."""
        self.tick += 1
        (self.dir / "now").write_text(str(int(now)))
        (self.dir / f"go.{self.tick}").touch()

    def stop(self) -> list[str]:
        """The container stopped: the guard goes with it. Returns what it printed."""
        if self.alive:
            os.killpg(self.process.pid, signal.SIGKILL)  # its group: the guard and its pause
        out, _ = self.process.communicate()
        return out.splitlines()


def _shim_bin(work: Path) -> Path:
    folder = work / "bin"
    if folder.exists():
        return folder
    folder.mkdir()
    tools = {name: shutil.which(name) for name in ("cat", "mv", "sleep", *GUARD_TOOLS)}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        raise SystemExit(f"guardrails_day: needs {', '.join(missing)} installed")
    for name in GUARD_TOOLS:
        (folder / name).symlink_to(str(tools[name]))
    for name, text in (("date", DATE_SHIM), ("sleep", SLEEP_SHIM)):
        shim = folder / name
        shim.write_text(text.format(cat=tools["cat"], mv=tools["mv"], sleep=tools["sleep"]))
        shim.chmod(0o755)
    return folder


def clock(seconds: float) -> str:
    return f"{int(seconds // HOUR):02d}:{int(seconds % HOUR // 60):02d}"


def plan_day(sim: Simulator) -> dict[str, Rental]:
    """The same offers in both runs: the three cheapest single 4090s and the cheapest 4x 4090."""
    pool = sorted(
        (o for o in sim.state.offers if o.rentable and o.static["disk_space"] >= DISK_GB),
        key=lambda o: (o.dph_base, o.id),
    )
    single = [o for o in pool if o.static["gpu_name"] == "RTX 4090" and o.static["num_gpus"] == 1][:3]
    big = next(o for o in pool if o.static["gpu_name"] == "RTX 4090" and o.static["num_gpus"] == 4)

    def rental(name: str, offer: SimOffer, **terms: Any) -> Rental:
        storage = offer.static["storage_cost"] * DISK_GB / 720
        return Rental(name, offer.id, offer.dph_base, storage, **terms)

    return {
        "forgotten": rental("forgotten", single[0], deadline=4),
        "stopped": rental("stopped", single[1], deadline=3, action="destroy"),
        "outbid": rental("outbid", single[2], deadline=4, bid=single[2].dph_base),
        "extra": rental("extra", big, deadline=6 + DEFAULT_TTL_HOURS),
    }


async def create(day: Day, rental: Rental) -> bool:
    """Rent (with guardrails: only within the caps, with a deadline, a tag and the guard's onstart)."""
    price = (rental.gpu_per_hour if rental.bid is None else rental.bid) + rental.storage_per_hour
    label, onstart = rental.name, None
    if day.guardrails:
        listed = await day.vast.instances.list()
        hours = None if rental.deadline is None else rental.deadline - (day.now - day.start) / HOUR
        plan = new_rental(price, rental.storage_per_hour, now=day.now, hours=hours, at_deadline=rental.action)
        charges = await day.vast.account.charges(utc(day.start), utc(day.now))
        deadlines = {d.instance_id: d for d in day.store.all()}
        verdict = check(CAPS, listed, now=day.now, action=plan, deadlines=deadlines, charges=charges)
        if not verdict.ok:
            day.note(f"{rental.name}: {verdict.message}")
            return False
        if rental.deadline is not None:
            at = int(day.start + rental.deadline * HOUR)
            label, onstart = tag_label(rental.name, at, rental.action), compose_onstart(None, at, rental.action)
    request = CreateRequest(
        image=IMAGE, disk=DISK_GB, label=label, onstart=onstart, env={MARKER_ENV: rental.name}, price=rental.bid
    )
    rental.instance_id = await day.vast.instances.create(rental.offer_id, request)
    if day.guardrails and rental.deadline is not None:
        user = (await day.vast.account.current_user()).id
        day.store.set(Deadline(rental.instance_id, day.start + rental.deadline * HOUR, rental.action, user))
    day.note(f"{rental.name}: rented instance {rental.instance_id} at ${price:.3f}/h")
    return True


def running(day: Day, instance_id: int) -> bool:
    found = next((i for i in day.sim.summary()["instances"] if i["id"] == instance_id), None)
    return found is not None and found["actual_status"] == "running"


async def live_day(day: Day, rentals: dict[str, Rental]) -> None:
    for name in ("forgotten", "stopped", "outbid"):
        await create(day, rentals[name])
    for elapsed in range(STEP, 24 * HOUR + 1, STEP):
        day.sim.clock.advance(STEP)
        for guard in day.guards.values():
            guard.release(day.now)
        for guard in day.guards.values():
            await guard.wait_idle()
        await happen(day, rentals, elapsed)
        if day.guardrails:
            await follow_guards(day, rentals)
            if elapsed % REAP_EVERY == 0:
                for action in await reap(day.vast, day.store, now=day.now, dry_run=False, poll=0.0):
                    day.note(f"vast-mcp reap: {action.line}")
    for name in list(day.guards):
        finish_guard(day, name)


async def happen(day: Day, rentals: dict[str, Rental], elapsed: int) -> None:
    """What the user, the market and the assistant do, the same in both runs."""
    outbid = rentals["outbid"]
    assert outbid.bid is not None
    if elapsed == 1 * HOUR:
        await day.vast.instances.set_state(rentals["stopped"].instance_id, "stopped")
        day.note("the user stops 'stopped' (its disk keeps billing)")
    elif elapsed == 2 * HOUR:
        day.sim.set_min_bid(outbid.instance_id, outbid.bid * 1.5)
        day.note("the minimum bid rises above the bid of 'outbid': Vast stops it")
    elif elapsed == 6 * HOUR and not await create(day, rentals["extra"]) and day.guardrails:
        rentals["extra"].deadline = 12  # as the refusal suggests: 6 hours instead of the default 24
        await create(day, rentals["extra"])
    elif elapsed == 8 * HOUR:
        day.sim.set_min_bid(outbid.instance_id, outbid.bid * 0.5)
        day.note("the minimum bid falls again: an outbid instance still meant to run resumes")


async def follow_guards(day: Day, rentals: dict[str, Rental]) -> None:
    """A guard starts with its running container and dies with it."""
    for name, rental in rentals.items():
        if not rental.instance_id or rental.deadline is None:
            continue
        up = running(day, rental.instance_id)
        if up and name not in day.guards:
            day.guards[name] = Guard(day, rental)
            await day.guards[name].wait_idle()
        elif name in day.guards and (not up or not day.guards[name].alive):
            finish_guard(day, name)


def finish_guard(day: Day, name: str) -> None:
    for line in day.guards.pop(name).stop():
        if "sent" in line:
            day.note(f"{name}: its in-instance guard printed {line!r}")


async def billed(day: Day, rentals: dict[str, Rental]) -> dict[str, float]:
    """The day's charges per rental, from the charges endpoint."""
    names = {r.instance_id: r.name for r in rentals.values() if r.instance_id}
    totals: dict[str, float] = {}
    for row in await day.vast.account.charges(utc(day.start), utc(day.start + 24 * HOUR - 1)):
        name = names[int((row.source or "").rsplit("-", 1)[-1])]
        totals[name] = totals.get(name, 0.0) + abs(row.amount)
    return totals


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@contextmanager
def simulated_day(guardrails: bool) -> Iterator[tuple[Simulator, str, Path]]:
    sim = Simulator(api_key=KEY, seed=0, speed=0.0, timings=Timings(stop=0.0))
    with sim.serve() as url, tempfile.TemporaryDirectory(prefix="guardrails-day-") as tmp:
        yield sim, url, Path(tmp)


async def run(guardrails: bool) -> tuple[dict[str, float], list[str]]:
    with simulated_day(guardrails) as (sim, url, work):
        http = VastHttp(ApiKey(KEY, "env"), url, budget=None)
        async with VastClient(http) as vast:
            day = Day(sim, url, vast, work, guardrails, sim.clock.now(), DeadlineStore(work / "state"))
            rentals = plan_day(sim)
            await live_day(day, rentals)
            return await billed(day, rentals), day.log


def main() -> int:
    without, _ = anyio.run(run, False)
    with_rails, log = anyio.run(run, True)
    print("== a simulated day on the Vast simulator: dollars billed, without and with guardrails")
    print(
        "guardrails: deadlines (in-instance guard + vast-mcp reap every 15 min), "
        f"caps max burn ${CAPS.max_burn:.2f}/h and daily budget ${CAPS.daily_budget:.0f}"
    )
    print()
    print(f"{'rental':<12}{'without':>12}{'with':>12}")
    for name in ("forgotten", "stopped", "outbid", "extra"):
        print(f"{name:<12}{without.get(name, 0.0):>12.2f}{with_rails.get(name, 0.0):>12.2f}")
    total_without, total_with = sum(without.values()), sum(with_rails.values())
    print(f"{'total $':<12}{total_without:>12.2f}{total_with:>12.2f}")
    saved = total_without - total_with
    print(f"saved ${saved:.2f} ({saved / total_without:.0%}) in one day")
    print()
    print("what the guardrails did (simulated time):")
    for line in log:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
