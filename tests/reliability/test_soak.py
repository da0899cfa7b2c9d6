"""Fault soak: many seeded, full workflows through a real MCP client against served simulators,
with a random fault armed before every step, and the money invariants checked after every run.

Workflow per run: plan_instance -> create_instance (the human accepts the elicitation form)
-> wait_for_instance(running) -> check_ssh -> stop_instance -> start_instance -> destroy_instance.
About one plan in seven asks for two instances (distinct machines, one quote).
A step that fails cleanly is tried again (a new quote when the old one is spent), so faults
land on every phase. Invariants after each run:

* no duplicate instance for one confirmed quote (instances carrying that quote's create
  markers <= its count; create PUTs <= two per instance: the one allowed retry);
* every instance that exists on the simulator was reported to the caller in a result;
* nothing is left running that the flow did not report (and after clean-up, nothing at all);
* no unhandled exception reached the client (no sanitised crash text, no protocol error, no hang);
* the retry rules held: never a second create PUT for one attempt marker; after a 429 with a
  wait hint the same request came back no earlier than the hint; a 429 without a hint was not
  retried at once; ``search_quota_exceeded`` was never retried;
* guardrails: every server runs with a max-burn cap; no create was sent that, at the quoted price,
  put the account over it; every create recorded its deadline; in about a third of the runs a
  deadline is moved into the past and reaped, first under a fault, then cleanly: after the clean
  reap nothing past its deadline is left running (a stop deadline stopped it, a destroy one
  destroyed it).

Reproduce a failure with ``VAST_MCP_SOAK_SEED=<seed> uv run pytest tests/reliability/test_soak.py -s``;
``VAST_MCP_SOAK_RUNS`` changes the number of runs.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from tests.helpers import ScriptedUser, fast_settings, ssh_dir_with_key
from tests.reliability.support import (
    CREATE,
    Recorder,
    Seen,
    every_instance,
    find_secret,
    live_instances,
    recorded_simulator,
    result_problem,
    text_of,
)
from vast_mcp.credentials import ApiKey
from vast_mcp.server import create_server
from vast_mcp.simulator import Simulator
from vast_mcp.spending.deadlines import Deadline, DeadlineStore
from vast_mcp.spending.reaper import reap
from vast_mcp.vast import VastClient, VastError, VastHttp
from vast_mcp.vast.transport import RetryPolicy

pytestmark = pytest.mark.anyio

SEED = int(os.environ.get("VAST_MCP_SOAK_SEED", "20261107"))
RUNS = int(os.environ.get("VAST_MCP_SOAK_RUNS", "84"))
LANES = 6  # simulators served side by side; runs within a lane are sequential
START_BUDGET_S = 55.0  # no new run starts after this; the whole test stays under 90 s
HARD_LIMIT_S = 88.0
KEY = "vk-soak-key+/0123456789abcdef"

HTTP_TIMEOUT = 0.6  # one Vast answer; the `slow` fault answers later than this
SLOW_BEYOND = HTTP_TIMEOUT + 0.3
HINT = 0.1  # the wait hint the 429 faults carry (kept small to keep the soak short)
NO_HINT_MIN_WAIT = 0.1  # a 429 without a hint must still be followed by a backoff
CALL_LIMIT_S = 25.0  # any single tool call taking longer is a hang
FAULT_PROBABILITY = 0.7
MAX_BURN = 0.9  # $/h: one RTX 4090 fits, two sometimes do not, so refusals happen too
REAP_PROBABILITY = 0.35


# --------------------------------------------------------------------------- faults


Arm = tuple[str, dict[str, Any]]


def _generic(rng: random.Random) -> Arm:
    """A transport-level fault on whatever request the step sends next."""
    pick = rng.choice(["429-header", "429-body", "429-none", "5xx", "slow", "empty", "malformed"])
    times = rng.choice([1, 1, 2])
    if pick == "429-header":
        return "rate_limit", {"retry_after_header": HINT, "times": times}
    if pick == "429-body":
        return "rate_limit", {"retry_after_body": HINT, "times": times}
    if pick == "429-none":
        style = rng.choice([{"plain_text": True}, {"detail": True}, {}])
        return "rate_limit", {**style, "times": times}
    if pick == "5xx":
        return "server_error", {"status": rng.choice([500, 502, 503, 504]), "html": rng.random() < 0.5, "times": times}
    if pick == "slow":
        return "slow", {"seconds": SLOW_BEYOND}
    if pick == "empty":
        return "empty_body", {"times": times}
    return "malformed_body", {"html": rng.random() < 0.5, "times": times}


def _on_create_put(rng: random.Random) -> Arm:
    """A fault aimed at the create request itself (the money request)."""
    kind, params = _generic(rng)
    params.pop("times", None)
    return kind, {**params, "method": "PUT", "path": CREATE}


def choose_fault(step: str, rng: random.Random, instance_id: int | None) -> Arm | None:
    if rng.random() > (0.9 if step == "create" else FAULT_PROBABILITY):
        return None
    roll = rng.random()
    if step == "plan":
        if roll < 0.15:
            return "price_move", {"factor": rng.choice([1.05, 1.5])}
        if roll < 0.25:
            return "search_quota", {}
        return _generic(rng)
    if step == "create":
        specials: list[Callable[[], Arm]] = [
            lambda: ("drop_after_commit", {}),
            lambda: ("drop_after_commit", {}),
            lambda: ("offer_taken", {"times": rng.choice([1, 1, 2])}),
            lambda: ("offer_taken", {"times": 1}),
            lambda: ("price_move", {"factor": rng.choice([1.05, 1.5])}),
            lambda: ("instance_exit", {}),
            lambda: ("stuck_unknown", {}),
            lambda: ("slow_ssh", {"seconds": rng.choice([0.2, 3.0])}),
            lambda: _on_create_put(rng),
            lambda: _on_create_put(rng),
            lambda: _on_create_put(rng),
        ]
        if roll < 0.8:
            return rng.choice(specials)()
        return _generic(rng)
    if instance_id is not None and roll < 0.12:
        if step == "ssh":
            return "slow_ssh", {"seconds": rng.choice([0.2, 3.0]), "instance_id": instance_id}
        if step in ("wait", "start"):
            return rng.choice(["instance_exit", "stuck_unknown"]), {"instance_id": instance_id}
    return _generic(rng)


# --------------------------------------------------------------------------- bookkeeping


@dataclass
class Figures:
    runs: int = 0
    completed: int = 0  # reached destroy with a verified gone
    calls: int = 0
    tool_errors: int = 0
    progress: int = 0
    requests: int = 0
    creates: int = 0
    reconciled: int = 0  # create answers lost (dropped, 5xx, timeout, bad body) then reconciled
    waits_checked: int = 0
    two_instance_quotes: int = 0
    faults_armed: Counter[str] = field(default_factory=Counter)
    checked: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checked[name] += 1
        if not ok:
            self.violations.append(f"{name}: {detail}")


@dataclass
class Lane:
    number: int
    sim: Simulator
    recorder: Recorder
    client: Client
    rng: random.Random
    figures: Figures
    user: ScriptedUser
    vast: VastClient
    deadlines: DeadlineStore
    quote_markers: dict[str, set[str]] = field(default_factory=dict)  # quote -> create markers
    quote_puts: Counter[str] = field(default_factory=Counter)
    quote_counts: dict[str, int] = field(default_factory=dict)


async def call(lane: Lane, run: int, step: str, name: str, args: dict[str, Any]) -> CallToolResult | None:
    """One tool call with the no-crash / no-hang / no-protocol-error invariant."""
    fig = lane.figures
    fig.calls += 1
    lane.recorder.call = f"{run}:{step}:{name}:{fig.calls}"

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        fig.progress += 1
        fig.check("key never in a progress message", find_secret(message or "", KEY) is None, f"{where}: {name}")

    where = f"lane {lane.number} run {run} {step}"
    try:
        with anyio.fail_after(CALL_LIMIT_S):
            result = await lane.client.call_tool(name, args, progress_callback=on_progress)
    except TimeoutError:
        fig.check("no hang", False, f"{where}: {name} did not answer within {CALL_LIMIT_S:.0f} s")
        return None
    except MCPError as exc:
        fig.check("no protocol error", False, f"{where}: {name} raised {exc!r}")
        return None
    fig.check("no hang", True, "")
    problem = result_problem(name, result)
    fig.check("no unhandled exception", problem is None, f"{where}: {problem}")
    leaked = find_secret(result.model_dump_json(by_alias=True), KEY)
    fig.check("key never in a result", leaked is None, f"{where}: {name} result carries the key")
    if result.is_error:
        fig.tool_errors += 1
    return result


def arm(lane: Lane, step: str, instance_id: int | None, *, quiet: bool = False) -> None:
    lane.sim.faults.clear()  # one fault per step: what a step meets is what was armed for it
    if quiet:
        return
    chosen = choose_fault(step, lane.rng, instance_id)
    if chosen is None:
        return
    kind, params = chosen
    lane.sim.faults.inject(kind, **params)
    lane.figures.faults_armed[kind] += 1


def ok_data(result: CallToolResult | None) -> dict[str, Any] | None:
    if result is None or result.is_error or not isinstance(result.structured_content, dict):
        return None
    return result.structured_content


# --------------------------------------------------------------------------- invariants per create call


def check_create_requests(lane: Lane, quote: str, seen: list[Seen], where: str) -> None:
    fig = lane.figures
    puts = [s for s in seen if s.method == "PUT" and re.search(CREATE, s.path)]
    fig.creates += len(puts)
    markers = [s.marker for s in puts]
    fig.check("create carries a marker", all(markers), f"{where}: create PUT without {markers}")
    # one PUT per attempt marker, ever, on this simulator
    everyone = [s.marker for s in lane.recorder.since(0) if s.marker]
    dupes = [m for m, n in Counter(everyone).items() if n > 1]
    fig.check("never a second create for one attempt", not dupes, f"{where}: markers sent twice {dupes}")
    lane.quote_markers.setdefault(quote, set()).update(m for m in markers if m)
    lane.quote_puts[quote] += len(puts)
    limit = 2 * lane.quote_counts[quote]
    fig.check(
        "at most one retry per confirmed instance",
        lane.quote_puts[quote] <= limit,
        f"{where}: {lane.quote_puts[quote]} create PUTs for one quote (limit {limit})",
    )
    lost = [s for s in puts if s.dropped or (s.status or 0) >= 500 or s.answered - s.arrived >= HTTP_TIMEOUT]
    fig.reconciled += len(lost)


def burn(sim: Simulator, *, without: set[int] = frozenset()) -> float:  # type: ignore[assignment]
    """The account's $/h as the caps count it, from the simulator's own state."""
    now = sim.clock.now()
    with sim.state.lock:
        views = [sim.state.instance_view(i, now) for i in sim.state.instances.values() if i.id not in without]
    return sum(v["dph_total"] if v["intended_status"] == "running" else v["storage_total_cost"] for v in views)


def check_caps_and_deadlines(lane: Lane, quote: str, total: float, made: set[int], sent: bool, where: str) -> None:
    if sent:
        before = burn(lane.sim, without=made)
        lane.figures.check(
            "no rental past a cap",
            before + total <= MAX_BURN + 1e-6,
            f"{where}: sent a create with {before:.4f}/h billing and {total:.4f}/h quoted (cap {MAX_BURN})",
        )
    missing = [i for i in made if lane.deadlines.get(i) is None]
    lane.figures.check("every create recorded its deadline", not missing, f"{where}: no deadline for {missing}")


async def reap_check(lane: Lane, instance: int, where: str) -> None:
    """Move the instance's deadline into the past, reap under a fault, then cleanly: nothing past it runs."""
    action = lane.rng.choice(["stop", "destroy"])
    account = lane.sim.state.account.user_id
    lane.deadlines.set(Deadline(instance_id=instance, at=time.time() - 1, action=action, account=account))
    arm(lane, "reap", instance)
    lane.recorder.call = f"{where}:reap under a fault"  # each pass is its own call: no cross-pass "retries"
    try:
        await reap(lane.vast, lane.deadlines, now=time.time(), dry_run=False, verify_timeout=1.0, poll=0.05)
    except VastError:
        pass  # a fault may make the account unreadable: the next pass tries again
    lane.sim.faults.clear()
    lane.recorder.call = f"{where}:clean reap"
    actions = await reap(lane.vast, lane.deadlines, now=time.time(), dry_run=False, verify_timeout=2.0, poll=0.05)
    with lane.sim.state.lock:
        live = lane.sim.state.instances.get(instance)
        running = live is not None and live.intended == "running"
    lane.figures.check(
        "nothing past its deadline runs after a reap",
        not running and (action == "stop" or live is None),
        f"{where}: {action} deadline passed, after a clean reap it is {'gone' if live is None else live.intended}"
        f" ({[a.line for a in actions]})",
    )
    lane.deadlines.clear(instance)


