"""``vast-mcp reap [--dry-run]``: enforce every recorded deadline once (for cron or a systemd timer).

Prints one line per action. Exit status: 0 done, 1 any failure, 2 a bad setting or no key.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping

import anyio

from vast_mcp.credentials import ApiKey, KeyUnavailableError, resolve_api_key
from vast_mcp.settings import Settings
from vast_mcp.spending.deadlines import DeadlineStore, DeadlineStoreError
from vast_mcp.spending.reaper import ReapAction, reap
from vast_mcp.vast import RateBudget, VastClient, VastError, VastHttp

__all__ = ["run_reap"]


def run_reap(*, dry_run: bool, environ: Mapping[str, str] | None = None) -> int:
    try:
        settings = Settings.from_env(environ)
        key = resolve_api_key(environ)
    except (ValueError, KeyUnavailableError) as exc:
        print(f"vast-mcp reap: {exc}", file=sys.stderr)
        return 2
    if key is None:
        print("vast-mcp reap: no API key configured: set VAST_API_KEY or run `vast-mcp key set`.", file=sys.stderr)
        return 2
    store = DeadlineStore(settings.state_dir)
    try:
        actions = anyio.run(_reap_once, settings, key, store, dry_run)
    except (VastError, DeadlineStoreError) as exc:
        print(f"vast-mcp reap: {exc}", file=sys.stderr)
        return 1
    for action in actions:
        print(action.line)
    if dry_run and not actions:
        print(f"nothing to do: {len(store.all())} deadline(s) recorded, none passed and unenforced")
    return 1 if any(a.failed for a in actions) else 0


async def _reap_once(settings: Settings, key: ApiKey, store: DeadlineStore, dry_run: bool) -> list[ReapAction]:
    budget = RateBudget(*settings.rate_limit) if settings.rate_limit else None
    http = VastHttp(key, settings.api_url, timeout=settings.http_timeout, budget=budget)
    async with VastClient(http) as vast:
        return await reap(vast, store, now=time.time(), dry_run=dry_run, poll=settings.poll_interval)
