"""`vast-mcp key set|status|delete` against an in-memory keyring; the key never shows in output."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.core
import keyring.errors
import pytest
from keyring.backends import fail

from tests.helpers import MemoryKeyring, isolated_key_sources
from vast_mcp.keycli import run_key_command

SERVICE = "vast-mcp"
USER = "default"
KEY = "f00dfeed0123456789abcdef01234567"  # fingerprint …4567
ENV_KEY = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0aaaa"  # fingerprint …aaaa
CLI_KEY = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1bbbb"  # fingerprint …bbbb


class TtyInput(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def memory(monkeypatch: pytest.MonkeyPatch, home: Path) -> Iterator[MemoryKeyring]:
    with isolated_key_sources(monkeypatch, home) as backend:
        yield backend


@pytest.fixture
def no_keyring() -> None:
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]


def run(action: str, stdin: io.StringIO | None = None, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_key_command(
        action,  # type: ignore[arg-type]
        stdin=stdin if stdin is not None else io.StringIO(""),
        environ=environ,
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue()


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (KEY, ENV_KEY, CLI_KEY):
            assert secret not in text


def write_cli_key(home: Path, value: str) -> Path:
    path = home / ".config" / "vastai" / "vast_api_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value)
    return path


# --------------------------------------------------------------------------- set


def test_set_from_piped_stdin(memory: MemoryKeyring) -> None:
    code, out, err = run("set", io.StringIO(f"  {KEY}  \nsecond line is ignored\n"))
    assert code == 0, err
    assert memory.store == {(SERVICE, USER): KEY}
    assert out == "Stored in the OS keyring (service vast-mcp), fingerprint …4567.\n"
    assert err == ""
    assert_no_secret(out, err)


def test_set_never_prompts_when_stdin_is_piped(monkeypatch: pytest.MonkeyPatch, memory: MemoryKeyring) -> None:
    def no_prompt(prompt: str = "") -> str:
        raise AssertionError("must not prompt when stdin is a pipe")

    monkeypatch.setattr("getpass.getpass", no_prompt)
    code, _, _ = run("set", io.StringIO(KEY + "\n"))
    assert code == 0
    assert memory.store[(SERVICE, USER)] == KEY


def test_set_prompts_hidden_on_a_terminal(monkeypatch: pytest.MonkeyPatch, memory: MemoryKeyring) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return KEY

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    stdin = TtyInput("this must not be read\n")
    code, out, err = run("set", stdin)
    assert code == 0, err
    assert prompts == ["Vast API key: "]
    assert stdin.tell() == 0  # the terminal was not read directly: getpass hides the echo
    assert memory.store[(SERVICE, USER)] == KEY
    assert "…4567" in out
    assert_no_secret(out, err)


def test_set_prompt_cancelled(monkeypatch: pytest.MonkeyPatch, memory: MemoryKeyring) -> None:
    def interrupted(prompt: str = "") -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("getpass.getpass", interrupted)
    code, _, err = run("set", TtyInput())
    assert code == 130
    assert "nothing stored" in err
    assert memory.store == {}


def test_set_with_env_key_notes_precedence(memory: MemoryKeyring) -> None:
    code, out, err = run("set", io.StringIO(KEY), environ={"VAST_API_KEY": ENV_KEY})
    assert code == 0
    assert "VAST_API_KEY is set" in out
    assert "…aaaa" in out
    assert "precedence" in out
    assert_no_secret(out, err)


@pytest.mark.usefixtures("no_keyring")
def test_set_without_backend_fails_clearly() -> None:
    code, out, err = run("set", io.StringIO(KEY + "\n"))
    assert code == 1
    assert out == ""
    assert "Nothing stored" in err
    assert "not available" in err
    assert "VAST_API_KEY" in err
    assert "key file" in err
    assert_no_secret(out, err)


def test_set_with_bad_backend_module_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "vast_mcp_no_such_module.Keyring")
    keyring.core._keyring_backend = None
    code, out, err = run("set", io.StringIO(KEY + "\n"))
    assert code == 1
    assert "PYTHON_KEYRING_BACKEND" in err
    assert_no_secret(out, err)


@pytest.mark.parametrize("stdin", ["", "\n", "   \n", "\nkey-on-second-line-123\n"])
def test_set_empty_input(memory: MemoryKeyring, stdin: str) -> None:
    code, out, err = run("set", io.StringIO(stdin))
    assert code == 1
    assert "No key given" in err
    assert memory.store == {}
    assert "key-on-second-line" not in out + err


@pytest.mark.parametrize("value", ["short", "two words here-123456", "caf\u00e9-0123456789", "x" * 300])
def test_set_invalid_input_is_refused_without_echo(memory: MemoryKeyring, value: str) -> None:
    code, out, err = run("set", io.StringIO(value + "\n"))
    assert code == 1
    assert "does not look like a Vast API key" in err
    assert value not in out + err
    assert memory.store == {}


def test_unknown_action_is_a_usage_error() -> None:
    code, out, err = run("show")
    assert code == 2
    assert "usage" in err
    assert out == ""


# --------------------------------------------------------------------------- status


def test_status_nothing_found() -> None:
    code, out, err = run("status")
    assert code == 0
    assert "No API key found" in out
    assert "vast-mcp key set" in out
    assert "$VAST_API_KEY: unset" in out
    assert "no key stored" in out
    assert "absent" in out
    assert err == ""


def test_status_env(home: Path) -> None:
    code, out, err = run("status", environ={"VAST_API_KEY": ENV_KEY, "HOME": str(home)})
    assert code == 0
    assert out.splitlines()[0] == "Active API key: env ($VAST_API_KEY), fingerprint …aaaa"
    assert "$VAST_API_KEY: set, fingerprint …aaaa" in out
    assert_no_secret(out, err)


def test_status_keyring(memory: MemoryKeyring) -> None:
    memory.set_password(SERVICE, USER, KEY)
    code, out, err = run("status")
    assert code == 0
    assert out.splitlines()[0] == "Active API key: keyring (keyring service vast-mcp), fingerprint …4567"
    assert f"available ({MemoryKeyring.__module__}.MemoryKeyring); key stored, fingerprint …4567" in out
    assert_no_secret(out, err)


def test_status_vast_cli_file(home: Path) -> None:
    write_cli_key(home, CLI_KEY + "\n")
    code, out, err = run("status")
    assert code == 0
    assert out.splitlines()[0] == ("Active API key: vast-cli (~/.config/vastai/vast_api_key), fingerprint …bbbb")
    assert "~/.config/vastai/vast_api_key present, ~/.vast_api_key absent" in out
    assert_no_secret(out, err)


def test_status_all_sources_env_active(memory: MemoryKeyring, home: Path) -> None:
    memory.set_password(SERVICE, USER, KEY)
    write_cli_key(home, CLI_KEY)
    code, out, err = run("status", environ={"VAST_API_KEY": ENV_KEY, "HOME": str(home)})
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Active API key: env")
    assert any("…aaaa" in line and "1. env" in line for line in lines)
    assert any("…4567" in line and "2. keyring" in line for line in lines)
    assert any("…bbbb" in line and "3. vast-cli" in line for line in lines)
    assert_no_secret(out, err)


@pytest.mark.usefixtures("no_keyring")
def test_status_without_backend(home: Path) -> None:
    write_cli_key(home, CLI_KEY)
    code, out, err = run("status")
    assert code == 0
    assert "keyring   service vast-mcp: not available: no OS keyring backend" in out
    assert out.startswith("Active API key: vast-cli")
    assert_no_secret(out, err)


def test_status_with_bad_backend_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "vast_mcp_no_such_module.Keyring")
    keyring.core._keyring_backend = None
    code, out, _ = run("status")
    assert code == 0
    assert "not available: PYTHON_KEYRING_BACKEND=vast_mcp_no_such_module.Keyring" in out
    assert "No API key found" in out


def test_status_with_unusable_env_value_does_not_show_it() -> None:
    value = "MARKER-ENV-VALUE with a space"
    code, out, err = run("status", environ={"VAST_API_KEY": value})
    assert code == 0
    assert "No usable API key" in out
    assert "set but unusable" in out
    assert "MARKER-ENV-VALUE" not in out + err


# --------------------------------------------------------------------------- delete


def test_delete_stored_key(memory: MemoryKeyring) -> None:
    memory.set_password(SERVICE, USER, KEY)
    code, out, err = run("delete")
    assert code == 0
    assert "Removed the API key from the OS keyring" in out
    assert memory.store == {}
    assert_no_secret(out, err)


def test_delete_when_nothing_stored(memory: MemoryKeyring) -> None:
    code, out, _ = run("delete")
    assert code == 0
    assert "nothing removed" in out
    assert memory.store == {}


def test_delete_notes_a_key_still_available(memory: MemoryKeyring, home: Path) -> None:
    memory.set_password(SERVICE, USER, KEY)
    write_cli_key(home, CLI_KEY)
    code, out, err = run("delete")
    assert code == 0
    assert "still available from ~/.config/vastai/vast_api_key (fingerprint …bbbb)" in out
    assert_no_secret(out, err)


@pytest.mark.usefixtures("no_keyring")
def test_delete_without_backend() -> None:
    code, out, err = run("delete")
    assert code == 1
    assert "not available" in err
    assert out == ""


# --------------------------------------------------------------------------- wiring


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logging")
def test_cli_key_set_and_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], memory: MemoryKeyring
) -> None:
    from vast_mcp.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(KEY + "\n"))
    assert main(["key", "set"]) == 0
    assert memory.store[(SERVICE, USER)] == KEY
    assert main(["key", "status"]) == 0
    captured = capsys.readouterr()
    assert "fingerprint …4567" in captured.out
    assert_no_secret(captured.out, captured.err)