def check_quote_instances(lane: Lane, quote: str, where: str) -> None:
    markers = lane.quote_markers.get(quote, set())
    made = [iid for iid, env in every_instance(lane.sim).items() if env.get("VAST_MCP_REQUEST") in markers]
    lane.figures.check(
        "no duplicate instance for one quote",
        len(made) <= lane.quote_counts[quote],
        f"{where}: quote rented {len(made)} instances {made} (count {lane.quote_counts[quote]})",
    )


def check_retry_timing(lane: Lane, seen: list[Seen], where: str) -> None:
    """For every 429 answer: when the same request came back, it waited as told."""
    fig = lane.figures
    for i, s in enumerate(seen):
        if s.status != 429:
            continue
        same = next((t for t in seen[i + 1 :] if t.signature == s.signature and t.call == s.call), None)
        if s.code == "search_quota_exceeded":
            fig.check("search quota never retried", same is None, f"{where}: {s.method} {s.path} retried")
            continue
        if same is None:
            continue
        waited = same.arrived - s.answered
        fig.waits_checked += 1
        if s.hint is not None:
            fig.check(
                "429 wait hint honoured",
                waited >= s.hint - 0.005,
                f"{where}: {s.method} {s.path} retried after {waited:.3f}s, hint {s.hint}s",
            )
        else:
            fig.check(
                "429 without hint backs off",
                waited >= NO_HINT_MIN_WAIT,
                f"{where}: {s.method} {s.path} retried after {waited:.3f}s without a hint",
            )


