"""The simulator's clock: a fixed epoch plus scaled real time plus manual advances."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

#: Simulated "now" at construction when no start is given: tests get stable timestamps.
DEFAULT_EPOCH = datetime(2026, 11, 1, tzinfo=UTC).timestamp()


class SimClock:
    """Simulated wall clock in Unix seconds.

    ``now() = start + (real seconds since construction) * speed + sum(advance())``.
    With ``speed=0.0`` only :meth:`advance` moves it, which is what tests want.
    """

    def __init__(self, speed: float = 0.0, start: float | None = None) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._speed = speed
        self._start = DEFAULT_EPOCH if start is None else start
        self._real0 = time.monotonic()
        self._advanced = 0.0
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        with self._lock:
            return self._start + (time.monotonic() - self._real0) * self._speed + self._advanced

    def advance(self, seconds: float) -> float:
        """Move simulated time forward by ``seconds`` and return the new now."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._advanced += seconds
        return self.now()

    def __repr__(self) -> str:
        return f"SimClock(speed={self._speed}, now={self.now():.1f})"
