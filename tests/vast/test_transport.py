"""The HTTP layer against httpx.MockTransport: auth, error shapes, retries, pacing, leaks."""

from __future__ import annotations

import logging
import os
import stat
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import LEAK_CANARY
from tests.helpers import RecordedSleeps
from tests.vast.fake import FakeVast, reply
from vast_mcp.credentials import ApiKey, key_from_env
from vast_mcp.vast import (
    AuthError,
    BadRequestError,
    BadResponseError,
    CreateRequest,
    NotFoundError,
    OfferUnavailableError,
    OutcomeUnknownError,
    RateBudget,
    RateLimitError,
    RedirectRefusedError,
    RetryPolicy,
    SearchQuotaError,
    ServerError,
    VastClient,
    VastConnectionError,
    VastError,
    VastHttp,
)

pytestmark = pytest.mark.anyio
INSTANCE = r"/api/v0/instances/\d+/"
ASK = r"/api/v0/asks/\d+/"


@pytest.fixture
def key() -> ApiKey:
    found = key_from_env({"VAST_API_KEY": LEAK_CANARY})
    assert found is not None
    return found


@pytest.fixture
def fake() -> FakeVast:
    return FakeVast()


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


@pytest.fixture
async def vast(fake: FakeVast, key: ApiKey, sleeps: RecordedSleeps) -> AsyncIterator[VastClient]:
    http = VastHttp(key, "https://vast.test", transport=fake.transport(), sleep=sleeps, budget=None)
    async with VastClient(http) as client:
        yield client


def assert_no_key(text: str) -> None:
    for form in (LEAK_CANARY, urllib.parse.quote(LEAK_CANARY, safe=""), urllib.parse.quote_plus(LEAK_CANARY)):
        assert form not in text


async def test_bearer_header_user_agent_and_no_key_in_url(vast: VastClient, fake: FakeVast) -> None:
    fake.on("GET", INSTANCE, reply(body={"instances": {"id": 7, "actual_status": "running"}}))
    instance = await vast.instances.get(7)
    assert instance.id == 7
    request = fake.requests[0]
    assert request.headers["authorization"] == f"Bearer {LEAK_CANARY}"
    assert request.headers["user-agent"].startswith("vast-mcp/")
    assert request.url.path == "/api/v0/instances/7/"  # trailing slash kept
    assert request.url.params["owner"] == "me"
    assert_no_key(str(request.url))


async def test_write_requests_always_carry_a_json_body(vast: VastClient, fake: FakeVast) -> None:
    fake.on("DELETE", INSTANCE, reply(body={"success": True}))
    await vast.instances.destroy(5)
    assert fake.requests[0].headers["content-type"] == "application/json"
    assert fake.body() == {}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"success": False, "error": "auth_error", "msg": "Invalid user key"}),
        (403, {"success": False, "error": "auth_error", "msg": "This action requires login."}),
        (404, {"success": False, "error": "auth_error", "msg": "Invalid user key"}),
    ],
)
async def test_auth_errors_by_status_or_body(vast: VastClient, fake: FakeVast, status: int, body: object) -> None:
    fake.on("GET", INSTANCE, reply(status, body))
    with pytest.raises(AuthError) as caught:
        await vast.instances.get(1)
    message = str(caught.value)
    assert "$VAST_API_KEY" in message and "…cdef" in message  # which source, and its fingerprint
    assert_no_key(message)
    assert fake.count("GET", INSTANCE) == 1  # never retried


async def test_missing_key_is_a_clear_error_and_sends_nothing(fake: FakeVast) -> None:
    http = VastHttp(None, "https://vast.test", transport=fake.transport(), budget=None)
    async with VastClient(http) as vast:
        with pytest.raises(AuthError, match="No usable Vast API key"):
            await vast.account.current_user()
    assert fake.requests == []


async def test_instances_null_is_not_found(vast: VastClient, fake: FakeVast) -> None:
    fake.on("GET", INSTANCE, reply(body={"instances": None}))
    with pytest.raises(NotFoundError, match="does not exist"):
        await vast.instances.get(404)


