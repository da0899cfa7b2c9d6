"""A stateful, fault-injecting Vast.ai API simulator that the official ``vastai`` CLI works against.

``Simulator(...)`` builds state only; ``with sim.serve() as url:`` serves it on loopback.
Tests drive time with ``sim.clock.advance(s)``, arm faults with ``sim.faults.inject(...)``
and read what clients sent from ``sim.requests`` / ``sim.count(method, path_regex)``.
What Vast does on its own is a method too: ``sim.instance_key(id)`` (the scoped key),
``sim.relet(id)`` / ``sim.free(id)`` (GPUs re-let while stopped; a start is queued),
``sim.set_min_bid(id, price)`` (a bid rental below the machine's minimum is outbid),
``sim.raise_price(id, factor)`` (a pending host price increase). Each also has an admin
form, ``POST /_sim/<name>`` with the arguments as a JSON object.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from .clock import SimClock
from .core import RecordedRequest, Simulator
from .faults import KINDS as FAULT_KINDS
from .faults import Fault, Faults
from .state import Timings

__all__ = [
    "DEFAULT_SPEED",
    "FAULT_KINDS",
    "Fault",
    "Faults",
    "RecordedRequest",
    "SimClock",
    "Simulator",
    "Timings",
    "main",
    "run",
]

#: Default for the command line: a create reaches running (30 simulated s) in ~3 real s.
DEFAULT_SPEED = 10.0


def run(host: str, port: int, api_key: str, seed: int, speed: float) -> int:
    """Serve in the foreground until SIGINT/SIGTERM; the first stdout line is ``VAST_URL=...``."""
    sim = Simulator(api_key=api_key, seed=seed, speed=speed, start=time.time())
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with sim.serve(host, port) as url:
            print(f"VAST_URL={url}", flush=True)
            print(f"VAST_API_KEY={api_key}", flush=True)
            print(
                f"Vast API simulator ({len(sim.state.offers)} offers, speed x{speed:g}); "
                "export both lines to point vast-mcp or the vastai CLI here. Ctrl-C stops.",
                flush=True,
            )
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vast_mcp.simulator [--host H] [--port N] [--api-key K] [--seed N] [--speed X]``."""
    parser = argparse.ArgumentParser(prog="vast-mcp simulator", description="Run the Vast API simulator.")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    parser.add_argument("--api-key", default="sim-key", help="the bearer key clients must send")
    parser.add_argument("--seed", type=int, default=0, help="inventory seed")
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED, help="simulated seconds per real second")
    args = parser.parse_args(argv)
    try:
        return run(args.host, args.port, args.api_key, args.seed, args.speed)
    except (OSError, ValueError) as exc:
        print(f"vast-mcp simulator: {exc}", file=sys.stderr)
        return 2
