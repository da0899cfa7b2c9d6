"""Cold start: spawn `vast-mcp serve` (stdio) and time it to a complete `tools/list` answer.

Measured in the same run, interleaved, against a floor (benchmarks/floor_server.py: the
smallest MCPServer with one trivial tool, spawned the same way: a fresh interpreter
running one script). The client side is raw JSON-RPC over the pipes, as an MCP client
sends it today: `initialize` (2025-11-25), `notifications/initialized`, `tools/list`.

Also: each server's CPU time (user + system, from wait4: steadier than wall time when
the machine is busy) and peak RSS (VmHWM, read just before it is told to exit), `vast-mcp
--help` wall time, a phase split of the serve path inside one process, and
`python -X importtime` of both servers over the same exchange, diffed: the modules
vast-mcp imports that the floor does not, biggest first (what to make lazy).

Nothing contacts Vast: VAST_URL points at a closed loopback port, and tools/list calls nothing.

    uv run python benchmarks/cold_start.py [--runs 20] [--warmup 2] [--no-breakdown] [--candidate DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from _common import (
    INITIALIZE,
    INITIALIZED,
    ROOT,
    answer,
    child_env,
    header,
    median,
    quartiles,
    request,
    send,
    vast_command,
    verdict,
)

FLOOR = ROOT / "benchmarks" / "floor_server.py"
TARGET_RATIO = 1.05  # issue 17: cold start at the floor (was 1.25 in round one)
TIMEOUT_S = 60.0


def floor_command() -> list[str]:
    return [sys.executable, str(FLOOR)]


def peak_rss_kb(pid: int) -> int:
    """The child's high-water RSS (VmHWM); 0 where /proc is missing."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Spawn:
    seconds: float  # spawn -> complete tools/list answer
    peak_rss_kb: int  # VmHWM just before exit (0 where /proc is missing)
    cpu_s: float  # the child's user + system CPU over its whole life (exit included)
    tools: int
    list_bytes: int


def reap(proc: subprocess.Popen[bytes]) -> float:
    """Wait for the child; its user + system CPU seconds (0.0 where wait4 is missing)."""
    if not hasattr(os, "wait4"):
        proc.wait()
        return 0.0
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return float(usage.ru_utime + usage.ru_stime)


def spawn_and_list(command: list[str], env: dict[str, str], stderr_path: Path) -> Spawn:
    """One cold start: spawn, handshake, tools/list, read peak RSS, close stdin, reap."""
    with stderr_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env)
        # A hung server is killed: the exchange is bounded, and EOF on stdin normally ends it.
        watchdog = threading.Timer(TIMEOUT_S, proc.kill)
        watchdog.start()
        try:
            assert proc.stdin is not None and proc.stdout is not None
            send(proc.stdin, INITIALIZE)
            answer(proc.stdout, 1)
            send(proc.stdin, INITIALIZED)
            send(proc.stdin, request("tools/list", 2))
            result, line = answer(proc.stdout, 2)
            elapsed = time.perf_counter() - started
            rss = peak_rss_kb(proc.pid)
            proc.stdin.close()  # EOF on stdin ends a stdio MCP server
            cpu = reap(proc)
            proc.stdout.close()
        except Exception as exc:
            proc.kill()
            proc.wait()
            tail = stderr_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(command)} failed: {exc}\n{tail}") from None
        finally:
            watchdog.cancel()
    return Spawn(elapsed, rss, cpu, len(result["tools"]), len(line))


def wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=60)
    return time.perf_counter() - started


# -- import-time breakdown ----------------------------------------------------------------


@dataclass
class ImportRow:
    name: str
    self_us: int
    cumulative_us: int
    depth: int
    parent: str | None = None


def parse_importtime(text: str) -> list[ImportRow]:
    """`-X importtime` lines (post-order; depth from the indent), each with its importer."""
    rows: list[ImportRow] = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "| cumulative |" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        stripped = name.lstrip(" ")
        depth = (len(name) - len(stripped) - 1) // 2
        rows.append(ImportRow(stripped.strip(), int(self_us), int(cumulative_us), depth))
    # Post-order: an entry's importer is the next entry one level up.
    pending: dict[int, list[ImportRow]] = defaultdict(list)
    for row in rows:
        for child in pending.pop(row.depth + 1, []):
            child.parent = row.name
        pending[row.depth].append(row)
    return rows


