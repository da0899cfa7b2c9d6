"""SSH public keys: find the user's, validate what we are given, register and attach it.

Only public keys ever leave this machine. A path must name a ``.pub`` file and its
content must parse as an OpenSSH public key; anything else (a private key, a
random file) is refused without echoing its content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from vast_mcp.provisioning.errors import UserFacingError
from vast_mcp.vast import VastClient

KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
DEFAULT_NAMES = ("id_ed25519.pub", "id_rsa.pub")
MAX_KEY_FILE = 16_384
_KEY_LINE = re.compile(r"^(?P<type>[a-z0-9@.\-]+) (?P<blob>[A-Za-z0-9+/]+={0,3})(?: (?P<comment>[^\r\n]*))?$")


@dataclass(frozen=True)
class PublicKey:
    text: str  # "type blob [comment]", one line
    key_type: str
    blob: str
    path: Path | None = None

    @property
    def fingerprint(self) -> str:
        """OpenSSH-style SHA256 fingerprint (what `ssh-keygen -lf` prints)."""
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_public_key(text: str, path: Path | None = None) -> PublicKey:
    line = text.strip()
    if "PRIVATE KEY" in line:
        raise UserFacingError("That is a private key. Give the public key (the .pub file) instead.")
    if "\n" in line or len(line) > MAX_KEY_FILE:
        raise UserFacingError("An SSH public key is a single line like 'ssh-ed25519 AAAA... comment'.")
    match = _KEY_LINE.match(line)
    if not match or match["type"] not in KEY_TYPES:
        raise UserFacingError(
            "Not an OpenSSH public key. Expected one line like 'ssh-ed25519 AAAA... comment' "
            f"(supported types: {', '.join(sorted(KEY_TYPES))})."
        )
    try:
        blob = base64.b64decode(match["blob"], validate=True)
        (name_len,) = struct.unpack(">I", blob[:4])
        embedded = blob[4 : 4 + name_len].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        embedded = ""
    if embedded != match["type"]:
        raise UserFacingError("The public key's data is damaged (its encoded type does not match).")
    return PublicKey(line, match["type"], match["blob"], path)


def read_public_key_file(path_text: str) -> PublicKey:
    if "\x00" in path_text:
        raise UserFacingError("That path contains a NUL character.")
    try:
        path = Path(path_text).expanduser()
    except RuntimeError:  # "~someone" for a user that does not exist
        raise UserFacingError(f"No such home directory in {path_text!r}.") from None
    if path.suffix != ".pub":
        raise UserFacingError(
            f"Refusing {path_text!r}: only a public key file ending in .pub is read (never a private key)."
        )
    try:
        resolved = path.resolve(strict=True)
        if not resolved.is_file():
            raise UserFacingError(f"{path_text!r} is not a regular file.")
        if resolved.stat().st_size > MAX_KEY_FILE:
            raise UserFacingError(f"{path_text!r} is too large to be an SSH public key.")
        content = resolved.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserFacingError(f"No such file: {path_text!r}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserFacingError(f"Cannot read {path_text!r} ({type(exc).__name__}).") from None
    try:
        return parse_public_key(content, resolved)
    except UserFacingError:
        raise UserFacingError(f"{path_text!r} does not hold an OpenSSH public key.") from None


def resolve_public_key(value: str | None, ssh_dir: Path) -> PublicKey | None:
    """Key text, a ``.pub`` path, or (``None``) the user's default key if one exists."""
    if value is None:
        for name in DEFAULT_NAMES:
            candidate = ssh_dir / name
            if candidate.is_file():
                return read_public_key_file(str(candidate))
        return None
    stripped = value.strip()
    if stripped.split(" ", 1)[0] in KEY_TYPES or "PRIVATE KEY" in stripped:
        return parse_public_key(stripped)
    return read_public_key_file(stripped)


def key_origin(key: PublicKey) -> str:
    """Where a key came from, as the human must see it: their own file, or text the assistant supplied."""
    return f"from {key.path}" if key.path else "key text supplied by the assistant, not read from your files"


async def is_on_account(vast: VastClient, key: PublicKey) -> bool:
    """Whether the account already holds this key (compared by its key data, not its comment)."""
    return any(key.blob in k.public_key.split() for k in await vast.ssh.list_keys())


async def ensure_on_account(vast: VastClient, key: PublicKey) -> bool:
    """Register the key on the account unless it is there already. True if it was added."""
    if await is_on_account(vast, key):
        return False
    await vast.ssh.create_key(key.text)
    return True
