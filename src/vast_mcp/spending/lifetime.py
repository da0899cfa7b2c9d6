"""A new rental's lifetime, as the create sends it and records it (DESIGN §5b).

The deadline counts from the create. It travels three ways, so it holds whoever is gone: in the
label's tag (which the in-instance guard re-reads), in the onstart that starts the guard, and in
the local deadline store that ``serve`` and ``vast-mcp reap`` enforce.
"""

from __future__ import annotations

from dataclasses import dataclass

from vast_mcp.spending.deadlines import Deadline, DeadlineStore
from vast_mcp.spending.guard import DeadlineAction, compose_onstart, tag_label
from vast_mcp.spending.text import utc

HOUR = 3600


@dataclass(frozen=True)
class Lifetime:
    at: int | None  # unix seconds; None = no deadline
    action: DeadlineAction

    @classmethod
    def starting(cls, *, now: float, hours: float, action: DeadlineAction) -> Lifetime:
        return cls(int(now + hours * HOUR) if hours > 0 else None, action)

    def label(self, base: str) -> str:
        return tag_label(base, self.at, self.action) if self.at is not None else base

    def onstart(self, user_onstart: str | None) -> str | None:
        return compose_onstart(user_onstart, self.at, self.action)

    def record(self, store: DeadlineStore, instance_id: int, account: int | None) -> None:
        if self.at is not None:
            store.set(Deadline(instance_id=instance_id, at=float(self.at), action=self.action, account=account))

    def describe(self) -> str:
        return f"{self.action} at {utc(self.at)}" if self.at is not None else "no deadline"
