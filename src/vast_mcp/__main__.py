"""``python -m vast_mcp``: the same as the ``vast-mcp`` command."""

from __future__ import annotations

import sys

from vast_mcp.cli import main

if __name__ == "__main__":
    sys.exit(main())
