"""`vast-mcp demo`: the whole dialog-first rental, end to end, on the embedded simulator.

Nothing here is faked in-process: the simulator serves the Vast API on a loopback
port, `vast-mcp serve` runs as a real subprocess speaking MCP over stdio, and a real
`mcp.Client` drives it. The client's elicitation callback plays the human (it prints
each question and answers yes). Output is a short-line transcript on stdout; the exit
code is non-zero if any step fails, and no process or port is left behind.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp import Client, StdioServerParameters
from mcp.client import ClientRequestContext
from mcp.client.stdio import stdio_client
from mcp.types import (
    CallToolResult,
    ElicitRequestFormParams,
    ElicitRequestParams,
    ElicitResult,
    TextContent,
)

from vast_mcp.credentials import redact_tokens

SIM_KEY = "sim-key"
SIM_SEED = 7
SIM_SPEED = 15.0  # simulated seconds per real second: created -> running (30 sim s) in ~2 s
POLL_INTERVAL = "0.5"
# Vast's real budget (the server default) is 5 requests per 10 s. This walk makes ~25
# requests, which at that pace would take ~40 s of waiting; the demo uses a faster
# budget and says so in the transcript. Real use keeps the default.
DEMO_RATE_LIMIT = "10/2"
WIDTH = 88
INDENT = "    "

# The server is started with the same interpreter, through the package's own entry point.
SERVER_CODE = "import sys; from vast_mcp.cli import main; sys.exit(main())"


class DemoFailed(Exception):
    """A step did not do what it should; the message says which and why."""


# --------------------------------------------------------------------------- output


def out(text: str = "") -> None:
    print(text, flush=True)


def line(text: str, indent: str = INDENT) -> None:
    for part in textwrap.wrap(text, WIDTH - len(indent), subsequent_indent="  ", break_on_hyphens=False) or [""]:
        out(indent + part)


def say(who: str, text: str) -> None:
    """One turn of the conversation: ``who: text``, wrapped."""
    head = f"{INDENT}{who}: "
    wrapped = textwrap.wrap(
        text, WIDTH, initial_indent=head, subsequent_indent=INDENT + " " * (len(who) + 2), break_on_hyphens=False
    )
    for part in wrapped or [head]:
        out(part)


def step(number: int, title: str) -> None:
    out()
    out(f"[{number}] {title}")


def money(value: Any) -> str:
    return f"${float(value):.3f}/h"


# --------------------------------------------------------------------------- helpers


def demo_public_key() -> str:
    """A syntactically valid OpenSSH ed25519 public key line (random bytes; no private key exists)."""
    name = b"ssh-ed25519"
    blob = struct.pack(">I", len(name)) + name + struct.pack(">I", 32) + os.urandom(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} demo@vast-mcp"


def child_pids() -> list[int]:
    """PIDs whose parent is this process (Linux /proc; empty elsewhere)."""
    me, found = os.getpid(), []
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == me:
            found.append(int(entry.name))
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():  # a zombie is dead, just not reaped yet
        text = stat.read_text()
        return text[text.rfind(")") + 2 :].split()[0] != "Z"
    return True


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def structured(name: str, result: CallToolResult) -> dict[str, Any]:
    if result.is_error:
        raise DemoFailed(f"{name} returned an error: {text_of(result)}")
    if isinstance(result.structured_content, dict):
        return result.structured_content
    try:
        parsed = json.loads(text_of(result))
    except ValueError:
        raise DemoFailed(f"{name} returned no structured result: {clip(text_of(result), 200)}") from None
    if not isinstance(parsed, dict):
        raise DemoFailed(f"{name} returned {type(parsed).__name__}, not an object")
    return parsed


def proposed_fields(prompt_text: str) -> list[str]:
    """The "- field: value" bullets of a prompt, each cut to its first clause."""
    items: list[str] = []
    for raw in prompt_text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("- "):
            items.append(stripped[2:])
        elif items and stripped and raw[:1].isspace():
            items[-1] += " " + stripped  # a bullet's continuation line
        elif not stripped and items:
            break  # the bullet list ended
    return [re.split(r"; |\. ", item, maxsplit=1)[0].rstrip(".") for item in items]


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, secrets scrubbed first (a cut must not leave part of one)."""
    return redact_tokens(text)[:limit]


