"""An instance's container log tail, safe to show a model: bounded, secrets redacted, marked untrusted.

Vast writes the log to a URL it hands back (``request_logs`` then ``result_url``); what the
container printed is the host's and the workload's text, so it may hold tokens (an onstart that
echoes ``$HF_TOKEN``) and instructions aimed at the model. Known secrets, well-known token shapes
and ``SECRET_NAME=value`` values are redacted first, then the text is cut and wrapped.
"""

from __future__ import annotations

from vast_mcp.credentials import redact_tokens
from vast_mcp.vast import VastClient
from vast_mcp.views import untrusted

MAX_LOG_CHARS = 8000  # what one result may carry (about 2k tokens)


async def log_tail(vast: VastClient, instance_id: int, lines: int) -> tuple[str, int]:
    """The last ``lines`` lines (redacted, untrusted-wrapped, at most MAX_LOG_CHARS) and how many came."""
    text = await vast.instances.logs(instance_id, tail=lines)
    kept = redact_tokens(text).splitlines()[-lines:]
    shown = "\n".join(kept)
    if len(shown) > MAX_LOG_CHARS:
        shown = "…" + shown[-MAX_LOG_CHARS:]
    return untrusted(shown, MAX_LOG_CHARS + 1) or "", len(kept)
