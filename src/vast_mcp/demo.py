"""`vast-mcp demo` (being built)."""

from __future__ import annotations

import sys


def run_demo() -> int:
    print("vast-mcp demo is not built yet.", file=sys.stderr)
    return 1
