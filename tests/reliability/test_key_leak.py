"""Key-leak scan: everything the server emits, under faults and with a bad key, is free of the key.

The keys are recognisable canaries with characters that URL-encode (``+ / =``); every scan looks
for the raw key, both percent-encodings (upper and lower hex), the ``quote_plus`` form and the
JSON-escaped form. What is scanned:

* in-process (a legacy-era client, so log notifications and push elicitation are on the wire):
  every tool result and error, progress and log notifications, every other server message, the
  elicitation questions, resources (``vast://requests/recent``), the server's Python log records
  at DEBUG, and the temp files it writes when Vast answers garbage;
* the Vast client's exceptions themselves (``str``, ``repr``, formatted traceback) when Vast
  echoes the key back in every error shape, a header, or a body it cannot parse;
* a real ``vast-mcp --log-level DEBUG serve`` subprocess over stdio, behind a tee that copies
  its JSON-RPC stdout and its stderr byte for byte, with ``TMPDIR`` pointed at a directory that
  is scanned file by file afterwards; once with a working key under faults, once with a bad key.

Vast that echoes the key is played by the test's recorder (``support.echo_*``): the simulator's
own request log holds the Authorization header and is deliberately not scanned (it is the fake
Vast, not the server).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, LoggingMessageNotificationParams

from tests.helpers import ScriptedUser, fast_settings, make_public_key, ssh_dir_with_key
from tests.reliability.support import (
    CREATE,
    INSTANCES_V1,
    SEARCH,
    Recorder,
    echo_in_5xx,
    echo_in_bad_body,
    echo_in_error,
    recorded_simulator,
    result_problem,
    scan,
    secret_forms,
    server_env,
)
from vast_mcp.credentials import ApiKey
from vast_mcp.server import create_server
from vast_mcp.simulator import Simulator
from vast_mcp.vast import VastClient, VastError, VastHttp
from vast_mcp.vast.transport import RetryPolicy

pytestmark = pytest.mark.anyio

KEY = "vk-LEAKCANARY+/=0123456789abcdefXYZ"  # the account's key: the server sends it, Vast accepts it
FILE_KEY = "vk-LEAKCANARY2+/fileKey9876543210"  # in a key file the user picks; Vast refuses it
WRONG_KEY = "vk-LEAKCANARY3+/notTheAccountKey55"  # the bad-key run
SECRETS = (KEY, FILE_KEY, WRONG_KEY)
TEE = Path(__file__).with_name("stdio_tee.py")


def test_the_canaries_really_need_encoding() -> None:
    for secret in SECRETS:
        assert len(secret_forms(secret)) >= 4, "the scan would only look for the raw key"


class Capture:
    """Everything that left the server, as (where, text) pairs."""

    def __init__(self) -> None:
        self.blobs: list[tuple[str, str]] = []
        self.results = 0

    def add(self, where: str, value: Any) -> None:
        if hasattr(value, "model_dump_json"):
            text = value.model_dump_json(by_alias=True)
        elif isinstance(value, BaseException):
            text = f"{value!s} {value!r} " + "".join(traceback.format_exception(value))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
        self.blobs.append((where, text))

    async def on_log(self, params: LoggingMessageNotificationParams) -> None:
        self.add("log notification", params)

    async def on_message(self, message: Any) -> None:
        self.add("server message", message)

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.add("progress notification", message or "")

    async def call(self, client: Client, name: str, args: dict[str, Any] | None = None) -> CallToolResult | None:
        try:
            result = await client.call_tool(name, args or {}, progress_callback=self.on_progress)
        except MCPError as exc:
            self.add(f"{name} protocol error", exc)
            return None
        self.results += 1
        self.add(f"{name} result", result)
        problem = result_problem(name, result)
        assert problem is None, problem
        return result


@contextmanager
def captured_logs(capture: Capture) -> Iterator[None]:
    """The server's Python log records at DEBUG (records as emitted, before any handler filter)."""
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            capture.add(f"log record {record.name}", formatter.format(record))

    root = logging.getLogger()
    handler, level = Keep(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def key_file(root: Path) -> Path:
    path = root / "keys" / ".vast_env"
    path.parent.mkdir(parents=True)
    path.write_text(f"# my key\nVAST_API_KEY={FILE_KEY}\n")
    path.chmod(0o600)
    return path


def _files_under(root: Path) -> list[tuple[str, str]]:
    return [
        (f"file {p.relative_to(root)}", p.read_bytes().decode("utf-8", "replace"))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


def container_secrets(sim: Simulator) -> list[str]:
    """Per-instance credentials Vast hands out (CONTAINER_API_KEY, jupyter token): never shown either."""
    with sim.state.lock:
        every = [*sim.state.instances.values(), *sim.state.destroyed.values()]
        return [s for i in every for s in (i.instance_api_key, i.jupyter_token)]


# --------------------------------------------------------------------------- in-process


async def _workflow_under_faults(client: Client, cap: Capture, sim: Simulator, rec: Recorder, home: Path) -> None:
    # Vast echoes the key back: in a 400 error, in 5xx pages, in a body it cannot parse
    rec.echo(echo_in_error, path=r"^/api/v0/users/current")
    await cap.call(client, "get_account")
    rec.echo(echo_in_5xx, path=SEARCH, times=4)
    await cap.call(client, "search_offers", {"limit": 2})
    rec.echo(echo_in_bad_body, path=INSTANCES_V1, times=2)
    await cap.call(client, "list_instances")
    # the money path, with a throttle and a lost create answer
    sim.faults.inject("rate_limit", retry_after_header=0.1)
    planned = await cap.call(client, "plan_instance", {})
    assert planned is not None and isinstance(planned.structured_content, dict)
    sim.faults.inject("drop_after_commit")
    created = await cap.call(client, "create_instance", {"quote_id": planned.structured_content["quote_id"]})
    assert created is not None and isinstance(created.structured_content, dict), created
    instance_id = created.structured_content["instances"][0]["instance_id"]
    sim.faults.inject("server_error", status=503)
    await cap.call(client, "get_instance", {"instance_id": instance_id, "raw": True})
    await cap.call(client, "check_ssh", {"instance_id": instance_id, "timeout_seconds": 2})
    await cap.call(client, "attach_ssh_key", {"instance_id": instance_id, "public_key": make_public_key()})
    await cap.call(client, "label_instance", {"instance_id": instance_id, "label": "leak-scan"})
    sim.faults.inject("malformed_body", html=True, times=2)
    await cap.call(client, "get_billing", {"days": 2})
    for uri in ("vast://requests/recent", "vast://instances", f"vast://instances/{instance_id}"):
        cap.add(f"resource {uri}", await client.read_resource(uri))
    # a key file the user chooses, which Vast refuses: the refusal must not show it
    await cap.call(client, "set_api_key_source", {"source": "file", "path": str(key_file(home))})
    rec.echo(echo_in_error, path=r"^/api/v0/instances/\d+/$")
    await cap.call(client, "stop_instance", {"instance_id": instance_id, "timeout_seconds": 2})
    await cap.call(client, "destroy_instance", {"instance_id": instance_id})
    await cap.call(client, "create_instance", {"quote_id": planned.structured_content["quote_id"]})  # spent


async def _bad_key_run(client: Client, cap: Capture) -> None:
    for name, args in [
        ("get_account", {}),
        ("search_offers", {}),
        ("list_instances", {}),
        ("plan_instance", {}),
        ("get_billing", {}),
        ("get_instance", {"instance_id": 31000000}),
        ("stop_instance", {"instance_id": 31000000}),
        ("destroy_instance", {"instance_id": 31000000}),
        ("create_instance", {"quote_id": "q-forged123-0123456789abcdef0123"}),
    ]:
        await cap.call(client, name, args)


async def test_in_process_outputs_never_carry_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    cap = Capture()
    user = ScriptedUser()
    with recorded_simulator(api_key=KEY, seed=11, speed=120.0) as (sim, rec, url), captured_logs(cap):
        settings = fast_settings(url, ssh_dir_with_key(tmp_path), http_timeout=2.0)
        good = create_server(settings, api_key=ApiKey(KEY, "env", "$VAST_API_KEY"))
        async with Client(
            good,
            mode="legacy",
            elicitation_callback=user,
            logging_callback=cap.on_log,
            message_handler=cap.on_message,
        ) as client:
            await _workflow_under_faults(client, cap, sim, rec, tmp_path)
        bad = create_server(settings, api_key=ApiKey(WRONG_KEY, "env", "$VAST_API_KEY"))
        async with Client(bad, mode="legacy", logging_callback=cap.on_log, message_handler=cap.on_message) as client:
            await _bad_key_run(client, cap)
        echoed = sum(1 for s in rec.seen if s.echoed)
        sent = {s.auth for s in rec.seen}
        extra = container_secrets(sim)
    for asked in user.asked:
        cap.add("elicitation question", asked)
    files = _files_under(temp)
    assert files, "no temp file was written: the bad-body path was not exercised"
    assert echoed >= 8, f"only {echoed} echoing answers were served"
    assert {f"Bearer {KEY}", f"Bearer {FILE_KEY}", f"Bearer {WRONG_KEY}"} <= sent, "a canary was never used"
    assert any(where.startswith("log record") for where, _ in cap.blobs), "no log record was captured"
    leaks = scan([*cap.blobs, *files], *SECRETS, *extra)
    redacted = sum(1 for where, text in cap.blobs if "result" in where and "***" in text)
    assert redacted, "no result showed a redacted echo: the echoes never reached an output"
    figures = (
        f"{len(cap.blobs)} outputs ({cap.results} results, {redacted} with a redacted echo), "
        f"{len(files)} temp files, {echoed} echoing answers"
    )
    print(f"\nkey-leak scan (in-process): {figures}, leaks {len(leaks)}")
    assert not leaks, f"{figures}\n" + "\n".join(leaks)


# --------------------------------------------------------------------------- the Vast client's exceptions


def _echo_everything(request: httpx.Request) -> httpx.Response:
    """A Vast that echoes the Authorization header in every error shape the client maps."""
    sent = request.headers.get("authorization", "")
    token = sent.partition(" ")[2]
    shape = request.url.params.get("shape", "")
    echo = {"X-Echo": sent}
    msg = f"you sent {sent} ({httpx.QueryParams({'k': token})})"
    answers: dict[str, httpx.Response] = {
        "400": httpx.Response(400, json={"success": False, "error": "invalid_args", "msg": msg}, headers=echo),
        "401": httpx.Response(401, json={"success": False, "error": "auth_error", "msg": msg}),
        "403": httpx.Response(403, text=f"Forbidden: {sent}"),
        "404": httpx.Response(404, json={"detail": msg}),
        "410": httpx.Response(410, json={"success": False, "error": "no_such_ask", "msg": msg}),
        "429": httpx.Response(429, json={"success": False, "error": "rate_limit_exceeded", "msg": msg}),
        "quota": httpx.Response(429, json={"success": False, "error": "search_quota_exceeded", "msg": msg}),
        "500": httpx.Response(500, text=f"<html>{msg}</html>", headers=echo),
        "200-false": httpx.Response(200, json={"success": False, "error": "weird", "msg": msg}),
        "200-garbage": httpx.Response(200, text=f"<html>{msg}</html>", headers=echo),
    }
    if shape == "connect":
        raise httpx.ConnectError(f"cannot connect while sending {sent}", request=request)
    if shape == "read":
        raise httpx.ReadTimeout(f"timed out; {sent}", request=request)
    return answers[shape]


SHAPES = ["400", "401", "403", "404", "410", "429", "quota", "500", "200-false", "200-garbage", "connect", "read"]


@pytest.mark.parametrize("safe", [True, False])
async def test_vast_client_exceptions_never_carry_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, safe: bool
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    async def no_sleep(_: float) -> None:
        return None

    http = VastHttp(
        ApiKey(KEY, "env"),
        "https://vast.invalid",
        transport=httpx.MockTransport(_echo_everything),
        budget=None,
        retry=RetryPolicy(attempts=2, max_wait=0.0),
        sleep=no_sleep,
    )
    cap = Capture()
    async with VastClient(http):
        for shape in SHAPES:
            method = "GET" if safe else "PUT"
            with pytest.raises(VastError) as caught:
                await http.request(method, "/api/v0/anything/", params={"shape": shape}, safe=safe)
            cap.add(f"{shape} ({method})", caught.value)
            cap.add(f"{shape} args", repr(caught.value.args))
        cap.add("history", repr(list(http.history)))
    leaks = scan([*cap.blobs, *_files_under(tmp_path)], KEY)
    assert not leaks, "\n".join(leaks)


# --------------------------------------------------------------------------- a real subprocess over stdio


def _server_command(wire: Path) -> list[str]:
    script = Path(sys.executable).parent / "vast-mcp"
    server = [str(script)] if script.exists() else [sys.executable, "-m", "vast_mcp"]
    copies = [str(wire / "stdout.jsonl"), str(wire / "stdin.jsonl"), str(wire / "stderr.log")]
    return [sys.executable, str(TEE), *copies, "--", *server, "--log-level", "DEBUG", "serve"]


async def _stdio_session(
    url: str, home: Path, key: str, wire: Path, temp: Path, cap: Capture, body: Any, user: ScriptedUser | None = None
) -> None:
    command = _server_command(wire)
    params = StdioServerParameters(
        command=command[0], args=command[1:], env=server_env(url, home, key, TMPDIR=str(temp)), cwd=str(home)
    )
    with (wire / "client-errlog.txt").open("w") as errlog:
        async with Client(
            stdio_client(params, errlog=errlog),
            mode="legacy",
            elicitation_callback=user,
            logging_callback=cap.on_log,
            message_handler=cap.on_message,
        ) as client:
            await body(client)


async def test_stdio_subprocess_wire_logs_and_temp_files_never_carry_the_key(tmp_path: Path) -> None:
    home, temp = tmp_path / "home", tmp_path / "tmpdir"
    for folder in (home, temp, tmp_path / "wire-good", tmp_path / "wire-bad"):
        folder.mkdir()
    ssh_dir_with_key(home)
    cap = Capture()
    user = ScriptedUser()
    with recorded_simulator(api_key=KEY, seed=12, speed=120.0) as (sim, rec, url):

        async def good(client: Client) -> None:
            rec.echo(echo_in_error, path=r"^/api/v0/users/current")
            await cap.call(client, "get_account")
            rec.echo(echo_in_bad_body, path=INSTANCES_V1, times=2)  # -> a temp file in $TMPDIR
            await cap.call(client, "list_instances")
            rec.echo(echo_in_5xx, path=SEARCH, times=1)
            planned = await cap.call(client, "plan_instance", {})
            assert planned is not None and isinstance(planned.structured_content, dict)
            sim.faults.inject("drop_after_commit", method="PUT", path=CREATE)
            created = await cap.call(client, "create_instance", {"quote_id": planned.structured_content["quote_id"]})
            assert created is not None and isinstance(created.structured_content, dict)
            instance_id = created.structured_content["instances"][0]["instance_id"]
            await cap.call(client, "set_api_key_source", {"source": "file", "path": str(key_file(home))})
            rec.echo(echo_in_error, path=r"^/api/v0/instances/\d+/$")
            await cap.call(client, "get_instance", {"instance_id": instance_id, "raw": True})
            await cap.call(client, "destroy_instance", {"instance_id": instance_id})
            cap.add("resource", await client.read_resource("vast://requests/recent"))

        async def bad(client: Client) -> None:
            await _bad_key_run(client, cap)

        await _stdio_session(url, home, KEY, tmp_path / "wire-good", temp, cap, good, user)
        await _stdio_session(url, home, WRONG_KEY, tmp_path / "wire-bad", temp, cap, bad)
        extra = container_secrets(sim)
    for asked in user.asked:
        cap.add("elicitation question", asked)
    wire = _files_under(tmp_path / "wire-good") + _files_under(tmp_path / "wire-bad")
    wire = [(where, text) for where, text in wire if "stdin" not in where]  # what the client sent is not output
    temps = _files_under(temp)
    stderr_text = "".join(text for where, text in wire if "stderr" in where)
    assert temps, "the server wrote no temp file: the bad-body path was not exercised"
    assert "DEBUG" in stderr_text, "the server did not log at DEBUG"
    assert any("stdout" in where and '"jsonrpc"' in text for where, text in wire), "no JSON-RPC captured"
    leaks = scan([*cap.blobs, *wire, *temps], *SECRETS, *extra)
    size = sum(len(text) for _, text in wire)
    figures = f"{size} bytes of wire and stderr, {len(temps)} temp files, {len(cap.blobs)} client-side messages"
    print(f"\nkey-leak scan (stdio subprocess): {figures}, leaks {len(leaks)}")
    assert not leaks, f"{figures}\n" + "\n".join(leaks)


async def test_a_redirect_or_the_url_never_carries_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Vast answers with a redirect to another host: the key must not follow it; and no request
    ever carries the key anywhere but the Authorization header."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with (
        recorded_simulator(api_key=KEY, seed=13, offer_count=30) as (_sim, rec, url),
        recorded_simulator(api_key="thief-key-0000", seed=14, offer_count=5) as (_thief, stolen, thief_url),
    ):

        def redirect(req: Any, inner: Any) -> Any:
            from vast_mcp.simulator.wire import Response

            return Response(307, b"", None, {"Location": f"{thief_url}/steal{req.path}"})

        rec.echo(redirect, times=3)  # one refused redirect per read (a refused redirect is not retried)
        cap = Capture()
        settings = fast_settings(url, ssh_dir_with_key(tmp_path), http_timeout=2.0)
        async with Client(create_server(settings, api_key=ApiKey(KEY, "env"))) as client:
            for name in ("get_account", "list_instances", "search_offers"):
                await cap.call(client, name)
            last = await cap.call(client, "get_account")  # after the redirects: still the one Vast
            assert last is not None and not last.is_error, last
        assert stolen.seen == [], "a request followed the redirect to another host"
        outside_header = [(f"{s.method} {s.path}", json.dumps([s.path, s.query, s.body])) for s in rec.seen]
    assert len(outside_header) >= 4
    assert not scan(outside_header, KEY), "the key travelled in a URL or a body"
    assert not scan(cap.blobs, KEY)


# -- a Vast that echoes the key where messages get cut -----------------------------------------------


def _pieces(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


@pytest.mark.parametrize("shape", ["json 400", "json 200 success false", "plain text 400", "detail 403"])
async def test_an_echoed_key_cut_at_any_offset_leaves_no_piece_in_errors(shape: str, tmp_path: Path) -> None:
    """Vast echoes the key inside its message, placed so that every cut point (messages are cut
    to a few hundred characters) falls inside it: not even an 8-character piece may remain."""
    offsets = iter(range(240, 320, 3))

    def echo(request: httpx.Request) -> httpx.Response:
        text = "x" * next(offsets, 300) + KEY + " (rest of the message)"
        if shape == "json 400":
            return httpx.Response(400, json={"success": False, "error": "invalid_args", "msg": text})
        if shape == "json 200 success false":
            return httpx.Response(200, json={"success": False, "msg": text})
        if shape == "plain text 400":
            return httpx.Response(400, text=text)
        return httpx.Response(403, json={"detail": text})

    settings = fast_settings("https://vast.test", ssh_dir_with_key(tmp_path))
    server = create_server(settings, api_key=ApiKey(KEY, "env"), vast_transport=httpx.MockTransport(echo))
    texts = []
    async with Client(server) as client:
        for _ in range(27):
            result = await client.call_tool("get_instance", {"instance_id": 7})
            texts.append(result.model_dump_json())
    leaked = [piece for piece in _pieces(KEY) if any(piece in text for text in texts)]
    assert leaked == [], f"pieces of the key reached the model: {leaked[:3]}"
    assert all("x" * 20 in text for text in texts), "the echoing Vast was really reached"
