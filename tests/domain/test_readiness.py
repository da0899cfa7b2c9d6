"""wait_for_state against a scripted Vast; probe_ssh against real loopback sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.vast.fake import FakeVast, reply
from vast_mcp.credentials import key_from_env
from vast_mcp.provisioning.readiness import SshEndpoint, probe_ssh, read_banner, wait_for_state
from vast_mcp.vast import VastClient, VastHttp

pytestmark = pytest.mark.anyio
SHOW = r"/api/v0/instances/\d+/"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def state(actual: str | None, intended: str = "running", msg: str | None = None) -> httpx.Response:
    return reply(body={"instances": {"id": 5, "actual_status": actual, "intended_status": intended, "status_msg": msg}})


async def run_wait(fake: FakeVast, target: str = "running", limit_s: float = 100.0) -> tuple[object, Clock]:
    clock = Clock()
    key = key_from_env({"VAST_API_KEY": "test-key-1234"})
    async with VastClient(VastHttp(key, "https://vast.test", transport=fake.transport(), budget=None)) as vast:
        outcome = await wait_for_state(
            vast,
            5,
            target,
            timeout_s=limit_s,
            poll_s=5.0,
            sleep=clock.sleep,
            clock=clock,  # type: ignore[arg-type]
        )
    return outcome, clock


async def test_reaches_running_and_reports_polls() -> None:
    fake = FakeVast().on("GET", SHOW, state(None), state("created"), state("loading"), state("running"))
    outcome, clock = await run_wait(fake)
    assert outcome.reached  # type: ignore[attr-defined]
    assert outcome.polls == 4  # type: ignore[attr-defined]
    assert clock.sleeps == [5.0, 5.0, 5.0]


async def test_fails_fast_on_exited_after_progress() -> None:
    fake = FakeVast().on("GET", SHOW, state("loading"), state("exited", msg="container exited with code 1"))
    outcome, _ = await run_wait(fake)
    assert not outcome.reached  # type: ignore[attr-defined]
    assert "exited" in outcome.failure  # type: ignore[attr-defined]
    assert "code 1" in outcome.failure  # type: ignore[attr-defined]
    assert fake.count("GET", SHOW) == 2


async def test_stale_exited_right_after_start_is_not_a_failure() -> None:
    fake = FakeVast().on("GET", SHOW, state("exited"), state("loading"), state("running"))
    outcome, _ = await run_wait(fake)
    assert outcome.reached  # type: ignore[attr-defined]


async def test_offline_fails_immediately() -> None:
    fake = FakeVast().on("GET", SHOW, state("offline"))
    outcome, _ = await run_wait(fake)
    assert outcome.failure and "offline" in outcome.failure  # type: ignore[attr-defined]


async def test_persistent_unknown_fails_after_grace() -> None:
    fake = FakeVast().on("GET", SHOW, state("unknown"))
    outcome, clock = await run_wait(fake, limit_s=600)
    assert not outcome.reached  # type: ignore[attr-defined]
    assert "unknown" in outcome.failure  # type: ignore[attr-defined]
    assert 60 <= clock.now <= 70


async def test_deadline_without_failure() -> None:
    fake = FakeVast().on("GET", SHOW, state("loading"))
    outcome, clock = await run_wait(fake, limit_s=20)
    assert not outcome.reached  # type: ignore[attr-defined]
    assert outcome.failure is None  # type: ignore[attr-defined]
    assert clock.now <= 20


async def test_stopped_as_the_real_api_reports_it() -> None:
    # Recorded: a stopped instance is actual_status "exited" with intended_status "stopped".
    fake = FakeVast().on("GET", SHOW, state("running", "stopped"), state("exited", "stopped"))
    outcome, _ = await run_wait(fake, target="stopped")
    assert outcome.reached  # type: ignore[attr-defined]


async def test_gone() -> None:
    fake = FakeVast().on("GET", SHOW, state("running"), reply(body={"instances": None}))
    outcome, _ = await run_wait(fake, target="gone")
    assert outcome.reached  # type: ignore[attr-defined]
    assert outcome.state == "gone"  # type: ignore[attr-defined]


@pytest.fixture
def banner_server() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback TCP server answering with whatever banner the test queues."""
    listener = socket.create_server(("127.0.0.1", 0))
    banners: list[bytes] = [b"SSH-2.0-OpenSSH_9.6\r\n"]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(banners[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], banners
    stop.set()
    thread.join()
    listener.close()


async def test_read_banner_real_socket(banner_server: tuple[int, list[bytes]]) -> None:
    port, _ = banner_server
    assert (await read_banner(SshEndpoint("direct", "127.0.0.1", port))).startswith("SSH-2.0-OpenSSH")


async def test_read_banner_rejects_non_ssh(banner_server: tuple[int, list[bytes]]) -> None:
    port, banners = banner_server
    banners[0] = b"HTTP/1.1 400 Bad Request\r\n"
    with pytest.raises(ValueError, match="not an SSH server"):
        await read_banner(SshEndpoint("direct", "127.0.0.1", port))


async def test_probe_falls_back_to_proxy(banner_server: tuple[int, list[bytes]]) -> None:
    port, _ = banner_server
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    probe = await probe_ssh(
        [SshEndpoint("direct", "127.0.0.1", dead_port), SshEndpoint("proxy", "127.0.0.1", port)], timeout_s=5
    )
    assert probe.ready
    assert probe.endpoint is not None
    assert probe.endpoint.kind == "proxy"
    assert any("direct" in k for k in probe.errors)


async def test_probe_gives_up_at_deadline() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    clock = Clock()
    probe = await probe_ssh(
        [SshEndpoint("direct", "127.0.0.1", dead_port)], timeout_s=10, interval_s=3, sleep=clock.sleep, clock=clock
    )
    assert not probe.ready
    assert probe.attempts == 4
    assert clock.now <= 10