def importtime_of(command: list[str], env: dict[str, str], tmp: Path, runs: int) -> dict[str, ImportRow]:
    """The whole cold start under -X importtime (same exchange as the timed runs), ``runs`` times:
    per module the median self and cumulative times."""
    # A console script is itself a Python file: run it through the interpreter.
    traced = [sys.executable, "-X", "importtime", *(command[1:] if command[0] == sys.executable else command)]
    seen: dict[str, list[ImportRow]] = defaultdict(list)
    for _ in range(runs):
        stderr_path = tmp / "importtime.txt"
        spawn_and_list(traced, env, stderr_path)
        for row in parse_importtime(stderr_path.read_text(errors="replace")):
            seen[row.name].append(row)
    return {
        name: ImportRow(
            name,
            int(median([r.self_us for r in rows])),
            int(median([r.cumulative_us for r in rows])),
            rows[0].depth,
            rows[0].parent,
        )
        for name, rows in seen.items()
    }


def import_breakdown(env: dict[str, str], tmp: Path, runs: int = 3, top: int = 12) -> None:
    vast = importtime_of(vast_command("serve"), env, tmp, runs)
    floor = importtime_of(floor_command(), env, tmp, runs)
    total_vast = sum(r.self_us for r in vast.values()) / 1000
    total_floor = sum(r.self_us for r in floor.values()) / 1000
    extra = {name: row for name, row in vast.items() if name not in floor}
    own = {name: row for name, row in extra.items() if name.split(".")[0] == "vast_mcp"}
    foreign = {name: row for name, row in extra.items() if name not in own}
    print(
        f"  -X importtime over the same exchange (median of {runs} runs per module; sums of self times, "
        "inflated by the tracing):"
    )
    print(
        f"    vast-mcp {total_vast:.0f} ms in {len(vast)} modules; floor {total_floor:.0f} ms in {len(floor)}; "
        f"modules only vast-mcp loads: {sum(r.self_us for r in extra.values()) / 1000:.0f} ms in {len(extra)} "
        f"({sum(r.self_us for r in own.values()) / 1000:.0f} ms its own vast_mcp.*, "
        f"{sum(r.self_us for r in foreign.values()) / 1000:.0f} ms third-party/stdlib)"
    )
    by_package: dict[str, int] = defaultdict(int)
    for row in foreign.values():
        by_package[row.name.split(".")[0]] += row.self_us
    print("    third-party/stdlib modules only vast-mcp loads, self time by top-level package:")
    for package, us in sorted(by_package.items(), key=lambda kv: -kv[1])[:8]:
        print(f"      {us / 1000:8.1f} ms  {package}")
    # Where each new subtree starts: a module whose importer is not itself new third-party code.
    roots = [r for r in foreign.values() if r.parent not in foreign]
    print(f"    biggest new import subtrees (cumulative) and who imports them, top {top}:")
    for row in sorted(roots, key=lambda r: -r.cumulative_us)[:top]:
        print(
            f"      {row.cumulative_us / 1000:8.1f} ms  {row.name:<28} <- {row.parent or '(a function, at run time)'}"
        )
    print("    vast_mcp's own modules by self time (module bodies: pydantic models, constants):")
    for row in sorted(own.values(), key=lambda r: -r.self_us)[:8]:
        print(f"      {row.self_us / 1000:8.1f} ms  {row.name}")


# -- phase split inside one process -----------------------------------------------------

PHASES = r"""
import json, time
marks = [("start", time.perf_counter())]
import mcp.server
marks.append(("import mcp.server (the floor pays this too)", time.perf_counter()))
import vast_mcp.cli
marks.append(("import vast_mcp.cli", time.perf_counter()))
import vast_mcp.serve
marks.append(("import vast_mcp.serve", time.perf_counter()))
import vast_mcp.server
marks.append(("import vast_mcp.server (tools, prompts, vast client)", time.perf_counter()))
from vast_mcp.server import create_server
from vast_mcp.settings import Settings
server = create_server(Settings.from_env())
marks.append(("create_server()", time.perf_counter()))
import anyio
tools = anyio.run(server.list_tools)
marks.append(("list_tools() in process", time.perf_counter()))
print(json.dumps([(name, t - marks[0][1]) for name, t in marks]))
"""


def phase_split(env: dict[str, str], runs: int = 5) -> None:
    per_phase: dict[str, list[float]] = defaultdict(list)
    order: list[str] = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PHASES], env=env, capture_output=True, text=True, check=True, timeout=120
        ).stdout
        marks = json.loads(out.strip().splitlines()[-1])
        for (_, before), (name, after) in itertools.pairwise(marks):
            per_phase[name].append((after - before) * 1000)
            if name not in order:
                order.append(name)
    print(f"  phase split of the serve path inside one process (median of {runs}, ms):")
    for name in order:
        print(f"    {median(per_phase[name]):8.1f} ms  {name}")


