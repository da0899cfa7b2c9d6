"""PyPI readiness: `uv build` makes an sdist and a wheel (the wheel built from the sdist, so the
sdist is complete), `twine check --strict` accepts both, the metadata PyPI shows is there, and
the wheel, installed into a clean venv, runs `vast-mcp demo` and serves vast://skill and
vast://reference/api.

skill.md and references/ live at the repository root and are force-included into the wheel
at vast_mcp/_docs/ (pyproject.toml); outside a checkout that copy is the only one there is.
Slow-ish (build + venv + install + demo, ~20 s warm): dependencies are installed from uv's cache
at the locked versions when possible, from the registry otherwise; the test skips, saying why,
only when uv or the build/install itself cannot run here (no uv, no network and an empty cache).

What this does not prove: an upload (TestPyPI/PyPI is never contacted) or `uvx vast-mcp` from
the registry; the installed wheel stands in for what `uvx` would install.
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import NOWHERE

ROOT = Path(__file__).resolve().parents[1]
UV = shutil.which("uv")
STEP_TIMEOUT_S = 120
# Network or cache trouble (skip) as opposed to a broken package (fail).
UNAVAILABLE = ("network", "offline", "failed to fetch", "dns", "connection", "timed out", "could not resolve host")

pytestmark = pytest.mark.skipif(UV is None, reason="uv is not on PATH: cannot build or install the wheel")

CHECK = """
import json, sys
from importlib import resources
from pathlib import Path

import anyio
from mcp import Client

import vast_mcp
from vast_mcp.credentials import ApiKey
from vast_mcp.docs import read_doc
from vast_mcp.server import create_server
from vast_mcp.settings import Settings

packaged = resources.files("vast_mcp").joinpath("_docs")


async def via_mcp():
    server = create_server(Settings(), api_key=ApiKey("wheel-test-key-0123", "env", "$VAST_API_KEY"))
    async with Client(server) as client:
        return {u: (await client.read_resource(u)).contents[0].text for u in ("vast://skill", "vast://reference/api")}


