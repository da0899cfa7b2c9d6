"""Shared machinery for the reliability suite: a timing recorder in front of the simulator,
crash detection, secret scanning, and subprocess hygiene.

The recorder wraps ``Simulator.handle`` (the whole request pipeline) before the simulator is
served, so it sees every request the server sends, when it arrived, what was answered and
any wait hint a 429 carried. ``RecordedRequest`` keeps no timestamps, so the retry-timing
invariants are checked here. The recorder also keeps the raw ``Authorization`` value (the
simulator reduces it to its scheme): the leak tests use it to play a Vast that echoes what
it was sent, and it is never printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from mcp.types import CallToolResult, TextContent

from vast_mcp.simulator import Simulator
from vast_mcp.simulator.wire import Request, Response, json_response, text_response

CREATE = r"^/api/v0/asks/\d+/$"
SEARCH = r"^/api/v0/(bundles|search/asks)/$"
INSTANCES_V1 = r"^/api/v1/instances/$"
MARKER_ENV = "VAST_MCP_REQUEST"  # provisioning/create.py: the per-attempt create marker

# What the SDK sends for an exception the tool did not anticipate (details stay in the log).
_CRASH = re.compile(r"^Error executing tool [\w\-]+(?:: Error executing tool [\w\-]+)*\s*$")


# --------------------------------------------------------------------------- results


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def is_crash(result: CallToolResult) -> bool:
    """The SDK's sanitised "Error executing tool X" with nothing after it: an unhandled exception."""
    return bool(result.is_error) and bool(_CRASH.match(text_of(result).strip()))


def result_problem(name: str, result: CallToolResult) -> str | None:
    """Why a tool result is not acceptable (None when it is): a crash, an empty error,
    or a success without structured content."""
    text = text_of(result)
    if result.is_error:
        if is_crash(result):
            return f"{name}: unhandled exception reached the client ({text!r})"
        prefix = f"Error executing tool {name}: "
        detail = text[len(prefix) :] if text.startswith(prefix) else text
        if len(detail.strip()) < 12:
            return f"{name}: error without a meaningful message ({text!r})"
        return None
    if not isinstance(result.structured_content, dict):
        return f"{name}: success without structured content ({text[:200]!r})"
    return None


# --------------------------------------------------------------------------- secrets


