"""Where the Vast API key comes from, and how it is kept out of every output.

Sources (DESIGN §2), in the default order used by :func:`resolve_api_key`:

1. ``$VAST_API_KEY``;
2. the OS keyring, service ``vast-mcp``, user ``default`` (written by ``vast-mcp key set``);
3. the official ``vastai`` CLI's file: ``$XDG_CONFIG_HOME/vastai/vast_api_key``
   (default ``~/.config/vastai/vast_api_key``), then the legacy ``~/.vast_api_key``.

A key file the user confirmed (``KEY=value`` lines or a bare key, e.g. ``keys/.vast_env``) is
never discovered automatically: it is read only when chosen explicitly with :func:`key_from_file`.

The secret lives inside :class:`ApiKey` and leaves it only through :meth:`ApiKey.reveal`. Every
secret that was ever loaded is registered process-wide, so :class:`RedactingFilter` and
:func:`redact_known` can scrub it from any log line or message, including its URL-encoded forms.
Nothing in this module puts key material or key-file content into an exception or a log line.
"""

from __future__ import annotations

import errno
import functools
import hmac
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn, get_args
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

__all__ = [
    "ENV_VAR",
    "KEYRING_SERVICE",
    "KEYRING_USERNAME",
    "MAX_KEY_FILE_BYTES",
    "ApiKey",
    "KeySourceKind",
    "KeyUnavailableError",
    "RedactingFilter",
    "delete_from_keyring",
    "in_key_file_dir",
    "key_file_dir",
    "key_file_warning",
    "key_from_env",
    "key_from_file",
    "key_from_keyring",
    "key_from_vast_cli",
    "keyring_secret",
    "keyring_status",
    "known_secrets",
    "looks_like_api_key",
    "redact",
    "redact_known",
    "redact_tokens",
    "register_secret",
    "resolve_api_key",
    "store_in_keyring",
    "vast_cli_key_paths",
]

logger = logging.getLogger(__name__)

KeySourceKind = Literal["env", "file", "keyring", "vast-cli"]

ENV_VAR: Final = "VAST_API_KEY"
KEYRING_SERVICE: Final = "vast-mcp"
KEYRING_USERNAME: Final = "default"
MAX_KEY_FILE_BYTES: Final = 4096  # a key file is a few lines; nothing bigger is read
# Shorter strings are not scrubbed: "***" everywhere would hide more than it protects.
_MIN_SECRET_LEN: Final = 4

_SOURCES: Final[frozenset[str]] = frozenset(get_args(KeySourceKind))
_DEFAULT_ORIGINS: Final[dict[str, str]] = {
    "env": f"${ENV_VAR}",
    "file": "key file",
    "keyring": f"keyring service {KEYRING_SERVICE}",
    "vast-cli": "~/.config/vastai/vast_api_key",
}
_SET_KEY_HINT: Final = (
    f"set {ENV_VAR} in the MCP client's environment, store the key with `vast-mcp key set`, "
    "or choose a key file (a line VAST_API_KEY=... , chmod 600)"
)


class KeyUnavailableError(Exception):
    """A key source was tried and cannot provide a usable key.

    The message names the source and says what to do next; it never contains key material
    or the content of a key file.
    """


# --------------------------------------------------------------------------- secrets registry


_registry_lock = threading.Lock()
_registry: set[str] = set()


def register_secret(secret: str) -> None:
    """Remember ``secret`` process-wide so that logs and messages can be scrubbed of it."""
    if len(secret) >= _MIN_SECRET_LEN:
        with _registry_lock:
            _registry.add(secret)


def known_secrets() -> tuple[str, ...]:
    """Every registered secret, longest first."""
    with _registry_lock:
        return tuple(sorted(_registry, key=len, reverse=True))


def _encoded_forms(secret: str) -> set[str]:
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
    }
    # Percent-encoding is case-insensitive in its hex digits; some encoders write %2f.
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), form) for form in list(forms)}
    return forms


# Any run of this many characters copied out of a secret is scrubbed too: a message cut short (a
# truncated error, a log tail) must not leave a long prefix or suffix of a key behind. Only for
# secrets long enough to be keys: a short one is scrubbed whole, never piece by piece.
_FRAGMENT: Final = 8
_FRAGMENTED_FROM: Final = 16