# --------------------------------------------------------------------------- one run


async def one_run(lane: Lane, run: int) -> None:
    fig = lane.figures
    fig.runs += 1
    reported: set[int] = set()
    mark = lane.recorder.mark()
    known_before = set(every_instance(lane.sim))
    where = f"lane {lane.number} run {run}"

    async def step(name: str, tool: str, args: dict[str, Any], iid: int | None, attempts: int = 3) -> Any:
        """Arm a fault, call; on a clean tool error try again (quietly the last time)."""
        result = None
        for attempt in range(attempts):
            arm(lane, name, iid, quiet=attempt == attempts - 1)
            result = await call(lane, run, name, tool, args)
            if ok_data(result) is not None:
                return result
        return result

    # plan -> create, with a fresh plan whenever a quote is spent without a running instance
    instance: int | None = None
    for _round in range(3):
        count = 2 if lane.rng.random() < 0.15 else 1  # sometimes two instances on distinct machines
        planned = ok_data(await step("plan", "plan_instance", {"count": count} if count > 1 else {}, None))
        if planned is None or not planned.get("quote_id"):
            continue
        quote = str(planned["quote_id"])
        total = float(planned["total_per_hour"])
        lane.quote_counts[quote] = count
        fig.two_instance_quotes += count > 1
        for attempt in range(2):
            arm(lane, "create", None, quiet=attempt == 1)
            before = lane.recorder.mark()
            result = await call(lane, run, "create", "create_instance", {"quote_id": quote})
            sent = lane.recorder.since(before)
            check_create_requests(lane, quote, sent, where)
            new = set(every_instance(lane.sim)) - known_before
            put = any(s.method == "PUT" and re.search(CREATE, s.path) for s in sent)
            check_caps_and_deadlines(lane, quote, total, new, put, where)
            created = ok_data(result)
            if created is not None:
                for made in created.get("instances", []):
                    reported.add(int(made["instance_id"]))
                alive = [m for m in created["instances"] if m["billing"]]
                if alive:
                    instance = int(alive[0]["instance_id"])
                break
            if result is None or "same quote_id can be used again" not in text_of(result):
                break  # spent (or refused): plan again
        check_quote_instances(lane, quote, where)
        if instance is not None:
            break

    if instance is not None:
        waited = ok_data(
            await step("wait", "wait_for_instance", {"instance_id": instance, "timeout_seconds": 2}, instance)
        )
        if waited is not None and waited["reached"]:
            await step("ssh", "check_ssh", {"instance_id": instance, "timeout_seconds": 1}, instance)
            await step("stop", "stop_instance", {"instance_id": instance, "timeout_seconds": 2}, instance)
            await step("start", "start_instance", {"instance_id": instance, "timeout_seconds": 2}, instance)
        if lane.rng.random() < REAP_PROBABILITY:
            await reap_check(lane, instance, where)
        gone = ok_data(await step("destroy", "destroy_instance", {"instance_id": instance}, instance))
        if gone is not None and gone["reached"]:
            fig.completed += 1

    lane.sim.faults.clear()
    # invariants over the whole run, before clean-up
    alive_now = live_instances(lane.sim)
    made_in_run = sorted(set(every_instance(lane.sim)) - known_before)
    unreported = [i for i in made_in_run if i not in reported]
    fig.check("every instance was reported", not unreported, f"{where}: instances never reported {unreported}")
    silent = sorted(i for i in alive_now if i not in reported)
    fig.check("nothing left that the flow did not report", not silent, f"{where}: alive and unreported {silent}")
    seen = lane.recorder.since(mark)
    check_retry_timing(lane, seen, where)
    fig.requests += len(seen)

    # clean-up without faults: destroy whatever is still there (reported or not)
    for iid in sorted(alive_now):
        await call(lane, run, "cleanup", "destroy_instance", {"instance_id": iid})
    remaining = sorted(live_instances(lane.sim))
    fig.check("nothing left after clean-up", not remaining, f"{where}: still alive {remaining}")