# -- main ---------------------------------------------------------------------------------


def summarize(name: str, spawns: list[Spawn], floor: list[Spawn] | None) -> None:
    ms = [s.seconds * 1000 for s in spawns]
    q1, q3 = quartiles(ms)
    rss = median([s.peak_rss_kb for s in spawns]) / 1024
    cpu = median([s.cpu_s * 1000 for s in spawns])
    print(
        f"  {name:<9}: median {median(ms):7.1f} ms (IQR {q1:.0f}-{q3:.0f}, min {min(ms):.0f}), CPU {cpu:.0f} ms, "
        f"peak RSS {rss:5.1f} MiB, {spawns[0].tools} tools, tools/list answer {spawns[0].list_bytes:,} B"
    )
    if floor is None:
        return
    secs, base = [s.seconds for s in spawns], [s.seconds for s in floor]
    ratio = median(secs) / median(base)
    paired = median([v / f for v, f in zip(secs, base, strict=True)])
    cpu_ratio = median([s.cpu_s for s in spawns]) / max(1e-9, median([s.cpu_s for s in floor]))
    rss_ratio = median([s.peak_rss_kb for s in spawns]) / max(1, median([s.peak_rss_kb for s in floor]))
    extra_ms = (median(secs) - median(base)) * 1000
    print(
        f"  {'':<9}  wall {ratio:.2f}x the floor (+{extra_ms:.0f} ms; median of paired runs {paired:.2f}x); "
        f"target <= {TARGET_RATIO}x: {verdict(ratio <= TARGET_RATIO)}"
    )
    print(
        f"  {'':<9}  CPU {cpu_ratio:.2f}x the floor (steadier on a busy machine); peak RSS {rss_ratio:.2f}x the floor"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per server (default 20, at least 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per server first (default 2)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the importtime and phase breakdowns")
    parser.add_argument(
        "--candidate",
        type=Path,
        metavar="DIR",
        help="also time vast-mcp imported from DIR (a copy of src/ with a change), interleaved: an A/B test",
    )
    args = parser.parse_args()
    runs = max(args.runs, 10)

    header("cold start: spawn -> complete tools/list (stdio)")
    with tempfile.TemporaryDirectory(prefix="vast-mcp-bench-") as home:
        tmp = Path(home)
        env = child_env(home)
        servers: dict[str, tuple[list[str], dict[str, str]]] = {
            "floor": (floor_command(), env),
            "vast-mcp": (vast_command("serve"), env),
        }
        if args.candidate is not None:
            servers["candidate"] = (vast_command("serve"), {**env, "PYTHONPATH": str(args.candidate.resolve())})
        for name, (command, server_env) in servers.items():
            extra = f"  (PYTHONPATH={server_env['PYTHONPATH']})" if "PYTHONPATH" in server_env else ""
            print(f"  {name:<9} = {' '.join(command)}{extra}")
        for _ in range(args.warmup):
            for command, server_env in servers.values():
                spawn_and_list(command, server_env, tmp / "stderr.txt")
        results: dict[str, list[Spawn]] = {name: [] for name in servers}
        names = list(servers)
        for i in range(runs):
            # Rotate the order so drift in machine load hits every server alike.
            for name in names[i % len(names) :] + names[: i % len(names)]:
                command, server_env = servers[name]
                results[name].append(spawn_and_list(command, server_env, tmp / "stderr.txt"))

        print(f"  {runs} runs per server, interleaved, after {args.warmup} warm-up run(s) each:")
        for name, spawns in results.items():
            summarize(name, spawns, None if name == "floor" else results["floor"])

        helps = [wall(vast_command("--help"), env) * 1000 for _ in range(runs)]
        bare = [wall([sys.executable, "-c", "pass"], env) * 1000 for _ in range(runs)]
        print(
            f"  vast-mcp --help: median {median(helps):.1f} ms (min {min(helps):.0f}); "
            f"bare `python -c pass`: median {median(bare):.1f} ms"
        )
        if args.candidate is not None:
            candidate_env = servers["candidate"][1]
            helps = [wall(vast_command("--help"), candidate_env) * 1000 for _ in range(runs)]
            print(f"  candidate --help: median {median(helps):.1f} ms (min {min(helps):.0f})")
        if not args.no_breakdown:
            phase_split(env)
            import_breakdown(env, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
