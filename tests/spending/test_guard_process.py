"""The guard run as a real local process against a served simulator, with the instance's scoped key.

These are the only spending tests that wait on the wall clock: the guard reads ``date``. Deadlines
are a couple of seconds away and checks run every second (``VAST_MCP_GUARD_EVERY=1``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import SIM_KEY
from vast_mcp.simulator import Simulator
from vast_mcp.spending.guard import (
    GUARD_ENV_FILE_ENV,
    GUARD_EVERY_ENV,
    GUARD_URL_ENV,
    DeadlineAction,
    compose_onstart,
    guard_script,
    tag_label,
)

from .support import BOOT_SECONDS, SHELLS, call, rent, state

START_LINE = "vast-mcp guard: {action} at {deadline}"
GUARD_TOOLS = ("tr", "sed", "head", "date", "sleep")  # what the guard needs besides an HTTP client


@pytest.fixture
def served() -> Iterator[tuple[Simulator, str]]:
    sim = Simulator(api_key=SIM_KEY, seed=0, offer_count=300, speed=0.0)
    with sim.serve() as url:
        yield sim, url


@dataclass
class Guarded:
    """One running instance, and how to run a guard for it."""

    sim: Simulator
    url: str
    instance_id: int
    tmp: Path

    def env_file(self, container_id: int | None = None, key: str | None = None) -> Path:
        """A stand-in for /proc/1/environ: NUL-separated, as Vast's container has it."""
        path = self.tmp / "environ"
        entries = [
            "PATH=/usr/bin",
            f"CONTAINER_ID={self.instance_id if container_id is None else container_id}",
            f"CONTAINER_API_KEY={self.sim.instance_key(self.instance_id) if key is None else key}",
            "HOME=/root",
        ]
        path.write_bytes("\0".join(entries).encode() + b"\0")
        return path

    def environment(self, env_file: Path, path: str | None = None) -> dict[str, str]:
        # Built from nothing: the guard gets no VAST_API_KEY, no HOME, nothing of this process.
        return {
            "PATH": path or os.environ["PATH"],
            GUARD_URL_ENV: self.url,
            GUARD_ENV_FILE_ENV: str(env_file),
            GUARD_EVERY_ENV: "1",
        }

    def start(
        self, script: str, *, sh: str = "dash", env_file: Path | None = None, path: str | None = None
    ) -> subprocess.Popen[str]:
        env = self.environment(env_file or self.env_file(), path)
        assert SIM_KEY not in script and all(SIM_KEY not in v for v in env.values())
        assert SIM_KEY not in (env_file or self.tmp / "environ").read_text()
        return subprocess.Popen(
            [shutil.which(sh) or sh, "-c", script],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def label(self, label: str) -> None:
        status, answer = call(self.url, "PUT", f"/api/v0/instances/{self.instance_id}/", {"label": label})
        assert status == 200, answer

    def intended(self, instance_id: int | None = None) -> str | None:
        found = state(self.sim, self.instance_id if instance_id is None else instance_id)
        return None if found is None else str(found["intended_status"])

    def changes(self, instance_id: int | None = None) -> list[tuple[str, int | None]]:
        """Stops, starts and destroys sent for an instance (not the test's own label changes): (method, status)."""
        path = f"/api/v0/instances/{self.instance_id if instance_id is None else instance_id}/"
        return [
            (r.method, r.status)
            for r in self.sim.requests
            if r.path == path and (r.method == "DELETE" or (isinstance(r.body, dict) and "state" in r.body))
        ]


@pytest.fixture
def guarded(served: tuple[Simulator, str], tmp_path: Path) -> Guarded:
    sim, url = served
    instance_id = rent(sim, url, label="guarded")
    sim.clock.advance(BOOT_SECONDS)
    sim.reset_requests()
    return Guarded(sim, url, instance_id, tmp_path)


def soon(seconds: int = 2) -> int:
    return int(time.time()) + seconds


def finish(process: subprocess.Popen[str], timeout: float = 8.0) -> tuple[int, list[str], str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out.splitlines(), err


@pytest.mark.parametrize("shell", SHELLS)
def test_it_stops_its_instance_at_the_deadline(guarded: Guarded, shell: str) -> None:
    deadline = soon()
    guarded.label(tag_label("guarded", deadline, "stop"))
    begun = time.time()
    code, lines, err = finish(guarded.start(guard_script(deadline, "stop"), sh=shell))
    assert (code, err) == (0, "")
    assert lines == [START_LINE.format(action="stop", deadline=deadline), "vast-mcp guard: stop sent"]
    assert time.time() >= deadline and begun < deadline  # not before the deadline
    assert guarded.intended() == "stopped"
    assert guarded.changes() == [("PUT", 200)]
    stop = next(r for r in guarded.sim.requests if r.body == {"state": "stopped"})
    assert stop.headers["authorization"] == "Bearer <redacted>"  # a Bearer header, never a query key
    assert "content-type" in stop.headers and not stop.query


def test_it_destroys_its_instance_when_asked(guarded: Guarded) -> None:
    deadline = soon()
    guarded.label(tag_label("guarded", deadline, "destroy"))
    code, lines, _ = finish(guarded.start(guard_script(deadline, "destroy")))
    assert code == 0 and lines[-1] == "vast-mcp guard: destroy sent"
    assert guarded.instance_id in guarded.sim.state.destroyed
    assert guarded.changes() == [("DELETE", 200)]


def test_the_label_tag_overrides_what_it_was_started_with(guarded: Guarded) -> None:
    # Started with "stop in an hour"; the label says "destroy in two seconds" (a shortened deadline).
    deadline = soon()
    guarded.label(tag_label("guarded", deadline, "destroy"))
    code, lines, _ = finish(guarded.start(guard_script(deadline + 3600, "stop")))
    assert code == 0 and lines[-1] == "vast-mcp guard: destroy sent"
    assert guarded.instance_id in guarded.sim.state.destroyed


def test_an_extended_tag_moves_the_deadline(guarded: Guarded) -> None:
    first, later = soon(2), soon(5)
    guarded.label(tag_label("guarded", first, "stop"))
    process = guarded.start(guard_script(first, "stop"))
    time.sleep(1.0)  # the guard has read its record once (at start); now the deadline is extended
    guarded.label(tag_label("guarded", later, "stop"))
    code, lines, _ = finish(process)
    assert time.time() >= later  # it read the new tag right before acting, and waited for it
    assert code == 0 and lines[-1] == "vast-mcp guard: stop sent"
    assert guarded.intended() == "stopped"


def test_a_cleared_tag_ends_the_guard(guarded: Guarded) -> None:
    guarded.label("guarded")  # no tag: the deadline was cleared
    code, lines, _ = finish(guarded.start(guard_script(soon(), "destroy")), timeout=5)
    assert code == 0 and len(lines) == 1  # the start line only
    assert guarded.intended() == "running" and guarded.changes() == []


def test_a_failed_read_keeps_the_deadline_it_knows(guarded: Guarded) -> None:
    # The label has no tag, which would end the guard, but every read fails: it keeps its deadline.
    guarded.label("guarded")
    guarded.sim.reset_requests()
    guarded.sim.faults.inject("server_error", method="GET", path=f"/instances/{guarded.instance_id}/", times=50)
    deadline = soon()
    code, lines, _ = finish(guarded.start(guard_script(deadline, "stop")))
    assert code == 0 and lines[-1] == "vast-mcp guard: stop sent"
    assert guarded.intended() == "stopped"
    assert any(r.method == "GET" and r.status == 500 for r in guarded.sim.requests)


def test_another_instances_id_with_this_key_is_refused(guarded: Guarded) -> None:
    other = rent(guarded.sim, guarded.url, label=tag_label("other", soon(), "stop"))
    guarded.sim.clock.advance(BOOT_SECONDS)
    guarded.sim.reset_requests()
    env_file = guarded.env_file(container_id=other)  # this instance's key, the other's id
    process = guarded.start(guard_script(soon(), "destroy"), env_file=env_file)
    time.sleep(4.0)  # past the deadline: it keeps trying, and Vast keeps refusing
    process.kill()
    _, lines, _ = finish(process)
    assert len(lines) == 1 and lines[0].startswith("vast-mcp guard: destroy at")  # no action line
    assert guarded.intended(other) == "running" and guarded.intended() == "running"
    sent = [(r.method, r.status) for r in guarded.sim.requests]
    assert ("DELETE", 401) in sent and all(status == 401 for _, status in sent)


def test_without_an_instance_key_it_says_so_and_exits(guarded: Guarded) -> None:
    code, lines, _ = finish(guarded.start(guard_script(soon(), "stop"), env_file=guarded.env_file(key="")))
    assert code == 1 and lines == ["vast-mcp guard: no instance key"]
    assert guarded.sim.requests == []


def _bin_with(tmp: Path, *tools: str) -> str:
    """A PATH holding only the guard's tools and the given HTTP clients."""
    folder = tmp / "bin"
    folder.mkdir()
    for tool in (*GUARD_TOOLS, *tools):
        found = shutil.which(tool)
        assert found, f"{tool} is not installed"
        (folder / tool).symlink_to(found)
    return str(folder)


@pytest.mark.parametrize("client", ["wget", "python3"])
def test_without_curl_it_falls_back(guarded: Guarded, client: str) -> None:
    path = _bin_with(guarded.tmp, client)
    deadline = soon()
    guarded.label(tag_label("guarded", deadline, "destroy"))
    code, lines, _ = finish(guarded.start(guard_script(deadline, "destroy"), path=path))
    assert code == 0 and lines[-1] == "vast-mcp guard: destroy sent"
    assert guarded.instance_id in guarded.sim.state.destroyed


def test_with_no_http_client_at_all_it_acts_on_nothing(guarded: Guarded) -> None:
    process = guarded.start(guard_script(soon(1), "stop"), path=_bin_with(guarded.tmp))
    time.sleep(2.5)
    process.kill()
    finish(process)
    assert guarded.sim.requests == [] and guarded.intended() == "running"


@pytest.mark.parametrize("action", ["stop", "destroy"])
def test_the_composed_onstart_runs_the_user_script_and_the_guard(guarded: Guarded, action: DeadlineAction) -> None:
    deadline = soon()
    guarded.label(tag_label("guarded", deadline, action))
    onstart = compose_onstart("#!/bin/bash\nset -e\necho user script ran", deadline, action)
    assert onstart is not None
    code, lines, _ = finish(guarded.start(onstart, sh="bash"))
    assert code == 0
    assert lines[0] in {"user script ran", START_LINE.format(action=action, deadline=deadline)}
    assert "user script ran" in lines and lines[-1] == f"vast-mcp guard: {action} sent"
    assert guarded.changes() == [("PUT" if action == "stop" else "DELETE", 200)]
