"""A real third-party MCP client: the official MCP Inspector CLI against `vast-mcp serve` (stdio).

The Inspector is pinned in tests/inspector/package.json; `.ci/run` installs it with `npm ci`.
Each Inspector call spawns its own server process, pointed at one served simulator.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SIM_KEY, served_simulator

ROOT = Path(__file__).resolve().parents[1]
INSPECTOR = ROOT / "tests" / "inspector" / "node_modules" / ".bin" / "mcp-inspector"
CONSOLE_SCRIPT = Path(sys.executable).with_name("vast-mcp")
TIMEOUT_S = 90
WORKERS = 4  # parallel Inspector runs (each is a node + python start-up)

pytestmark = [
    pytest.mark.skipif(
        not INSPECTOR.exists(),
        reason="MCP Inspector not installed: run `npm ci` in tests/inspector (needs Node; .ci/run does it)",
    ),
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not on PATH (the Inspector CLI needs it)"),
    pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason=f"no vast-mcp console script next to {sys.executable}"),
]


@dataclass(frozen=True)
class Answer:
    returncode: int
    result: dict[str, Any]  # the first JSON document on stdout
    stdout: str
    stderr: str


def _first_json(text: str) -> dict[str, Any]:
    start = text.find("{")
    assert start >= 0, f"no JSON in the Inspector output: {text[:500]!r}"
    document, _ = json.JSONDecoder().raw_decode(text[start:])
    assert isinstance(document, dict)
    return document


RENTED = 31_000_000  # the first instance id of a seed-0 simulator: rented by the fixture below

# name -> (Inspector arguments after the server command, extra server environment)
CALLS: dict[str, tuple[list[str], dict[str, str]]] = {
    # --strict also checks schema portability: exit 6 on error-severity findings (warnings keep 0).
    "tools": (["--method", "tools/list", "--strict"], {}),
    "prompts": (["--method", "prompts/list"], {}),
    "resources": (["--method", "resources/list"], {}),
    "skill": (["--method", "resources/read", "--uri", "vast://skill"], {}),
    "search": (
        ["--method", "tools/call", "--tool-name", "search_offers", "--tool-arg", "gpu_name=RTX 4090", "limit=3"],
        {},
    ),
    "account": (["--method", "tools/call", "--tool-name", "get_account"], {}),
    # A client that cannot show forms, against a server that insists on them: refused, nothing done.
    "destroy_fail_closed": (
        ["--method", "tools/call", "--tool-name", "destroy_instance", "--tool-arg", f"instance_id={RENTED}"],
        {"VAST_MCP_CONFIRM": "elicit"},
    ),
    # The same client against the default server: the first call does nothing and asks for a yes.
    "destroy_asks_first": (
        ["--method", "tools/call", "--tool-name", "destroy_instance", "--tool-arg", f"instance_id={RENTED}"],
        {},
    ),
}


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Answer]]:
    home = tmp_path_factory.mktemp("inspector-home")  # the Inspector writes ~/.mcp-inspector here
    (home / ".ssh").mkdir()
    with served_simulator() as (sim, url):
        offer = next(o for o in sim.state.offers if o.rentable and o.static["disk_space"] >= 16)
        with sim.state.lock:
            assert sim.state.create_instance(offer.id, {"image": "img", "disk": 16}, sim.clock.now()).id == RENTED
        base_env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "CI": "1",
        }
        server_env = {"VAST_URL": url, "VAST_API_KEY": SIM_KEY, "HOME": str(home)}

        def run(name: str) -> tuple[str, Answer]:
            args, extra = CALLS[name]
            env_flags = [f for k, v in {**server_env, **extra}.items() for f in ("-e", f"{k}={v}")]
            inspector = [str(INSPECTOR), "--cli", "--connect-timeout", "60000", *env_flags]
            command = [*inspector, str(CONSOLE_SCRIPT), "serve", *args, "--format", "json"]
            proc = subprocess.run(
                command, capture_output=True, text=True, timeout=TIMEOUT_S, env=base_env, cwd=home, check=False
            )
            if "{" not in proc.stdout:
                pytest.fail(f"Inspector {name}: exit {proc.returncode}, no JSON; stderr: {proc.stderr[-2000:]}")
            return name, Answer(proc.returncode, _first_json(proc.stdout), proc.stdout, proc.stderr)

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:  # each call is a node + python start-up
            done = dict(pool.map(run, CALLS))
        assert RENTED in sim.state.instances, "no call destroyed the instance"
        yield done


def _ok(answer: Answer) -> dict[str, Any]:
    assert answer.returncode == 0, f"exit {answer.returncode}: {answer.stdout[:1500]} {answer.stderr[-1500:]}"
    assert "result" in answer.result, answer.result
    result = answer.result["result"]
    assert isinstance(result, dict)
    return result


def test_lists_every_tool_with_strict_schemas_and_all_annotations(answers: dict[str, Answer]) -> None:
    # _ok also proves exit 0 under --strict: no error-severity schema portability findings.
    tools = {t["name"]: t for t in _ok(answers["tools"])["tools"]}
    assert {"search_offers", "plan_instance", "create_instance", "destroy_instance", "get_account"} <= set(tools)
    assert len(tools) == 19
    for name, tool in tools.items():
        assert tool["inputSchema"].get("additionalProperties") is False, name
        assert "outputSchema" in tool, name
        hints = tool["annotations"]
        assert {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"} <= set(hints), name
    assert tools["create_instance"]["annotations"]["destructiveHint"] is True
    assert tools["search_offers"]["annotations"]["readOnlyHint"] is True


def _schema_findings(answer: Answer, schema: str | None = None) -> list[str]:
    """The Inspector's --strict schema-portability findings (errors and warnings), one line each."""
    return [
        f"{entry['toolName']}: {f['severity']} {f['rule']} at {f['schema']}.{f['path']}"
        for entry in answer.result.get("schemaFindings", [])
        for f in entry["findings"]
        if schema is None or f["schema"] == schema
    ]


