"""The in-instance deadline guard: a deadline that holds when the laptop is closed (DESIGN §5b).

The create's onstart starts :func:`guard_script` in the background before the user's own
script. It is POSIX ``sh`` and needs nothing the image may lack: ``curl``, else ``wget``, else
``python3`` for HTTP, plus ``tr``, ``sed``, ``date`` and ``sleep``. At the deadline it stops
(``PUT /api/v0/instances/$CONTAINER_ID/ {"state":"stopped"}``) or destroys
(``DELETE /api/v0/instances/$CONTAINER_ID/``) its own instance with the instance's scoped key,
retrying every check until Vast says yes. It never carries the account key: ``CONTAINER_ID``
and ``CONTAINER_API_KEY`` are read at run time from the container's PID 1 environment, where
Vast puts them.

It learns of a changed deadline from its own instance record: every fifth check (5 minutes by
default) and right before acting it reads ``GET /api/v0/instances/$CONTAINER_ID/?owner=me``
and looks for the tag :func:`tag_label` wrote into the ``"label"`` field. A tag found: that
deadline and action. A read that succeeds without a tag: the deadline was cleared, the guard
exits. A read that fails: it keeps the deadline it knows.

Environment variables the guard reads (tests use them to run it as a local process):

``VAST_MCP_GUARD_URL``
    The Vast API base URL. When unset, the same name in the env file below, else
    ``https://console.vast.ai``.
``VAST_MCP_GUARD_ENV``
    The file holding ``CONTAINER_ID`` and ``CONTAINER_API_KEY`` as NUL- (or newline-)
    separated ``NAME=value`` entries. Default ``/proc/1/environ``.
``VAST_MCP_GUARD_EVERY``
    Seconds between checks (default 60): it acts within that long after the deadline.

Output: one start line and one line per action, nothing else (errors go to ``/dev/null``).
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

from vast_mcp.vast.instances import ONSTART_LIMIT  # Vast's limit on the whole onstart script

__all__ = [
    "GUARD_ENV_FILE_ENV",
    "GUARD_EVERY_ENV",
    "GUARD_URL_ENV",
    "MAX_LABEL",
    "MAX_USER_ONSTART",
    "TAG_PATTERN",
    "DeadlineAction",
    "OnstartTooLong",
    "compose_onstart",
    "guard_script",
    "parse_tag",
    "strip_tag",
    "tag_label",
]

DeadlineAction = Literal["stop", "destroy"]

GUARD_URL_ENV: Final = "VAST_MCP_GUARD_URL"
GUARD_ENV_FILE_ENV: Final = "VAST_MCP_GUARD_ENV"
GUARD_EVERY_ENV: Final = "VAST_MCP_GUARD_EVERY"

MAX_USER_ONSTART: Final = 4000  # what a user's own script may use (checked by the caller)
MAX_LABEL: Final = 1024  # Vast's limit on a label

#: The tag inside a label, e.g. ``[vast-mcp stop@1764525600]``. The guard's sed expression
#: below parses exactly this shape; a label holding several tags means the last one.
TAG_PATTERN: Final = re.compile(r"\[vast-mcp (stop|destroy)@([0-9]+)\]")

# The guard itself. Placeholders: {deadline}, {action}. Every other brace is doubled.
# v NAME: a value from the env file. r METHOD BODY QUERY: one request to this instance's own
# record, through curl (key on stdin, never in argv), else wget, else python3. g: read the record;
# a tag sets D and A, no tag exits, a failed read (or an answer without "instances") changes nothing.
_GUARD: Final = r"""set +e;exec 2>/dev/null
D={deadline} A={action} E=${{VAST_MCP_GUARD_ENV:-/proc/1/environ}}
v(){{ tr '\0' '\n' <"$E"|sed -n "s/^$1=//p"|head -n1;}}
C=$(v CONTAINER_ID) K=$(v CONTAINER_API_KEY) U=${{VAST_MCP_GUARD_URL:-$(v VAST_MCP_GUARD_URL)}}
P=${{U:-https://console.vast.ai}}/api/v0/instances/$C/ T=Content-Type:application/json
[ "$C" ]&&[ "$K" ]||{{ echo "vast-mcp guard: no instance key";exit 1;}}
r(){{ printf 'Authorization: Bearer %s\n' "$K"|curl -fsm30 -X$1 -H@- -H$T ${{2:+-d$2}} "$P$3"||
wget -qO- -T30 --method=$1 ${{2:+--body-data=$2}} --header="Authorization: Bearer $K" --header=$T "$P$3"||
K=$K python3 -c 'import os,sys,urllib.request as u;m,b,p=sys.argv[1:];h={{"Content-Type":"application/json"}}
h["Authorization"]="Bearer "+os.environ["K"]
os.write(1,u.urlopen(u.Request(p,b.encode()or None,h,method=m),timeout=30).read())' $1 "$2" "$P$3";}}
g(){{ j=$(r GET '' '?owner=me')||return;case $j in *'"instances"'*);;*)return;;esac
s=$(printf %s "$j"|sed -nE 's/.*"label": *"([^"\\]|\\.)*\[vast-mcp (stop|destroy)@([0-9]+)\].*/\2 \3/p')
[ "$s" ]||exit 0;set -- $s;A=$1 D=$2;}}
echo "vast-mcp guard: $A at $D";i=0
while :;do t=$(date +%s);{{ [ $((i%5)) = 0 ]||[ $t -ge $D ];}}&&g
if [ $t -ge $D ];then m=PUT b='{{"state":"stopped"}}';[ $A = destroy ]&&m=DELETE b={{}}
r $m "$b" >/dev/null&&{{ echo "vast-mcp guard: $A sent";exit 0;}};fi
i=$((i+1));sleep ${{VAST_MCP_GUARD_EVERY:-60}};done"""


class OnstartTooLong(ValueError):
    """The user's onstart plus the guard would pass Vast's 4,048-character limit."""


def _check_action(action: str) -> DeadlineAction:
    if action not in get_args(DeadlineAction):
        raise ValueError(f"at_deadline must be stop or destroy, not {action!r}")
    return action  # type: ignore[return-value]  # checked just above


def guard_script(deadline: int, action: DeadlineAction) -> str:
    """The POSIX sh guard that stops or destroys this instance at ``deadline`` (unix seconds)."""
    if isinstance(deadline, bool) or not isinstance(deadline, int) or deadline < 0:
        raise ValueError(f"deadline must be unix seconds, not {deadline!r}")
    return _GUARD.format(deadline=deadline, action=_check_action(action))


def compose_onstart(user_onstart: str | None, deadline: int | None, action: DeadlineAction) -> str | None:
    """The onstart to send: the guard started in the background, then the user's script unchanged.

    No deadline: the user's script alone. A user script that starts with ``#!`` keeps that line
    first. Raises :class:`OnstartTooLong` when the result passes Vast's limit; the caller checks
    :data:`MAX_USER_ONSTART` for the user's own part.
    """
    if deadline is None:
        return user_onstart
    launch = f"(\n{guard_script(deadline, action)}\n) &\n"
    user = user_onstart or ""
    shebang, rest = ("", user)
    if user.startswith("#!"):
        first, _, rest = user.partition("\n")
        shebang = first + "\n"
    composed = shebang + launch + rest
    if len(composed) > ONSTART_LIMIT:
        room = ONSTART_LIMIT - len(launch)
        raise OnstartTooLong(
            f"The onstart script ({len(user):,} characters) plus the deadline guard ({len(launch):,}) is "
            f"{len(composed):,} characters, over Vast's limit of {ONSTART_LIMIT:,}. Shorten the script to at "
            f"most {room:,} characters, or rent with no deadline (max_hours 0) to leave it unchanged."
        )
    return composed


def _tag(deadline: int, action: DeadlineAction) -> str:
    return f"[vast-mcp {_check_action(action)}@{deadline}]"


def strip_tag(label: str) -> str:
    """The label without any deadline tag (and the space before it)."""
    return re.sub(r" ?" + TAG_PATTERN.pattern, "", label).strip()


def tag_label(base: str, deadline: int, action: DeadlineAction) -> str:
    """``base`` with a deadline tag the guard reads, e.g. ``"alice [vast-mcp stop@1764525600]"``.

    Any tag already in ``base`` is replaced; ``base`` is shortened so the whole label stays
    within Vast's 1,024 characters.
    """
    tag = _tag(deadline, action)
    text = strip_tag(base)
    room = MAX_LABEL - len(tag) - 1
    text = text[:room].rstrip()
    return f"{text} {tag}" if text else tag


def parse_tag(label: str | None) -> tuple[int, DeadlineAction] | None:
    """The (deadline, action) a label's tag carries; the last tag wins, as in the guard."""
    found = TAG_PATTERN.findall(label or "")
    if not found:
        return None
    action, deadline = found[-1]
    return int(deadline), _check_action(action)
