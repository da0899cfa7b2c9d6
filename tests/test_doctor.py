"""`vast-mcp doctor [--record DIR]`: read-only checks, strict parsing, permissions, scrubbed recordings.

Run against the served simulator (good key, wrong key), against a MockTransport serving
every recorded real answer, and against planted secrets; the recordings it writes are
loaded back as fixtures and served to the client, as contract tests would.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fidelity.recorded import BASE_URL, Replay, client_for, load, recorded
from tests.helpers import RecordedSleeps, isolated_key_sources, served_simulator
from vast_mcp.cli import main
from vast_mcp.credentials import ApiKey
from vast_mcp.doctor import CHECKS, ReadOnlyViolation, Scrubber, _read_only, diagnose, run_doctor
from vast_mcp.settings import Settings

pytestmark = pytest.mark.anyio

SIM_KEY = "sim-key-for-doctor-0123"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
READS = ("users/current", "instances/pending-price-increases/", "charges/", "ssh/")
READ_ONLY = {("GET", f"/api/v0/{p}") for p in READS} | {("GET", "/api/v1/instances/"), ("GET", "/api/v1/invoices/")}
READ_ONLY |= {("POST", "/api/v0/bundles/")}


def files_in(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in directory.iterdir()}


async def doctor(url: str, key: ApiKey, **kwargs: Any) -> tuple[int, str]:
    out = io.StringIO()
    settings = Settings(api_url=url, rate_limit=None)
    code = await run_doctor(settings, key, out=out, now=NOW, sleep=RecordedSleeps(), **kwargs)
    return code, out.getvalue()


# -- against the simulator ------------------------------------------------------------------------------


async def test_doctor_passes_on_the_simulator_and_sends_only_reads(tmp_path: Path) -> None:
    key = ApiKey(SIM_KEY, "env", "$VAST_API_KEY")
    with served_simulator(api_key=SIM_KEY, offer_count=50) as (sim, url):
        code, text = await doctor(url, key, record_dir=tmp_path)
        sent = {(r.method, r.path) for r in sim.requests}
    assert code == 0, text
    assert "result: 7 of 7 checks passed" in text
    assert "key: from $VAST_API_KEY, fingerprint …0123" in text and SIM_KEY not in text
    assert "seems present" in text and "MISSING" not in text
    assert sent == READ_ONLY  # every check ran; nothing that changes state was sent
    written = files_in(tmp_path)
    assert len(written) == len(CHECKS) and "users_current-200-doctor.json" in written
    for name, content in written.items():
        fx = load(tmp_path / name)  # the fixture format of tests/fixtures/real
        assert set(fx.request) == {"method", "path", "query", "body"} and fx.status == 200
        assert SIM_KEY not in content and "sim-user@example.com" not in content


async def test_doctor_with_a_wrong_key_says_which_permissions_seem_missing() -> None:
    wrong = ApiKey("wrong-key-for-doctor-9", "env", "$VAST_API_KEY")
    with served_simulator(api_key=SIM_KEY, offer_count=20) as (sim, url):
        code, text = await doctor(url, wrong)
        statuses = {r.path: r.status for r in sim.requests}
    assert code == 1
    assert statuses["/api/v1/instances/"] == 404  # the live API's 404 auth_error, met as a key problem
    assert "result: 0 of 7 checks passed" in text
    for permission in ("user read", "misc", "instance read", "billing read"):
        assert re.search(rf"{permission}\s+seems MISSING", text), permission
    assert "instance write  not checked" in text
    assert "refused everywhere" in text and "wrong-key-for-doctor-9" not in text


def test_the_doctor_refuses_to_send_anything_but_reads() -> None:
    for method, path in (("PUT", "/api/v0/instances/1/"), ("DELETE", "/api/v0/ssh/2/"), ("POST", "/api/v0/ssh/")):
        with pytest.raises(ReadOnlyViolation):
            _read_only(httpx.Request(method, f"https://vast.test{path}"))
    _read_only(httpx.Request("POST", "https://vast.test/api/v0/bundles/"))
    _read_only(httpx.Request("GET", "https://vast.test/api/v0/users/current"))


# -- against every recorded real answer ----------------------------------------------------------------


def recorded_vast() -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """Each endpoint the doctor calls answers with the recorded fixture for it."""
    user, ssh, empty, stopped = (
        load(n)
        for n in (
            "users_current-200-jdziat.json",
            "ssh-200-jdziat.json",
            "instances-200-empty-jdziat.json",
            "instance-200-stopped-jdziat.json",
        )
    )
    limited, search = load("bundles-429-nikitatsym.json"), load("search_asks-200-jdziat.json")
    listing = {**empty.body, "instances": [stopped.body["instances"]], "next_token": None}
    answers: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]] = {
        ("GET", "/api/v0/users/current"): [(200, user.body, user.headers)],
        ("POST", "/api/v0/bundles/"): [(429, limited.body, limited.headers), (200, search.body, {})],
        ("GET", "/api/v1/instances/"): [(200, listing, {})],
        ("GET", "/api/v0/ssh/"): [(200, ssh.body, {})],
        # No recording yet: the documented shapes.
        ("GET", "/api/v0/charges/"): [(200, {"success": True, "results": [], "next_token": None}, {})],
        ("GET", "/api/v1/invoices/"): [(200, {"success": True, "results": [], "next_token": None}, {})],
        ("GET", "/api/v0/instances/pending-price-increases/"): [
            (200, {"success": True, "count": 0, "truncated": False, "pending_price_increases": []}, {})
        ],
    }
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        queue = answers[(request.method, request.url.path)]
        status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx.Response(status, headers=headers, content=json.dumps(body).encode())

    return httpx.MockTransport(handler), seen


async def test_doctor_on_the_recorded_answers_reports_what_the_client_had_to_tolerate(tmp_path: Path) -> None:
    transport, seen = recorded_vast()
    key = ApiKey("recorded-key-0123456789", "env", "$VAST_API_KEY")
    code, text = await doctor(BASE_URL, key, transport=transport, record_dir=tmp_path)
    assert code == 1  # the recordings carry upstream's scrubbing: 0 for text, "<scrubbed>" for hosts
    assert "account: user 0: field fullname could not be read (a number)" in text
    assert "instances: instance 49983543: field ssh_host could not be read (a string)" in text
    assert "instances: instance: field ports absent in 1 of 1" in text  # reported, not a failure
    assert re.search(r"FAIL  account .*\n.*credit \$104\.50", text)
    assert re.search(r"ok    ssh keys +GET /api/v0/ssh/\n +2 SSH keys", text)
    assert "result: 5 of 7 checks passed" in text
    assert [r.url.path for r in seen].count("/api/v0/bundles/") == 2  # the recorded 429, waited out once
    assert {(r.method, r.url.path) for r in seen} == READ_ONLY
    # What it wrote replays as a contract test would: the recorded user, served to the client.
    fx = load(tmp_path / "users_current-200-doctor.json")
    replay = Replay(recorded(fx))
    async with client_for(replay) as vast:
        user = await vast.account.current_user()
    assert user.credit == pytest.approx(load("users_current-200-jdziat.json").body["credit"])
    assert fx.body["api_key"] == "<scrubbed>"
    assert sorted(n for n in files_in(tmp_path) if n.startswith("bundles-")) == [
        "bundles-200-doctor.json",
        "bundles-429-doctor.json",
    ]  # the 429 and the 200, both recorded


# -- scrubbing, proved with planted secrets ---------------------------------------------------------------

ACCOUNT_KEY = "0f3c9a7b21d84e6f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"
INSTANCE_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
JUPYTER = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
PUBLIC_IP, PRIVATE_IP, OTHER_IP, V6 = "93.184.216.34", "10.20.30.40", "172.17.0.1", "2a03:2880:f12f:83:face:b00c:0:25de"
EMAIL = "alice.smith+vast@mail.example.org"
PLANTED = [ACCOUNT_KEY, INSTANCE_KEY, JUPYTER, PUBLIC_IP, PRIVATE_IP, OTHER_IP, V6, EMAIL, "alice.smith"]


def planted_vast() -> httpx.MockTransport:
    instance = {
        "id": 7,
        "actual_status": "running",
        "public_ipaddr": f" {PUBLIC_IP}\n",
        "local_ipaddrs": f"{PRIVATE_IP} {OTHER_IP}\n",
        "jupyter_token": JUPYTER,
        "instance_api_key": INSTANCE_KEY,
        "status_msg": f"success, running; contact {EMAIL} or ssh root@{PUBLIC_IP}",
        "onstart": f"export TOKEN={ACCOUNT_KEY}; curl -H 'X-Key: {INSTANCE_KEY}' http://[{V6}]/",
        "label": "train",
    }
    bodies: dict[str, Any] = {
        "/api/v0/users/current": {"id": 1, "email": EMAIL, "username": "alice.smith", "api_key": ACCOUNT_KEY},
        "/api/v0/bundles/": {"offers": [{"id": 3, "public_ipaddr": PUBLIC_IP, "dph_base": 0.4, "storage_cost": 0.1}]},
        "/api/v1/instances/": {"success": True, "instances": [instance], "next_token": None},
        "/api/v0/charges/": {"success": True, "results": [{"source": "instance-7", "amount": 1.0}]},
        "/api/v1/invoices/": {"success": True, "results": [{"type": "credit", "description": f"paid by {EMAIL}"}]},
        "/api/v0/ssh/": [{"id": 1, "public_key": "ssh-ed25519 AAAAC3Nza alice.smith@laptop"}],
        "/api/v0/instances/pending-price-increases/": {"success": True, "pending_price_increases": []},
    }
    headers = {
        "x-forwarded-for": f"{PUBLIC_IP}, {PRIVATE_IP}",
        "x-echo-key": f"Bearer {ACCOUNT_KEY}",
        "set-cookie": f"session={INSTANCE_KEY}; HttpOnly",
        "x-contact": EMAIL,
        "x-upstream": f"[{V6}]:443",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, content=json.dumps(bodies[request.url.path]).encode())

    return httpx.MockTransport(handler)


async def test_recordings_are_scrubbed_of_planted_secrets(tmp_path: Path) -> None:
    key = ApiKey(ACCOUNT_KEY, "env", "$VAST_API_KEY")
    _, text = await doctor(BASE_URL, key, transport=planted_vast(), record_dir=tmp_path)
    files = files_in(tmp_path)
    assert len(files) == len(CHECKS)
    everything = "\n".join(files.values()) + text
    for secret in PLANTED:
        assert secret not in everything, secret
    assert ACCOUNT_KEY[:12] not in everything and INSTANCE_KEY[:12] not in everything
    listing = json.loads(files["instances_v1-200-doctor.json"])
    record = listing["response"]["body"]["instances"][0]
    assert record["jupyter_token"] == record["instance_api_key"] == "<scrubbed>"
    # Addresses become documentation addresses, the same one everywhere it appeared.
    public = record["public_ipaddr"].strip()
    assert public.startswith("203.0.113.")
    assert listing["response"]["headers"]["x-forwarded-for"].startswith(public)
    assert record["status_msg"] == f"success, running; contact user@example.com or ssh root@{public}"
    assert "2001:db8::" in record["onstart"] and "2001:db8::" in listing["response"]["headers"]["x-upstream"]
    assert "set-cookie" not in listing["response"]["headers"]
    user = json.loads(files["users_current-200-doctor.json"])["response"]["body"]
    assert user["email"] == user["username"] == user["api_key"] == "<scrubbed>"
    assert set(json.loads(files["users_current-200-doctor.json"])["source"]["scrubbed"]) >= {"api_key", "email"}


def test_the_scrubber_finds_what_it_would_leak() -> None:
    scrubber = Scrubber([ACCOUNT_KEY])
    assert scrubber.leaks(f"x {ACCOUNT_KEY} {EMAIL} {PUBLIC_IP}") == ["a secret (64 characters)", EMAIL, PUBLIC_IP]
    assert scrubber.leaks(scrubber.text(f"x {ACCOUNT_KEY} {EMAIL} {PUBLIC_IP} 127.0.0.1 0.0.0.0")) == []
    # Versions, times and MAC-like text are not addresses.
    assert scrubber.text("driver 570.124.04 at 12:30:45 on aa:bb:cc") == "driver 570.124.04 at 12:30:45 on aa:bb:cc"


# -- the command line ------------------------------------------------------------------------------------


def test_cli_doctor_without_a_key_says_how_to_set_one(
    monkeypatch: pytest.MonkeyPatch, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with isolated_key_sources(monkeypatch, home):
        assert main(["doctor"]) == 2
    assert "no Vast API key is configured" in capsys.readouterr().err


def test_cli_doctor_checks_the_configured_account(
    monkeypatch: pytest.MonkeyPatch, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with isolated_key_sources(monkeypatch, home), served_simulator(api_key=SIM_KEY, offer_count=20) as (_, url):
        monkeypatch.setenv("VAST_API_KEY", SIM_KEY)
        monkeypatch.setenv("VAST_URL", url)
        monkeypatch.setenv("VAST_MCP_RATE_LIMIT", "off")
        assert main(["doctor", "--record", str(tmp_path / "rec")]) == 0
    out = capsys.readouterr().out
    assert "result: 7 of 7 checks passed" in out and SIM_KEY not in out
    assert len(list((tmp_path / "rec").glob("*.json"))) == len(CHECKS)


async def test_diagnose_reports_each_check_with_its_permission() -> None:
    with served_simulator(api_key=SIM_KEY, offer_count=20) as (_, url):
        report = await diagnose(Settings(api_url=url, rate_limit=None), ApiKey(SIM_KEY, "env", "$VAST_API_KEY"))
    assert [(c.name, c.permission) for c in report.checks] == [(n, p) for n, _, p, _ in CHECKS]
    assert report.passed and all(c.exchanges for c in report.checks)
