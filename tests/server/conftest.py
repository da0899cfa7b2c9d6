"""Fixtures for the wire-level tests: the protocol era, and a served simulator rig."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import served_simulator
from tests.server.rig import ERAS, Rig, make_home


@pytest.fixture(params=list(ERAS))
def era(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    # speed: created -> running (30 simulated s) takes a quarter of a real second.
    with served_simulator(speed=120.0) as (sim, url):
        yield Rig(sim, url, make_home(tmp_path / "home"))


@pytest.fixture
def still_rig(tmp_path: Path) -> Iterator[Rig]:
    """Simulated time moves only when the test says so (rig.sim.clock.advance)."""
    with served_simulator(speed=0.0) as (sim, url):
        yield Rig(sim, url, make_home(tmp_path / "home"))
