"""Running the server: stdio (what MCP clients spawn) or streamable HTTP at /mcp.

HTTP binds loopback by default and always requires a bearer token, loopback included
(another local user or process must not rent or destroy through it); every request with an
``Origin`` header must come from an allowed origin (browsers send it; a foreign page must
not drive a server that can spend money).
"""

from __future__ import annotations

import argparse
import hmac
import os
import secrets
import signal
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

import anyio
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from vast_mcp.settings import Settings, is_loopback_host


class HttpGuard:
    """ASGI middleware: the bearer token and the Origin allow-list, on every request."""

    def __init__(self, app: ASGIApp, *, token: str, allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.token = token
        self.allowed_origins = frozenset(o.rstrip("/") for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and origin.rstrip("/") not in self.allowed_origins:
                await JSONResponse({"error": "origin not allowed"}, status_code=403)(scope, receive, send)
                return
            scheme, _, sent = headers.get("authorization", "").partition(" ")
            valid = hmac.compare_digest(sent.strip().encode(), self.token.encode())
            if scheme.lower() != "bearer" or not valid:  # the scheme is case-insensitive (RFC 9110)
                response = JSONResponse(
                    {"error": "missing or wrong bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


TOKEN_FILE = "http-token"  # noqa: S105 (a file name, not a secret)
MIN_TOKEN_LEN = 16


def http_token(*, env_name: str | None, file: str | None, state_dir: Path) -> tuple[str, str]:
    """The bearer token every HTTP request must carry (loopback included: other local users and
    processes are not trusted), and where it comes from. Raises ValueError in plain words.

    ``--auth-token-env NAME`` or ``--auth-token-file PATH``; otherwise ``<state dir>/http-token``,
    generated once (mode 0600) and reused, so client configurations keep working across restarts.
    """
    if env_name:
        token = os.environ.get(env_name, "").strip()
        where = f"${env_name}"
    elif file:
        try:
            token = Path(file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the token file {file} ({type(exc).__name__})") from None
        where = file
    else:
        return _generated_token(state_dir / TOKEN_FILE), str(state_dir / TOKEN_FILE)
    if len(token) < MIN_TOKEN_LEN or not token.isprintable() or " " in token:
        raise ValueError(f"the bearer token in {where} must be at least {MIN_TOKEN_LEN} printable characters")
    return token, where


def _generated_token(path: Path) -> str:
    if path.exists():
        mode = path.stat().st_mode
        if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
            raise ValueError(f"{path} can be read by other users: chmod 600 {path} (or delete it for a new token)")
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= MIN_TOKEN_LEN:
            return token
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return token


def build_http_app(
    settings: Settings, *, host: str, port: int, token: str, extra_origins: Iterable[str] = ()
) -> ASGIApp:
    from mcp.server.transport_security import TransportSecuritySettings

    from vast_mcp.server import create_server

    origins = {f"http://{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")} | set(extra_origins)
    if not is_loopback_host(host):
        origins.add(f"http://{host}:{port}")
    server = create_server(settings)
    # The SDK's own Host check would reject a non-loopback bind's Host header; ours checks Origin + token.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = server.streamable_http_app(transport_security=security, host=host)
    return HttpGuard(app, token=token, allowed_origins=origins)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Flags over environment variables over defaults."""
    return Settings.from_env(
        api_url=getattr(args, "api_url", None),
        read_only=getattr(args, "read_only", None),
        confirm=getattr(args, "confirm", None),
        max_burn=getattr(args, "max_burn", None),
        daily_budget=getattr(args, "daily_budget", None),
        default_ttl_hours=getattr(args, "default_ttl", None),
    )


def serve_from_args(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except ValueError as exc:  # a bad setting: say which, start nothing
        print(f"vast-mcp: {exc}", file=sys.stderr)
        return 2
    if args.transport == "stdio":
        from vast_mcp.server import create_server

        # Python turns Ctrl-C into KeyboardInterrupt, which cannot stop the worker thread blocked
        # reading stdin, so the server would hang while its client keeps stdin open. Nothing here
        # needs a graceful exit (requests are atomic, state files are written atomically): let the
        # signal end the process at once, as SIGTERM already does.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        anyio.run(create_server(settings).run_stdio_async)
        return 0
    try:
        token, where = http_token(env_name=args.auth_token_env, file=args.auth_token_file, state_dir=settings.state_dir)
        app = build_http_app(settings, host=args.host, port=args.port, token=token, extra_origins=args.allowed_origin)
    except ValueError as exc:
        print(f"vast-mcp: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    # stderr, not the log: the user needs this line to connect, whatever the log level.
    print(
        f"vast-mcp: serving MCP at http://{args.host}:{args.port}/mcp; every request needs "
        f"'Authorization: Bearer <token>' with the token from {where}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    return 0