def plain(text: str | None) -> str:
    """Host text arrives wrapped in <untrusted> markers; the transcript shows it bare."""
    return (text or "").replace("<untrusted>", "").replace("</untrusted>", "").strip()


@contextmanager
def demo_home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vast-mcp-demo-") as tmp:
        home = Path(tmp)
        ssh = home / ".ssh"
        ssh.mkdir(mode=0o700)
        (ssh / "id_ed25519.pub").write_text(demo_public_key() + "\n")
        yield home


def server_env(url: str, home: Path, rate_limit: str | None) -> dict[str, str]:
    # Start from this environment minus anything that would point the server elsewhere
    # (a real key, read-only mode, ...): the demo must only ever talk to its simulator.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAST_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        VAST_URL=url,
        VAST_API_KEY=SIM_KEY,
        VAST_MCP_POLL_INTERVAL=POLL_INTERVAL,
        VAST_MCP_LOG_LEVEL="WARNING",
    )
    if rate_limit is not None:
        env["VAST_MCP_RATE_LIMIT"] = rate_limit
    return env


# --------------------------------------------------------------------------- the human


class Human:
    """The elicitation callback: shows what the server asks and answers yes."""

    def __init__(self) -> None:
        self.questions: list[str] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        if not isinstance(params, ElicitRequestFormParams):
            raise DemoFailed(f"unexpected elicitation mode {params.mode!r}")
        self.questions.append(params.message)
        fields = ", ".join(sorted((params.requested_schema or {}).get("properties", {})))
        line(f"vast-mcp asks the human (elicitation form, fields: {fields}):")
        say("form", params.message)
        say("human", "yes")
        return ElicitResult(action="accept", content={"confirm": True})


class ProgressPrinter:
    def __init__(self) -> None:
        self.count = 0
        self.last: str | None = None

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.count += 1
        if message and message != self.last:
            line(f"... {message}")
            self.last = message


# --------------------------------------------------------------------------- the walk