async def test_success_false_with_http_200_is_an_error(vast: VastClient, fake: FakeVast) -> None:
    fake.on("PUT", INSTANCE, reply(body={"success": False, "msg": "Instance is not stopped"}))
    with pytest.raises(BadRequestError, match="Instance is not stopped"):
        await vast.instances.set_state(3, "running")


async def test_invoices_invalid_range_200_body(vast: VastClient, fake: FakeVast) -> None:
    body = {
        "success": False,
        "error": "Invalid date range",
        "count": 0,
        "total": 0,
        "results": [],
        "next_token": None,
    }
    fake.on("GET", "/api/v1/invoices/", reply(body=body))
    from datetime import UTC, datetime

    with pytest.raises(VastError, match="Invalid date range"):
        await vast.account.invoices(datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


async def test_detail_shape_and_plain_text_messages(vast: VastClient, fake: FakeVast) -> None:
    fake.on("POST", "/api/v0/bundles/", reply(400, {"error": "invalid_request", "msg": "Invalid json body"}))
    with pytest.raises(BadRequestError, match="Invalid json body"):
        await vast.offers.search_raw({})
    fake.routes.clear()
    fake.on("GET", "/api/v0/ssh/", reply(400, {"detail": "Bad filter column gpu"}))
    with pytest.raises(BadRequestError, match="Bad filter column gpu"):
        await vast.ssh.list_keys()


async def test_deprecated_endpoint_410(vast: VastClient, fake: FakeVast) -> None:
    body = {"success": False, "error": "deprecated_endpoint", "msg": "/api/v0/instances/ is deprecated."}
    fake.on("GET", "/api/v0/instances/", reply(410, body))
    with pytest.raises(VastError, match="retired") as caught:
        await vast.http.request("GET", "/api/v0/instances/", safe=True)
    assert caught.value.code == "deprecated_endpoint"
    assert not isinstance(caught.value, OfferUnavailableError)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            404,
            {
                "success": False,
                "error": "invalid_args",
                "msg": "error 404/3603: no_such_ask Instance type by id 9 is not available.",
                "ask_id": 9,
            },
        ),
        (
            410,
            {
                "success": False,
                "error": "no_such_ask",
                "msg": "error 410/3907: no_such_ask Instance type 9 is no longer available.",
                "ask_id": 9,
            },
        ),
    ],
)
async def test_offer_gone_on_create(vast: VastClient, fake: FakeVast, status: int, body: object) -> None:
    fake.on("PUT", ASK, reply(status, body))
    with pytest.raises(OfferUnavailableError) as caught:
        await vast.instances.create(9, CreateRequest(image="img", disk=10, label="x"))
    assert caught.value.offer_id == 9
    assert fake.count("PUT", ASK) == 1


async def test_429_retry_after_header_then_success(vast: VastClient, fake: FakeVast, sleeps: RecordedSleeps) -> None:
    fake.on(
        "GET",
        INSTANCE,
        reply(429, text="API requests too frequent endpoint threshold=2.0", headers={"Retry-After": "3"}),
        reply(body={"instances": {"id": 1}}),
    )
    await vast.instances.get(1)
    assert sleeps.waits == [3.0]
    assert fake.count("GET", INSTANCE) == 2


async def test_429_body_retry_after_is_honoured(vast: VastClient, fake: FakeVast, sleeps: RecordedSleeps) -> None:
    fake.on(
        "GET",
        "/api/v0/ssh/",
        reply(429, {"error": "HTTPTooManyRequests", "msg": "API requests too frequent", "retry_after": 7}),
        reply(body=[]),
    )
    assert await vast.ssh.list_keys() == []
    assert sleeps.waits == [7.0]


async def test_429_without_hint_backs_off_and_finally_reports_wait(
    vast: VastClient, fake: FakeVast, sleeps: RecordedSleeps
) -> None:
    fake.on("GET", "/api/v0/ssh/", reply(429, {"detail": "API requests too frequent endpoint threshold=4.5"}))
    with pytest.raises(RateLimitError, match="Try again"):
        await vast.ssh.list_keys()
    assert fake.count("GET", "/api/v0/ssh/") == RetryPolicy().attempts
    assert len(sleeps.waits) == RetryPolicy().attempts - 1
    assert all(0 < w <= RetryPolicy().max_delay for w in sleeps.waits)


