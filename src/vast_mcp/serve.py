"""Running the server: stdio (what MCP clients spawn) or streamable HTTP at /mcp.

HTTP binds loopback by default. Any other bind needs a bearer token, and every
request with an ``Origin`` header must come from an allowed origin (browsers
send it; a foreign page must not drive a server that can spend money).
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import sys
from collections.abc import Iterable

import anyio
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from vast_mcp.settings import Settings, is_loopback_host

logger = logging.getLogger(__name__)


class HttpGuard:
    """ASGI middleware: bearer token (when configured) and Origin allow-list on every request."""

    def __init__(self, app: ASGIApp, *, token: str | None, allowed_origins: Iterable[str]) -> None:
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
            if self.token is not None:
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


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind without a token (before anything is imported or bound)."""
    if not is_loopback_host(host) and not token:
        raise ValueError(f"Refusing to bind {host}: a non-loopback bind needs a bearer token (--auth-token-env NAME).")


def build_http_app(
    settings: Settings, *, host: str, port: int, token: str | None, extra_origins: Iterable[str] = ()
) -> ASGIApp:
    from mcp.server.transport_security import TransportSecuritySettings

    from vast_mcp.server import create_server

    check_bind(host, token)
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

        anyio.run(create_server(settings).run_stdio_async)
        return 0
    token = None
    if args.auth_token_env:
        token = os.environ.get(args.auth_token_env) or None
        if token is None:
            print(f"vast-mcp: ${args.auth_token_env} is empty or unset", file=sys.stderr)
            return 2
    try:
        check_bind(args.host, token)
        app = build_http_app(settings, host=args.host, port=args.port, token=token, extra_origins=args.allowed_origin)
    except ValueError as exc:
        print(f"vast-mcp: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    logger.warning("serving MCP over HTTP at http://%s:%d/mcp", args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    return 0