def test_strict_reports_no_input_schema_finding(answers: dict[str, Answer]) -> None:
    # Issue 16: no `type` arrays (nor anything else the portability lint flags) in any input schema.
    _ok(answers["tools"])
    assert _schema_findings(answers["tools"], "inputSchema") == []
    assert "inputSchema" not in answers["tools"].stderr, answers["tools"].stderr[-2000:]


def test_strict_reports_zero_warnings(answers: dict[str, Answer]) -> None:
    _ok(answers["tools"])
    assert _schema_findings(answers["tools"]) == []
    assert "schemaFindings" not in answers["tools"].result


def test_lists_the_prompts(answers: dict[str, Answer]) -> None:
    prompts = {p["name"] for p in _ok(answers["prompts"])["prompts"]}
    assert prompts == {"vast_workflow", "provision_gpu", "teardown"}


def test_lists_the_resources(answers: dict[str, Answer]) -> None:
    uris = {r["uri"] for r in _ok(answers["resources"])["resources"]}
    assert {"vast://skill", "vast://reference/api", "vast://instances", "vast://requests/recent"} <= uris


def test_reads_the_skill(answers: dict[str, Answer]) -> None:
    contents = _ok(answers["skill"])["contents"]
    assert [c["text"] for c in contents] == [(ROOT / "skill.md").read_text(encoding="utf-8")]


def test_search_offers_against_the_simulator(answers: dict[str, Answer]) -> None:
    result = _ok(answers["search"])
    assert result["isError"] is False
    offers = result["structuredContent"]["offers"]
    assert len(offers) == 3
    assert {o["gpu"] for o in offers} == {"1x RTX 4090"}
    prices = [o["price_per_hour"] for o in offers]
    assert prices == sorted(prices)  # cheapest first, storage included


def test_get_account_shows_the_key_source_never_the_key(answers: dict[str, Answer]) -> None:
    result = _ok(answers["account"])
    account = result["structuredContent"]
    assert account["username"] == "simuser"
    assert account["api_key"]["source"] == "env"
    assert account["api_key"]["fingerprint"].endswith(SIM_KEY[-4:])
    assert SIM_KEY not in answers["account"].stdout


def test_a_client_without_forms_is_refused_when_the_server_requires_them(answers: dict[str, Answer]) -> None:
    answer = answers["destroy_fail_closed"]
    assert answer.returncode == 5  # the Inspector's exit code for a tool result with isError
    result = answer.result["result"]
    assert result["isError"] is True
    text = result["content"][0]["text"]
    assert "requires a human confirmation through an elicitation form" in text and "nothing was done" in text


def test_a_client_without_forms_gets_a_question_and_a_token_before_anything_is_destroyed(
    answers: dict[str, Answer],
) -> None:
    answer = answers["destroy_asks_first"]
    result = answer.result["result"]
    assert answer.returncode == 5 and result["isError"] is True
    text = result["content"][0]["text"]
    assert f"Destroy Vast instance {RENTED}" in text and 'confirm_token="ct-' in text
