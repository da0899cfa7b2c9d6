"""The guard as text: POSIX sh that parses, small, composed with a user's onstart; the label tag."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vast_mcp.spending.guard import (
    MAX_LABEL,
    MAX_USER_ONSTART,
    TAG_PATTERN,
    OnstartTooLong,
    compose_onstart,
    guard_script,
    parse_tag,
    strip_tag,
    tag_label,
)
from vast_mcp.vast.instances import ONSTART_LIMIT

from .support import SHELLS

DEADLINE = 1_764_525_600
GUARD_SIZE_LIMIT = 1400  # measured 1,367; fails if the guard grows much


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("action", ["stop", "destroy"])
def test_the_guard_parses_in_every_shell(shell: str, action: str) -> None:
    script = guard_script(DEADLINE, action)  # type: ignore[arg-type]
    result = subprocess.run([shell, "-n", "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_dash_is_among_the_shells() -> None:
    # dash is the strict POSIX shell here: without it the tests above prove less.
    assert "dash" in SHELLS


def test_the_guard_is_small_and_names_no_key() -> None:
    script = guard_script(DEADLINE, "destroy")
    assert len(script) <= GUARD_SIZE_LIMIT
    assert "D=1764525600 A=destroy" in script
    # It reads the instance's own key at run time, from the env file; nothing key-like is baked in.
    assert "CONTAINER_API_KEY" in script and "VAST_API_KEY" not in script
    assert not re.search(r"[0-9a-f]{32}", script)


def test_the_guard_has_no_bashisms() -> None:
    script = guard_script(DEADLINE, "stop")
    for bashism in ("[[", "function ", "$'", "<<<", "==", "local ", "source ", "${!", "&>"):
        assert bashism not in script


@pytest.mark.parametrize("bad", [-1, 1.5, True, "123"])
def test_a_bad_deadline_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="unix seconds"):
        guard_script(bad, "stop")  # type: ignore[arg-type]


def test_a_bad_action_is_refused() -> None:
    with pytest.raises(ValueError, match="stop or destroy"):
        guard_script(DEADLINE, "reboot")  # type: ignore[arg-type]


def test_compose_runs_the_guard_in_the_background_first() -> None:
    composed = compose_onstart("echo hello\npython train.py", DEADLINE, "stop")
    assert composed is not None
    assert composed.startswith("(\n" + guard_script(DEADLINE, "stop") + "\n) &\n")
    assert composed.endswith("echo hello\npython train.py")


def test_compose_without_a_deadline_leaves_the_script_alone() -> None:
    assert compose_onstart("echo hello", None, "stop") == "echo hello"
    assert compose_onstart(None, None, "destroy") is None


def test_compose_with_no_user_script_is_the_guard_alone() -> None:
    assert compose_onstart(None, DEADLINE, "destroy") == "(\n" + guard_script(DEADLINE, "destroy") + "\n) &\n"


def test_compose_keeps_a_shebang_first() -> None:
    composed = compose_onstart("#!/bin/bash\nset -e\necho hi", DEADLINE, "stop")
    assert composed is not None
    assert composed.startswith("#!/bin/bash\n(\n")
    assert composed.endswith(") &\nset -e\necho hi")


def test_compose_fits_exactly_at_the_limit_and_refuses_one_more() -> None:
    room = ONSTART_LIMIT - len(compose_onstart("", DEADLINE, "stop") or "")
    assert 2500 < room < MAX_USER_ONSTART  # what a user's script may use next to the guard
    assert len(compose_onstart("x" * room, DEADLINE, "stop") or "") == ONSTART_LIMIT
    with pytest.raises(OnstartTooLong) as refused:
        compose_onstart("x" * (room + 1), DEADLINE, "stop")
    message = str(refused.value)
    assert f"{room + 1:,} characters" in message and "4,048" in message
    assert f"at most {room:,} characters" in message and "no deadline" in message


def test_a_user_script_at_its_own_limit_fits_without_a_deadline() -> None:
    script = "x" * MAX_USER_ONSTART
    assert compose_onstart(script, None, "stop") == script


def test_tag_label_reads_in_the_console_and_round_trips() -> None:
    label = tag_label("alice", DEADLINE, "stop")
    assert label == "alice [vast-mcp stop@1764525600]"
    assert parse_tag(label) == (DEADLINE, "stop")
    assert strip_tag(label) == "alice"


def test_tag_label_replaces_an_old_tag() -> None:
    label = tag_label(tag_label("alice", DEADLINE, "stop"), DEADLINE + 3600, "destroy")
    assert label == "alice [vast-mcp destroy@1764529200]"
    assert len(TAG_PATTERN.findall(label)) == 1


def test_tag_label_of_an_empty_base_is_the_tag() -> None:
    assert tag_label("", DEADLINE, "stop") == "[vast-mcp stop@1764525600]"


def test_tag_label_stays_within_vasts_limit() -> None:
    label = tag_label("a" * 5000, DEADLINE, "destroy")
    assert len(label) == MAX_LABEL
    assert parse_tag(label) == (DEADLINE, "destroy")


@pytest.mark.parametrize(
    "label",
    [
        None,
        "",
        "alice",
        "[vast-mcp reboot@1]",
        "[vast-mcp stop@]",
        "[vast-mcp stop@\uff11\uff12]",  # fullwidth digits
        "vast-mcp stop@5",
    ],
)
def test_parse_tag_finds_nothing_in_other_labels(label: str | None) -> None:
    assert parse_tag(label) is None


def test_parse_tag_takes_the_last_tag() -> None:
    assert parse_tag("[vast-mcp stop@5] x [vast-mcp destroy@7]") == (7, "destroy")


# ---------------------------------------------------------------- the guard's sed = parse_tag

_SED = re.compile(r"sed -nE '([^']*)'")


def _guard_reads(labels: list[str | None], *, ensure_ascii: bool) -> list[tuple[int, str] | None]:
    """What the guard's own sed expression finds in each label, inside a real instance record."""
    expression = _SED.search(guard_script(DEADLINE, "stop"))
    assert expression is not None
    records = []
    for label in labels:
        # Tag-like text elsewhere in the record must not count: only the "label" field does.
        record = {
            "instances": {
                "id": 7,
                "status_msg": '"label": "[vast-mcp destroy@1]"',
                "label": label,
                "extra_env": [["label", "[vast-mcp destroy@2]"]],
                "onstart": guard_script(3, "destroy"),
            }
        }
        records.append(json.dumps(record, ensure_ascii=ensure_ascii))
    # One output line per record: the tag's "action deadline", or "-" when the sed finds none.
    result = subprocess.run(
        ["dash", "-c", 'sed -nE -e "$1" -e t -e "s/.*/-/p"', "sed", expression.group(1)],
        input="\n".join(records) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    found: list[tuple[int, str] | None] = []
    for line in result.stdout.splitlines():
        action, _, deadline = line.partition(" ")
        found.append(None if line == "-" else (int(deadline), action))
    return found


TRICKY_LABELS = [
    None,
    "",
    "alice",
    tag_label("alice", DEADLINE, "stop"),
    tag_label('say "hi" \\ [vast-mcp', DEADLINE, "destroy"),
    'a "quoted" [vast-mcp stop@9] label',
    "back\\slash [vast-mcp destroy@12]",
    "ends with a backslash \\",
    "[vast-mcp stop@5] then [vast-mcp destroy@6]",
    "naïve ünïcode ✓ [vast-mcp stop@42]",
    "new\nline\t[vast-mcp destroy@8]",
    "[vast-mcp stop@] [vast-mcp pause@3]",
]


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_the_guard_reads_the_label_exactly_as_parse_tag(ensure_ascii: bool) -> None:
    expected = [(tag[0], tag[1]) if (tag := parse_tag(label)) else None for label in TRICKY_LABELS]
    assert _guard_reads(TRICKY_LABELS, ensure_ascii=ensure_ascii) == expected


label_text = st.text(alphabet=st.sampled_from('ab "\\[]@-0123456789 vast-mcpstopdestroyé\n'), max_size=40)


@settings(max_examples=40, deadline=None)
@given(
    parts=st.lists(
        st.one_of(label_text, st.builds(tag_label, label_text, st.integers(0, 2**31), st.just("stop"))), max_size=4
    )
)
def test_the_guard_and_parse_tag_agree_on_any_label(parts: list[str]) -> None:
    label = "".join(parts)
    tag = parse_tag(label)
    assert _guard_reads([label], ensure_ascii=True) == [(tag[0], tag[1]) if tag else None]