def secret_forms(secret: str) -> set[str]:
    """The key as it could appear anywhere: raw, URL-encoded (both cases), quote_plus, JSON-escaped."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in list(forms)}
    return {f for f in forms if f}


def find_secret(text: str, secret: str) -> str | None:
    """The first form of ``secret`` found in ``text`` (None when clean)."""
    for form in sorted(secret_forms(secret), key=len, reverse=True):
        if form in text:
            return form
    return None


def scan(blobs: Iterable[tuple[str, str]], *secrets: str) -> list[str]:
    """``(where, text)`` pairs -> a description of every place a secret (in any form) appears."""
    found = []
    for where, text in blobs:
        for secret in secrets:
            form = find_secret(text, secret)
            if form is not None:
                at = text.find(form)
                context = text[max(0, at - 60) : at].replace(secret, "<KEY>")
                found.append(f"{where}: key form #{len(form)} chars after ...{context!r}")
    return found


# --------------------------------------------------------------------------- the recorder


@dataclass
class Seen:
    """One request as the simulator saw it, with real arrival and answer times."""

    seq: int
    call: str  # the tool call in flight when it arrived (set by the test)
    arrived: float  # time.monotonic()
    answered: float  # when the answer left (handler return + any ``slow`` delay)
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int | None
    dropped: bool
    hint: float | None  # a 429's wait hint (max of Retry-After and body retry_after)
    code: str | None  # the answer body's "error" field, when it is JSON
    auth: str = field(repr=False, default="")  # raw Authorization value (never printed)
    echoed: bool = False

    @property
    def signature(self) -> str:
        return json.dumps([self.method, self.path, self.query, self.body], sort_keys=True, default=str)

    @property
    def marker(self) -> str | None:
        if self.method != "PUT" or not re.search(CREATE, self.path) or not isinstance(self.body, dict):
            return None
        env = self.body.get("env")
        value = env.get(MARKER_ENV) if isinstance(env, dict) else None
        return value if isinstance(value, str) else None


def _code(resp: Response) -> str | None:
    with suppress(ValueError, UnicodeDecodeError):
        body = json.loads(resp.body)
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return str(body["error"])
    return None


def _hint(resp: Response) -> float | None:
    if resp.status != 429:
        return None
    waits = []
    for name, value in resp.headers.items():
        if name.lower() == "retry-after":
            with suppress(ValueError):
                waits.append(float(value))
    with suppress(ValueError, UnicodeDecodeError):
        body = json.loads(resp.body)
        if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
            waits.append(float(body["retry_after"]))
    return max(waits) if waits else None


Inner = Callable[[Request], Response]
Echo = Callable[[Request, Inner], Response]  # (request, the simulator's own pipeline) -> answer


class Recorder:
    """Installed in front of a simulator's pipeline; thread-safe (the simulator serves on threads)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._lock = threading.Lock()
        self.seen: list[Seen] = []
        self.call = "-"
        self._echoes: list[tuple[str | None, int, Echo]] = []
        self._inner = sim.handle
        sim.handle = self._handle  # type: ignore[method-assign]  # SimHTTPServer binds sim.handle at start

    def echo(self, answer: Echo, *, path: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests (matching ``path``) with ``answer``, which may call the
        simulator's own pipeline first (to change how a committed answer is delivered) or not."""
        with self._lock:
            self._echoes.append((path, times, answer))

    def _take_echo(self, req: Request) -> Echo | None:
        with self._lock:
            for i, (path, times, answer) in enumerate(self._echoes):
                if path is None or re.search(path, req.path):
                    if times <= 1:
                        del self._echoes[i]
                    else:
                        self._echoes[i] = (path, times - 1, answer)
                    return answer
        return None

    def _handle(self, req: Request) -> Response:
        arrived = time.monotonic()
        echo = self._take_echo(req) if not req.path.startswith("/_sim/") else None
        resp = echo(req, self._inner) if echo is not None else self._inner(req)
        answered = time.monotonic() + resp.delay
        with self._lock:
            self.seen.append(
                Seen(
                    seq=len(self.seen),
                    call=self.call,
                    arrived=arrived,
                    answered=answered,
                    method=req.method,
                    path=req.path,
                    query=dict(req.query),
                    body=req.body,
                    status=None if resp.drop else resp.status,
                    dropped=resp.drop,
                    hint=_hint(resp),
                    code=_code(resp),
                    auth=req.headers.get("authorization", ""),
                    echoed=echo is not None,
                )
            )
        return resp

    def since(self, mark: int) -> list[Seen]:
        with self._lock:
            return self.seen[mark:]

    def mark(self) -> int:
        with self._lock:
            return len(self.seen)


@contextmanager
def recorded_simulator(**options: Any) -> Iterator[tuple[Simulator, Recorder, str]]:
    sim = Simulator(**options)
    recorder = Recorder(sim)
    with sim.serve() as url:
        yield sim, recorder, url


# Answers a Vast that echoes what it was sent would give (real Vast echoes some inputs in errors).


def echo_in_error(req: Request, inner: Inner) -> Response:
    sent = req.headers.get("authorization", "")
    token = sent.partition(" ")[2]
    msg = f"invalid request: header {sent!r}, key={quote(token, safe='')}, form={quote_plus(token)}"
    return json_response(400, {"success": False, "error": "invalid_args", "msg": msg})


def echo_in_bad_body(req: Request, inner: Inner) -> Response:
    sent = req.headers.get("authorization", "")
    token = sent.partition(" ")[2]
    return text_response(200, f"<html>upstream echo: {sent} {quote(token, safe='')} {quote_plus(token)}</html>")


def echo_in_5xx(req: Request, inner: Inner) -> Response:
    sent = req.headers.get("authorization", "")
    return text_response(502, f"bad gateway while forwarding {sent}")


# --------------------------------------------------------------------------- simulator state


def live_instances(sim: Simulator) -> dict[int, dict[str, str]]:
    """Live instance id -> its extra env (the create marker lives there)."""
    with sim.state.lock:
        return {i.id: dict((str(k), str(v)) for k, v in i.extra_env) for i in sim.state.instances.values()}


def every_instance(sim: Simulator) -> dict[int, dict[str, str]]:
    """Live and destroyed instances -> extra env."""
    with sim.state.lock:
        both = [*sim.state.instances.values(), *sim.state.destroyed.values()]
        return {i.id: dict((str(k), str(v)) for k, v in i.extra_env) for i in both}


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def stop_process(proc: subprocess.Popen[Any], *, group: bool = False) -> None:
    """Terminate (then kill) one process we started; with ``group`` (it was started with
    ``start_new_session=True``), its whole process group, whose id is its pid."""

    def send(sig: int) -> None:
        with suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(proc.pid, sig)
            elif proc.poll() is None:
                proc.send_signal(sig)

    send(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(timeout=5)
    if group:
        send(signal.SIGKILL)  # anything the leader left behind in its group


def children_of(pid: int) -> list[int]:
    """Live PIDs whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def server_env(url: str, home: Path, key: str, **extra: str) -> dict[str, str]:
    """The environment an MCP client would launch ``vast-mcp serve`` with, pointed at a simulator
    and a private HOME (no real keyring, ~/.ssh or vastai key file is read)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAST_")}
    env.update(
        VAST_URL=url,
        VAST_API_KEY=key,
        VAST_MCP_RATE_LIMIT="off",
        VAST_MCP_POLL_INTERVAL="0.05",
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    env.update(extra)
    return env


def wait_listening(proc: subprocess.Popen[Any], port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not listening(port):
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise AssertionError(f"server did not listen on {port} within {timeout:.0f} s")
        time.sleep(0.05)