# --------------------------------------------------------------------------- the soak


async def run_lane(number: int, seed: int, runs: int, home: Path, fig: Figures, started: float) -> None:
    rng = random.Random(seed)
    with recorded_simulator(api_key=KEY, seed=seed % 997, offer_count=300, speed=120.0) as (sim, recorder, url):
        settings = fast_settings(
            url,
            ssh_dir_with_key(home),
            http_timeout=HTTP_TIMEOUT,
            ready_timeout=2.0,
            ssh_timeout=1.0,
            ssh_interval=0.1,
            max_burn=MAX_BURN,
        )
        key = ApiKey(KEY, "env", "$VAST_API_KEY")
        server = create_server(settings, api_key=key)
        user = ScriptedUser()
        mode = "legacy" if number % 2 else "auto"
        reaper_http = VastHttp(key, url, timeout=HTTP_TIMEOUT, budget=None, retry=RetryPolicy(attempts=2))
        async with (
            Client(server, mode=mode, elicitation_callback=user) as client,  # type: ignore[arg-type]
            VastClient(reaper_http) as vast,
        ):
            lane = Lane(number, sim, recorder, client, rng, fig, user, vast, DeadlineStore(settings.state_dir))
            for run in range(runs):
                if time.monotonic() - started > START_BUDGET_S:
                    break
                await one_run(lane, run)
        for kind, n in sim.faults.injected.items():
            fig.checked[f"fired:{kind}"] += n


