"""`vast-mcp demo` as a user runs it: a subprocess, exit code 0, every step in the transcript, nothing left behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from vast_mcp import demo

# `python -m vast_mcp.cli` has no __main__ guard; this is the same entry point the console script calls.
CLI = [sys.executable, "-c", "import sys; from vast_mcp.cli import main; sys.exit(main())"]
TIMEOUT_S = 120  # the demo itself takes well under 15 s; the margin is for slow CI machines


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return False
    text = stat.read_text()
    return text[text.rfind(")") + 2 :].split()[0] != "Z"


def _in_session(sid: int) -> list[int]:
    """Live processes whose session id is ``sid`` (field 6 of /proc/PID/stat)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _port_closed(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) != 0


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    leftovers: list[int]  # processes still in the demo's session after it exited


@pytest.fixture(scope="module")
def run() -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAST_")}  # a fresh machine: no key
    started = time.monotonic()
    # A new session whose id is the demo's pid: whatever it starts (unless it calls setsid itself,
    # as the MCP SDK does for the server; that one is checked by pid) stays findable afterwards.
    proc = subprocess.Popen(
        [*CLI, "demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"the demo did not finish in {TIMEOUT_S} s:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    elapsed = time.monotonic() - started
    leftovers = _in_session(proc.pid) if Path("/proc").is_dir() else []
    return Run(proc.returncode, stdout, stderr, elapsed, leftovers)


def test_demo_exits_zero_quickly(run: Run) -> None:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.rstrip().endswith("DEMO OK")
    assert run.elapsed < 60


STEPS = [
    # (what the step is, a regex its transcript line must match), in order
    ("setup: simulator", r"simulator\s+http://127\.0\.0\.1:\d+"),
    ("setup: server subprocess", r"vast-mcp serve over stdio \(subprocess pid \d+\)"),
    ("prompt proposes defaults", r"provision_gpu prompt"),
    ("default image proposed", r"\* image: pytorch/pytorch:latest \(default\)"),
    ("account", r"-> tools/call get_account"),
    ("plan with no arguments", r"-> tools/call plan_instance \{\}"),
    ("plan shows defaults", r"disk_gb\s+64\s+\[default\]"),
    ("plan preflight", r"active instances: none"),
    ("quote", r"quote q-"),
    ("assistant asks", r"assistant: Rent 1 instance"),
    ("human answers", r"human: yes"),
    ("create", r"-> tools/call create_instance \{\"quote_id\":\"q-"),
    ("server-side confirmation", r"vast-mcp asks the human \(elicitation form"),
    ("progress while waiting", r"\.\.\. instance \d+: (created|loading)"),
    ("running", r"\.\.\. instance \d+: running"),
    ("created and reachable", r"instance \d+ is running at \$[0-9.]+/h; SSH answered"),
    ("ssh key attach", r"-> tools/call attach_ssh_key"),
    ("ssh key attached", r"attached to instance \d+"),
    ("ssh check", r"-> tools/call check_ssh"),
    ("ssh banner read", r"SSH banner: SSH-2\.0-"),
    ("ssh command", r"connect with: ssh .*-p \d+ root@127\.0\.0\.1"),
    ("billing", r"-> tools/call get_billing"),
    ("burn rate", r"burning \$[0-9.]+/h now"),
    ("destroy", r"-> tools/call destroy_instance"),
    ("destroy confirmed by the human", r"form: Destroy Vast instance \d+"),
    ("destroy verified", r"verified gone"),
    ("final list empty", r"list_instances: 0 instances"),
    ("final wait gone", r"wait_for_instance: verified gone"),
    ("summary", r"^Summary$"),
    ("requests counted", r"requests the simulator received: \d+"),
    ("time taken", r"time taken: [0-9.]+ s"),
]


def test_transcript_shows_every_step_in_order(run: Run) -> None:
    out = run.stdout
    position = 0
    for name, pattern in STEPS:
        match = re.compile(pattern, re.MULTILINE).search(out, position)
        assert match, f"step {name!r} ({pattern}) missing after position {position}:\n{out[position:][:2000]}"
        position = match.end()


def test_every_spend_access_and_destroy_was_confirmed_by_the_human(run: Run) -> None:
    out = run.stdout
    assert out.count("vast-mcp asks the human (elicitation form") == 3  # create, attach_ssh_key, destroy
    assert "human confirmations asked by the server: 3" in out


def test_lines_are_short(run: Run) -> None:
    long = [ln for ln in run.stdout.splitlines() if len(ln) > 100]
    assert long == []


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc to inspect processes")
def test_nothing_left_behind(run: Run) -> None:
    assert run.leftovers == [], f"processes left in the demo's session: {run.leftovers}"
    out = run.stdout
    server_pid = int(re.search(r"subprocess pid (\d+)", out).group(1))  # type: ignore[union-attr]
    assert not _alive(server_pid), f"the MCP server subprocess {server_pid} is still running"
    sim = re.search(r"simulator\s+http://(127\.0\.0\.1):(\d+)", out)
    assert sim is not None
    assert _port_closed(sim.group(1), int(sim.group(2))), "the simulator still listens"
    ssh = re.search(r"endpoint direct (127\.0\.0\.1):(\d+)", out)
    assert ssh is not None
    assert _port_closed(ssh.group(1), int(ssh.group(2))), "the simulated instance's SSH port is still open"
    home = re.search(r"temp HOME\s+(\S+)", out)
    assert home is not None
    assert not Path(home.group(1)).exists(), "the temp HOME was not removed"


def test_a_failing_step_exits_nonzero(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # A server that dies at start-up: the demo must say so and exit 1, not hang or pass.
    monkeypatch.setattr(demo, "SERVER_CODE", "import sys; sys.stderr.write('server exploded'); sys.exit(3)")
    assert demo.run_demo() == 1
    out = capsys.readouterr().out
    assert "DEMO FAILED" in out
    assert "server exploded" in out
    assert "DEMO OK" not in out


def test_the_transcript_scrubs_a_token_before_it_cuts_the_text() -> None:
    token = "hf_" + "a1B2c3D4e5" * 4
    text = "x" * 190 + " " + token  # the cut at 200 falls inside the token
    clipped = demo.clip(text, 200)
    assert len(clipped) <= 200 and "hf_a1B2" not in clipped and "a1B2c3" not in clipped
