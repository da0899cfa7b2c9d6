"""Enforcing recorded deadlines from this machine (DESIGN §3 ``reap``, §5b).

`serve` reaps at start-up and every few minutes; ``vast-mcp reap`` does it once, for cron or a
systemd timer. Each pass looks only at deadlines that have passed, and only at those recorded
for the account the configured key belongs to:

* ``stop``: stopped and read back until it is stopped; the record stays (a later start past the
  deadline is stopped again). An instance already meant to be stopped is left alone.
* ``destroy``: destroyed and read back until it is gone; the record is dropped.
* an instance that no longer exists: its record is dropped.
* a failure: reported, the record kept for the next pass.

Nothing due means no Vast request at all; ``dry_run`` sends only reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

import anyio
from pydantic import BaseModel, ConfigDict

from vast_mcp.provisioning.readiness import Target, wait_for_state
from vast_mcp.spending.deadlines import Deadline, DeadlineStore, DeadlineStoreError
from vast_mcp.spending.text import utc
from vast_mcp.vast import Instance, NotFoundError, VastClient, VastError

__all__ = ["ReapAction", "ReapOutcome", "reap", "reap_while_serving"]

logger = logging.getLogger(__name__)

ReapOutcome = Literal["stopped", "destroyed", "dropped", "skipped", "failed"]


class ReapAction(BaseModel):
    """What one pass did (or, in a dry run, would do) about one recorded deadline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_id: int
    outcome: ReapOutcome
    dry_run: bool
    detail: str

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    @property
    def line(self) -> str:
        """One printable line, e.g. ``stopped 123: its stop deadline (…) passed; verified stopped``."""
        verb = {"stopped": "stop", "destroyed": "destroy", "dropped": "drop"}.get(self.outcome)
        head = f"would {verb}" if self.dry_run and verb else self.outcome
        if self.outcome == "failed":
            head = "FAILED"
        return f"{head} {self.instance_id}: {self.detail}"


def _when(deadline: Deadline) -> str:
    return f"its {deadline.action} deadline ({utc(deadline.at)}) passed"


async def reap(
    vast: VastClient,
    store: DeadlineStore,
    *,
    now: float,
    dry_run: bool,
    verify_timeout: float = 120.0,
    poll: float = 5.0,
) -> list[ReapAction]:
    """Enforce every deadline of this account that passed by ``now``; one :class:`ReapAction` each.

    A passed stop deadline on an instance already stopped needs nothing and yields no action.
    Raises :class:`VastError` when the account or its instances cannot be read at all.
    """
    due = [d for d in store.all() if d.at <= now]
    if not due:
        return []
    account = (await vast.account.current_user()).id
    reaper = _Reaper(vast, store, dry_run=dry_run, verify_timeout=verify_timeout, poll=poll)
    live: dict[int, Instance] | None = None  # listed once, when the first of this account's is due
    actions: list[ReapAction] = []
    for deadline in due:
        if account is None or deadline.account != account:
            actions.append(reaper.skip(deadline, account))
            continue
        if live is None:
            live = {inst.id: inst for inst in await vast.instances.list()}
        action = await reaper.enforce(deadline, live.get(deadline.instance_id))
        if action is not None:
            actions.append(action)
    return actions


async def reap_while_serving(
    vast: VastClient, store: DeadlineStore, *, interval: float, poll: float, clock: Callable[[], float] = time.time
) -> None:
    """What ``serve`` runs in the background: reap at start-up, then every ``interval`` seconds.

    Nothing here ever ends the server: a failed pass is logged and the next one tries again.
    """
    while True:
        try:
            for action in await reap(vast, store, now=clock(), dry_run=False, poll=poll):
                (logger.warning if action.failed else logger.info)("reap: %s", action.line)
        except (VastError, DeadlineStoreError) as exc:
            logger.warning("reap: deadlines could not be enforced this time: %s", exc)
        await anyio.sleep(interval)


class _Reaper:
    def __init__(
        self, vast: VastClient, store: DeadlineStore, *, dry_run: bool, verify_timeout: float, poll: float
    ) -> None:
        self.vast = vast
        self.store = store
        self.dry_run = dry_run
        self.verify_timeout = verify_timeout
        self.poll = poll

    def _action(self, deadline: Deadline, outcome: ReapOutcome, detail: str) -> ReapAction:
        return ReapAction(instance_id=deadline.instance_id, outcome=outcome, dry_run=self.dry_run, detail=detail)

    def skip(self, deadline: Deadline, account: int | None) -> ReapAction:
        owner = "no account" if deadline.account is None else f"account {deadline.account}"
        ours = "an unknown account" if account is None else f"account {account}"
        detail = f"{_when(deadline)}, but it was recorded for {owner} and this key is for {ours}; nothing done"
        return self._action(deadline, "skipped", detail)

    async def enforce(self, deadline: Deadline, listed: Instance | None) -> ReapAction | None:
        try:
            instance = listed or await self.vast.instances.get(deadline.instance_id)
        except NotFoundError:
            return self._drop(deadline, f"{_when(deadline)} and it no longer exists")
        except VastError as exc:
            return self._action(deadline, "failed", f"{_when(deadline)}; could not read it: {exc} (the deadline stays)")
        if deadline.action == "stop" and instance.intended_status == "stopped":
            return None  # already stopped (or stopping): nothing to send, nothing to report
        if self.store.get(deadline.instance_id) != deadline:
            return None  # moved or cleared (set_deadline) since this pass read it: not due any more
        if self.dry_run:
            outcome: ReapOutcome = "stopped" if deadline.action == "stop" else "destroyed"
            return self._action(deadline, outcome, f"{_when(deadline)} and it is {instance.actual_status}")
        try:
            if deadline.action == "stop":
                await self.vast.instances.set_state(deadline.instance_id, "stopped")
            else:
                await self.vast.instances.destroy(deadline.instance_id)
        except NotFoundError:
            return self._drop(deadline, f"{_when(deadline)} and it no longer exists")
        except VastError as exc:
            return self._action(
                deadline, "failed", f"{_when(deadline)}; the {deadline.action} failed: {exc} (the deadline stays)"
            )
        return await self._verify(deadline)

    async def _verify(self, deadline: Deadline) -> ReapAction:
        target: Target = "stopped" if deadline.action == "stop" else "gone"
        try:
            outcome = await wait_for_state(
                self.vast, deadline.instance_id, target, timeout_s=self.verify_timeout, poll_s=self.poll
            )
        except VastError as exc:
            return self._action(deadline, "failed", f"{_when(deadline)}; sent {deadline.action}, no read-back: {exc}")
        if outcome.state == "gone":
            self.store.clear(deadline.instance_id)
            done: ReapOutcome = "destroyed" if target == "gone" else "dropped"
            return self._action(deadline, done, f"{_when(deadline)}; verified gone, deadline dropped")
        if outcome.reached:
            return self._action(deadline, "stopped", f"{_when(deadline)}; verified stopped")
        why = outcome.failure or f"still {outcome.state} after {outcome.waited_s:.0f}s"
        return self._action(
            deadline, "failed", f"{_when(deadline)}; sent {deadline.action} but {why} (the deadline stays)"
        )

    def _drop(self, deadline: Deadline, detail: str) -> ReapAction:
        if not self.dry_run:
            self.store.clear(deadline.instance_id)
        return self._action(deadline, "dropped", detail + ("" if self.dry_run else "; deadline dropped"))