@functools.lru_cache(maxsize=64)
def _patterns(secrets: tuple[str, ...], fragments: bool) -> tuple[re.Pattern[str] | None, frozenset[str]]:
    """(a regex of the whole forms, every ``_FRAGMENT``-character piece of the long forms)."""
    whole: set[str] = set()
    pieces: set[str] = set()
    for secret in secrets:
        if len(secret) < _MIN_SECRET_LEN:
            continue
        for form in _encoded_forms(secret):
            if fragments and len(secret) >= _FRAGMENTED_FROM:
                pieces.update(form[i : i + _FRAGMENT] for i in range(len(form) - _FRAGMENT + 1))
            else:
                whole.add(form)
    pattern = "|".join(re.escape(form) for form in sorted(whole, key=len, reverse=True))
    return (re.compile(pattern) if pattern else None), frozenset(pieces)


def redact(text: str, *secrets: str, fragments: bool = True) -> str:
    """Replace every secret and its URL-encoded / ``quote_plus`` / escaped forms with ``***``;
    for secrets of 16 characters or more, also any piece of 8 or more characters of them (a
    cut-off prefix or suffix). ``fragments=False`` matches whole forms only.

    Secrets shorter than 4 characters (and empty ones) are ignored.
    """
    if not text:
        return text
    whole, pieces = _patterns(tuple(sorted(set(secrets))), fragments)
    spans = [m.span() for m in whole.finditer(text)] if whole is not None else []
    if pieces:
        spans += [(i, i + _FRAGMENT) for i in range(len(text) - _FRAGMENT + 1) if text[i : i + _FRAGMENT] in pieces]
    if not spans:
        return text
    out: list[str] = []
    cursor = 0
    for start, end in sorted(spans):
        if end <= cursor:
            continue
        if start >= cursor:
            out.append(text[cursor:start])
            out.append("***")
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def redact_known(text: str) -> str:
    """:func:`redact` with every secret registered in this process."""
    return redact(text, *known_secrets())


# Secrets that show up in container logs and host text whoever they belong to: well-known token
# shapes, and the value after a NAME= / NAME: whose name says it is secret.
_TOKEN_SHAPES: Final = re.compile(
    r"\b(?:hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_\-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}|AKIA[0-9A-Z]{16}|glpat-[A-Za-z0-9_\-]{20,}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"
)
_BEARER: Final = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}")
_SECRET_ASSIGNMENT: Final = re.compile(
    r"(?i)\b([A-Z0-9_.\-]*(?:TOKEN|API_?KEY|SECRET|PASSWORD|PASSWD|PWD|AUTH|CREDENTIALS?))\b"
    r"(\s*[=:]\s*)([\"']?)([^\s\"',;]{6,})"
)


def redact_tokens(text: str) -> str:
    """:func:`redact_known`, then token shapes and ``SECRET_NAME=value`` values, as ``***``."""
    text = _TOKEN_SHAPES.sub("***", redact_known(text))
    text = _BEARER.sub(lambda m: f"{m.group(1)} ***", text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}***", text)


