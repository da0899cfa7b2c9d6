"""Server settings: command-line flags over environment variables over defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

ConfirmMode = Literal["auto", "elicit"]
DEFAULT_API_URL = "https://console.vast.ai"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def parse_rate(value: str | None) -> tuple[int, float] | None:
    """``"5/10"`` -> 5 requests per 10 s; ``"off"`` -> no pacing; empty -> the default."""
    if value is None or not value.strip():
        return (5, 10.0)
    if value.strip().lower() in {"off", "0", "none"}:
        return None
    count, _, period = value.partition("/")
    parsed = (int(count), float(period or "1"))
    if parsed[0] < 1 or parsed[1] <= 0:
        raise ValueError(f"invalid rate {value!r}: use N/SECONDS, e.g. 5/10, or off")
    return parsed


@dataclass(frozen=True)
class Settings:
    api_url: str = DEFAULT_API_URL
    read_only: bool = False
    # auto: elicit when the client can, else rely on the signed quote; elicit: fail closed without it
    confirm: ConfirmMode = "auto"
    rate_limit: tuple[int, float] | None = (5, 10.0)  # Vast's observed per-account budget
    poll_interval: float = 5.0  # seconds between status polls (<= 12 per minute)
    ready_timeout: float = 900.0  # create -> running deadline
    ssh_timeout: float = 120.0  # running -> SSH banner deadline
    ssh_interval: float = 3.0  # seconds between SSH banner attempts
    quote_ttl: float = 600.0  # a plan's quote expires after this many seconds
    http_timeout: float = 60.0  # seconds to wait for one Vast answer (connect: at most 10)
    ssh_dir: Path = field(default_factory=lambda: Path.home() / ".ssh")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls(
            api_url=env.get("VAST_URL") or DEFAULT_API_URL,
            read_only=_flag(env.get("VAST_MCP_READ_ONLY")),
            confirm="elicit" if env.get("VAST_MCP_CONFIRM", "").strip() == "elicit" else "auto",
            rate_limit=parse_rate(env.get("VAST_MCP_RATE_LIMIT")),
            poll_interval=float(env.get("VAST_MCP_POLL_INTERVAL") or 5.0),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
