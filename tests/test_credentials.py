"""Key sources, their order, key files, the keyring, and redaction.

Hermetic: a fake HOME, no VAST_API_KEY from the outer environment, and an in-memory keyring
backend (or keyring's own "fail" backend) — the real OS keyring is never touched.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import pickle
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import keyring
import keyring.backend
import keyring.core
import keyring.errors
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keyring.backends import fail, null

from tests.helpers import MemoryKeyring, isolated_key_sources
from vast_mcp import credentials
from vast_mcp.credentials import (
    MAX_KEY_FILE_BYTES,
    ApiKey,
    KeyUnavailableError,
    RedactingFilter,
    delete_from_keyring,
    in_key_file_dir,
    key_file_dir,
    key_from_env,
    key_from_file,
    key_from_keyring,
    key_from_vast_cli,
    keyring_status,
    known_secrets,
    looks_like_api_key,
    redact,
    register_secret,
    resolve_api_key,
    store_in_keyring,
)

SERVICE = "vast-mcp"
USER = "default"
KEY = "0123456789abcdef0123456789abcdef"  # 32 hex chars, like a real key; fingerprint …cdef
MARKER = "MARKER-FILE-CONTENT-7f3a"  # recognisable file content that must never show in an error


class LockedKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("the collection is locked")


class ForgetfulKeyring(MemoryKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        pass


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, home: Path) -> Iterator[MemoryKeyring]:
    with isolated_key_sources(monkeypatch, home) as memory:
        yield memory


@pytest.fixture
def no_keyring() -> None:
    """What a headless box without a Secret Service gets."""
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]


@pytest.fixture
def bad_backend_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """PYTHON_KEYRING_BACKEND names a module that does not exist, and keyring has not cached a backend."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "vast_mcp_no_such_module.Keyring")
    keyring.core._keyring_backend = None  # keyring caches the first backend it loads; force a fresh load


def write_cli_key(home: Path, value: str, *, legacy: bool = False) -> Path:
    path = home / ".vast_api_key" if legacy else home / ".config" / "vastai" / "vast_api_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value)
    return path


