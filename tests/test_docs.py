"""README.md, skill.md and references/api.md stay true to the server and the client.

* every tool the docs name exists, and README's tool/prompt/resource lists equal the server's;
* references/api.md lists exactly the (method, path) pairs the Vast client sends, collected by
  running every client method against httpx.MockTransport (so the list cannot drift);
* the README quick start is exactly the two commands, and CI runs the README's test command.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from vast_mcp.credentials import ApiKey
from vast_mcp.docs import read_doc
from vast_mcp.server import create_server
from vast_mcp.settings import Settings
from vast_mcp.vast import CreateRequest, OfferFilters, VastClient, VastHttp
from vast_mcp.vast.account import AccountApi
from vast_mcp.vast.instances import InstancesApi
from vast_mcp.vast.offers import OffersApi
from vast_mcp.vast.ssh import SshApi

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SKILL = (ROOT / "skill.md").read_text(encoding="utf-8")
API_MD = (ROOT / "references" / "api.md").read_text(encoding="utf-8")
DOCS = {"README.md": README, "skill.md": SKILL, "references/api.md": API_MD}
TEST_KEY = "docs-test-key-0123456789"

# snake_case words that start like a tool name; each must be a tool, or an argument/field name.
TOOL_LIKE = re.compile(
    r"\b(?:search|plan|create|list|get|wait|start|stop|reboot|destroy|label|attach|check|set)_[a-z0-9_]+\b"
)
VAST_VOCABULARY = {"search_quota_exceeded"}  # Vast's own error codes, quoted in the docs


# --------------------------------------------------------------------------- the server's surface


@dataclass(frozen=True)
class Surface:
    tools: dict[str, Any]  # name -> Tool
    prompts: set[str]
    resources: set[str]  # URIs and URI templates
    field_names: set[str]  # every argument / output property / prompt argument name


def _property_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                names.update(value)
            names |= _property_names(value)
    elif isinstance(schema, list):
        for item in schema:
            names |= _property_names(item)
    return names


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def surface() -> Surface:
    server = create_server(Settings(), api_key=ApiKey(TEST_KEY, "env", "$VAST_API_KEY"))
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        prompts = (await client.list_prompts()).prompts
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    fields: set[str] = set()
    for tool in tools.values():
        fields |= _property_names(tool.input_schema) | _property_names(tool.output_schema)
    for prompt in prompts:
        fields |= {a.name for a in prompt.arguments or []}
    return Surface(tools, {p.name for p in prompts}, resources | templates, fields)


def _block(name: str) -> str:
    match = re.search(rf"<!-- surface:{name} -->\n(.*?)<!-- /surface:{name} -->", README, re.S)
    assert match, f"README has no <!-- surface:{name} --> block"
    return match.group(1)


def _rows(block: str) -> list[list[str]]:
    rows = []
    for line in block.strip().splitlines()[2:]:  # skip the header and the |---| line
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _first_code(cell: str) -> str:
    match = re.match(r"`([^`]+)`", cell)
    assert match, f"expected a `name` in {cell!r}"
    return match.group(1)


# --------------------------------------------------------------------------- README lists


async def test_readme_tool_list_is_the_server_tool_list(surface: Surface) -> None:
    rows = _rows(_block("tools"))
    listed = [_first_code(r[0]) for r in rows]
    assert len(listed) == len(set(listed)), "a tool is listed twice"
    assert set(listed) == set(surface.tools), (
        f"README lists {sorted(set(listed) - set(surface.tools))} that the server lacks and lacks "
        f"{sorted(set(surface.tools) - set(listed))}"
    )


async def test_readme_tool_kinds_match_the_annotations(surface: Surface) -> None:
    for row in _rows(_block("tools")):
        tool = surface.tools[_first_code(row[0])]
        hints = tool.annotations
        assert hints is not None
        kind = row[1]
        if kind == "read":
            assert hints.read_only_hint is True, tool.name
        elif kind == "write":
            assert hints.read_only_hint is False and hints.open_world_hint is True, tool.name
        elif kind == "local":
            assert hints.read_only_hint is False and hints.open_world_hint is False, tool.name
        else:
            pytest.fail(f"unknown kind {kind!r} for {tool.name}")


async def test_readme_write_tools_are_the_ones_read_only_mode_hides(surface: Surface) -> None:
    server = create_server(Settings(read_only=True), api_key=ApiKey(TEST_KEY, "env", "$VAST_API_KEY"))
    async with Client(server) as client:
        read_only = {t.name for t in (await client.list_tools()).tools}
    writes = {_first_code(r[0]) for r in _rows(_block("tools")) if r[1] == "write"}
    assert read_only == set(surface.tools) - writes


async def test_readme_prompt_list_is_the_server_prompt_list(surface: Surface) -> None:
    listed = {_first_code(r[0]) for r in _rows(_block("prompts"))}
    assert listed == surface.prompts


async def test_readme_resource_list_is_the_server_resource_list(surface: Surface) -> None:
    listed = {_first_code(r[0]) for r in _rows(_block("resources"))}
    assert listed == surface.resources


@pytest.mark.parametrize("doc", sorted(DOCS))
async def test_every_tool_named_in_the_docs_exists(surface: Surface, doc: str) -> None:
    named = set(TOOL_LIKE.findall(DOCS[doc]))
    unknown = sorted(named - set(surface.tools) - surface.field_names - VAST_VOCABULARY)
    assert unknown == [], f"{doc} names tools the server does not have: {unknown}"


async def test_skill_covers_every_tool(surface: Surface) -> None:
    missing = sorted(name for name in surface.tools if f"`{name}`" not in SKILL)
    assert missing == [], f"skill.md never mentions {missing}"


# --------------------------------------------------------------------------- quick start, CI, skill


def _section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no '## {title}' section"
    return match.group(1)


def _commands(section: str) -> list[str]:
    blocks = re.findall(r"```(?:sh|bash|shell|console)?\n(.*?)```", section, re.S)
    return [ln.strip() for block in blocks for ln in block.splitlines() if ln.strip()]


def test_quick_start_is_exactly_two_commands() -> None:
    assert _commands(_section(README, "Quick start")) == ["uv run vast-mcp demo", "uv run pytest"]


def test_ci_runs_the_readme_test_command() -> None:
    assert "uv run pytest" in _commands(_section(README, "Development"))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^\$UV run pytest$", ci, re.M), ".ci/run must run the README's `uv run pytest`"


def test_skill_front_matter() -> None:
    match = re.match(r"---\n(.*?)\n---\n", SKILL, re.S)
    assert match, "skill.md must start with YAML front matter"
    fields = dict(line.split(": ", 1) for line in match.group(1).splitlines())
    assert fields["name"] == "vast-gpu"
    assert 40 < len(fields["description"]) <= 1024
    assert set(fields) == {"name", "description"}


def test_readme_links_resolve() -> None:
    for target in re.findall(r"\]\(((?!https?://|#)[^)]+)\)", README):
        if target == "benchmarks/README.md":
            continue  # written by the benchmarks owner; referenced ahead of time
        assert (ROOT / target).exists(), f"README links to missing {target}"


async def test_docs_resources_serve_the_files() -> None:
    assert read_doc("skill.md") == SKILL
    assert read_doc("references/api.md") == API_MD
    server = create_server(Settings(), api_key=ApiKey(TEST_KEY, "env", "$VAST_API_KEY"))
    async with Client(server) as client:
        for uri, text in (("vast://skill", SKILL), ("vast://reference/api", API_MD)):
            result = await client.read_resource(uri)
            assert [getattr(c, "text", None) for c in result.contents] == [text]


# --------------------------------------------------------------------------- api.md vs the client

API_HOST = "vast.docs.test"
LOG_URL = "https://logs.docs.test/instance.log"


def _answer(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if request.url.host != API_HOST:
        return httpx.Response(200, text="log line\n")
    if path == "/api/v0/bundles/":
        return httpx.Response(200, json={"offers": []})
    if path.startswith("/api/v0/asks/"):
        return httpx.Response(200, json={"success": True, "new_contract": 4242})
    if path in ("/api/v1/instances/", "/api/v0/charges/", "/api/v1/invoices/"):
        return httpx.Response(200, json={"success": True, "instances": [], "results": [], "next_token": None})
    if path == "/api/v0/instances/pending-price-increases/":
        return httpx.Response(
            200, json={"success": True, "count": 0, "truncated": False, "pending_price_increases": []}
        )
    if path.startswith("/api/v0/instances/request_logs/"):
        return httpx.Response(200, json={"success": True, "result_url": LOG_URL})
    if re.fullmatch(r"/api/v0/instances/\d+/", path) and request.method == "GET":
        return httpx.Response(200, json={"instances": {"id": 4242, "actual_status": "running"}})
    if path == "/api/v0/ssh/" and request.method == "GET":
        return httpx.Response(200, json=[])
    if path == "/api/v0/ssh/":
        return httpx.Response(200, json={"success": True, "key": {"id": 9, "public_key": "ssh-ed25519 AAAA x"}})
    if path == "/api/v0/users/current":
        return httpx.Response(200, json={"id": 1, "username": "docs", "credit": 1.0, "api_key": "never-kept"})
    return httpx.Response(200, json={"success": True})


KEY_TEXT = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tr docs@test"
START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 7, tzinfo=UTC)

# One call per public client method. A new method without a recipe fails the test below,
# so references/api.md cannot silently miss an endpoint.
RECIPES: dict[str, Callable[[VastClient], Awaitable[object]]] = {
    "OffersApi.search_raw": lambda v: v.offers.search_raw({"rentable": {"eq": True}}),
    "OffersApi.search": lambda v: v.offers.search(OfferFilters(gpu_name="RTX 4090")),
    "OffersApi.search_with_raw": lambda v: v.offers.search_with_raw(OfferFilters(gpu_name="RTX 4090")),
    "InstancesApi.create": lambda v: v.instances.create(31, CreateRequest(image="img", disk=10, label="x")),
    "InstancesApi.list": lambda v: v.instances.list(label="x"),
    "InstancesApi.get": lambda v: v.instances.get(4242),
    "InstancesApi.get_raw": lambda v: v.instances.get_raw(4242),
    "InstancesApi.set_state": lambda v: v.instances.set_state(4242, "stopped"),
    "InstancesApi.set_label": lambda v: v.instances.set_label(4242, "y"),
    "InstancesApi.reboot": lambda v: v.instances.reboot(4242),
    "InstancesApi.destroy": lambda v: v.instances.destroy(4242),
    "InstancesApi.logs": lambda v: v.instances.logs(4242),
    "InstancesApi.change_bid": lambda v: v.instances.change_bid(4242, 0.35),
    "InstancesApi.pending_price_increases": lambda v: v.instances.pending_price_increases(),
    "SshApi.list_keys": lambda v: v.ssh.list_keys(),
    "SshApi.create_key": lambda v: v.ssh.create_key(KEY_TEXT),
    "SshApi.attach": lambda v: v.ssh.attach(4242, KEY_TEXT),
    "AccountApi.current_user": lambda v: v.account.current_user(),
    "AccountApi.charges": lambda v: v.account.charges(START, END),
    "AccountApi.invoices": lambda v: v.account.invoices(START, END),
}


def _public_methods() -> set[str]:
    found = set()
    for cls in (OffersApi, InstancesApi, SshApi, AccountApi):
        for name, member in vars(cls).items():
            if not name.startswith("_") and inspect.iscoroutinefunction(member):
                found.add(f"{cls.__name__}.{name}")
    return found


@pytest.fixture(scope="module")
async def client_calls() -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _answer(request)

    async def no_sleep(_: float) -> None:
        return None

    key = ApiKey(TEST_KEY, "env", "$VAST_API_KEY")
    http = VastHttp(key, f"https://{API_HOST}", transport=httpx.MockTransport(handler), budget=None, sleep=no_sleep)
    async with VastClient(http) as vast:
        for recipe in RECIPES.values():
            await recipe(vast)
    return seen


def _template(path: str) -> str:
    return re.sub(r"/\d+(?=/|$)", "/{id}", path)


def _documented() -> set[tuple[str, str]]:
    rows = re.findall(r"^\|\s*(GET|POST|PUT|DELETE|PATCH)\s*\|\s*`([^`]+)`", API_MD, re.M)
    return {(method, re.sub(r"\{[^}]+\}", "{id}", path)) for method, path in rows}


def test_every_client_method_has_a_recipe() -> None:
    assert set(RECIPES) == _public_methods(), "add a recipe for the new client method (and document its endpoint)"


async def test_api_md_lists_exactly_the_endpoints_the_client_calls(client_calls: list[httpx.Request]) -> None:
    called = {(r.method, _template(r.url.path)) for r in client_calls if r.url.host == API_HOST}
    documented = _documented()
    assert documented - called == set(), (
        f"references/api.md documents calls the client never makes: {documented - called}"
    )
    assert called - documented == set(), f"the client calls endpoints references/api.md lacks: {called - documented}"


async def test_client_calls_follow_the_safe_calling_checklist(client_calls: list[httpx.Request]) -> None:
    for request in client_calls:
        if request.url.host != API_HOST:  # the log file URL Vast hands out: no key goes there
            assert "authorization" not in request.headers
            continue
        assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
        assert TEST_KEY not in str(request.url), "the key must never be in a URL"
        assert "api_key" not in request.url.params
        if request.method != "GET":
            assert json.loads(request.content) is not None, "PUT/POST/DELETE always carry a JSON body"
        path = request.url.path
        assert path.endswith("/") or path == "/api/v0/users/current", f"missing trailing slash: {path}"


async def test_api_md_names_a_permission_for_every_endpoint() -> None:
    rows = re.findall(r"^\|\s*(?:GET|POST|PUT|DELETE)\s*\|.*\|\s*([^|]+?)\s*\|\s*$", API_MD, re.M)
    assert rows and all(re.fullmatch(r"(instance|user|billing) (read|write)|misc", p) for p in rows), rows
