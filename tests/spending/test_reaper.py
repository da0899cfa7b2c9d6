"""The reaper against the simulator: passed deadlines are enforced once, for this account only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import SIM_KEY, isolated_key_sources
from vast_mcp.cli import main
from vast_mcp.simulator import Simulator, Timings
from vast_mcp.spending.deadlines import Deadline, DeadlineStore
from vast_mcp.spending.reaper import ReapAction, reap

from .support import BOOT_SECONDS, client, rent, state

WRITES = {"PUT", "DELETE", "POST"}


@dataclass
class Account:
    sim: Simulator
    url: str
    store: DeadlineStore

    @property
    def user_id(self) -> int:
        return self.sim.state.account.user_id

    def running(self, label: str = "reap-me") -> int:
        instance_id = rent(self.sim, self.url, label=label)
        self.sim.clock.advance(BOOT_SECONDS)
        return instance_id

    def due(self, instance_id: int, action: str = "stop", *, account: int | None = None, ago: float = 60) -> Deadline:
        deadline = Deadline(instance_id, self.sim.clock.now() - ago, action, account or self.user_id)  # type: ignore[arg-type]
        self.store.set(deadline)
        return deadline

    def intended(self, instance_id: int) -> str | None:
        found = state(self.sim, instance_id)
        return None if found is None else str(found["intended_status"])

    def writes(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.sim.requests if r.method in WRITES]

    async def reap(self, *, dry_run: bool = False) -> list[ReapAction]:
        self.sim.reset_requests()
        async with client(self.url) as vast:
            return await reap(vast, self.store, now=self.sim.clock.now(), dry_run=dry_run, poll=0.01)


@pytest.fixture
def account(tmp_path: Path) -> Iterator[Account]:
    # A still clock and instant stops: every read-back sees the final state on its first poll.
    sim = Simulator(api_key=SIM_KEY, seed=0, offer_count=300, speed=0.0, timings=Timings(stop=0.0))
    with sim.serve() as url:
        yield Account(sim, url, DeadlineStore(tmp_path / "state"))


@pytest.mark.anyio
async def test_nothing_due_sends_no_request(account: Account) -> None:
    instance_id = account.running()
    account.store.set(Deadline(instance_id, account.sim.clock.now() + 3600, "destroy", account.user_id))
    assert await account.reap() == []
    assert account.sim.requests == []


@pytest.mark.anyio
async def test_a_passed_stop_deadline_stops_and_keeps_the_record(account: Account) -> None:
    instance_id = account.running()
    deadline = account.due(instance_id, "stop")
    [action] = await account.reap()
    assert (action.instance_id, action.outcome, action.failed) == (instance_id, "stopped", False)
    assert action.line.startswith(f"stopped {instance_id}: its stop deadline (") and "verified stopped" in action.line
    assert account.intended(instance_id) == "stopped"
    assert account.writes() == [("PUT", f"/api/v0/instances/{instance_id}/")]
    assert account.store.get(instance_id) == deadline


@pytest.mark.anyio
async def test_reaping_again_changes_nothing(account: Account) -> None:
    instance_id = account.running()
    account.due(instance_id, "stop")
    await account.reap()
    assert await account.reap() == []  # already stopped: not stopped again
    assert account.writes() == []


@pytest.mark.anyio
async def test_a_start_past_a_stop_deadline_is_stopped_again(account: Account) -> None:
    instance_id = account.running()
    account.due(instance_id, "stop")
    await account.reap()
    account.sim.state.set_state(account.sim.state.instances[instance_id], "running", account.sim.clock.now())
    [action] = await account.reap()
    assert action.outcome == "stopped" and account.intended(instance_id) == "stopped"


@pytest.mark.anyio
async def test_a_passed_destroy_deadline_destroys_and_drops_the_record(account: Account) -> None:
    instance_id = account.running()
    account.due(instance_id, "destroy")
    [action] = await account.reap()
    assert action.outcome == "destroyed" and "verified gone" in action.detail
    assert instance_id in account.sim.state.destroyed
    assert account.store.get(instance_id) is None


@pytest.mark.anyio
async def test_a_dry_run_changes_nothing(account: Account) -> None:
    stop_me, destroy_me, gone = account.running("a"), account.running("b"), account.running("c")
    for instance_id, action in ((stop_me, "stop"), (destroy_me, "destroy"), (gone, "stop")):
        account.due(instance_id, action)
    account.sim.state.destroy(account.sim.state.instances[gone], account.sim.clock.now())
    records = account.store.all()
    actions = await account.reap(dry_run=True)
    assert [a.line.split(":")[0] for a in actions] == [
        f"would stop {stop_me}",
        f"would destroy {destroy_me}",
        f"would drop {gone}",
    ]
    assert account.writes() == []
    assert account.store.all() == records
    assert (account.intended(stop_me), account.intended(destroy_me)) == ("running", "running")


@pytest.mark.anyio
async def test_another_accounts_record_is_skipped_and_reported(account: Account) -> None:
    instance_id = account.running()
    account.due(instance_id, "destroy", account=account.user_id + 1)
    [action] = await account.reap()
    assert action.outcome == "skipped" and not action.failed
    assert f"account {account.user_id + 1}" in action.detail and f"account {account.user_id}" in action.detail
    assert account.writes() == [] and account.intended(instance_id) == "running"
    assert account.store.get(instance_id) is not None


@pytest.mark.anyio
async def test_an_instance_already_gone_drops_its_record(account: Account) -> None:
    instance_id = account.running()
    account.due(instance_id, "stop")
    account.sim.state.destroy(account.sim.state.instances[instance_id], account.sim.clock.now())
    [action] = await account.reap()
    assert action.outcome == "dropped" and "no longer exists" in action.detail
    assert account.store.get(instance_id) is None and account.writes() == []


@pytest.mark.anyio
async def test_a_failure_is_reported_and_the_record_kept(account: Account) -> None:
    instance_id = account.running()
    deadline = account.due(instance_id, "destroy")
    account.sim.faults.inject("server_error", method="DELETE", times=10)
    [action] = await account.reap()
    assert action.failed and action.line.startswith(f"FAILED {instance_id}:")
    assert SIM_KEY not in action.line
    assert account.store.get(instance_id) == deadline and account.intended(instance_id) == "running"


@pytest.mark.anyio
async def test_a_deadline_moved_during_the_pass_is_not_enforced(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_id = account.running()
    passed = account.due(instance_id, "destroy")
    later = Deadline(instance_id, passed.at + 7200, "destroy", account.user_id)
    every = account.store.all

    def read_then_extend() -> list[Deadline]:
        found = every()
        account.store.set(later)  # set_deadline in the server, right after this pass read the file
        return found

    monkeypatch.setattr(account.store, "all", read_then_extend)
    assert await account.reap() == []
    assert account.intended(instance_id) == "running" and account.store.get(instance_id) == later


# ------------------------------------------------------------------ vast-mcp reap


@pytest.fixture
def cli_env(account: Account, monkeypatch: pytest.MonkeyPatch) -> Account:
    monkeypatch.setenv("VAST_URL", account.url)
    monkeypatch.setenv("VAST_API_KEY", SIM_KEY)
    monkeypatch.setenv("VAST_MCP_STATE_DIR", str(account.store.path.parent))
    monkeypatch.setenv("VAST_MCP_POLL_INTERVAL", "0.01")
    monkeypatch.setenv("VAST_MCP_RATE_LIMIT", "off")
    return account


def _in_the_real_past(account: Account) -> None:
    """`vast-mcp reap` goes by the real time, not the simulator's clock."""
    for deadline in account.store.all():
        account.store.set(Deadline(deadline.instance_id, 1.0, deadline.action, deadline.account))


