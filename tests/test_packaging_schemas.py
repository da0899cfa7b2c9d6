"""Schema portability (issue 16): every tool's input schema is in the subset that single-`type`
function-calling dialects accept (Gemini's function declarations, OpenAPI 3.0): no `type` arrays
and no `null` unions anywhere, `additionalProperties: false` kept. An optional argument is simply
optional; a model that still sends `null` for one gets exactly what leaving it out gives.

The third-party check of the same property (the MCP Inspector's `tools/list --strict`) is in
tests/test_inspector.py; the tools/list snapshot is in tests/server/test_protocol.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from mcp import Client
from pydantic import BaseModel, Field

from tests.helpers import data, served_simulator, server_for, ssh_dir_with_key, text_of
from vast_mcp.server import create_server
from vast_mcp.settings import Settings
from vast_mcp.tools import ALL_TOOLS
from vast_mcp.tools.base import compact_schema, strict_tool

SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains")


def _walk(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema with its path (the schema positions, not property names or enum values)."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for key in SUBSCHEMA_MAPS:
        for name, sub in (schema.get(key) or {}).items():
            yield from _walk(sub, f"{path}.{key}.{name}")
    for key in SUBSCHEMA_LISTS:
        for index, sub in enumerate(schema.get(key) or []):
            yield from _walk(sub, f"{path}.{key}[{index}]")
    for key in SUBSCHEMA_ONE:
        yield from _walk(schema.get(key), f"{path}.{key}")


def portability_problems(schema: dict[str, Any]) -> list[str]:
    problems = []
    for path, node in _walk(schema):
        if isinstance(node.get("type"), list):
            problems.append(f"{path or '/'}: type is an array {node['type']}")
        for key in ("anyOf", "oneOf"):
            arms = node.get(key)
            if isinstance(arms, list) and any(isinstance(a, dict) and a.get("type") == "null" for a in arms):
                problems.append(f"{path or '/'}: {key} contains null")
        if node.get("nullable") is True:  # OpenAPI's spelling, not JSON Schema
            problems.append(f"{path or '/'}: nullable")
    return problems


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def input_schemas() -> dict[str, dict[str, Any]]:
    """What a client sees: tools/list over a real (in-process) MCP session. Nothing contacts Vast."""
    server = create_server(Settings(api_url="http://127.0.0.1:9", rate_limit=None))
    async with Client(server) as client:
        return {t.name: t.input_schema for t in (await client.list_tools()).tools}


@pytest.mark.anyio
async def test_no_input_schema_has_a_type_array_or_a_null_union(input_schemas: dict[str, dict[str, Any]]) -> None:
    assert len(input_schemas) >= 16
    problems = {name: portability_problems(schema) for name, schema in input_schemas.items()}
    assert {name: p for name, p in problems.items() if p} == {}, (
        "make the argument optional (`X | None = None`) rather than nullable-and-required"
    )


@pytest.mark.anyio
async def test_input_schemas_stay_strict(input_schemas: dict[str, dict[str, Any]]) -> None:
    for name, schema in input_schemas.items():
        assert schema["type"] == "object", name
        assert schema.get("additionalProperties") is False, name


@pytest.mark.anyio
async def test_the_check_itself_catches_what_it_is_for() -> None:
    # The walker must see nested positions, or the tests above could pass vacuously.
    bad = {
        "type": "object",
        "properties": {"a": {"type": ["integer", "null"]}, "b": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "$defs": {"M": {"type": "object", "properties": {"c": {"items": {"type": ["string", "null"]}}}}},
    }
    assert len(portability_problems(bad)) == 3


# --------------------------------------------------------------------------- compact_schema rules


class Nested(BaseModel):
    note: str | None = None
    needed: int | None


class Example(BaseModel):
    limit: Annotated[int | None, Field(ge=1, le=5, description="how many")] = None
    when: str | None = None
    choice: int | None = 3  # null differs from absent here: the union stays
    must: int | None  # required and nullable: the union stays
    items: list[int | None] | None = None  # the list itself is optional; a null item is a value
    nested: Nested | None = None


def test_an_optional_argument_is_written_as_simply_optional() -> None:
    schema = compact_schema(Example.model_json_schema())
    props = schema["properties"]
    assert props["limit"] == {"maximum": 5, "minimum": 1, "type": "integer", "description": "how many"}
    assert props["when"] == {"type": "string"}
    assert props["items"] == {"items": {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "type": "array"}
    assert props["nested"] == {"$ref": "#/$defs/Nested"}
    assert sorted(schema["required"]) == ["must"]
    nested = schema["$defs"]["Nested"]["properties"]
    assert nested["note"] == {"type": "string"}


def test_where_null_means_something_the_union_stays_for_the_tests_to_flag() -> None:
    schema = compact_schema(Example.model_json_schema())
    props = schema["properties"]
    assert props["choice"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 3}
    assert props["must"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert schema["$defs"]["Nested"]["properties"]["needed"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert len(portability_problems(schema)) == 4  # choice, must, items[], Nested.needed
    assert "title" not in str(schema)


# --------------------------------------------------------------------------- null from a model


MINIMAL = {"instance_id": 1, "label": "x", "quote_id": "q-0", "source": "env"}


def test_null_for_any_optional_argument_means_the_same_as_leaving_it_out() -> None:
    """Decision: accepted, as "not given" (the argument model is unchanged; only the schema is)."""
    checked = 0
    for spec in ALL_TOOLS:
        tool = strict_tool(spec)
        model = tool.fn_metadata.arg_model
        required = set(tool.parameters.get("required", []))
        base = {k: v for k, v in MINIMAL.items() if k in required}
        assert set(base) == required, f"{tool.name}: extend MINIMAL for {required - set(base)}"
        for name, prop in tool.parameters["properties"].items():
            if name in required or "default" in prop:
                continue
            with_null = model.model_validate({**base, name: None})
            assert with_null.model_dump() == model.model_validate(base).model_dump(), f"{tool.name}.{name}"
            checked += 1
    assert checked >= 20  # every optional argument of every tool, not a vacuous pass


@pytest.mark.anyio
async def test_null_over_the_wire_is_accepted_like_an_absent_argument(tmp_path: Path) -> None:
    with served_simulator() as (_sim, url):
        async with Client(server_for(url, ssh_dir_with_key(tmp_path))) as client:
            given_null = await client.call_tool(
                "search_offers", {"num_gpus": None, "max_price_per_hour": None, "countries": None, "limit": 3}
            )
            left_out = await client.call_tool("search_offers", {"limit": 3})
    assert not given_null.is_error, text_of(given_null)
    assert data(given_null)["offers"] == data(left_out)["offers"]
