"""`vast-mcp key set|status|delete`: the API key in the OS keyring.

The key is read from stdin when stdin is not a terminal (first line), otherwise from a hidden
prompt; never from the command line, where it would land in shell history and `ps`. Nothing
this module prints contains the key: only its source and fingerprint.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, TextIO

from vast_mcp.credentials import (
    ENV_VAR,
    KEYRING_SERVICE,
    ApiKey,
    KeyUnavailableError,
    delete_from_keyring,
    key_from_env,
    key_from_keyring,
    key_from_vast_cli,
    keyring_status,
    looks_like_api_key,
    register_secret,
    resolve_api_key,
    store_in_keyring,
    vast_cli_key_paths,
)

__all__ = ["KeyAction", "run_key_command"]

KeyAction = Literal["set", "status", "delete"]

_MAX_INPUT_CHARS = 4096
_PROMPT = "Vast API key: "
_HOW_TO_SET = (
    "Set one with `vast-mcp key set` (reads stdin or prompts, stores it in the OS keyring), "
    f"or export {ENV_VAR} in the MCP client's environment, "
    "or choose a key file (VAST_API_KEY=..., chmod 600)."
)
_NO_KEYRING_HINT = (
    f"Use {ENV_VAR} in the MCP client's environment instead, or put a line VAST_API_KEY=<key> "
    "in a key file (chmod 600) and choose it when the server asks."
)


def run_key_command(
    action: KeyAction,
    *,
    stdin: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``vast-mcp key <action>``; returns the exit code (0 ok, 1 failed, 2 usage).

    ``stdin``/``out``/``err`` default to the process streams at call time; ``environ`` to
    ``os.environ``.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if action == "set":
        return _set(sys.stdin if stdin is None else stdin, environ, out, err)
    if action == "status":
        return _status(environ, out, err)
    if action == "delete":
        return _delete(environ, out, err)
    print(f"usage: vast-mcp key {{set|status|delete}} (got {action!r})", file=err)
    return 2


# --------------------------------------------------------------------------- set


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # closed or unusual streams
        return False


def _read_secret(stdin: TextIO, err: TextIO) -> str | None:
    """The key typed or piped in, stripped; ``None`` when reading was cancelled."""
    if _isatty(stdin):
        try:
            return getpass.getpass(_PROMPT).strip()
        except EOFError:
            return ""
    try:
        return stdin.readline(_MAX_INPUT_CHARS).strip()
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        print(f"Could not read the key from stdin ({type(exc).__name__}); nothing stored.", file=err)
        return None


def _set(stdin: TextIO, environ: Mapping[str, str] | None, out: TextIO, err: TextIO) -> int:
    try:
        secret = _read_secret(stdin, err)
    except KeyboardInterrupt:
        print("\nCancelled; nothing stored.", file=err)
        return 130
    if secret is None:
        return 1
    register_secret(secret)  # from now on any log line or message is scrubbed of it
    if not secret:
        print(
            "No key given; nothing stored. Pipe it in (e.g. `vast-mcp key set < keyfile`) "
            "or run `vast-mcp key set` in a terminal to be prompted.",
            file=err,
        )
        return 1
    if not looks_like_api_key(secret):
        print(
            "That does not look like a Vast API key (expected 8 to 256 printable ASCII characters "
            "without spaces); nothing stored. Copy it again from https://cloud.vast.ai/account/ .",
            file=err,
        )
        return 1
    status = keyring_status()
    if not status.startswith("available"):
        print(f"Nothing stored: the OS keyring is {status}.", file=err)
        print(_NO_KEYRING_HINT, file=err)
        return 1
    try:
        store_in_keyring(secret)
    except (KeyUnavailableError, ValueError) as exc:
        print(str(exc), file=err)
        return 1
    key = ApiKey(secret, "keyring")
    print(f"Stored in the OS keyring (service {KEYRING_SERVICE}), fingerprint {key.fingerprint}.", file=out)
    try:
        env_key = key_from_env(environ)
    except KeyUnavailableError:
        env_key = None
        print(f"Note: {ENV_VAR} is set (to something unusable) and is tried before the keyring.", file=out)
    if env_key is not None:
        print(
            f"Note: {ENV_VAR} is set in this environment (fingerprint {env_key.fingerprint}) "
            "and takes precedence over the keyring.",
            file=out,
        )
    return 0


# --------------------------------------------------------------------------- status


def _display_path(path: Path, home: Path) -> str:
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def _probe(source: Callable[[], ApiKey | None]) -> tuple[ApiKey | None, str | None]:
    try:
        return source(), None
    except KeyUnavailableError as exc:
        return None, str(exc)


def _status(environ: Mapping[str, str] | None, out: TextIO, err: TextIO) -> int:
    active, active_problem = _probe(lambda: resolve_api_key(environ))
    if active is not None:
        print(f"Active API key: {active.source} ({active.origin}), fingerprint {active.fingerprint}", file=out)
    elif active_problem is not None:
        print(f"No usable API key: {active_problem}", file=out)
    else:
        print(f"No API key found. {_HOW_TO_SET}", file=out)

    print("Sources, in the order they are tried:", file=out)

    env_key, env_problem = _probe(lambda: key_from_env(environ))
    if env_key is not None:
        env_line = f"set, fingerprint {env_key.fingerprint}"
    elif env_problem is not None:
        env_line = "set but unusable (whitespace or non-ASCII characters)"
    else:
        env_line = "unset"
    print(f"  1. env       ${ENV_VAR}: {env_line}", file=out)

    ring = keyring_status()
    if ring.startswith("available"):
        ring_key, ring_problem = _probe(key_from_keyring)
        if ring_key is not None:
            stored = f"key stored, fingerprint {ring_key.fingerprint}"
        elif ring_problem is not None:
            stored = "stored value unusable; run `vast-mcp key set` again"
        else:
            stored = "no key stored"
        ring_line = f"{ring}; {stored}"
    else:
        ring_line = ring
    print(f"  2. keyring   service {KEYRING_SERVICE}: {ring_line}", file=out)

    cli_key, cli_problem = _probe(lambda: key_from_vast_cli(environ))
    home = Path(environ["HOME"]) if environ is not None and environ.get("HOME") else Path.home()
    presence = ", ".join(
        f"{_display_path(path, home)} {'present' if os.path.lexists(path) else 'absent'}"
        for path in vast_cli_key_paths(environ)
    )
    if cli_key is not None:
        cli_line = f"{presence}; using {cli_key.origin}, fingerprint {cli_key.fingerprint}"
    elif cli_problem is not None:
        cli_line = f"{presence}; unusable: {cli_problem}"
    else:
        cli_line = presence
    print(f"  3. vast-cli  {cli_line}", file=out)
    print("A key file you confirm (VAST_API_KEY=... lines) is only used when chosen explicitly.", file=out)
    return 0


# --------------------------------------------------------------------------- delete


def _delete(environ: Mapping[str, str] | None, out: TextIO, err: TextIO) -> int:
    try:
        removed = delete_from_keyring()
    except KeyUnavailableError as exc:
        print(str(exc), file=err)
        return 1
    if removed:
        print(f"Removed the API key from the OS keyring (service {KEYRING_SERVICE}).", file=out)
    else:
        print(f"No API key was stored in the OS keyring (service {KEYRING_SERVICE}); nothing removed.", file=out)
    remaining, _ = _probe(lambda: resolve_api_key(environ))
    if remaining is not None:
        print(
            f"Note: a key is still available from {remaining.origin} (fingerprint {remaining.fingerprint}).",
            file=out,
        )
    return 0
