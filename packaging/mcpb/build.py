"""Build the MCP Bundle (``.mcpb``, Claude Desktop's one-click install) from this repository.

    uv run python packaging/mcpb/build.py                # -> dist/vast-mcp-<version>.mcpb
    uv run python packaging/mcpb/build.py --no-pack --stage /tmp/bundle   # stage + manifest only

1. Lists the tools and prompts from the server itself (``create_server`` + an in-process MCP
   client; nothing contacts Vast), so the manifest never drifts from what the server registers.
2. Stages the bundle: the uv project (pyproject.toml, uv.lock, README.md, skill.md, references/,
   src/vast_mcp/) plus manifest.json, rendered from manifest.in.json and pyproject.toml.
3. Runs the pinned official CLI (``npm ci`` in packaging/mcpb installs it): ``mcpb validate``,
   then ``mcpb pack``.

Server type ``uv`` (manifest 0.4): the host installs Python and the locked dependencies with uv
on the user's platform, so compiled dependencies (pydantic-core) work on every OS and arch; the
``python`` type would have to ship them pre-built in ``server/lib`` for one platform only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MCPB_CLI = HERE / "node_modules" / ".bin" / ("mcpb.cmd" if sys.platform == "win32" else "mcpb")
PROJECT_FILES = ("pyproject.toml", "uv.lock", "README.md", "skill.md", "LICENSE")
PROJECT_DIRS = ("references", "src/vast_mcp")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".ruff_cache")


def server_surface() -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """(tools, prompts) as the manifest lists them, from a live in-process server."""
    import anyio
    from mcp import Client

    from vast_mcp.credentials import ApiKey
    from vast_mcp.server import create_server
    from vast_mcp.settings import Settings

    async def listed() -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
        with tempfile.TemporaryDirectory() as state:
            # A loopback URL nobody serves and a placeholder key: listing needs neither Vast nor a
            # real key, and the builder's own keyring is never read.
            settings = Settings(api_url="http://127.0.0.1:9", rate_limit=None, state_dir=Path(state), reap_interval=0)
            server = create_server(settings, api_key=ApiKey("bundle-build-placeholder", "env", "$VAST_API_KEY"))
            async with Client(server) as client:
                tools = [
                    {"name": t.name, "description": t.description or ""} for t in (await client.list_tools()).tools
                ]
                prompts = []
                for prompt in (await client.list_prompts()).prompts:
                    rendered = await client.get_prompt(prompt.name)
                    text = "\n\n".join(getattr(m.content, "text", "") for m in rendered.messages)
                    entry: dict[str, Any] = {"name": prompt.name, "description": prompt.description or ""}
                    if prompt.arguments:
                        entry["arguments"] = [a.name for a in prompt.arguments]
                    # The text a client gets with every argument left empty (propose the defaults);
                    # a client calling prompts/get gets the argument-aware version from the server.
                    entry["text"] = text
                    prompts.append(entry)
        return tools, prompts

    return anyio.run(listed)


def render_manifest(
    pyproject: dict[str, Any], tools: list[dict[str, str]], prompts: list[dict[str, Any]]
) -> dict[str, Any]:
    project = pyproject["project"]
    manifest: dict[str, Any] = json.loads((HERE / "manifest.in.json").read_text(encoding="utf-8"))
    manifest.update(
        name=project["name"],
        version=project["version"],
        description=project["description"],
        author={"name": project["authors"][0]["name"]},
        homepage=project["urls"]["Homepage"],
        documentation=project["urls"]["Documentation"],
        license=project["license"],
        keywords=project["keywords"],
        tools=tools,
        prompts=prompts,
    )
    manifest["compatibility"]["runtimes"]["python"] = project["requires-python"]
    return manifest


def stage(dest: Path, manifest: dict[str, Any]) -> None:
    """The bundle's files, as a uv project the host can ``uv run``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in PROJECT_FILES:
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, dest / name)
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, dest / name, ignore=SKIP)
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def mcpb(*args: str) -> None:
    if not MCPB_CLI.exists():
        raise SystemExit(f"the MCPB CLI is not installed: run `npm ci` in {HERE.relative_to(ROOT)}")
    proc = subprocess.run([str(MCPB_CLI), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"mcpb {args[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def build(out_dir: Path, stage_dir: Path, *, pack: bool = True) -> Path:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    tools, prompts = server_surface()
    manifest = render_manifest(pyproject, tools, prompts)
    stage(stage_dir, manifest)
    if not pack:
        return stage_dir
    mcpb("validate", str(stage_dir / "manifest.json"))
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = out_dir / f"{manifest['name']}-{manifest['version']}.mcpb"
    mcpb("pack", str(stage_dir), str(bundle))
    return bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the .mcpb goes (default dist/)")
    parser.add_argument("--stage", type=Path, default=ROOT / "build" / "mcpb", help="staging directory (replaced)")
    parser.add_argument("--no-pack", action="store_true", help="stage and write manifest.json only")
    args = parser.parse_args(argv)
    print(build(args.out.resolve(), args.stage.resolve(), pack=not args.no_pack))
    return 0


if __name__ == "__main__":
    sys.exit(main())
