"""``python -m vast_mcp.simulator``."""

import sys

from . import main

sys.exit(main())