async def test_429_wait_longer_than_policy_is_not_sat_out(
    vast: VastClient, fake: FakeVast, sleeps: RecordedSleeps
) -> None:
    fake.on("GET", "/api/v0/ssh/", reply(429, {"retry_after": 600}))
    with pytest.raises(RateLimitError) as caught:
        await vast.ssh.list_keys()
    assert caught.value.retry_after == 600
    assert "600 s" in str(caught.value)
    assert sleeps.waits == []


async def test_search_quota_is_never_retried_and_says_when_it_resets(
    vast: VastClient, fake: FakeVast, sleeps: RecordedSleeps
) -> None:
    fake.on(
        "POST",
        "/api/v0/bundles/",
        reply(
            429,
            {"success": False, "error": "search_quota_exceeded", "msg": "quota"},
            headers={"X-RateLimit-Reset": "1767312000"},
        ),
    )
    with pytest.raises(SearchQuotaError, match="2026-01-02 00:00 UTC"):
        await vast.offers.search_raw({})
    assert fake.count("POST", "/api/v0/bundles/") == 1
    assert sleeps.waits == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_retried_for_safe_requests(
    vast: VastClient, fake: FakeVast, status: int, sleeps: RecordedSleeps
) -> None:
    fake.on("GET", "/api/v0/ssh/", reply(status, text="<html>bad gateway</html>"), reply(body=[]))
    assert await vast.ssh.list_keys() == []
    assert fake.count("GET", "/api/v0/ssh/") == 2
    assert len(sleeps.waits) == 1


async def test_5xx_gives_up_after_the_policy(vast: VastClient, fake: FakeVast) -> None:
    fake.on("GET", "/api/v0/ssh/", reply(503, {"msg": "down for maintenance"}))
    with pytest.raises(ServerError, match="down for maintenance"):
        await vast.ssh.list_keys()
    assert fake.count("GET", "/api/v0/ssh/") == RetryPolicy().attempts


async def test_connection_errors_retried_for_safe_requests(vast: VastClient, fake: FakeVast) -> None:
    fake.on("GET", "/api/v0/ssh/", httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), reply(body=[]))
    assert await vast.ssh.list_keys() == []
    assert fake.count("GET", "/api/v0/ssh/") == 3


async def test_connection_errors_give_up(vast: VastClient, fake: FakeVast) -> None:
    fake.on("GET", "/api/v0/ssh/", httpx.ConnectError("refused"))
    with pytest.raises(VastConnectionError, match="Could not reach Vast"):
        await vast.ssh.list_keys()


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        reply(502, text="bad gateway"),
        reply(500, {"msg": "internal"}),
        reply(200, text=""),
        reply(200, text="<html>oops"),
    ],
    ids=["timeout", "dropped", "502", "500", "empty", "malformed"],
)
async def test_create_is_sent_exactly_once_when_its_answer_is_lost(
    vast: VastClient, fake: FakeVast, failure: object
) -> None:
    fake.on("PUT", ASK, failure)  # type: ignore[arg-type]
    with pytest.raises(OutcomeUnknownError, match="may"):
        await vast.instances.create(12, CreateRequest(image="img", disk=10, label="x"))
    assert fake.count("PUT", ASK) == 1


async def test_create_on_connect_error_says_nothing_was_sent(vast: VastClient, fake: FakeVast) -> None:
    fake.on("PUT", ASK, httpx.ConnectError("refused"))
    with pytest.raises(VastConnectionError, match="nothing was sent"):
        await vast.instances.create(12, CreateRequest(image="img", disk=10, label="x"))
    assert fake.count("PUT", ASK) == 1


async def test_create_429_is_not_retried(vast: VastClient, fake: FakeVast, sleeps: RecordedSleeps) -> None:
    fake.on("PUT", ASK, reply(429, {"retry_after": 2}))
    with pytest.raises(RateLimitError, match="Nothing was done"):
        await vast.instances.create(12, CreateRequest(image="img", disk=10, label="x"))
    assert fake.count("PUT", ASK) == 1


