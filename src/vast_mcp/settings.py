"""Server settings: command-line flags over environment variables over defaults."""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

ConfirmMode = Literal["auto", "elicit"]
DEFAULT_API_URL = "https://console.vast.ai"
DEFAULT_TTL_HOURS = 24.0


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def parse_rate(value: str | None) -> tuple[int, float] | None:
    """``"5/10"`` -> 5 requests per 10 s; ``"off"`` -> no pacing; empty -> the default."""
    if value is None or not value.strip():
        return (5, 10.0)
    if value.strip().lower() in {"off", "0", "none"}:
        return None
    count, _, period = value.partition("/")
    try:
        parsed = (int(count), float(period or "1"))
    except ValueError:
        parsed = (0, 0.0)
    if parsed[0] < 1 or parsed[1] <= 0:
        raise ValueError(f"invalid rate {value!r}: use N/SECONDS, e.g. 5/10, or off")
    return parsed


def _confirm_mode(value: str | None) -> ConfirmMode:
    """``auto`` (default) or ``elicit``; anything else is refused (a typo must not fail open)."""
    mode = (value or "auto").strip() or "auto"
    if mode not in ("auto", "elicit"):
        raise ValueError(f"VAST_MCP_CONFIRM={value!r}: use auto or elicit")
    return "elicit" if mode == "elicit" else "auto"


def _dollars(name: str, value: str | None) -> float | None:
    """A spending cap in USD from the environment: empty = none, otherwise a positive number."""
    if value is None or not value.strip():
        return None
    try:
        amount = float(value)
    except ValueError:
        amount = -1.0
    if not 0 < amount < 1e9:
        raise ValueError(f"{name}={value!r}: give a positive amount in USD, e.g. 2.50")
    return amount


def _hours(name: str, value: str | None, default: float) -> float:
    if value is None or not value.strip():
        return default
    try:
        hours = float(value)
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= 24 * 365:
        raise ValueError(f"{name}={value!r}: give hours from 0 (no deadline) to 8760")
    return hours


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The platform's per-user state directory for vast-mcp (deadlines, the HTTP token)."""
    env = os.environ if environ is None else environ
    if env.get("VAST_MCP_STATE_DIR"):
        return Path(env["VAST_MCP_STATE_DIR"]).expanduser()
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "vast-mcp"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "vast-mcp"
    xdg = env.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "vast-mcp"


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_api_url(url: str) -> str:
    """The Vast URL, refused unless it is https or a loopback address (the key rides in a header)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise ValueError(
        f"Refusing Vast URL {url!r}: the API key would travel in clear text. Use an https:// URL "
        "(or http:// only for a loopback address such as the simulator)."
    )


@dataclass(frozen=True)
class Settings:
    api_url: str = DEFAULT_API_URL
    read_only: bool = False
    # auto: elicit when the client can, else a confirm token the user approved in chat;
    # elicit: forms only, fail closed without them
    confirm: ConfirmMode = "auto"
    rate_limit: tuple[int, float] | None = (5, 10.0)  # Vast's observed per-account budget
    poll_interval: float = 5.0  # seconds between status polls (<= 12 per minute)
    ready_timeout: float = 900.0  # create -> running deadline
    ssh_timeout: float = 120.0  # running -> SSH banner deadline
    ssh_interval: float = 3.0  # seconds between SSH banner attempts
    quote_ttl: float = 600.0  # a plan's quote (and a confirm token) expires after this many seconds
    http_timeout: float = 60.0  # seconds to wait for one Vast answer (connect: at most 10)
    ssh_dir: Path = field(default_factory=lambda: Path.home() / ".ssh")
    # Spending guardrails (DESIGN §2, §5b); None = no cap.
    max_burn: float | None = None  # $/h of the whole account after a create or start
    daily_budget: float | None = None  # $ Vast may charge in any 24 h
    default_ttl_hours: float = DEFAULT_TTL_HOURS  # deadline a plan proposes; 0 = none
    state_dir: Path = field(default_factory=default_state_dir)
    reap_interval: float = 300.0  # seconds between deadline reaps while serving; 0 = never

    def __post_init__(self) -> None:
        check_api_url(self.api_url)

    @property
    def api_is_loopback(self) -> bool:
        """The Vast URL is a loopback address (the simulator): its hosts are loopback too."""
        return is_loopback_host(urlsplit(self.api_url).hostname)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from the environment; raises ValueError (plain words) for a bad value."""
        env = os.environ if environ is None else environ
        settings = cls(
            api_url=env.get("VAST_URL") or DEFAULT_API_URL,
            read_only=_flag(env.get("VAST_MCP_READ_ONLY")),
            confirm=_confirm_mode(env.get("VAST_MCP_CONFIRM")),
            rate_limit=parse_rate(env.get("VAST_MCP_RATE_LIMIT")),
            poll_interval=float(env.get("VAST_MCP_POLL_INTERVAL") or 5.0),
            max_burn=_dollars("VAST_MCP_MAX_BURN", env.get("VAST_MCP_MAX_BURN")),
            daily_budget=_dollars("VAST_MCP_DAILY_BUDGET", env.get("VAST_MCP_DAILY_BUDGET")),
            default_ttl_hours=_hours("VAST_MCP_DEFAULT_TTL_HOURS", env.get("VAST_MCP_DEFAULT_TTL_HOURS"), 24.0),
            state_dir=default_state_dir(env),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
