"""Context cost: what vast-mcp's MCP surface costs a model, in bytes and tokens.

1. `tools/list` and `prompts/list` exactly as `vast-mcp serve` sends them over stdio,
   re-serialised as compact JSON (``separators=(",", ":")``), per tool and in total; tools
   over 600 tokens and a total over 6,000 are flagged. `resources/list` and
   `resources/templates/list` are shown too (clients rarely put them in context).
2. A 10-offer `search_offers` result (through an in-process `mcp.Client` against a served
   simulator) versus the raw Vast offer objects behind it (the same call with raw=true).

Tokens are estimated as bytes / 4: no tokenizer is a dependency, and tiktoken cannot
fetch its BPE files offline. JSON schema text tokenizes at roughly 3-4 bytes per token,
so bytes / 4 errs low by up to ~25%; compare figures with each other, not with a budget
to the last token.

    uv run python benchmarks/context_cost.py
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.types import CallToolResult

from _common import child_env, header, stdio_session, vast_command, verdict
from vast_mcp.credentials import ApiKey
from vast_mcp.server import create_server
from vast_mcp.settings import Settings
from vast_mcp.simulator import Simulator

TOOL_LIMIT = 600  # tokens per tool
TOTAL_LIMIT = 6000  # tokens for the whole tools/list
RESULT_SHARE = 0.10  # a 10-offer result vs the raw offers behind it
SIM_KEY = "sim-key-context-cost"


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def tokens(size: int) -> int:
    """bytes / 4, rounded up (a tokenizer makes no fractional tokens; up is the cautious side)."""
    return math.ceil(size / 4)


def surface(read_only: bool = False) -> dict[str, dict[str, Any]]:
    methods = ["tools/list", "prompts/list", "resources/list", "resources/templates/list"]
    with tempfile.TemporaryDirectory(prefix="vast-mcp-bench-") as home:
        args = ["serve", "--read-only"] if read_only else ["serve"]
        results = stdio_session(vast_command(*args), child_env(home), methods)
    return dict(zip(methods, results, strict=True))


def report_tools(lists: dict[str, dict[str, Any]], read_only_tools: list[dict[str, Any]]) -> None:
    tools = lists["tools/list"]["tools"]
    print("  tools/list, per tool (compact JSON of the tool object as sent; tokens = bytes/4):")
    print(f"    {'tool':<20} {'bytes':>6} {'tokens':>6}  {'desc':>5} {'input':>6} {'output':>6} {'other':>5}")
    over = []
    for tool in sorted(tools, key=lambda t: -len(compact(t))):
        size = len(compact(tool))
        parts = {
            "desc": len(compact(tool.get("description", ""))),
            "input": len(compact(tool.get("inputSchema", {}))),
            "output": len(compact(tool.get("outputSchema", {}))) if "outputSchema" in tool else 0,
        }
        other = size - sum(parts.values())
        flag = "  OVER 600" if tokens(size) > TOOL_LIMIT else ""
        if flag:
            over.append(tool["name"])
        print(
            f"    {tool['name']:<20} {size:>6} {tokens(size):>6}  {parts['desc']:>5} {parts['input']:>6} "
            f"{parts['output']:>6} {other:>5}{flag}"
        )
    whole = len(compact(lists["tools/list"]))
    without_output = len(compact({"tools": [{k: v for k, v in t.items() if k != "outputSchema"} for t in tools]}))
    ro = len(compact({"tools": read_only_tools}))
    largest = max(tools, key=lambda t: len(compact(t)))
    size = len(compact(largest))
    print(
        f"  tools/list total: {whole} B = {tokens(whole)} tokens for {len(tools)} tools; largest "
        f"{largest['name']} {size} B = {tokens(size)} tokens ({TOOL_LIMIT * 4 - size} B under the limit)"
    )
    print(
        f"    without outputSchema (what a client that hides it sends the model): "
        f"{without_output} B = {tokens(without_output)} tokens"
    )
    print(f"    --read-only ({len(read_only_tools)} tools): {ro} B = {tokens(ro)} tokens")
    print(
        f"  target: total <= {TOTAL_LIMIT} tokens: {verdict(tokens(whole) <= TOTAL_LIMIT)}; "
        f"no tool over {TOOL_LIMIT} tokens: {verdict(not over)}" + (f" (over: {', '.join(over)})" if over else "")
    )
    for method in ("prompts/list", "resources/list", "resources/templates/list"):
        size = len(compact(lists[method]))
        key = next(iter(lists[method]))
        count = len(lists[method].get(key, []))
        print(f"  {method}: {size} B = {tokens(size)} tokens ({count} {key})")
    for prompt in lists["prompts/list"]["prompts"]:
        size = len(compact(prompt))
        print(f"    prompt {prompt['name']:<16} {size:>5} B = {tokens(size)} tokens")


async def offers_result() -> tuple[CallToolResult, CallToolResult]:
    sim = Simulator(api_key=SIM_KEY, seed=0, offer_count=300, speed=0.0)
    with sim.serve() as url, tempfile.TemporaryDirectory(prefix="vast-mcp-bench-") as home:
        settings = Settings(api_url=url, rate_limit=None, ssh_dir=Path(home) / ".ssh")
        server = create_server(settings, api_key=ApiKey(SIM_KEY, "env", "$VAST_API_KEY"))
        async with Client(server) as client:
            plain = await client.call_tool("search_offers", {"limit": 10})
            raw = await client.call_tool("search_offers", {"limit": 10, "raw": True})
    return plain, raw


def report_offers(plain: CallToolResult, raw: CallToolResult) -> None:
    assert not plain.is_error and not raw.is_error
    assert isinstance(plain.structured_content, dict) and isinstance(raw.structured_content, dict)
    structured = plain.structured_content
    raw_offers = raw.structured_content["raw"]
    offers = structured["offers"]
    assert [o["id"] for o in offers] == [o["id"] for o in raw_offers], "raw and compact disagree"
    result = len(compact(structured))
    raw_bytes = len(compact(raw_offers))
    per_offer = len(compact(offers)) / max(1, len(offers))
    text = sum(len(c.text.encode()) for c in plain.content if c.type == "text")
    wire = len(compact(plain.model_dump(mode="json", by_alias=True, exclude_none=True)))
    share = result / raw_bytes
    print(f"  search_offers, {len(offers)} offers (simulator, seed 0, default filters):")
    print(
        f"    structured result (no raw): {result} B = {tokens(result)} tokens "
        f"({per_offer:.0f} B per offer + {result - len(compact(offers))} B envelope)"
    )
    print(
        f"    raw Vast offer objects behind it: {raw_bytes} B = {tokens(raw_bytes)} tokens "
        f"({raw_bytes / max(1, len(raw_offers)):.0f} B per offer, {len(raw_offers[0])} fields each)"
    )
    print(f"    result / raw = {share:.1%}; target <= {RESULT_SHARE:.0%}: {verdict(share <= RESULT_SHARE)}")
    print(
        f"    the whole CallToolResult on the wire: {wire} B (text content {text} B + structuredContent "
        f"{result} B; a client shows the model one or both)"
    )
    print(f"    the text content is a summary table: {text / result:.0%} of the structured result's compact JSON")


def main() -> int:
    header("context cost: bytes and tokens (tokens = bytes / 4, no tokenizer)")
    lists = surface()
    read_only = surface(read_only=True)["tools/list"]["tools"]
    report_tools(lists, read_only)
    plain, raw = anyio.run(offers_result)
    report_offers(plain, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