def test_the_command_prints_one_line_per_action(cli_env: Account, capsys: pytest.CaptureFixture[str]) -> None:
    stop_me, other = cli_env.running("a"), cli_env.running("b")
    cli_env.due(stop_me, "stop")
    cli_env.due(other, "destroy", account=1)
    _in_the_real_past(cli_env)
    assert main(["reap", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == [f"would stop {stop_me}", f"skipped {other}"]
    assert cli_env.intended(stop_me) == "running"
    assert main(["reap"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(f"stopped {stop_me}:")
    assert cli_env.intended(stop_me) == "stopped"


def test_the_command_exits_1_on_a_failure(cli_env: Account, capsys: pytest.CaptureFixture[str]) -> None:
    cli_env.due(cli_env.running(), "stop")
    _in_the_real_past(cli_env)
    # Not retried (a 5xx would be, with real backoff sleeps): a redirect the client refuses to follow.
    cli_env.sim.faults.inject("redirect", method="PUT", location="https://elsewhere.example/", times=5)
    assert main(["reap"]) == 1
    assert capsys.readouterr().out.startswith("FAILED ")


def test_the_command_with_nothing_due(cli_env: Account, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reap"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["reap", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("nothing to do: 0 deadline(s) recorded")
    assert cli_env.sim.requests == []


def test_the_command_exits_2_without_a_key(
    cli_env: Account, monkeypatch: pytest.MonkeyPatch, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with isolated_key_sources(monkeypatch, home):
        assert main(["reap"]) == 2
    assert "no API key" in capsys.readouterr().err


def test_the_command_exits_2_on_a_bad_setting(cli_env: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAST_URL", "http://vast.example.com")
    assert main(["reap"]) == 2


def test_the_command_exits_1_on_a_corrupt_deadline_file(cli_env: Account, capsys: pytest.CaptureFixture[str]) -> None:
    cli_env.store.path.parent.mkdir(parents=True, exist_ok=True)
    cli_env.store.path.write_text("{")
    assert main(["reap"]) == 1
    assert "cannot be used" in capsys.readouterr().err
