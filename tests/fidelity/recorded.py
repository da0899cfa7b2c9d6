"""Helpers for replaying responses recorded from the real Vast API (tests/fixtures/real).

A fixture file is ``{"source", "request", "response": {"status", "headers", "body"}}``.
:class:`Replay` serves canned answers through ``httpx.MockTransport`` in order (the
last one repeats), keeps every request our client sent, and records every wait the
client asked for instead of sleeping.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from vast_mcp.credentials import ApiKey
from vast_mcp.vast import RateBudget, RetryPolicy, VastClient, VastHttp

#: Vendored from the team's shared material; sources and licences in its README.md and LICENSES.md.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real"
BASE_URL = "https://vast.test"
#: A key shaped like a real one; every leak check looks for it.
KEY_SECRET = "fidelity-CANARY-key-0123456789abcdef"
KEY = ApiKey(KEY_SECRET, "env", "$VAST_API_KEY")


def fixture_paths() -> list[Path]:
    return sorted(FIXTURES.glob("*.json"))


@dataclass(frozen=True)
class Fixture:
    name: str
    source: dict[str, Any]
    request: dict[str, Any]
    response: dict[str, Any]

    @property
    def status(self) -> int:
        return int(self.response["status"])

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.response.get("headers") or {})

    @property
    def body(self) -> Any:
        """A deep copy: tests may edit it freely."""
        return copy.deepcopy(self.response["body"])


def load(name_or_path: str | Path) -> Fixture:
    path = name_or_path if isinstance(name_or_path, Path) else FIXTURES / name_or_path
    data = json.loads(path.read_text(encoding="utf-8"))
    return Fixture(path.name, data["source"], data["request"], data["response"])


@dataclass(frozen=True)
class Canned:
    """One answer; a fresh ``httpx.Response`` is built for every request."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> httpx.Response:
        return httpx.Response(self.status, headers=self.headers, content=json.dumps(self.body).encode())


def recorded(fixture: Fixture, body: Any = None) -> Canned:
    """The fixture's status, headers and body exactly as recorded (``body`` overrides it)."""
    return Canned(fixture.status, fixture.body if body is None else body, fixture.headers)


class Replay:
    """Answers every request with the next canned answer; the last one repeats."""

    def __init__(self, *answers: Canned) -> None:
        assert answers, "at least one answer"
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.waits: list[float] = []
        self.now = 0.0  # a fake clock that only the recorded sleeps move

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers[min(len(self.requests), len(self.answers)) - 1].response()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def sent(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content or b"null")


@asynccontextmanager
async def client_for(
    replay: Replay, *, budget: RateBudget | None = None, retry: RetryPolicy | None = None
) -> AsyncIterator[VastClient]:
    http = VastHttp(
        KEY,
        BASE_URL,
        transport=httpx.MockTransport(replay.handler),
        sleep=replay.sleep,
        budget=budget,
        retry=retry or RetryPolicy(),
    )
    async with VastClient(http) as vast:
        yield vast


def walk(value: Any) -> list[dict[str, Any]]:
    """Every JSON object inside ``value`` (itself included), depth first."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found.extend(walk(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(walk(item))
    return found