def write_key_file(tmp_path: Path, content: str | bytes, name: str = ".vast_env", mode: int = 0o600) -> Path:
    path = tmp_path / "keys" / name
    path.parent.mkdir(exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    path.chmod(mode)
    return path


# --------------------------------------------------------------------------- ApiKey


def test_api_key_never_shows_the_secret_in_text_forms() -> None:
    key = ApiKey(KEY, "env")
    forms = [
        repr(key),
        str(key),
        f"{key}",
        f"{key!r}",
        f"{key!s}",
        f"{key:>60}",
        "%r" % (key,),  # noqa: UP031 - the point is to test %-formatting
        "%s" % (key,),  # noqa: UP031
        "{}".format(key),  # noqa: UP032
        repr([key]),
        repr({"k": key}),
    ]
    for text in forms:
        assert KEY not in text
        assert "…cdef" in text
    assert repr(key) == "ApiKey(source='env', fingerprint='…cdef')"


def test_api_key_reveal_fingerprint_origin() -> None:
    key = ApiKey(KEY, "keyring")
    assert key.reveal() == KEY
    assert key.fingerprint == "…cdef"
    assert key.source == "keyring"
    assert key.origin == "keyring service vast-mcp"
    assert ApiKey(KEY, "file", "file /x/.vast_env").origin == "file /x/.vast_env"


def test_fingerprint_never_shows_more_than_four_or_half_of_a_short_key() -> None:
    assert ApiKey("abcdefgh", "env").fingerprint == "…efgh"
    assert ApiKey("sim-key", "env").fingerprint == "…key"
    assert ApiKey("abcd", "env").fingerprint == "…cd"
    assert ApiKey("a", "env").fingerprint == "…"


def test_api_key_is_immutable_and_not_serialisable_by_accident() -> None:
    key = ApiKey(KEY, "env")
    with pytest.raises(AttributeError):
        key.source = "file"
    with pytest.raises(AttributeError):
        del key.origin
    with pytest.raises(TypeError) as pickled:
        pickle.dumps(key)
    assert KEY not in str(pickled.value)
    with pytest.raises(TypeError) as dumped:
        json.dumps({"key": key})
    assert KEY not in str(dumped.value)
    with pytest.raises(TypeError):
        vars(key)
    assert copy.copy(key) is key
    assert copy.deepcopy(key) is key


def test_api_key_equality_and_hash() -> None:
    assert ApiKey(KEY, "env") == ApiKey(KEY, "env")
    assert ApiKey(KEY, "env") != ApiKey(KEY + "0", "env")
    assert ApiKey(KEY, "env") != ApiKey(KEY, "keyring")
    assert len({ApiKey(KEY, "env"), ApiKey(KEY, "env")}) == 1


@pytest.mark.parametrize("bad", ["", "with space", "tab\there", "new\nline", "caf\u00e9-key"])
def test_api_key_rejects_values_that_cannot_be_a_header_and_does_not_echo_them(bad: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII") as info:
        ApiKey(bad, "env")
    if bad:
        assert bad not in str(info.value)


def test_constructing_a_key_registers_it_for_redaction() -> None:
    secret = "registered-by-construction-1234"
    ApiKey(secret, "env")
    assert secret in known_secrets()


def test_looks_like_api_key() -> None:
    assert looks_like_api_key(KEY)
    assert looks_like_api_key("a" * 8)
    assert looks_like_api_key("a" * 256)
    assert not looks_like_api_key("a" * 7)
    assert not looks_like_api_key("a" * 257)
    assert not looks_like_api_key("abc def ghi")
    assert not looks_like_api_key("abcdefgh\n")
    assert not looks_like_api_key("abcdefgh\x00")
    assert not looks_like_api_key("abcdéfgh")
    assert not looks_like_api_key("")


# --------------------------------------------------------------------------- env


def test_env_key_is_stripped() -> None:
    key = key_from_env({"VAST_API_KEY": f"  {KEY}\n"})
    assert key is not None
    assert key.reveal() == KEY
    assert (key.source, key.origin) == ("env", "$VAST_API_KEY")


@pytest.mark.parametrize("value", [None, "", "   ", "\n"])
def test_empty_or_unset_env_is_none(value: str | None) -> None:
    environ = {} if value is None else {"VAST_API_KEY": value}
    assert key_from_env(environ) is None


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAST_API_KEY", KEY)
    key = key_from_env()
    assert key is not None
    assert key.reveal() == KEY


def test_malformed_env_key_is_an_error_without_the_value() -> None:
    value = f"{MARKER} second-word"
    with pytest.raises(KeyUnavailableError, match=r"\$VAST_API_KEY") as info:
        key_from_env({"VAST_API_KEY": value})
    assert MARKER not in str(info.value)


# --------------------------------------------------------------------------- order


def test_env_wins_over_keyring_and_cli_file(isolated: MemoryKeyring, home: Path) -> None:
    isolated.set_password(SERVICE, USER, "from-keyring-1234")
    write_cli_key(home, "from-cli-file-1234")
    key = resolve_api_key({"VAST_API_KEY": "from-env-1234", "HOME": str(home)})
    assert key is not None
    assert (key.source, key.reveal()) == ("env", "from-env-1234")


def test_keyring_wins_over_cli_file(isolated: MemoryKeyring, home: Path) -> None:
    isolated.set_password(SERVICE, USER, "from-keyring-1234")
    write_cli_key(home, "from-cli-file-1234")
    key = resolve_api_key()
    assert key is not None
    assert (key.source, key.reveal(), key.origin) == (
        "keyring",
        "from-keyring-1234",
        "keyring service vast-mcp",
    )


def test_empty_env_is_ignored(isolated: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAST_API_KEY", "  ")
    isolated.set_password(SERVICE, USER, "from-keyring-1234")
    key = resolve_api_key()
    assert key is not None
    assert key.source == "keyring"


def test_cli_file_when_nothing_else(home: Path) -> None:
    write_cli_key(home, "from-cli-file-1234\n")
    key = resolve_api_key()
    assert key is not None
    assert (key.source, key.reveal(), key.origin) == (
        "vast-cli",
        "from-cli-file-1234",
        "~/.config/vastai/vast_api_key",
    )


def test_xdg_file_wins_over_legacy(home: Path) -> None:
    write_cli_key(home, "legacy-key-1234", legacy=True)
    key = key_from_vast_cli()
    assert key is not None
    assert (key.reveal(), key.origin) == ("legacy-key-1234", "~/.vast_api_key")
    write_cli_key(home, "xdg-key-1234")
    key = key_from_vast_cli()
    assert key is not None
    assert key.reveal() == "xdg-key-1234"


def test_xdg_config_home_is_honoured(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "xdg"
    (elsewhere / "vastai").mkdir(parents=True)
    (elsewhere / "vastai" / "vast_api_key").write_text("elsewhere-1234")
    write_cli_key(home, "default-location-1234")  # ~/.config is not the XDG dir any more
    monkeypatch.setenv("XDG_CONFIG_HOME", str(elsewhere))
    key = key_from_vast_cli()
    assert key is not None
    assert (key.reveal(), key.origin) == ("elsewhere-1234", str(elsewhere / "vastai" / "vast_api_key"))


def test_explicit_environ_for_cli_file(tmp_path: Path) -> None:
    other_home = tmp_path / "other"
    write_cli_key(other_home, "other-home-1234", legacy=True)
    key = key_from_vast_cli({"HOME": str(other_home)})
    assert key is not None
    assert key.reveal() == "other-home-1234"
    # a relative XDG_CONFIG_HOME is ignored, as the XDG spec says
    write_cli_key(other_home, "xdg-default-1234")
    key = key_from_vast_cli({"HOME": str(other_home), "XDG_CONFIG_HOME": "relative/dir"})
    assert key is not None
    assert key.reveal() == "xdg-default-1234"


def test_empty_xdg_file_falls_back_to_legacy(home: Path) -> None:
    write_cli_key(home, "\n")
    write_cli_key(home, "legacy-key-1234", legacy=True)
    key = key_from_vast_cli()
    assert key is not None
    assert key.reveal() == "legacy-key-1234"


def test_dangling_xdg_symlink_is_skipped(home: Path) -> None:
    path = home / ".config" / "vastai" / "vast_api_key"
    path.parent.mkdir(parents=True)
    path.symlink_to(home / "nowhere")
    write_cli_key(home, "legacy-key-1234", legacy=True)
    key = key_from_vast_cli()
    assert key is not None
    assert key.reveal() == "legacy-key-1234"


def test_unusable_cli_file_is_an_error_not_a_silent_fallthrough(home: Path) -> None:
    (home / ".config" / "vastai" / "vast_api_key").mkdir(parents=True)
    write_cli_key(home, "legacy-key-1234", legacy=True)
    with pytest.raises(KeyUnavailableError, match="directory"):
        key_from_vast_cli()


def test_nothing_found_is_none() -> None:
    assert resolve_api_key() is None


def test_confirmed_key_file_is_never_auto_discovered(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_key_file(tmp_path, f"VAST_API_KEY={KEY}\n")
    (home / "keys").mkdir()
    (home / "keys" / ".vast_env").write_text(f"VAST_API_KEY={KEY}\n")
    monkeypatch.chdir(home)
    assert resolve_api_key() is None


# --------------------------------------------------------------------------- key files


@pytest.mark.parametrize(
    "content",
    [
        f"VAST_API_KEY={KEY}\n",
        f"VAST_API_KEY={KEY}",
        f"export VAST_API_KEY={KEY}\n",
        f'VAST_API_KEY="{KEY}"\n',
        f"VAST_API_KEY='{KEY}'  # my personal key\n",
        f'export VAST_API_KEY = "{KEY}"\n',
        f"# Vast credentials\nOTHER_SETTING=1\n\nVAST_API_KEY={KEY} # trailing comment\nMORE=x y z\n",
        f"VAST_API_KEY={KEY}\r\nOTHER=2\r\n",
        f"\ufeffVAST_API_KEY={KEY}\n",
        f"VAST_API_KEY={KEY}\nVAST_API_KEY={KEY}\n",  # repeated, same value
        f"{KEY}\n",
        f"  {KEY}  ",
        f"# the key from the Vast console account page\n\n{KEY}\n\n",
    ],
)
def test_key_file_formats(tmp_path: Path, content: str) -> None:
    path = write_key_file(tmp_path, content)
    key = key_from_file(path)
    assert key.reveal() == KEY
    assert key.source == "file"
    assert key.origin == f"file {path.resolve()}"


def test_key_file_expands_user_and_resolves(home: Path) -> None:
    (home / "keys").mkdir()
    target = home / "keys" / ".vast_env"
    target.write_text(f"VAST_API_KEY={KEY}\n")
    target.chmod(0o600)
    (home / "link").symlink_to(home / "keys")
    key = key_from_file("~/link/../keys/.vast_env")
    assert key.reveal() == KEY
    assert key.origin == f"file {target.resolve()}"
    key = key_from_file(home / "link" / ".vast_env")
    assert key.origin == f"file {target.resolve()}"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (f"OTHER_TOKEN={MARKER}\nANOTHER={MARKER}2\n", "no VAST_API_KEY"),
        (f"# {MARKER}\nVAST_KEY={MARKER}\n", "no VAST_API_KEY"),
        (f"{MARKER} {MARKER}\n", "neither"),
        (f"{MARKER}\n{MARKER}-second\n", "neither"),
        ("VAST_API_KEY=\n", "empty"),
        ('VAST_API_KEY=""  # nothing\n', "empty"),
        (f'VAST_API_KEY="{MARKER}\n', "closing quote"),
        (f'VAST_API_KEY="{MARKER}" {MARKER}\n', "after the quoted"),
        (f"VAST_API_KEY=key-one-1234\nVAST_API_KEY={MARKER}\n", "different values"),
        (f'VAST_API_KEY="{MARKER} with spaces"\n', "whitespace"),
        (f"VAST_API_KEY={MARKER}\x07bell\n", "printable"),
        ("", "empty"),
        ("\n# only a comment\n\n", "empty"),
    ],
)
def test_bad_key_file_errors_name_the_path_and_never_the_content(tmp_path: Path, content: str, problem: str) -> None:
    path = write_key_file(tmp_path, content)
    with pytest.raises(KeyUnavailableError) as info:
        key_from_file(path)
    message = str(info.value)
    assert str(path.resolve()) in message
    assert problem in message
    assert MARKER not in message
    assert "key-one" not in message


def test_missing_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "missing.env"
    with pytest.raises(KeyUnavailableError, match="does not exist") as info:
        key_from_file(path)
    assert str(path) in str(info.value)


def test_directory_is_not_a_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyUnavailableError, match="directory") as info:
        key_from_file(tmp_path)
    assert str(tmp_path.resolve()) in str(info.value)


def test_too_large_key_file(tmp_path: Path) -> None:
    path = write_key_file(tmp_path, f"VAST_API_KEY={KEY}\n# {MARKER}" + "#" * MAX_KEY_FILE_BYTES)
    with pytest.raises(KeyUnavailableError, match="too large") as info:
        key_from_file(path)
    assert MARKER not in str(info.value)
    assert KEY not in str(info.value)


def test_file_at_the_size_bound_is_accepted_and_one_byte_more_is_not(tmp_path: Path) -> None:
    head = f"VAST_API_KEY={KEY}\n#"
    path = write_key_file(tmp_path, head + "x" * (MAX_KEY_FILE_BYTES - len(head)))
    assert path.stat().st_size == MAX_KEY_FILE_BYTES == 4096
    assert key_from_file(path).reveal() == KEY
    bigger = write_key_file(tmp_path, head + "x" * (MAX_KEY_FILE_BYTES + 1 - len(head)))
    with pytest.raises(KeyUnavailableError, match="too large to be a key file") as info:
        key_from_file(bigger)
    assert str(MAX_KEY_FILE_BYTES + 1) not in str(info.value), "the exact size is not revealed"


@pytest.mark.parametrize(
    "content",
    [
        b"VAST_API_KEY=" + MARKER.encode() + b"\x00\x01\x02",
        b"\xff\xfe" + MARKER.encode() + b"\x89PNG",
    ],
)
def test_binary_key_file(tmp_path: Path, content: bytes) -> None:
    path = write_key_file(tmp_path, content)
    with pytest.raises(KeyUnavailableError, match="binary") as info:
        key_from_file(path)
    assert MARKER not in str(info.value)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    with pytest.raises(KeyUnavailableError, match="not a regular file"):
        key_from_file(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_key_file(tmp_path: Path) -> None:
    path = write_key_file(tmp_path, f"VAST_API_KEY={MARKER}\n", mode=0o000)
    with pytest.raises(KeyUnavailableError, match="permission denied") as info:
        key_from_file(path)
    assert MARKER not in str(info.value)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_group_or_world_readable_key_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_key_file(tmp_path, f"VAST_API_KEY={KEY}\n", name="shared.env", mode=0o644)
    with caplog.at_level(logging.WARNING, logger="vast_mcp.credentials"):
        assert key_from_file(path).reveal() == KEY
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path.resolve()) in warnings[0]
    assert "0644" in warnings[0]
    assert "chmod 600" in warnings[0]
    assert KEY not in caplog.text
    assert credentials.key_file_warning(path) == warnings[0]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_private_key_file_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_key_file(tmp_path, f"VAST_API_KEY={KEY}\n", name="private.env", mode=0o600)
    with caplog.at_level(logging.WARNING, logger="vast_mcp.credentials"):
        key_from_file(path)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert credentials.key_file_warning(path) is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --------------------------------------------------------------------------- keyring


def test_keyring_roundtrip(isolated: MemoryKeyring) -> None:
    assert key_from_keyring() is None
    store_in_keyring(KEY)
    assert isolated.store == {(SERVICE, USER): KEY}
    key = key_from_keyring()
    assert key is not None
    assert (key.source, key.reveal()) == ("keyring", KEY)
    assert delete_from_keyring() is True
    assert isolated.store == {}
    assert delete_from_keyring() is False
    assert key_from_keyring() is None


def test_keyring_status_names_the_backend() -> None:
    assert keyring_status() == f"available ({MemoryKeyring.__module__}.MemoryKeyring)"


def test_stored_value_is_stripped(isolated: MemoryKeyring) -> None:
    isolated.set_password(SERVICE, USER, f"  {KEY}\n")
    key = key_from_keyring()
    assert key is not None
    assert key.reveal() == KEY
    isolated.set_password(SERVICE, USER, "   ")
    assert key_from_keyring() is None


def test_store_refuses_implausible_keys(isolated: MemoryKeyring) -> None:
    with pytest.raises(ValueError, match="8 to 256"):
        store_in_keyring("short")
    with pytest.raises(ValueError, match="8 to 256") as info:
        store_in_keyring(f"{MARKER} with spaces")
    assert MARKER not in str(info.value)
    assert isolated.store == {}


@pytest.mark.usefixtures("no_keyring")
def test_headless_without_backend(home: Path) -> None:
    assert key_from_keyring() is None
    assert keyring_status().startswith("not available: no OS keyring backend")
    with pytest.raises(KeyUnavailableError, match="not available") as stored:
        store_in_keyring(KEY)
    assert "VAST_API_KEY" in str(stored.value)
    assert KEY not in str(stored.value)
    with pytest.raises(KeyUnavailableError, match="not available"):
        delete_from_keyring()
    write_cli_key(home, "from-cli-file-1234")
    key = resolve_api_key()
    assert key is not None
    assert key.source == "vast-cli"


@pytest.mark.usefixtures("bad_backend_env")
def test_backend_env_naming_a_missing_module_degrades(home: Path) -> None:
    with pytest.raises(ModuleNotFoundError):  # what keyring itself does: proves the set-up is real
        keyring.get_keyring()
    assert key_from_keyring() is None
    status = keyring_status()
    assert status.startswith("not available: PYTHON_KEYRING_BACKEND=vast_mcp_no_such_module.Keyring")
    assert "ModuleNotFoundError" in status
    with pytest.raises(KeyUnavailableError, match="PYTHON_KEYRING_BACKEND"):
        store_in_keyring(KEY)
    with pytest.raises(KeyUnavailableError, match="PYTHON_KEYRING_BACKEND"):
        delete_from_keyring()
    write_cli_key(home, "from-cli-file-1234")
    key = resolve_api_key()
    assert key is not None
    assert key.source == "vast-cli"


def test_null_backend_is_not_available() -> None:
    keyring.set_keyring(null.Keyring())  # type: ignore[no-untyped-call]
    assert keyring_status() == "not available: the keyring is disabled (the null backend is selected)"
    assert key_from_keyring() is None
    with pytest.raises(KeyUnavailableError, match="disabled"):
        store_in_keyring(KEY)


def test_locked_keyring_is_logged_and_skipped(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    keyring.set_keyring(LockedKeyring())
    write_cli_key(home, "from-cli-file-1234")
    with caplog.at_level(logging.DEBUG, logger="vast_mcp.credentials"):
        key = resolve_api_key()
    assert key is not None
    assert key.source == "vast-cli"
    assert "KeyringLocked" in caplog.text
    assert "from-cli-file-1234" not in caplog.text


def test_store_verifies_the_backend_kept_the_key() -> None:
    keyring.set_keyring(ForgetfulKeyring())
    with pytest.raises(KeyUnavailableError, match="did not keep the key") as info:
        store_in_keyring(KEY)
    assert KEY not in str(info.value)


def test_unusable_stored_value_is_an_error_without_the_value(isolated: MemoryKeyring) -> None:
    isolated.set_password(SERVICE, USER, f"{MARKER} two words")
    with pytest.raises(KeyUnavailableError, match="vast-mcp key set") as info:
        key_from_keyring()
    assert MARKER not in str(info.value)


# --------------------------------------------------------------------------- redaction


def test_redact_plain_and_url_encoded_forms() -> None:
    secret = "ab/cd+ef=gh&ij"
    text = (
        f"raw={secret} quoted={quote(secret, safe='')} path={quote(secret)} "
        f"plus={quote_plus(secret)} lower={quote(secret, safe='').lower()} json={json.dumps(secret)}"
    )
    result = redact(text, secret)
    assert secret not in result
    assert quote(secret, safe="") not in result
    assert quote(secret) not in result
    assert quote_plus(secret) not in result
    assert quote(secret, safe="").lower() not in result
    assert result.count("***") == 6
    assert result.startswith("raw=*** quoted=*** path=*** plus=*** lower=*** json=")


def test_redact_quote_plus_form_of_a_secret_with_spaces() -> None:
    secret = "pass word+1"  # redact() takes any secret, not only API keys
    text = f"form: password={quote_plus(secret)}&x=1 query: p={quote(secret)}"
    assert quote_plus(secret) != quote(secret)
    assert redact(text, secret) == "form: password=***&x=1 query: p=***"


def test_redact_ignores_empty_and_short_secrets() -> None:
    assert redact("a b c abc", "", "a", "abc") == "a b c abc"
    assert redact("token abcd here", "abcd") == "token *** here"
    assert redact("nothing to hide") == "nothing to hide"


def test_redact_several_secrets_and_overlaps() -> None:
    assert redact("k1=abcdefgh k2=abcdefghijkl", "abcdefgh", "abcdefghijkl") == "k1=*** k2=***"


_TOKEN_ALPHABET = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="*")


@given(
    secret=st.text(_TOKEN_ALPHABET, min_size=4, max_size=64),
    before=st.text(max_size=20).filter(lambda s: "*" not in s),
    after=st.text(max_size=20).filter(lambda s: "*" not in s),
)
def test_redact_property(secret: str, before: str, after: str) -> None:
    for form in (secret, quote(secret, safe=""), quote_plus(secret)):
        result = redact(before + form + after, secret)
        assert secret not in result
        assert form not in result


def test_register_secret_ignores_short_values() -> None:
    register_secret("xy")
    assert "xy" not in known_secrets()
    register_secret("explicitly-registered-5678")
    assert "explicitly-registered-5678" in known_secrets()
    assert credentials.redact_known("see explicitly-registered-5678") == "see ***"


@pytest.fixture
def redacted_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger("redaction-test")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    root.propagate = False
    try:
        yield (
            logging.getLogger("redaction-test.child"),
            stream,
        )  # a child: the filter sits on the parent's handler
    finally:
        root.removeHandler(handler)
        root.propagate = True


def test_redacting_filter_scrubs_args_and_message(redacted_log: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = redacted_log
    key = ApiKey("filter-test-key-0123456789", "env")  # construction registers the secret
    log.info("Authorization: Bearer %s", key.reveal())
    log.warning("url https://x/?api_key=%(k)s", {"k": quote_plus(key.reveal())})
    log.error(f"pre-formatted {key.reveal()} message")
    log.debug("the object itself is safe: %r", key)
    text = stream.getvalue()
    assert key.reveal() not in text
    assert "Authorization: Bearer ***" in text
    assert "api_key=***" in text
    assert "pre-formatted *** message" in text
    assert "fingerprint='…6789'" in text


def test_redacting_filter_clears_args_and_scrubs_tracebacks(
    redacted_log: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = redacted_log
    secret = ApiKey("traceback-key-0123456789", "env").reveal()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s and %d", (secret, 3), None)
    assert RedactingFilter().filter(record)
    assert record.msg == "key *** and 3"
    assert record.args is None
    try:
        raise RuntimeError(f"server said: bad key {secret}")
    except RuntimeError:
        log.exception("request failed")
    text = stream.getvalue()
    assert "RuntimeError: server said: bad key ***" in text
    assert secret not in text


def test_redacting_filter_survives_a_broken_format_string(
    redacted_log: tuple[logging.Logger, io.StringIO],
) -> None:
    secret = ApiKey("broken-format-key-0123456789", "env").reveal()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "only %s %s", (secret,), None)
    assert RedactingFilter().filter(record)
    assert secret not in str(record.msg)
    assert record.args is None


# -- redaction of cut-off keys (a message truncated mid-key must not leave a usable piece) ----------


@pytest.mark.parametrize("cut", range(1, len(KEY)))
def test_a_key_cut_at_any_point_leaves_no_piece_of_eight_or_more(cut: int) -> None:
    for text in (f"Vast said: invalid key {KEY[:cut]}", f"{KEY[cut:]} was rejected", f"x{KEY}y"[: cut + 30]):
        scrubbed = redact(text, KEY)
        for size in range(8, len(KEY) + 1):
            for start in range(len(KEY) - size + 1):
                assert KEY[start : start + size] not in scrubbed, (cut, text)


def test_pieces_shorter_than_eight_and_unrelated_text_are_kept() -> None:
    assert redact(f"prefix {KEY[:7]} and {KEY[-7:]}", KEY) == f"prefix {KEY[:7]} and {KEY[-7:]}"
    assert redact("nothing secret here at all", KEY) == "nothing secret here at all"
    assert redact(f"a {KEY} b {KEY[:12]} c", KEY) == "a *** b *** c"


def test_encoded_pieces_are_scrubbed_too() -> None:
    key = "vk+slash/equals=0123456789"
    encoded = quote(key, safe="")
    assert "0123456789" not in redact(f"url ...{encoded[5:]}", key)


# -- the key-file directory for clients without forms -----------------------------------------------


def test_key_file_dir_follows_xdg(tmp_path: Path) -> None:
    assert key_file_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "vast-mcp" / "keys"
    assert key_file_dir({"HOME": str(tmp_path)}) == tmp_path / ".config" / "vast-mcp" / "keys"


def test_only_paths_inside_the_key_dir_count_and_symlinks_out_do_not(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    keys = key_file_dir(env)
    keys.mkdir(parents=True)
    inside = keys / "work.env"
    inside.write_text(f"VAST_API_KEY={KEY}\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("not a key")
    (keys / "link").symlink_to(outside)
    assert in_key_file_dir(inside, env)
    assert not in_key_file_dir(outside, env)
    assert not in_key_file_dir(keys / "link", env), "a symlink out of the directory is outside"
    assert not in_key_file_dir(keys / ".." / ".." / "secret.txt", env)
    assert not in_key_file_dir(keys, env), "the directory itself is not a key file"
    assert not in_key_file_dir(str(inside) + "\x00", env)


def test_short_secrets_are_scrubbed_whole_never_piece_by_piece() -> None:
    short = "hunter2pass"  # 11 characters: whole only, so prose sharing 8 of them is left alone
    assert redact("a hunter2pas and hunter2pass", short) == "a hunter2pas and ***"
    assert redact(f"{KEY[:9]}", KEY, fragments=False) == KEY[:9], "fragments=False: whole forms only"