class Walk:
    def __init__(self, client: Client, human: Human, home: Path) -> None:
        self.client = client
        self.human = human
        self.home = home
        self.instance_id: int | None = None
        self.price: float | None = None

    async def call(
        self, name: str, args: dict[str, Any] | None = None, *, show_progress: bool = False
    ) -> dict[str, Any]:
        shown = json.dumps(args or {}, separators=(",", ":"))
        line(f"-> tools/call {name} {shown}")
        progress = ProgressPrinter() if show_progress else None
        result = await self.client.call_tool(name, args or {}, progress_callback=progress)
        return structured(name, result)

    async def run(self) -> None:
        await self.prompt()
        await self.account()
        quote_id = await self.plan()
        await self.create(quote_id)
        await self.attach()
        await self.ssh()
        await self.billing()
        await self.destroy()
        await self.verify_gone()

    async def prompt(self) -> None:
        step(1, "The provision_gpu prompt: the assistant proposes defaults in one question")
        prompt = await self.client.get_prompt("provision_gpu", {})
        text = "\n".join(m.content.text for m in prompt.messages if isinstance(m.content, TextContent))
        proposed = proposed_fields(text)
        if not proposed:
            raise DemoFailed("the provision_gpu prompt proposed no fields")
        say("assistant", "I'll use these - OK, or what should change?")
        for item in proposed:
            line(f"* {item}", INDENT + "  ")
        say("human", "the defaults are fine")

    async def account(self) -> None:
        step(2, "get_account: whose account, which key source")
        acct = await self.call("get_account")
        key = acct.get("api_key") or {}
        line(f"account {acct['username']} ({acct['email']}), credit ${acct['credit']:.2f}")
        line(f"key from {key.get('origin')} (fingerprint {key.get('fingerprint')}); never the key itself")
        line(f"new instances get the label {acct['default_label']!r}")

    async def plan(self) -> str:
        step(3, "plan_instance with no arguments: preflight, offers, quote")
        plan = await self.call("plan_instance")
        for f in plan["fields"]:
            value = f["value"].replace(str(self.home), "~")
            line(f"{f['name']:<16} {clip(value, 48)}  [{f['source']}]")
        active = plan["active_instances"]
        line(f"active instances: {len(active) if active else 'none'}")
        for offer in plan["chosen"]:
            line(f"chosen: offer {offer['id']}, {offer['gpu']}, {offer['location']}, {money(offer['price_per_hour'])}")
        line(f"fallbacks: {', '.join(str(o['id']) for o in plan['fallbacks']) or 'none'}")
        line(f"total {money(plan['total_per_hour'])}, ceiling {money(plan['price_ceiling_per_hour'])} per instance")
        for warning in plan["warnings"]:
            line(f"warning: {warning}")
        for question in plan["questions"]:
            line(f"question: {question}")
        quote_id = plan.get("quote_id")
        if not quote_id:
            raise DemoFailed(f"plan_instance minted no quote: {plan['questions']}")
        line(f"quote {quote_id[:14]}... (single use, expires in {plan['expires_in_s']} s)")
        step(4, "The assistant asks, the human answers")
        say("assistant", plan["confirm_text"] + " OK?")
        say("human", "yes")
        return str(quote_id)

    async def create(self, quote_id: str) -> None:
        step(5, "create_instance: the server asks the human itself, then rents and waits")
        asked_before = len(self.human.questions)
        result = await self.call("create_instance", {"quote_id": quote_id}, show_progress=True)
        if len(self.human.questions) == asked_before:
            raise DemoFailed("create_instance did not ask for confirmation through the client")
        if not result["ok"] or not result["instances"]:
            raise DemoFailed(f"create_instance did not bring the instance up: {result['summary']}")
        made = result["instances"][0]
        self.instance_id = int(made["instance_id"])
        self.price = float(made["price_per_hour"])
        if made["state"] != "running" or not made["ssh_ready"]:
            raise DemoFailed(f"instance {self.instance_id} is {made['state']}, ssh_ready={made['ssh_ready']}")
        line(f"instance {self.instance_id} is {made['state']} at {money(self.price)}; SSH answered")
        line(f"banner: {plain(made['ssh_banner'])}")
        for note in made["notes"]:
            line(f"note: {note}")

    async def attach(self) -> None:
        step(6, "attach_ssh_key: the key from ~/.ssh, on the account and the instance")
        res = await self.call("attach_ssh_key", {"instance_id": self.instance_id})
        if not res["attached"]:
            raise DemoFailed("attach_ssh_key did not attach the key")
        line(f"key {res['key_fingerprint'][:24]}... from {Path(res['key_source']).name}")
        new = "newly registered" if res["registered_on_account"] else "already registered (by create)"
        line(f"on the account: {new}; attached to instance {res['instance_id']}")

    async def ssh(self) -> None:
        step(7, "check_ssh: a real TCP connect that reads the SSH banner")
        res = await self.call("check_ssh", {"instance_id": self.instance_id, "timeout_seconds": 30})
        if not res["ready"]:
            raise DemoFailed(f"SSH did not answer: {res['errors']}")
        line(f"endpoint {res['endpoint']} answered after {res['attempts']} attempt(s)")
        line(f"SSH banner: {plain(res['banner'])}")
        line(f"connect with: {res['ssh_command']}")

    async def billing(self) -> None:
        step(8, "get_billing: charges so far and the burn rate")
        bill = await self.call("get_billing", {"days": 1})
        count, total = len(bill["charges"]), bill["charges_total"]
        line(f"range {bill['start']} .. {bill['end']}: {count} charge line(s), ${total:.4f}")
        for charge in bill["charges"][:3]:
            line(f"  {charge['source']}: ${charge['amount']:.4f} {clip(plain(charge['description']), 50)}")
        line(f"burning {money(bill['burn_rate_per_hour'])} now; credit left ${bill['credit']:.2f}")

    async def destroy(self) -> None:
        step(9, "destroy_instance: the human confirms, the server verifies it is gone")
        say("assistant", f"Destroy instance {self.instance_id}? Its disk is deleted and billing stops.")
        say("human", "yes")
        asked_before = len(self.human.questions)
        res = await self.call("destroy_instance", {"instance_id": self.instance_id})
        if len(self.human.questions) == asked_before:
            raise DemoFailed("destroy_instance did not ask for confirmation through the client")
        if not res["reached"]:
            raise DemoFailed(f"destroy not verified: {res['detail']}")
        line(f"{res['detail']} after {res['waited_s']} s")

    async def verify_gone(self) -> None:
        step(10, "Final state: nothing left, nothing billing")
        listed = await self.call("list_instances")
        if listed["count"] != 0:
            raise DemoFailed(f"{listed['count']} instance(s) still exist")
        line(f"list_instances: {listed['count']} instances, {money(listed['running_per_hour'])} running")
        gone = await self.call("wait_for_instance", {"instance_id": self.instance_id, "target": "gone"})
        if not gone["reached"]:
            raise DemoFailed(f"instance {self.instance_id} is not gone: {gone['detail']}")
        line(f"wait_for_instance: {gone['detail']}")