async def test_create_body_matches_the_official_cli_shape(vast: VastClient, fake: FakeVast) -> None:
    fake.on("PUT", ASK, reply(body={"success": True, "new_contract": 7835610, "instance_api_key": "k"}))
    new_id = await vast.instances.create(
        28945112, CreateRequest(image="pytorch/pytorch:latest", disk=64, label="alice", env={"M": "1"})
    )
    assert new_id == 7835610
    body = fake.body()
    assert body["client_id"] == "me"
    assert body["image"] == "pytorch/pytorch:latest"
    assert body["disk"] == 64
    assert body["label"] == "alice"
    assert body["cancel_unavail"] is True
    assert body["price"] is None  # on-demand, never an accidental bid
    assert body["runtype"] == "ssh_direc ssh_proxy"
    assert body["env"] == {"M": "1"}


async def test_bad_body_retried_once_then_saved_privately_without_key(vast: VastClient, fake: FakeVast) -> None:
    echo = f"<html>proxy error for Bearer {LEAK_CANARY}</html>"
    fake.on("GET", "/api/v0/ssh/", reply(200, text=echo))
    with pytest.raises(BadResponseError) as caught:
        await vast.ssh.list_keys()
    assert fake.count("GET", "/api/v0/ssh/") == 2
    saved = caught.value.saved_to
    assert saved is not None and saved.exists()
    try:
        assert str(saved) in str(caught.value)
        assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
        content = saved.read_text()
        assert "proxy error" in content
        assert_no_key(content)
    finally:
        saved.unlink()


async def test_empty_body_then_good_body(vast: VastClient, fake: FakeVast) -> None:
    fake.on("GET", "/api/v0/ssh/", reply(200, text=""), reply(body=[{"id": 1, "public_key": "ssh-ed25519 AAA"}]))
    keys = await vast.ssh.list_keys()
    assert [k.id for k in keys] == [1]


async def test_key_never_in_errors_or_logs(vast: VastClient, fake: FakeVast, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.on("GET", "/api/v0/ssh/", reply(401, {"error": "auth_error", "msg": f"Invalid user key {LEAK_CANARY}"}))
    with pytest.raises(AuthError) as caught:
        await vast.ssh.list_keys()
    fake.routes.clear()
    fake.on("GET", "/api/v0/ssh/", reply(429, {"retry_after": 1}), reply(body=[]))
    await vast.ssh.list_keys()
    assert caplog.records  # the 429 wait was logged
    assert_no_key(caplog.text)
    assert_no_key(str(caught.value) + repr(caught.value))
    assert_no_key(repr(list(vast.http.history)))


async def test_history_keeps_method_path_status_without_key(vast: VastClient, fake: FakeVast) -> None:
    fake.on("POST", "/api/v0/ssh/", reply(body={"success": True, "key": {"id": 3, "public_key": "ssh-ed25519 A"}}))
    await vast.ssh.create_key("ssh-ed25519 A")
    record = vast.http.history[-1]
    assert (record.method, record.path, record.status, record.body) == (
        "POST",
        "/api/v0/ssh/",
        200,
        {"ssh_key": "ssh-ed25519 A"},
    )


async def test_rate_budget_paces_requests() -> None:
    now = [0.0]
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    budget = RateBudget(capacity=5, period=10.0, clock=lambda: now[0])
    for _ in range(7):
        await budget.acquire(fake_sleep)
    # five in a burst, then one token every 2 s (plus the 10% safety margin)
    assert now[0] == pytest.approx(4.0 * RateBudget.MARGIN)
    penalized_at = now[0]
    budget.penalize(10.0)
    await budget.acquire(fake_sleep)
    assert now[0] == pytest.approx(penalized_at + 10.0)  # waits out the server's 10 s, no more
    assert sum(waits) == pytest.approx(now[0])


async def test_detail_is_redacted_before_it_is_cut_to_length(vast: VastClient, fake: FakeVast) -> None:
    # The key straddles the 300-character cut: cut first, and its head would survive redaction.
    fake.on("GET", "/api/v0/ssh/", reply(400, {"msg": "x" * 290 + LEAK_CANARY}))
    with pytest.raises(BadRequestError) as caught:
        await vast.ssh.list_keys()
    assert LEAK_CANARY[:8] not in str(caught.value)
    assert "***" in str(caught.value)


# -- redirects (reference §11: Vast's own environments redirect between hosts under vast.ai) -----------


class Redirector:
    """Answers the first request with a redirect to ``location``; every later one with ``final``."""

    def __init__(self, status: int, location: str | None, final: httpx.Response | None = None) -> None:
        self.status = status
        self.location = location
        self.final = final or reply(body=[])
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self.requests) == 1:
            headers = {"location": self.location} if self.location is not None else {}
            return httpx.Response(self.status, headers=headers)
        return self.final


