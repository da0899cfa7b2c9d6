"""The deadline store: persistent across restarts, private, atomic, safe against a second process."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vast_mcp.spending.deadlines import FILE_NAME, Deadline, DeadlineStore, DeadlineStoreError

AT = 1_764_525_600.0


def test_set_get_clear_all(tmp_path: Path) -> None:
    store = DeadlineStore(tmp_path)
    assert store.all() == [] and store.get(1) is None
    store.set(Deadline(2, AT + 10, "destroy", 417000))
    store.set(Deadline(1, AT, "stop", 417000))
    assert store.get(1) == Deadline(1, AT, "stop", 417000)
    assert [d.instance_id for d in store.all()] == [1, 2]  # soonest first
    assert store.clear(1) == Deadline(1, AT, "stop", 417000)
    assert store.clear(1) is None
    assert store.all() == [Deadline(2, AT + 10, "destroy", 417000)]


def test_set_replaces_an_instances_deadline(tmp_path: Path) -> None:
    store = DeadlineStore(tmp_path)
    store.set(Deadline(1, AT, "stop", None))
    store.set(Deadline(1, AT + 3600, "destroy", None))
    assert store.all() == [Deadline(1, AT + 3600, "destroy", None)]


def test_deadlines_survive_a_restart(tmp_path: Path) -> None:
    DeadlineStore(tmp_path).set(Deadline(31000000, AT, "destroy", 417000))
    reopened = DeadlineStore(tmp_path)  # a new server process: nothing shared but the directory
    assert reopened.get(31000000) == Deadline(31000000, AT, "destroy", 417000)


def test_the_directory_and_file_are_private(tmp_path: Path) -> None:
    state_dir = tmp_path / "new" / "state"
    DeadlineStore(state_dir).set(Deadline(1, AT, "stop", None))
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / FILE_NAME).stat().st_mode) == 0o600
    assert sorted(p.name for p in state_dir.iterdir()) == [FILE_NAME, FILE_NAME + ".lock"]  # no temp left


def test_a_bad_deadline_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="stop"):
        Deadline(1, AT, "reboot", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="integer"):
        Deadline(True, AT, "stop", None)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "Expecting property name"),
        ('{"version": 2, "deadlines": []}', "version 1"),
        ('{"version": 1, "deadlines": {}}', "must be a list"),
        ('{"version": 1, "deadlines": [{"instance_id": 1, "at": 5, "action": "pause", "account": null}]}', "0.action"),
        (
            '{"version": 1, "deadlines": [{"instance_id": "1", "at": 5, "action": "stop", "account": null}]}',
            "0.instance_id",
        ),
    ],
)
def test_a_corrupt_file_is_reported_and_never_emptied(tmp_path: Path, content: str, reason: str) -> None:
    store = DeadlineStore(tmp_path)
    store.path.write_text(content)
    for attempt in (store.all, lambda: store.set(Deadline(9, AT, "stop", None)), lambda: store.clear(1)):
        with pytest.raises(DeadlineStoreError) as error:
            attempt()
        assert str(store.path) in str(error.value) and reason in str(error.value)
        assert "move it aside" in str(error.value)
    assert store.path.read_text() == content


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    store = DeadlineStore(tmp_path)
    store.set(Deadline(1, AT, "stop", None))
    store.path.chmod(0)
    with pytest.raises(DeadlineStoreError, match="Permission denied"):
        store.get(1)


def test_a_binary_file_is_reported(tmp_path: Path) -> None:
    store = DeadlineStore(tmp_path)
    store.path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DeadlineStoreError, match="cannot be used"):
        store.all()


def test_the_file_is_plain_json_a_person_can_read(tmp_path: Path) -> None:
    DeadlineStore(tmp_path).set(Deadline(7, AT, "stop", 417000))
    assert json.loads((tmp_path / FILE_NAME).read_text()) == {
        "version": 1,
        "deadlines": [{"instance_id": 7, "at": AT, "action": "stop", "account": 417000}],
    }


WRITER = """
import sys
from pathlib import Path
from vast_mcp.spending.deadlines import Deadline, DeadlineStore

store = DeadlineStore(Path(sys.argv[1]))
first = int(sys.argv[2])
for n in range(first, first + int(sys.argv[3])):
    store.set(Deadline(n, 1.0 * n, "stop", 417000))
    if n % 3 == 0:
        store.clear(n)
"""


def test_two_processes_never_lose_an_update(tmp_path: Path) -> None:
    # `vast-mcp reap` from cron while `serve` records deadlines: two real processes, one file.
    count = 150
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(first), str(count)])
        for first in (1000, 2000)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    expected = {n for first in (1000, 2000) for n in range(first, first + count) if n % 3}
    assert {d.instance_id for d in DeadlineStore(tmp_path).all()} == expected
