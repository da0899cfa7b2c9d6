"""server.json for the MCP Registry: valid against the registry's published schema (vendored in
packaging/registry/ with its source), and in agreement with the package it describes.

What this does not prove: that the registry accepts a publish. Publishing also checks namespace
ownership (the `io.github.OWNER` placeholder must become a real GitHub owner or a domain) and
that the PyPI release's README carries the `mcp-name:` marker; both are checked here only for
agreement with each other, not against GitHub or PyPI.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = ROOT / "packaging" / "registry"
SERVER_JSON = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
SCHEMA = json.loads((SCHEMA_DIR / "server.schema.json").read_text(encoding="utf-8"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
SOURCE_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src" / "vast_mcp").rglob("*.py"))


def _errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document))


def _package() -> dict[str, Any]:
    packages = SERVER_JSON["packages"]
    assert len(packages) == 1
    package = packages[0]
    assert isinstance(package, dict)
    return package


def test_the_vendored_schema_is_the_published_one_server_json_names() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SERVER_JSON["$schema"] == SCHEMA["$id"]
    assert re.fullmatch(
        r"https://static\.modelcontextprotocol\.io/schemas/\d{4}-\d{2}-\d{2}/server\.schema\.json", SCHEMA["$id"]
    )
    # The provenance note names this exact file: a silent edit or swap shows up here.
    digest = hashlib.sha256((SCHEMA_DIR / "server.schema.json").read_bytes()).hexdigest()
    notes = (SCHEMA_DIR / "README.md").read_text(encoding="utf-8")
    assert digest in notes
    assert SCHEMA["$id"] in notes
    assert (SCHEMA_DIR / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_server_json_validates_against_the_registry_schema() -> None:
    assert _errors(SERVER_JSON) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(description="x" * 101), "is too long"),
        (lambda d: d.update(name="vast-mcp"), "does not match"),
        (lambda d: d.pop("version"), "'version' is a required property"),
        (lambda d: d["packages"][0].update(version="latest"), "should not be valid"),
        (lambda d: d["packages"][0].pop("transport"), "'transport' is a required property"),
        (lambda d: d["packages"][0]["environmentVariables"][0].pop("name"), "'name' is a required property"),
    ],
)
def test_the_schema_check_rejects_what_the_registry_rejects(change: Any, expected: str) -> None:
    broken = copy.deepcopy(SERVER_JSON)
    change(broken)
    assert any(expected in error for error in _errors(broken)), _errors(broken)


def test_the_pypi_package_is_this_project_at_this_version() -> None:
    package = _package()
    assert package["registryType"] == "pypi"
    assert package["registryBaseUrl"] == "https://pypi.org"
    assert package["identifier"] == PYPROJECT["name"] == "vast-mcp"
    assert package["version"] == SERVER_JSON["version"] == PYPROJECT["version"]
    assert package["runtimeHint"] == "uvx"
    assert package["transport"] == {"type": "stdio"}
    assert [a.get("value") for a in package["packageArguments"]] == ["serve"]
    assert "vast-mcp" in PYPROJECT["scripts"]


def test_environment_variables_are_described_and_the_key_is_secret() -> None:
    variables = {v["name"]: v for v in _package()["environmentVariables"]}
    assert len(variables) == len(_package()["environmentVariables"]), "a variable is listed twice"
    assert variables["VAST_API_KEY"]["isSecret"] is True
    assert [n for n, v in variables.items() if v.get("isSecret")] == ["VAST_API_KEY"]
    for name, variable in variables.items():
        assert len(variable.get("description", "")) > 20, f"{name}: say what it does"
        assert f'"{name}"' in SOURCE_TEXT, f"{name} is described but the server never reads it"
        if "choices" in variable and "default" in variable:
            assert variable["default"] in variable["choices"], name
    assert {"VAST_MCP_READ_ONLY", "VAST_MCP_CONFIRM", "VAST_MCP_STATE_DIR"} <= set(variables)
    assert variables["VAST_MCP_CONFIRM"]["choices"] == ["auto", "elicit"]


def test_the_readme_carries_the_registry_ownership_marker() -> None:
    # The registry proves PyPI ownership by finding `mcp-name: <name>` in the README as published
    # on PyPI (the package's long description is README.md).
    assert PYPROJECT["readme"] == "README.md"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.findall(r"mcp-name: (\S+)", readme) == [SERVER_JSON["name"]]


def test_every_url_is_https() -> None:
    def urls(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [u for v in node.values() for u in urls(v)]
        if isinstance(node, list):
            return [u for v in node for u in urls(v)]
        return [node] if isinstance(node, str) and "://" in node else []

    found = urls({k: v for k, v in SERVER_JSON.items() if k != "$schema"})
    assert found, "server.json names no URL at all?"
    assert [u for u in found if not re.fullmatch(r"https://[^\s/]+(/\S*)?", u)] == []
