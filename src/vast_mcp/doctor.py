"""`vast-mcp doctor [--record DIR]`: a read-only live check of the configured account (DESIGN §3).

It asks Vast what the tools will ask (account, one offer search, the instance list,
recent charges and invoices, SSH keys, pending price increases), parses every answer
strictly (anything the client had to tolerate is reported), and says which key
permissions the tools need and whether the key seems to have them. Nothing it sends
can change anything: a request hook refuses every request but a GET and the offer
search. ``--record DIR`` writes each answer in the fixture format of
``tests/fixtures/real/``, scrubbed of keys, tokens, e-mail addresses, personal fields
and IP addresses, ready to become a contract test.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

import anyio

from vast_mcp import __version__
from vast_mcp.credentials import ApiKey, KeyUnavailableError, known_secrets, redact, resolve_api_key
from vast_mcp.settings import Settings
from vast_mcp.vast import (
    MAX_OFFERS,
    AuthError,
    Oddity,
    Offer,
    OfferFilters,
    RateBudget,
    VastClient,
    VastError,
    VastHttp,
)
from vast_mcp.vast.query import build_query

if TYPE_CHECKING:
    import argparse

    import httpx

Sleep = Callable[[float], Awaitable[None]]
SEARCH_PATH = "/api/v0/bundles/"
TOLERATED = ("shape", "unreadable", "skipped")  # the client coped, but did not expect it: a finding


# -- the checks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One request and its raw answer, as they crossed the wire (never the Authorization header)."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes
    status: int
    headers: dict[str, str]
    content: bytes


@dataclass
class Check:
    name: str
    endpoint: str
    permission: str
    answered: bool = False  # Vast answered and the key was accepted
    refused: bool = False  # an auth_error: the key seems to lack this permission
    summary: str = ""
    oddities: list[Oddity] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def findings(self) -> list[Oddity]:
        return [o for o in self.oddities if o.kind in TOLERATED]

    @property
    def ok(self) -> bool:
        return self.answered and not self.findings


@dataclass
class DoctorReport:
    api_url: str
    key_origin: str
    key_fingerprint: str
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(check.ok for check in self.checks)


Probe = Callable[[VastClient, datetime], Awaitable[str]]


async def _account(vast: VastClient, now: datetime) -> str:
    user = await vast.account.current_user()
    return f"user id {user.id}, credit ${user.credit:,.2f}"


async def _offers(vast: VastClient, now: datetime) -> str:
    raw = await vast.offers.search_raw(build_query(OfferFilters(verified=None), limit=5))
    readable = vast.http.parse(Offer, raw, "offer")
    return f"{len(raw)} offers answered, {len(readable)} readable (a search returns at most {MAX_OFFERS})"


async def _instances(vast: VastClient, now: datetime) -> str:
    found = await vast.instances.list()
    running = sum(1 for i in found if i.actual_status == "running")
    return f"{len(found)} instances, {running} running"


async def _charges(vast: VastClient, now: datetime) -> str:
    lines = await vast.account.charges(now - timedelta(days=7), now)
    return f"{len(lines)} charges in the last 7 days, ${sum(c.amount for c in lines):,.2f}"


async def _invoices(vast: VastClient, now: datetime) -> str:
    lines = await vast.account.invoices(now - timedelta(days=30), now)
    return f"{len(lines)} invoices in the last 30 days"


async def _ssh_keys(vast: VastClient, now: datetime) -> str:
    return f"{len(await vast.ssh.list_keys())} SSH keys on the account"


async def _price_increases(vast: VastClient, now: datetime) -> str:
    return f"{len(await vast.instances.pending_price_increases())} pending host price increases"


#: name, endpoint, the key permission it needs (references/api.md), the probe.
CHECKS: tuple[tuple[str, str, str, Probe], ...] = (
    ("account", "GET /api/v0/users/current", "user read", _account),
    ("offer search", f"POST {SEARCH_PATH}", "misc", _offers),
    ("instances", "GET /api/v1/instances/", "instance read", _instances),
    ("charges", "GET /api/v0/charges/", "billing read", _charges),
    ("invoices", "GET /api/v1/invoices/", "billing read", _invoices),
    ("ssh keys", "GET /api/v0/ssh/", "user read", _ssh_keys),
    ("price increases", "GET /api/v0/instances/pending-price-increases/", "instance read", _price_increases),
)

#: every permission the tools use, and what needs it.
PERMISSIONS: dict[str, str] = {
    "user read": "get_account, plan_instance, create_instance, attach_ssh_key, get_billing",
    "misc": "search_offers, plan_instance, create_instance (the offer search)",
    "instance read": "list/get/wait_for_instance, check_ssh, and every write tool (to verify)",
    "billing read": "get_billing",
    "instance write": "create, start, stop, reboot, destroy and label instances; attach_ssh_key",
    "user write": "only registering a new SSH key on the account",
}


class ReadOnlyViolation(RuntimeError):
    """The doctor was about to send something that could change state; it was not sent."""


def _read_only(request: httpx.Request) -> None:
    if request.method != "GET" and not (request.method == "POST" and request.url.path == SEARCH_PATH):
        raise ReadOnlyViolation(f"vast-mcp doctor refused to send {request.method} {request.url.path}")


async def diagnose(
    settings: Settings,
    key: ApiKey,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = anyio.sleep,
    now: datetime | None = None,
) -> DoctorReport:
    """Run every check; never raises for what Vast answers (each check records it)."""
    seen: list[Exchange] = []

    async def guard(request: httpx.Request) -> None:
        _read_only(request)

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        request = response.request
        query = dict(request.url.params)
        seen.append(
            Exchange(
                method=request.method,
                path=request.url.path,
                query=query,
                body=request.content,
                status=response.status_code,
                headers=dict(response.headers),
                content=response.content,
            )
        )

    http = VastHttp(
        key,
        settings.api_url,
        timeout=settings.http_timeout,
        budget=RateBudget(*settings.rate_limit) if settings.rate_limit else None,
        transport=transport,
        sleep=sleep,
        strict=True,
        event_hooks={"request": [guard], "response": [keep]},
    )
    when = now or datetime.now(UTC)
    checks = []
    async with VastClient(http) as vast:
        for name, endpoint, permission, probe in CHECKS:
            check = Check(name, endpoint, permission)
            http.oddities.clear()
            seen.clear()
            try:
                check.summary = await probe(vast, when)
                check.answered = True
            except AuthError as exc:
                check.refused = exc.status in (401, 403, 404) or exc.code == "auth_error"
                check.summary = f"refused (HTTP {exc.status}): {exc}"
            except VastError as exc:
                check.summary = f"failed: {exc}"
            check.oddities = list(http.oddities)
            check.exchanges = list(seen)
            checks.append(check)
    return DoctorReport(settings.api_url, key.origin, key.fingerprint, checks)


# -- the report ------------------------------------------------------------------------------------

MAX_LISTED = 25


def _plain(text: str) -> str:
    """One line of printable text: Vast's words never move the terminal's cursor."""
    return "".join(ch if ch.isprintable() else " " for ch in " ".join(text.split()))


def _verdict(permission: str, checks: list[Check]) -> str:
    using = [c for c in checks if c.permission == permission]
    if not using:
        return "not checked: checking would change something"
    names = ", ".join(c.name for c in using)
    if any(c.refused for c in using):
        return f"seems MISSING ({', '.join(c.name for c in using if c.refused)} refused)"
    if all(c.answered for c in using):
        return f"seems present ({names} answered)"
    return f"unknown ({names} failed for another reason)"


def render(report: DoctorReport, recorded: list[Path] | None = None, record_dir: Path | None = None) -> str:
    lines = [
        f"vast-mcp doctor {__version__}: a read-only check of {report.api_url}",
        f"key: from {report.key_origin}, fingerprint {report.key_fingerprint}",
        "",
        "checks",
    ]
    width = max(len(c.name) for c in report.checks)
    for check in report.checks:
        mark = "ok  " if check.ok else "FAIL"
        lines.append(f"  {mark}  {check.name:<{width}}  {check.endpoint}")
        lines.append(f"        {' ' * width}  {_plain(check.summary)}")
    findings = [(c.name, o) for c in report.checks for o in c.findings]
    absent = [(c.name, o) for c in report.checks for o in c.oddities if o.kind == "absent"]
    for title, found in (
        ("unexpected in the answers (the client coped; please report these)", findings),
        ("fields the client reads that were not sent (defaults used)", absent),
    ):
        if found:
            lines += ["", title]
            lines += [f"  {name}: {_plain(str(oddity))}" for name, oddity in found[:MAX_LISTED]]
            if len(found) > MAX_LISTED:
                lines.append(f"  ... and {len(found) - MAX_LISTED} more")
    lines += ["", "key permissions the tools need"]
    pad = max(len(p) for p in PERMISSIONS)
    for permission, used_by in PERMISSIONS.items():
        lines.append(f"  {permission:<{pad}}  {_verdict(permission, report.checks)}")
        lines.append(f"  {' ' * pad}  needed by: {used_by}")
    if report.checks and all(c.refused for c in report.checks):
        lines += ["", "The key was refused everywhere: it is probably wrong, revoked or expired."]
    if record_dir is not None:
        lines += ["", f"recorded {len(recorded or [])} answers in {record_dir} (keys, tokens, e-mails, IPs scrubbed)"]
    passed = sum(c.ok for c in report.checks)
    lines += ["", f"result: {passed} of {len(report.checks)} checks passed"]
    return "\n".join(lines)


# -- recording, scrubbed -------------------------------------------------------------------------------

SCRUBBED = "<scrubbed>"
SCRUBBED_EMAIL = "user@example.com"
# Values under these names are secret or personal, whatever they look like.
_SECRET_NAMES = re.compile(
    r"key|token|secret|passw|hmac|session|cookie|^sid$|_sid$|email|username|fullname|billaddress|last4|phone|login",
    re.IGNORECASE,
)
# Dropped: volatile, secret, or describing the raw bytes (the body is written re-encoded).
_DROPPED_HEADERS = frozenset(
    {"set-cookie", "cookie", "authorization", "date", "content-length", "content-encoding", "transfer-encoding"}
)
# 32+ characters of letters, digits, "-" or "_" with a digit and a letter in them: a key or token.
_TOKEN = re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{32,}(?![\w-])", re.ASCII)
_EMAIL = re.compile(r"[\w.%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}", re.ASCII)
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Fa-f:.])")
_DOC_V4 = ("203.0.113", "198.51.100", "192.0.2")


class Scrubber:
    """Replaces secrets, tokens, e-mail addresses, personal fields and IP addresses.

    Addresses are rewritten consistently (the same address always becomes the same
    documentation address), so recordings stay internally coherent.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.addresses: dict[str, str] = {}
        self.fields: set[str] = set()

    def json(self, value: Any, name: str | None = None) -> Any:
        if isinstance(value, dict):
            return {self.text(str(k)): self.json(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(item, name) for item in value]
        if isinstance(value, str):
            if name is not None and value and _SECRET_NAMES.search(name):
                self.fields.add(name)
                return SCRUBBED
            return self.text(value)
        return value

    def text(self, text: str) -> str:
        text = redact(text, *self.secrets).replace("***", SCRUBBED)
        text = _TOKEN.sub(SCRUBBED, text)
        text = _EMAIL.sub(SCRUBBED_EMAIL, text)
        text = _IPV4.sub(lambda m: self._address(m.group(0), 4), text)
        return _IPV6.sub(lambda m: self._address(m.group(0), 6), text)

    def _address(self, text: str, version: int) -> str:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return text  # not an address after all (a version number, a time)
        if ip.is_loopback or ip.is_unspecified:
            return text  # says nothing about anyone
        if text not in self.addresses:
            n = sum(1 for known in self.addresses.values() if (":" in known) == (version == 6))
            self.addresses[text] = (
                f"2001:db8::{n + 16:x}" if version == 6 else f"{_DOC_V4[n // 240 % 3]}.{10 + n % 240}"
            )
        return self.addresses[text]

    def leaks(self, text: str) -> list[str]:
        """What a scrubbed text still holds that it must not (an empty list when clean)."""
        found = [f"a secret ({len(s)} characters)" for s in self.secrets if redact(text, s, fragments=False) != text]
        found += [m for m in _EMAIL.findall(text) if m != SCRUBBED_EMAIL]
        for match in _IPV4.findall(text):
            try:
                ip = ipaddress.ip_address(match)
            except ValueError:
                continue
            if not (ip.is_loopback or ip.is_unspecified or match.startswith(_DOC_V4)):
                found.append(match)
        return found


def _body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def fixture(exchange: Exchange, scrubber: Scrubber, *, host: str, now: datetime) -> dict[str, Any]:
    """One exchange in the format of ``tests/fixtures/real/`` (see its README), scrubbed."""
    scrubber.fields = set()
    headers = {k.lower(): scrubber.text(v) for k, v in exchange.headers.items() if k.lower() not in _DROPPED_HEADERS}
    request = {
        "method": exchange.method,
        "path": exchange.path,
        "query": scrubber.json(exchange.query) or None,
        "body": scrubber.json(_body(exchange.body)),
    }
    response = {"status": exchange.status, "headers": headers, "body": scrubber.json(_body(exchange.content))}
    source = {
        "tool": f"vast-mcp doctor {__version__}",
        "api_host": host,
        "recorded_at": now.isoformat(timespec="seconds"),
        "why_real": f"recorded from {host} by `vast-mcp doctor --record` with the account holder's own key",
        "license": "contributed by the account holder for vast-mcp's contract tests",
        "scrubbed": sorted(scrubber.fields),
        "notes": (
            "Scrubbed before writing: the API key and any other key or token, values under secret or "
            f"personal field names ({SCRUBBED!r}), e-mail addresses ({SCRUBBED_EMAIL!r}), IP addresses "
            "(rewritten to documentation addresses, consistently within one recording); cookie, "
            "authorization, date and content-length/encoding headers dropped."
        ),
    }
    return {"source": source, "request": request, "response": response}


def _stem(exchange: Exchange) -> str:
    match = re.match(r"/api/v(\d+)/(.*)", exchange.path)
    version, rest = (match.group(1), match.group(2)) if match else ("0", exchange.path)
    slug = re.sub(r"\d+", "id", rest.strip("/")).replace("/", "_").replace("-", "_") or "root"
    return f"{slug}{'_v' + version if version != '0' else ''}-{exchange.status}-doctor"


def write_recordings(report: DoctorReport, directory: Path, secrets: Iterable[str], *, now: datetime) -> list[Path]:
    """Every exchange of every check as a scrubbed fixture file; refuses to write one that leaks."""
    scrubber = Scrubber(secrets)
    host = urlsplit(report.api_url).hostname or "?"
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for exchange in (e for check in report.checks for e in check.exchanges):
        text = json.dumps(fixture(exchange, scrubber, host=host, now=now), indent=2, ensure_ascii=False) + "\n"
        if scrubber.leaks(text):
            raise RuntimeError(f"not writing the {exchange.method} {exchange.path} answer: scrubbing missed something")
        stem, n = _stem(exchange), 1
        while (path := directory / f"{stem}{'' if n == 1 else f'-{n}'}.json") in written:
            n += 1
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# -- the command -----------------------------------------------------------------------------------------


async def run_doctor(
    settings: Settings,
    key: ApiKey,
    *,
    record_dir: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = anyio.sleep,
    now: datetime | None = None,
    out: TextIO | None = None,
) -> int:
    """Check, optionally record, print the report; 0 when every check passed, 1 otherwise."""
    when = now or datetime.now(UTC)
    report = await diagnose(settings, key, transport=transport, sleep=sleep, now=when)
    written = None
    if record_dir is not None:
        written = write_recordings(report, record_dir, [key.reveal(), *known_secrets()], now=when)
    print(render(report, written, record_dir), file=out or sys.stdout)
    return 0 if report.passed else 1


def doctor_from_args(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``vast-mcp doctor``: 0 all passed, 1 a check failed, 2 nothing could be checked."""
    err = err or sys.stderr
    try:
        settings = Settings.from_env()
        key = resolve_api_key()
    except (ValueError, KeyUnavailableError) as exc:
        print(f"vast-mcp doctor: {exc}", file=err)
        return 2
    if key is None:
        print(
            "vast-mcp doctor: no Vast API key is configured. Set VAST_API_KEY, or store one with `vast-mcp key set`.",
            file=err,
        )
        return 2
    record = Path(args.record).expanduser() if args.record else None
    return anyio.run(partial(run_doctor, settings, key, record_dir=record, out=out))
