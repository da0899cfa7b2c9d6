"""Deadlines recorded on this machine, so `serve` and `vast-mcp reap` can enforce them (DESIGN §5b).

One JSON file, ``deadlines.json`` in the state directory (created 0700; the file is 0600).
Every change is a read-modify-write under an exclusive ``fcntl`` lock on a side file
(``deadlines.json.lock``) and lands with a temp file + ``os.replace``, so a second local
process (``vast-mcp reap`` from cron while ``serve`` runs) never loses or tears an update.
Where ``fcntl`` does not exist (Windows) only threads of one process are serialised.

A file that cannot be read or parsed is an error that names the file; it is never
silently treated as empty (that would drop every deadline on the next write).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Final, TypeVar

from pydantic import Strict, StrictInt, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from vast_mcp.spending.guard import DeadlineAction

try:
    import fcntl
except ImportError:  # Windows: no advisory locks between processes
    fcntl = None  # type: ignore[assignment]

__all__ = ["FILE_NAME", "Deadline", "DeadlineStore", "DeadlineStoreError"]

FILE_NAME: Final = "deadlines.json"
_VERSION: Final = 1
_T = TypeVar("_T")


class DeadlineStoreError(Exception):
    """The deadline file cannot be read, parsed or written; the message names it and what to do."""


@dataclass(frozen=True)
class Deadline:
    """Stop or destroy ``instance_id`` at ``at`` (unix seconds); ``account`` is the owner's user id.

    Validated when made and when read back: no string or bool passes for a number.
    """

    instance_id: StrictInt
    at: Annotated[float, Strict()]
    action: DeadlineAction
    account: StrictInt | None


_FILE = TypeAdapter(list[Deadline])


class DeadlineStore:
    """The deadlines of every instance this machine rented, keyed by instance id."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / FILE_NAME
        self._lock_path = self.path.with_name(FILE_NAME + ".lock")
        self._thread_lock = threading.Lock()

    def get(self, instance_id: int) -> Deadline | None:
        return self._read_locked().get(instance_id)

    def all(self) -> list[Deadline]:
        """Every recorded deadline, soonest first."""
        return sorted(self._read_locked().values(), key=lambda d: (d.at, d.instance_id))

    def set(self, deadline: Deadline) -> None:
        """Record (or replace) the deadline of ``deadline.instance_id``."""

        def put(records: dict[int, Deadline]) -> None:
            records[deadline.instance_id] = deadline

        self._update(put)

    def clear(self, instance_id: int) -> Deadline | None:
        """Forget an instance's deadline; returns the one removed (None when there was none)."""
        return self._update(lambda records: records.pop(instance_id, None))

    # ------------------------------------------------------------------ internals

    def _read_locked(self) -> dict[int, Deadline]:
        with self._locked(exclusive=False):
            return self._read()

    def _update(self, change: Callable[[dict[int, Deadline]], _T]) -> _T:
        with self._locked(exclusive=True):
            records = self._read()
            result = change(records)
            self._write(records)
            return result

    @contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        self._ensure_dir()
        with self._thread_lock:
            if fcntl is None:
                yield
                return
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise DeadlineStoreError(f"Cannot open the deadline lock {self._lock_path}: {exc.strerror}.") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                yield
            finally:
                os.close(fd)  # closing releases the lock

    def _ensure_dir(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise DeadlineStoreError(f"Cannot create the state directory {self.path.parent}: {exc.strerror}.") from None

    def _read(self) -> dict[int, Deadline]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise self._unusable(getattr(exc, "strerror", None) or str(exc)) from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != _VERSION:
                raise ValueError(f"expected an object with version {_VERSION}")
            entries = data.get("deadlines")
            if not isinstance(entries, list):
                raise ValueError("'deadlines' must be a list")
            records = _FILE.validate_python(entries)
        except ValidationError as exc:
            raise self._unusable(f"{exc.error_count()} bad entries, first: {_first_error(exc)}") from None
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise self._unusable(str(exc)) from None
        return {d.instance_id: d for d in records}

    def _write(self, records: dict[int, Deadline]) -> None:
        body = {"version": _VERSION, "deadlines": [asdict(d) for d in sorted(records.values(), key=_by_id)]}
        try:
            fd, temp = tempfile.mkstemp(prefix=FILE_NAME + ".", suffix=".tmp", dir=self.path.parent)
        except OSError as exc:
            raise DeadlineStoreError(f"Cannot write deadlines in {self.path.parent}: {exc.strerror}.") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp makes it 0600
                json.dump(body, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            Path(temp).unlink(missing_ok=True)
            raise DeadlineStoreError(f"Cannot write {self.path}: {exc.strerror}. Nothing was changed.") from None

    def _unusable(self, reason: str) -> DeadlineStoreError:
        return DeadlineStoreError(
            f"The deadline file {self.path} cannot be used ({reason}). Nothing was changed and no deadline in "
            "it is enforced until it is fixed: repair it, or move it aside to start with no recorded deadlines."
        )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"


def _by_id(deadline: Deadline) -> int:
    return deadline.instance_id