class RedactingFilter(logging.Filter):
    """Scrubs registered secrets from a record: message, arguments, traceback and stack.

    Install it on a handler (the CLI puts it on the root handler) so that it sees records of
    every logger. The record is formatted once, redacted, and its ``args`` cleared.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = known_secrets()
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what can be shown, scrubbed
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redact(message, *secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, *secrets)
            record.exc_info = None  # formatters print exc_text; nobody can re-render the raw traceback
        if record.stack_info:
            record.stack_info = redact(record.stack_info, *secrets)
        return True


# --------------------------------------------------------------------------- the key


def _is_token(secret: str) -> bool:
    """Printable ASCII without whitespace: what can travel in an ``Authorization`` header."""
    return bool(secret) and all("!" <= ch <= "~" for ch in secret)


def looks_like_api_key(secret: str) -> bool:
    """Sanity check before storing a key: 8..256 printable ASCII characters, no whitespace."""
    return 8 <= len(secret) <= 256 and _is_token(secret)


class ApiKey:
    """A Vast API key and where it came from. Immutable.

    The secret shows in no ``repr``/``str``/format and cannot be pickled or serialised by
    accident; :meth:`reveal` is the only way to get it.
    """

    __slots__ = ("__secret", "origin", "source")

    __secret: str
    source: KeySourceKind
    origin: str

    def __init__(self, secret: str, source: KeySourceKind, origin: str | None = None) -> None:
        if source not in _SOURCES:
            raise ValueError(f"unknown key source {source!r}; expected one of {sorted(_SOURCES)}")
        if not isinstance(secret, str) or not _is_token(secret):
            # Never echo the value: it may be a real key with a stray character.
            raise ValueError("an API key must be non-empty printable ASCII without whitespace")
        register_secret(secret)
        object.__setattr__(self, "_ApiKey__secret", secret)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "origin", origin or _DEFAULT_ORIGINS[source])

    def reveal(self) -> str:
        """The secret itself: only for building the ``Authorization`` header."""
        return self.__secret

    @property
    def fingerprint(self) -> str:
        """``…`` and the last 4 characters (fewer for keys under 8 characters: never more than half)."""
        shown = min(4, len(self.__secret) // 2)
        return "…" + (self.__secret[-shown:] if shown else "")

    def __repr__(self) -> str:
        return f"ApiKey(source={self.source!r}, fingerprint={self.fingerprint!r})"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return format(repr(self), format_spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApiKey):
            return NotImplemented
        return (
            self.source == other.source
            and self.origin == other.origin
            and hmac.compare_digest(self.__secret.encode(), other.reveal().encode())
        )

    def __hash__(self) -> int:
        return hash((self.source, self.origin, self.fingerprint))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("ApiKey is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("ApiKey is immutable")

    def __copy__(self) -> ApiKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ApiKey:
        return self

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("ApiKey cannot be pickled: the secret must not leave the process by accident")


def _make_key(secret: str, source: KeySourceKind, origin: str, *, advice: str) -> ApiKey:
    if not _is_token(secret):
        register_secret(secret)
        raise KeyUnavailableError(
            f"The key from {origin} contains whitespace or characters that are not printable ASCII, "
            f"so it cannot be a Vast API key. {advice}"
        )
    return ApiKey(secret, source, origin)


# --------------------------------------------------------------------------- environment


def key_from_env(environ: Mapping[str, str] | None = None) -> ApiKey | None:
    """``$VAST_API_KEY``, stripped; unset or empty gives ``None``.

    Raises :class:`KeyUnavailableError` when it is set to something that cannot be a key
    (falling through to another source would silently use a different account).
    """
    env = os.environ if environ is None else environ
    secret = env.get(ENV_VAR, "").strip()
    if not secret:
        return None
    return _make_key(secret, "env", f"${ENV_VAR}", advice=f"Fix or unset {ENV_VAR}.")


# --------------------------------------------------------------------------- files


_warned_files: set[tuple[str, int]] = set()
_ASSIGNMENT = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=(.*)")


class _FileProblem(Exception):
    """Why a file cannot be used; the text never contains file content."""


def key_file_warning(path: str | os.PathLike[str]) -> str | None:
    """A warning when the file can be read by other users (POSIX), else ``None``."""
    if os.name != "posix":
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return _permission_warning(Path(path), mode)


def _permission_warning(path: Path, mode: int) -> str | None:
    if os.name != "posix" or not stat.S_IMODE(mode) & 0o077:
        return None
    return (
        f"Key file {path} is accessible by other users (mode {stat.S_IMODE(mode):04o}); "
        f"restrict it with: chmod 600 {path}"
    )


def _warn_permissions(path: Path, mode: int) -> None:
    warning = _permission_warning(path, mode)
    if warning is None or (str(path), mode) in _warned_files:
        return
    _warned_files.add((str(path), mode))
    logger.warning("%s", warning)


def _read_key_file_text(path: Path) -> str:
    """The file's text, or a :class:`_FileProblem` describing why not (never its content)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _FileProblem("it does not exist") from None
    except PermissionError:
        raise _FileProblem("permission denied") from None
    except OSError as exc:
        raise _FileProblem(f"it cannot be read ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISDIR(st.st_mode):
        raise _FileProblem("it is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise _FileProblem("it is not a regular file")
    if st.st_size > MAX_KEY_FILE_BYTES:
        raise _FileProblem("it is too large to be a key file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        raise _FileProblem("permission denied") from None
    except OSError as exc:
        raise _FileProblem(f"it cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _FileProblem("it is not a regular file")
        _warn_permissions(path, st.st_mode)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise _FileProblem("it is a directory, not a file") from None
        raise _FileProblem(f"it cannot be read ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise _FileProblem("it is too large to be a key file")
    if b"\x00" in data:
        raise _FileProblem("it is a binary file, not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _FileProblem("it is a binary file, not UTF-8 text") from None
    return text.removeprefix("\ufeff")


def _assignment_value(raw: str, lineno: int) -> str:
    value = raw.strip()
    if value[:1] in ("'", '"'):
        quote_char = value[0]
        end = value.find(quote_char, 1)
        if end == -1:
            raise _FileProblem(f"line {lineno}: the {ENV_VAR} value has no closing quote")
        rest = value[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise _FileProblem(f"line {lineno}: unexpected text after the quoted {ENV_VAR} value")
        return value[1:end].strip()
    comment = re.search(r"\s#", value)
    if comment:
        value = value[: comment.start()]
    return value.strip()


def _parse_key_file(text: str, *, require_assignment: bool = False) -> str:
    """The key in a key file's text. Problems are described without quoting the file.

    ``require_assignment`` accepts only an explicit ``VAST_API_KEY=`` line: a bare one-line
    file could be any secret, and is only taken when a human confirmed the path.
    """
    meaningful: list[tuple[int, str]] = []
    assignments = 0
    values: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        meaningful.append((lineno, line))
        match = _ASSIGNMENT.fullmatch(line)
        if match is None:
            continue
        assignments += 1
        if match.group(1) == ENV_VAR:
            values.append(_assignment_value(match.group(2), lineno))
    for value in values:
        register_secret(value)
    if values:
        if len(set(values)) > 1:
            raise _FileProblem(f"it sets {ENV_VAR} {len(values)} times with different values; keep one")
        if not values[0]:
            raise _FileProblem(f"its {ENV_VAR}= line is empty")
        return values[0]
    if not meaningful:
        raise _FileProblem("it is empty (no key and no VAST_API_KEY= line)")
    if assignments or require_assignment:
        raise _FileProblem(f"it has no {ENV_VAR}=... line")
    if len(meaningful) == 1 and not any(ch.isspace() for ch in meaningful[0][1]):
        register_secret(meaningful[0][1])
        return meaningful[0][1]
    raise _FileProblem(f"it is neither KEY=value lines with {ENV_VAR}=... nor a single line with just the key")


def key_from_file(path: str | os.PathLike[str], *, require_assignment: bool = False) -> ApiKey:
    """The key in a file the user confirmed.

    Accepts ``KEY=value`` lines (``VAST_API_KEY=...``, optional ``export``, optional quotes,
    ``#`` comments) or a single line holding just the key. Warns (logging) when other users
    can read the file. Raises :class:`KeyUnavailableError` naming the path and the problem;
    the message never contains anything from the file.
    """
    if "\x00" in os.fspath(path):
        raise KeyUnavailableError("Cannot use that key file: the path contains a NUL character.")
    try:
        shown = Path(path).expanduser()
    except RuntimeError:  # "~someone" for a user that does not exist
        raise KeyUnavailableError("Cannot use that key file: its ~user home directory does not exist.") from None
    try:
        resolved = shown.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        resolved = shown.absolute()
    advice = (
        f"Fix the file (one line {ENV_VAR}=<key>, chmod 600) or check the path; "
        f"or set {ENV_VAR}, or store the key with `vast-mcp key set`."
    )
    try:
        secret = _parse_key_file(_read_key_file_text(resolved), require_assignment=require_assignment)
    except _FileProblem as problem:
        raise KeyUnavailableError(f"Cannot use key file {resolved}: {problem}. {advice}") from None
    return _make_key(secret, "file", f"file {resolved}", advice=advice)


def key_file_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where key files may live for clients that cannot show a confirmation form (README documents it):
    ``$XDG_CONFIG_HOME/vast-mcp/keys``, by default ``~/.config/vast-mcp/keys``."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CONFIG_HOME", "")
    config_home = Path(xdg) if xdg and os.path.isabs(xdg) else _home(environ) / ".config"
    return config_home / "vast-mcp" / "keys"


def in_key_file_dir(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``path`` (symlinks resolved) lies inside :func:`key_file_dir`. Reads nothing but paths."""
    if "\x00" in os.fspath(path):
        return False
    try:
        resolved = Path(path).expanduser().resolve()
        allowed = key_file_dir(environ).resolve()
    except (OSError, RuntimeError):
        return False
    return resolved != allowed and resolved.is_relative_to(allowed)


def _home(environ: Mapping[str, str] | None) -> Path:
    if environ is not None and environ.get("HOME"):
        return Path(environ["HOME"])
    return Path.home()


def vast_cli_key_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where the official ``vastai`` CLI keeps the key: the XDG path, then the legacy one."""
    env = os.environ if environ is None else environ
    home = _home(environ)
    xdg = env.get("XDG_CONFIG_HOME", "")
    config_home = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".config"
    return [config_home / "vastai" / "vast_api_key", home / ".vast_api_key"]


def _display_path(path: Path, home: Path) -> str:
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def key_from_vast_cli(environ: Mapping[str, str] | None = None) -> ApiKey | None:
    """The key saved by ``vastai set api-key``: the XDG file, then the legacy ``~/.vast_api_key``.

    A missing or empty file is skipped; a file that exists but cannot be used raises
    :class:`KeyUnavailableError` rather than silently falling through to another account's key.
    """
    home = _home(environ)
    for path in vast_cli_key_paths(environ):
        if not os.path.lexists(path):
            continue
        origin = _display_path(path, home)
        advice = f"Fix or remove {origin}, or {_SET_KEY_HINT}."
        try:
            text = _read_key_file_text(path)
            if not text.strip():
                logger.debug("skipping empty key file %s", origin)
                continue
            secret = _parse_key_file(text)
        except _FileProblem as problem:
            if str(problem) == "it does not exist":  # a dangling symlink
                continue
            raise KeyUnavailableError(f"Cannot use the vastai CLI key file {origin}: {problem}. {advice}") from None
        return _make_key(secret, "vast-cli", origin, advice=advice)
    return None


# --------------------------------------------------------------------------- keyring


class _KeyringUnavailable(Exception):
    pass


def _backend_name(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _load_failure_reason(exc: BaseException) -> str:
    configured = os.environ.get("PYTHON_KEYRING_BACKEND")
    detail = redact_known(f"{type(exc).__name__}: {exc}")
    if configured:
        return f"PYTHON_KEYRING_BACKEND={configured} cannot be loaded ({detail})"
    return f"the keyring backend failed to load ({detail})"


def _keyring_backend() -> KeyringBackend:
    """The configured backend, or :class:`_KeyringUnavailable` with a reason."""
    try:
        import keyring
        from keyring.backends import fail, null

        backend = keyring.get_keyring()
    except Exception as exc:  # ModuleNotFoundError for a bad PYTHON_KEYRING_BACKEND, RuntimeError, ...
        raise _KeyringUnavailable(_load_failure_reason(exc)) from None
    if isinstance(backend, fail.Keyring):
        raise _KeyringUnavailable(
            "no OS keyring backend was found (e.g. a headless machine without a Secret Service or KWallet)"
        )
    if isinstance(backend, null.Keyring):
        raise _KeyringUnavailable("the keyring is disabled (the null backend is selected)")
    return backend


def keyring_status() -> str:
    """``"available (<backend>)"`` or ``"not available: <reason>"``."""
    try:
        backend = _keyring_backend()
    except _KeyringUnavailable as exc:
        return f"not available: {exc}"
    return f"available ({_backend_name(backend)})"


def _describe(exc: BaseException) -> str:
    return redact_known(f"{type(exc).__name__}: {exc}")


def keyring_secret(username: str) -> str | None:
    """A secret stored under service ``vast-mcp`` and ``username``, stripped and registered for
    redaction; ``None`` when absent, empty, or when the keyring fails (logged, never raised)."""
    try:
        backend = _keyring_backend()
    except _KeyringUnavailable as exc:
        logger.debug("keyring not used: %s", exc)
        return None
    try:
        secret = backend.get_password(KEYRING_SERVICE, username)
    except Exception as exc:  # KeyringLocked, InitError, D-Bus errors, ...
        logger.warning("could not read the OS keyring (%s); skipping it", _describe(exc))
        return None
    if not isinstance(secret, str) or not secret.strip():
        return None
    register_secret(secret.strip())
    return secret.strip()


def key_from_keyring() -> ApiKey | None:
    """The key stored by ``vast-mcp key set``; ``None`` when absent or when the keyring fails.

    Every keyring failure is logged (without key material) and treated as "not found".
    A stored value that cannot be a key raises :class:`KeyUnavailableError`.
    """
    secret = keyring_secret(KEYRING_USERNAME)
    if secret is None:
        return None
    origin = _DEFAULT_ORIGINS["keyring"]
    return _make_key(secret, "keyring", origin, advice="Store it again with `vast-mcp key set`.")


_NO_KEYRING_ADVICE: Final = (
    f"Set {ENV_VAR} in the MCP client's environment instead, or put a line VAST_API_KEY=<key> "
    "in a key file (chmod 600) and choose it when asked."
)


def store_in_keyring(secret: str) -> None:
    """Store the key under service ``vast-mcp``; :class:`KeyUnavailableError` when impossible."""
    register_secret(secret)
    if not looks_like_api_key(secret):
        raise ValueError("not stored: an API key is 8 to 256 printable ASCII characters without whitespace")
    try:
        backend = _keyring_backend()
    except _KeyringUnavailable as exc:
        raise KeyUnavailableError(
            f"Cannot store the key: the OS keyring is not available: {exc}. {_NO_KEYRING_ADVICE}"
        ) from None
    try:
        backend.set_password(KEYRING_SERVICE, KEYRING_USERNAME, secret)
        stored = backend.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
    except Exception as exc:
        raise KeyUnavailableError(
            f"Cannot store the key in the OS keyring ({_backend_name(backend)}): {_describe(exc)}. {_NO_KEYRING_ADVICE}"
        ) from None
    if stored is None or not hmac.compare_digest(stored.encode(), secret.encode()):
        raise KeyUnavailableError(
            f"The OS keyring ({_backend_name(backend)}) did not keep the key. {_NO_KEYRING_ADVICE}"
        )


def delete_from_keyring() -> bool:
    """Remove the stored key; ``True`` if one was removed. :class:`KeyUnavailableError` without a keyring."""
    from keyring.errors import PasswordDeleteError

    try:
        backend = _keyring_backend()
    except _KeyringUnavailable as exc:
        raise KeyUnavailableError(f"Cannot delete: the OS keyring is not available: {exc}.") from None
    try:
        if backend.get_password(KEYRING_SERVICE, KEYRING_USERNAME) is None:
            return False
        backend.delete_password(KEYRING_SERVICE, KEYRING_USERNAME)
    except PasswordDeleteError:
        return False
    except Exception as exc:
        raise KeyUnavailableError(
            f"Cannot delete the key from the OS keyring ({_backend_name(backend)}): {_describe(exc)}."
        ) from None
    return True


# --------------------------------------------------------------------------- resolution


def resolve_api_key(environ: Mapping[str, str] | None = None) -> ApiKey | None:
    """The first key found in the default order: env, keyring, vastai CLI file; else ``None``.

    A confirmed key file is never auto-discovered (see :func:`key_from_file`). A source that is
    present but unusable raises :class:`KeyUnavailableError` instead of falling through.
    """
    key = key_from_env(environ) or key_from_keyring() or key_from_vast_cli(environ)
    if key is not None:
        logger.debug("using the API key from %s (fingerprint %s)", key.origin, key.fingerprint)
    return key