print(json.dumps({
    "module": vast_mcp.__file__,
    "prefix": sys.prefix,
    "packaged": [packaged.joinpath("skill.md").is_file(), packaged.joinpath("references", "api.md").is_file()],
    "read_doc": {"skill.md": read_doc("skill.md"), "references/api.md": read_doc("references/api.md")},
    "resources": anyio.run(via_mcp),
}))
"""


def _clean_env() -> dict[str, str]:
    # No project venv, no PYTHONPATH: the installed wheel must stand on its own.
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("VAST_")}


def _run(args: list[str], cwd: Path, what: str, *, may_skip: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, cwd=cwd, env=_clean_env(), check=False
    )
    if proc.returncode != 0:
        output = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        if may_skip and any(word in output.lower() for word in UNAVAILABLE):
            pytest.skip(f"cannot {what} here (network or cache unavailable): {proc.stderr.strip()[-300:]}")
        pytest.fail(f"{what} failed ({proc.returncode}):\n{output}")
    return proc


def _install(venv_python: Path, wheel: Path, work: Path) -> None:
    """Install the wheel with its dependencies: the locked versions from uv's cache, else the registry."""
    assert UV is not None
    exported = subprocess.run(
        [UV, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "--no-header", "-q"],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        cwd=ROOT,
        env=_clean_env(),
        check=False,
    )
    requirements = work / "requirements.txt"
    requirements.write_text(exported.stdout if exported.returncode == 0 else "")
    base = [UV, "pip", "install", "--python", str(venv_python), "-r", str(requirements), str(wheel)]
    offline = subprocess.run(
        [*base, "--offline"],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        cwd=work,
        env=_clean_env(),
        check=False,
    )
    if offline.returncode != 0:  # something is not in the cache: use the registry
        _run(base, work, "install the wheel's dependencies")


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path
    build_log: str


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """`uv build`: the sdist, then the wheel built from that sdist (what PyPI users get)."""
    assert UV is not None
    work = tmp_path_factory.mktemp("dist")
    proc = _run([UV, "build", "-o", str(work), str(ROOT)], work, "build the sdist and wheel")
    sdists, wheels = list(work.glob("vast_mcp-*.tar.gz")), list(work.glob("vast_mcp-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in work.iterdir())
    return Dists(sdists[0], wheels[0], proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def installed(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's bin directory, with only the built wheel (and its dependencies) installed."""
    assert UV is not None
    work = tmp_path_factory.mktemp("wheel")
    venv = work / "venv"
    # The running interpreter as the base: no Python download, same version as the suite.
    _run([UV, "venv", "--python", sys.executable, "-q", str(venv)], work, "create a venv")
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    _install(bin_dir / "python", dists.wheel, work)
    return bin_dir


def test_the_wheel_is_built_from_the_sdist(dists: Dists) -> None:
    assert "from source distribution" in dists.build_log, dists.build_log[-2000:]
    with tarfile.open(dists.sdist) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "skill.md", "references/api.md", "src/vast_mcp/cli.py"} <= names
    assert not [n for n in names if "node_modules" in n or n.startswith((".venv/", "dist/", "build/"))]


def test_twine_accepts_the_sdist_and_the_wheel(dists: Dists, tmp_path: Path) -> None:
    twine = [sys.executable, "-m", "twine"]
    if subprocess.run([*twine, "--version"], capture_output=True, check=False).returncode != 0:
        pytest.skip("twine is not installed in this environment (it is a dev dependency: uv sync)")
    proc = subprocess.run(
        [*twine, "check", "--strict", str(dists.sdist), str(dists.wheel)],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_the_wheel_carries_the_metadata_pypi_shows(dists: Dists) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    with zipfile.ZipFile(dists.wheel) as wheel:
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(wheel.read(name).decode("utf-8"))
    assert metadata["Name"] == project["name"]
    assert metadata["Version"] == project["version"]
    assert metadata["License-Expression"] == project["license"] == "MIT"
    assert metadata["Requires-Python"] == project["requires-python"]
    assert sorted(metadata.get_all("Classifier") or []) == sorted(project["classifiers"])
    assert set((metadata["Keywords"] or "").split(",")) == set(project["keywords"])
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert urls == project["urls"]
    assert all(u.startswith("https://") for u in urls.values())
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == (ROOT / "README.md").read_text(encoding="utf-8").strip()
    assert "<owner>" not in metadata.get_payload(), "README still has a placeholder PyPI users would copy"


def test_installed_console_script_runs_the_demo(installed: Path, tmp_path: Path) -> None:
    script = installed / ("vast-mcp.exe" if os.name == "nt" else "vast-mcp")
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", ""), "VAST_MCP_STATE_DIR": str(tmp_path / "state")}
    env["VAST_URL"] = NOWHERE  # the demo runs its own simulator; nothing else is reachable
    proc = subprocess.run(
        [str(script), "demo"],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.rstrip().endswith("DEMO OK")
    assert "destroy_instance" in proc.stdout


def test_installed_wheel_serves_the_docs(installed: Path, tmp_path: Path) -> None:
    # -I: isolated mode, so neither the checkout (cwd) nor PYTHONPATH can supply vast_mcp.
    proc = _run([str(installed / "python"), "-I", "-c", CHECK], tmp_path, "run the installed package", may_skip=False)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(report["module"]).is_relative_to(report["prefix"]), "vast_mcp was not imported from the venv"
    assert report["packaged"] == [True, True], "skill.md / references/api.md are missing from vast_mcp/_docs"
    skill = (ROOT / "skill.md").read_text(encoding="utf-8")
    api = (ROOT / "references" / "api.md").read_text(encoding="utf-8")
    assert report["read_doc"] == {"skill.md": skill, "references/api.md": api}
    assert report["resources"] == {"vast://skill": skill, "vast://reference/api": api}


@pytest.mark.anyio
async def test_installed_console_script_serves_the_docs_over_stdio(installed: Path, tmp_path: Path) -> None:
    script = installed / ("vast-mcp.exe" if os.name == "nt" else "vast-mcp")
    assert script.exists(), "the wheel installed no vast-mcp console script"
    env = {
        "HOME": str(tmp_path),
        "PATH": os.environ.get("PATH", ""),
        "VAST_API_KEY": "wheel-test-key-0123",
        "VAST_URL": NOWHERE,
    }
    params = StdioServerParameters(command=str(script), args=["serve"], env=env, cwd=str(tmp_path))
    async with Client(params) as client:
        skill = await client.read_resource("vast://skill")
        api = await client.read_resource("vast://reference/api")
    assert getattr(skill.contents[0], "text", None) == (ROOT / "skill.md").read_text(encoding="utf-8")
    assert getattr(api.contents[0], "text", None) == (ROOT / "references" / "api.md").read_text(encoding="utf-8")