# --------------------------------------------------------------------------- main


async def _demo(rate_limit: str | None, errlog: TextIO) -> int:
    from vast_mcp.simulator import Simulator  # imported here: `vast-mcp serve` never pays for it

    started = time.monotonic()
    out("vast-mcp demo: rent a GPU, reach it over SSH, destroy it - on the embedded")
    out("Vast simulator (loopback only: no API key, no money, nothing leaves this machine).")
    sim = Simulator(api_key=SIM_KEY, seed=SIM_SEED, offer_count=300, speed=SIM_SPEED, start=time.time())
    with demo_home() as home, sim.serve() as url:
        out()
        out("[0] Setup")
        line(f"simulator   {url} (seed {SIM_SEED}, {len(sim.state.offers)} offers, clock x{SIM_SPEED:g})")
        line(f"temp HOME   {home} with .ssh/id_ed25519.pub (generated)")
        if rate_limit is None:
            line("pacing      the server default, 5 Vast requests per 10 s")
        else:
            line(f"pacing      {rate_limit.replace('/', ' requests per ')} s (default 5 per 10 s; faster for the demo)")
        params = StdioServerParameters(
            command=sys.executable, args=["-c", SERVER_CODE, "serve"], env=server_env(url, home, rate_limit)
        )
        human = Human()
        async with Client(stdio_client(params, errlog=errlog), elicitation_callback=human) as client:
            server_pids = child_pids()
            shown = ", ".join(map(str, server_pids)) or "?"
            line(f"server      vast-mcp serve over stdio (subprocess pid {shown})")
            tools = await client.list_tools()
            line(f"client      mcp.Client; the server offers {len(tools.tools)} tools")
            walk = Walk(client, human, home)
            await walk.run()
        left = [pid for pid in server_pids if pid_alive(pid)]
        if left:
            raise DemoFailed(f"the server process {left} is still running after the client closed")
        requests = sim.requests
    # Here the simulator has stopped (its HTTP and SSH ports are closed) and the temp HOME is gone.
    elapsed = time.monotonic() - started
    by_route = Counter(f"{r.method} {_route(r.path)}" for r in requests)
    throttled = sum(1 for r in requests if r.status == 429)
    out()
    out("Summary")
    line(f"instance {walk.instance_id}: rented at {money(walk.price)}, reached over SSH, destroyed")
    line(f"human confirmations asked by the server: {len(human.questions)} (create, SSH access, destroy)")
    line(f"Vast API requests the simulator received: {len(requests)} ({throttled} rate-limited)")
    for route, n in by_route.most_common(4):
        line(f"  {n:>2} x {route}")
    line(f"server process {', '.join(map(str, server_pids)) or '?'} exited; simulator stopped")
    line(f"time taken: {elapsed:.1f} s")
    out("DEMO OK")
    return 0


def _route(path: str) -> str:
    return "/".join("{id}" if part.isdigit() else part for part in path.split("/"))


def run_demo(rate_limit: str | None = DEMO_RATE_LIMIT) -> int:
    """Run the demo; 0 when every step worked. ``rate_limit=None`` keeps the server's default pacing."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        try:
            return anyio.run(_demo, rate_limit, errlog)
        except BaseException as exc:  # report every failure as a failed step, never a bare traceback
            if isinstance(exc, KeyboardInterrupt):
                out("\nDEMO INTERRUPTED")
                return 130
            out()
            out("DEMO FAILED")
            line(_describe(exc))
            errlog.seek(0)
            tail = errlog.read()[-2000:].strip()
            if tail:
                out("server stderr (last lines):")
                for text in tail.splitlines()[-15:]:
                    line(text[:WIDTH])
            return 1


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, DemoFailed) else f"{type(exc).__name__}: {text}"