def _report(fig: Figures, elapsed: float, planned: int) -> str:
    fired = {k.removeprefix("fired:"): n for k, n in fig.checked.items() if k.startswith("fired:")}
    checks = {k: n for k, n in fig.checked.items() if not k.startswith("fired:")}
    lines = [
        f"fault soak: seed {SEED}, {fig.runs}/{planned} runs in {elapsed:.1f}s on {LANES} simulators, "
        f"{fig.completed} reached a verified destroy",
        f"  tool calls {fig.calls} ({fig.tool_errors} clean tool errors), progress notifications {fig.progress}, "
        f"two-instance quotes {fig.two_instance_quotes}",
        f"  Vast requests {fig.requests}, create PUTs {fig.creates} ({fig.reconciled} with a lost answer), "
        f"429 retries timed {fig.waits_checked}",
        "  faults armed:  " + ", ".join(f"{k} {n}" for k, n in sorted(fig.faults_armed.items())),
        "  faults fired:  " + ", ".join(f"{k} {n}" for k, n in sorted(fired.items())),
        f"  invariants checked {sum(checks.values())}, held {sum(checks.values()) - len(fig.violations)}:",
        *(f"    {name}: {n}" for name, n in sorted(checks.items())),
    ]
    if fig.violations:
        lines.append(f"  VIOLATIONS ({len(fig.violations)}):")
        lines += [f"    {v}" for v in fig.violations[:40]]
    return "\n".join(lines)


async def test_fault_soak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Unreadable Vast answers are saved to temp files: keep them inside this test's directory.
    saved = tmp_path / "tmp"
    saved.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(saved))
    master = random.Random(SEED)
    seeds = [master.randrange(1, 2**31) for _ in range(LANES)]
    per_lane = [RUNS // LANES + (1 if i < RUNS % LANES else 0) for i in range(LANES)]
    fig = Figures()
    started = time.monotonic()
    with anyio.fail_after(HARD_LIMIT_S):
        async with anyio.create_task_group() as tg:
            for number in range(LANES):
                home = tmp_path / f"home{number}"
                home.mkdir()
                tg.start_soon(run_lane, number, seeds[number], per_lane[number], home, fig, started)
    report = _report(fig, time.monotonic() - started, RUNS)
    print("\n" + report)
    assert not fig.violations, report
    assert fig.runs >= min(RUNS, 12), report
    assert fig.completed >= fig.runs // 2, report