async def through(redirector: Redirector, key: ApiKey, call: str = "ssh") -> Any:
    http = VastHttp(key, "https://console.vast.ai", transport=httpx.MockTransport(redirector.handler), budget=None)
    async with VastClient(http) as vast:
        if call == "ssh":
            return await vast.ssh.list_keys()
        return await vast.instances.create(12, CreateRequest(image="img", disk=10, label="x"))


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirect_to_an_https_host_under_vast_ai_is_followed_with_the_key(key: ApiKey, status: int) -> None:
    redirector = Redirector(status, "https://cloud.vast.ai/api/v0/ssh/", reply(body=[{"id": 4, "public_key": "k"}]))
    keys = await through(redirector, key)
    assert [k.id for k in keys] == [4]
    first, second = redirector.requests
    assert first.url.host == "console.vast.ai"
    assert (second.method, second.url.host, second.url.path) == ("GET", "cloud.vast.ai", "/api/v0/ssh/")
    assert second.headers["authorization"] == f"Bearer {LEAK_CANARY}"


async def test_redirected_write_keeps_its_method_and_body(key: ApiKey) -> None:
    final = reply(body={"success": True, "new_contract": 77})
    redirector = Redirector(307, "https://cloud.vast.ai/api/v0/asks/12/", final)
    assert await through(redirector, key, "create") == 77
    first, second = redirector.requests
    assert second.method == "PUT" and second.content == first.content


async def test_see_other_is_fetched_with_get(key: ApiKey) -> None:
    redirector = Redirector(303, "https://vast.ai/api/v0/ssh/")
    await through(redirector, key)
    assert redirector.requests[1].method == "GET" and redirector.requests[1].url.host == "vast.ai"


@pytest.mark.parametrize(
    "location",
    [
        "http://console.vast.ai/api/v0/ssh/",
        "https://vast.ai.evil.com/api/v0/ssh/",
        "https://evilvast.ai/api/v0/ssh/",
        "https://cloud.vast.ai:8443/api/v0/ssh/",
        "https://user@cloud.vast.ai/api/v0/ssh/",
        "//evil.example/api/v0/ssh/",
        None,
    ],
    ids=["cleartext", "suffix-trick", "lookalike", "other-port", "userinfo", "scheme-relative", "no-location"],
)
@pytest.mark.parametrize("call", ["ssh", "create"])
async def test_redirect_anywhere_else_is_refused_and_the_key_goes_nowhere(
    key: ApiKey, location: str | None, call: str
) -> None:
    redirector = Redirector(302, location)
    with pytest.raises(RedirectRefusedError) as caught:
        await through(redirector, key, call)
    assert len(redirector.requests) == 1  # not followed, not retried: the key went only to console.vast.ai
    message = str(caught.value)
    assert "not followed" in message and "vast.ai" in message
    assert_no_key(message)


async def test_redirect_loops_stop_after_a_few_hops(key: ApiKey) -> None:
    hops: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hops.append(request)
        return httpx.Response(302, headers={"location": f"https://cloud.vast.ai/hop/{len(hops)}/"})

    http = VastHttp(key, "https://console.vast.ai", transport=httpx.MockTransport(handler), budget=None)
    async with VastClient(http) as vast:
        with pytest.raises(RedirectRefusedError, match="more than 3 redirects"):
            await vast.ssh.list_keys()
    assert len(hops) == 4
    assert vast.http.history[-1].outcome == "redirect refused"
