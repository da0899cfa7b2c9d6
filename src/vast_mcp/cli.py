"""Command line: `vast-mcp [serve|simulator|demo|reap|doctor|key]`.

Imports are deferred to the branch that needs them: an MCP client spawns
`vast-mcp` for every session, so start-up must not pay for the simulator,
the demo or the HTTP transport.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from vast_mcp import __version__


def _usd(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive amount in USD")
    return value


def _ttl(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 24 * 365:
        raise argparse.ArgumentTypeError(f"{text!r}: give hours from 0 (no deadline) to 8760")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vast-mcp",
        description="MCP server that rents and runs Vast.ai GPUs, with a human confirmation before spending.",
    )
    parser.add_argument("--version", action="version", version=f"vast-mcp {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("VAST_MCP_LOG_LEVEL", "WARNING"))
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the MCP server (default: stdio)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default loopback)")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument(
        "--auth-token-env",
        metavar="NAME",
        help="environment variable holding the bearer token HTTP clients must send",
    )
    serve.add_argument(
        "--auth-token-file",
        metavar="PATH",
        help="file holding the bearer token (default: generated into <state dir>/http-token)",
    )
    serve.add_argument("--allowed-origin", action="append", default=[], help="extra Origin to accept (HTTP)")
    serve.add_argument("--api-url", help="Vast API base URL (default $VAST_URL or https://console.vast.ai)")
    serve.add_argument("--read-only", action="store_true", default=None, help="register no tool that changes Vast")
    serve.add_argument(
        "--confirm",
        choices=["auto", "elicit"],
        default=None,
        help="elicit: every action that spends, destroys or grants access needs a confirmation form",
    )
    serve.add_argument("--max-burn", type=_usd, metavar="USD", help="most $/h the account may burn")
    serve.add_argument("--daily-budget", type=_usd, metavar="USD", help="most $ Vast may charge in any 24 h")
    serve.add_argument(
        "--default-ttl", type=_ttl, metavar="HOURS", help="deadline a plan proposes (default 24; 0 = none)"
    )

    sim = sub.add_parser("simulator", help="run the Vast API simulator on loopback")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=0, help="0 picks a free port")
    sim.add_argument("--api-key", default="sim-key")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--speed", type=float, default=10.0, help="simulated seconds per real second")

    sub.add_parser("demo", help="the whole dialog-first workflow on the embedded simulator")

    reap = sub.add_parser("reap", help="enforce every recorded deadline now (for cron or a systemd timer)")
    reap.add_argument("--dry-run", action="store_true", help="say what would be stopped or destroyed; change nothing")

    key = sub.add_parser("key", help="manage the API key in the OS keyring")
    key.add_argument("action", choices=["set", "status", "delete"])

    doctor = sub.add_parser("doctor", help="read-only live check of the configured account and key")
    doctor.add_argument(
        "--record", metavar="DIR", help="also save every answer, scrubbed, as contract-test fixtures in DIR"
    )
    return parser


def _setup_logging(level: str) -> None:
    from vast_mcp.credentials import RedactingFilter

    handler = logging.StreamHandler(sys.stderr)  # stdout belongs to the MCP stdio transport
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command is None:  # bare `vast-mcp` is `vast-mcp serve`, what MCP clients launch
        args = parser.parse_args([*argv, "serve"])
    _setup_logging(args.log_level)
    command = args.command
    if command == "serve":
        from vast_mcp.serve import serve_from_args

        return serve_from_args(args)
    if command == "simulator":
        from vast_mcp.simulator import run

        return run(host=args.host, port=args.port, api_key=args.api_key, seed=args.seed, speed=args.speed)
    if command == "demo":
        from vast_mcp.demo import run_demo

        return run_demo()
    if command == "reap":
        from vast_mcp.spending.reapcli import run_reap

        return run_reap(dry_run=args.dry_run)
    if command == "doctor":
        from vast_mcp.doctor import doctor_from_args

        return doctor_from_args(args)
    from vast_mcp.keycli import run_key_command

    return run_key_command(args.action)
