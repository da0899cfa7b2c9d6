"""Auth errors, unknown routes, enforced rate limits, the admin API and the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from vast_mcp.simulator import DEFAULT_SPEED, Simulator, Timings

from .simutil import API_KEY, FIXTURES, banner, client

AUTH_PATHS = [
    ("GET", "/api/v0/instances/1/", None, 401),
    ("PUT", "/api/v0/asks/1/", {"image": "x"}, 401),
    ("GET", "/api/v0/users/current", None, 401),
    ("GET", "/api/v0/ssh/", None, 401),
    # Seen live: the v1 list answers a wrong key with 404 auth_error (reference §11).
    ("GET", "/api/v1/instances/", None, 404),
    # The real API answers a bad key with 404 on these (reference §2.2).
    ("POST", "/api/v0/bundles/", {}, 404),
    ("GET", "/api/v0/charges/", None, 404),
    ("GET", "/api/v1/invoices/", None, 404),
]


@pytest.mark.parametrize(("method", "path", "body", "bad_key_status"), AUTH_PATHS)
def test_auth_errors(sim: Simulator, method: str, path: str, body: object, bad_key_status: int) -> None:
    assert sim.url is not None
    kwargs = {"json": body} if body is not None else {}
    with client(sim.url, key=None) as anon:
        r = anon.request(method, path, **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 403
        assert r.json() == {"success": False, "error": "auth_error", "msg": "This action requires login."}
        # A key in the URL is not accepted: only the Authorization header counts.
        r = anon.request(method, path, params={"api_key": API_KEY}, **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 403
    with client(sim.url, key="wrong-key") as bad:
        r = bad.request(method, path, **kwargs)  # type: ignore[arg-type]
        assert r.status_code == bad_key_status
        assert r.json() == {"success": False, "error": "auth_error", "msg": "Invalid user key"}
    assert all(rec.status in (401, 403, 404) for rec in sim.requests)


def test_unknown_route_and_wrong_method(api: httpx.Client) -> None:
    r = api.get("/api/v0/nothing/here/")
    assert r.status_code == 404 and r.json()["success"] is False
    r = api.post("/api/v0/instances/1/", json={})
    assert r.status_code == 405


def test_recorded_requests(sim: Simulator, api: httpx.Client) -> None:
    api.post("/api/v0/bundles/", json={"limit": 1})
    api.get("/api/v0/instances/7/", params={"owner": "me"})
    (search, show) = sim.requests
    assert (search.method, search.path, search.body, search.status) == ("POST", "/api/v0/bundles/", {"limit": 1}, 200)
    assert (show.query, show.status, show.dropped) == ({"owner": "me"}, 200, False)
    assert show.headers["authorization"] == "Bearer <redacted>"  # the key is never stored
    assert sim.count("GET", r"^/api/v0/instances/\d+/$") == 1
    sim.reset_requests()
    assert sim.requests == []


def test_enforced_rate_limit_matches_the_recorded_429() -> None:
    real = json.loads((FIXTURES / "bundles-429-nikitatsym.json").read_text())["response"]
    sim = Simulator(rate_limit=(5, 10.0))
    with sim.serve() as url, client(url) as api:
        for _ in range(5):
            assert api.get("/api/v0/ssh/").status_code == 200
        r = api.post("/api/v0/bundles/", json={})  # the bucket is shared across endpoints
        assert r.status_code == 429
        body = r.json()
        assert body == {
            "error": "HTTPTooManyRequests",
            "msg": "API requests too frequent",
            "retry_after": 2,  # one token per 2 s
            "limit": 5.0,
            "remaining": 0,
        }
        assert r.headers["content-type"] == "application/json"
        assert r.headers["retry-after"] == "2"
        assert r.headers["x-ratelimit-limit"] == "5.0" and r.headers["x-ratelimit-remaining"] == "0"
        assert abs(int(r.headers["x-ratelimit-reset"]) - (time.time() + 2)) < 3
        assert set(body) == set(real["body"])
        assert {k for k in real["headers"] if k.startswith(("x-ratelimit", "retry-after"))} <= set(r.headers)
        # Unauthenticated endpoints are not limited.
        assert api.get("/api/v0/gpu_names/unique/").status_code == 200


def test_rate_limit_refills() -> None:
    sim = Simulator(rate_limit=(2, 1.0))
    with sim.serve() as url, client(url) as api:
        statuses = [api.get("/api/v0/ssh/").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        time.sleep(0.55)  # one token every 0.5 s
        assert api.get("/api/v0/ssh/").status_code == 200
        assert api.get("/api/v0/ssh/").status_code == 429


def test_admin_api(sim: Simulator, api: httpx.Client) -> None:
    t0 = sim.clock.now()
    r = api.post("/_sim/clock/advance", json={"seconds": 90})
    assert r.status_code == 200 and r.json()["now"] == pytest.approx(t0 + 90)
    assert sim.clock.now() == pytest.approx(t0 + 90)
    r = api.post("/_sim/faults", json={"kind": "server_error", "status": 503, "path": "/api/v0/ssh/", "times": 1})
    assert r.status_code == 200 and r.json()["fault"]["remaining"] == 1
    assert api.get("/api/v0/ssh/").status_code == 503
    assert api.get("/api/v0/ssh/").status_code == 200
    assert api.get("/_sim/faults").json()["injected"] == {"server_error": 1}
    assert api.post("/_sim/faults", json={"kind": "meteor"}).status_code == 400
    recorded = api.get("/_sim/requests").json()["requests"]
    assert [(q["path"], q["status"]) for q in recorded] == [("/api/v0/ssh/", 503), ("/api/v0/ssh/", 200)]
    assert api.post("/_sim/reset_requests").status_code == 200
    assert api.get("/_sim/requests").json()["requests"] == []
    state = api.get("/_sim/state").json()
    assert state["offers"]["total"] == 300 and state["instances"] == []
    assert state["now"] == pytest.approx(t0 + 90)


def test_only_loopback_binds() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Simulator().start(host="0.0.0.0")


def test_command_line_prints_url_then_key_and_stops_on_sigint() -> None:
    proc = subprocess.Popen(
        # Speed 60 keeps the test short; the default's boot time is checked below.
        [sys.executable, "-m", "vast_mcp.simulator", "--port", "0", "--api-key", "cli-key", "--speed", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        second = proc.stdout.readline().strip()
        assert first.startswith("VAST_URL=http://127.0.0.1:")
        assert second == "VAST_API_KEY=cli-key"
        assert proc.stdout.readline().strip()  # the hint
        url = first.split("=", 1)[1]
        with client(url, key="cli-key") as api:
            assert api.get("/api/v0/users/current").status_code == 200
            oid = api.post("/api/v0/bundles/", json={"rentable": {"eq": True}}).json()["offers"][0]["id"]
            iid = api.put(f"/api/v0/asks/{oid}/", json={"image": "x", "runtype": "ssh_proxy"}).json()["new_contract"]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                row = api.get(f"/api/v0/instances/{iid}/").json()["instances"]
                if row["actual_status"] == "running":
                    break
                time.sleep(0.2)
            assert row["actual_status"] == "running"
            assert banner(row["ssh_port"]).startswith(b"SSH-2.0-")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_default_speed_boots_an_instance_within_three_seconds() -> None:
    t = Timings()
    assert (t.created + t.loading) / DEFAULT_SPEED <= 3.0
