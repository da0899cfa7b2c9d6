"""What a rental carries besides its offer (DESIGN §5b): an interruptible bid, environment
variables, exposed ports, an onstart script, a private image's registry login, and a lifetime.

Everything is checked here before anything is sent (bad input is a plain error and changes
nothing), bound into the quote, named in the confirmation (env: names only, never values;
the registry login: host and user, never the token), and sent as the official CLI sends it:
``env`` in the CLI's ``parse_env`` form (``{"-p 8888:8888": "1", "HF_TOKEN": "..."}``), the bid
as ``price``, the login as ``image_login`` (``"-u USER -p TOKEN HOST"``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from vast_mcp.credentials import keyring_secret, register_secret
from vast_mcp.provisioning.errors import UserFacingError
from vast_mcp.spending.guard import MAX_USER_ONSTART, DeadlineAction, OnstartTooLong, compose_onstart
from vast_mcp.views import untrusted

MARKER_ENV = "VAST_MCP_REQUEST"  # per-request marker, so a lost create answer can be found by reading
REGISTRY_AUTH_ENV = "VAST_MCP_REGISTRY_AUTH"  # "HOST USER:TOKEN", one per line or ";"
DOCKER_HUB = "docker.io"
# Names this server or Vast puts in the container: a user's env must not shadow them.
RESERVED_ENV = re.compile(r"^(VAST_MCP_.*|CONTAINER_ID|CONTAINER_API_KEY|VAST_TCP_PORT_.*|PUBLIC_IPADDR)$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Values that are scrubbed from every output: by their name, or because they look like a token.
SECRET_ENV_NAME = re.compile(r"TOKEN|KEY|SECRET|PASS|AUTH|CRED|PRIVATE|SESSION|COOKIE", re.IGNORECASE)
TOKEN_LIKE = re.compile(r"^[A-Za-z0-9_\-.+=]{20,}$")
SSH_PORT = 22


class RegistryLogin(BaseModel):
    """A private registry login from the local source; the token never shows in a repr or dump."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str
    user: str
    token: SecretStr

    def cli_form(self) -> str:
        """``image_login`` as CLI 1.9.1 sends ``--login``."""
        return f"-u {self.user} -p {self.token.get_secret_value()} {self.host}"


class RentalOptions(BaseModel):
    """The extras of one plan, bound into its quote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interruptible: bool = False
    bid_per_hour: float | None = None  # $/h per instance for the GPUs; storage is billed on top
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[int, ...] = ()
    onstart: str | None = None
    registry: RegistryLogin | None = None
    max_hours: float = 0.0  # 0 = no deadline
    at_deadline: DeadlineAction = "stop"

    def env_body(self, marker: tuple[str, str] | None = None) -> dict[str, str]:
        """The create body's ``env``: exposed ports first, then the variables (and our marker)."""
        body = {f"-p {port}:{port}": "1" for port in self.ports}
        body.update(dict(self.env))
        if marker is not None:
            body[marker[0]] = marker[1]
        return body

    def image_login(self) -> str | None:
        return self.registry.cli_form() if self.registry else None

    def describe(self) -> list[str]:
        """Sentences for the confirmation text: what the human must see, and no secret."""
        parts: list[str] = []
        if self.env:
            parts.append(f"Env {', '.join(name for name, _ in self.env)} (values not shown).")
        if self.ports:
            parts.append(f"Ports open to the internet: {', '.join(str(p) for p in self.ports)}.")
        if self.onstart:
            first = self.onstart.strip().splitlines()[0] if self.onstart.strip() else ""
            parts.append(f"Onstart script of {len(self.onstart):,} characters, starting {untrusted(first, 80)}.")
        if self.registry:
            parts.append(f"Private image: logs in to {self.registry.host} as {self.registry.user}.")
        return parts


def check_env(env: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """Validated env pairs; values that may be secrets are registered for redaction everywhere."""
    pairs: list[tuple[str, str]] = []
    for name, value in (env or {}).items():
        if not ENV_NAME.match(name):
            raise UserFacingError(
                f"env name {name!r} is not a shell identifier (letters, digits, _). Nothing was done."
            )
        if RESERVED_ENV.match(name):
            raise UserFacingError(f"env name {name!r} is reserved for vast-mcp or Vast itself. Nothing was done.")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise UserFacingError(f"env {name} has a control character in its value. Nothing was done.")
        if SECRET_ENV_NAME.search(name) or TOKEN_LIKE.match(value):
            register_secret(value)
        pairs.append((name, value))
    return tuple(pairs)


def check_ports(ports: list[int] | None) -> tuple[int, ...]:
    found = tuple(sorted(set(ports or [])))
    if SSH_PORT in found:
        raise UserFacingError("Port 22 is already exposed for SSH; leave it out of ports. Nothing was done.")
    return found


def check_onstart(onstart: str | None) -> str | None:
    if onstart is None or not onstart.strip():
        return None
    if len(onstart) > MAX_USER_ONSTART:
        raise UserFacingError(
            f"onstart is {len(onstart):,} characters; at most {MAX_USER_ONSTART:,} fit (Vast's limit is 4,048 with "
            "the deadline guard). Shorten it or fetch a script from it. Nothing was done."
        )
    if "\x00" in onstart:
        raise UserFacingError("onstart contains a NUL character. Nothing was done.")
    return onstart


def registry_of(image: str) -> str:
    """The registry host of a Docker image reference (``ghcr.io/org/img:tag`` -> ``ghcr.io``)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return DOCKER_HUB


def registry_login(image: str, environ: Mapping[str, str] | None = None) -> RegistryLogin | None:
    """The login for ``image``'s registry from the local source: ``$VAST_MCP_REGISTRY_AUTH``
    (``HOST USER:TOKEN`` entries), else the OS keyring (service ``vast-mcp``, user
    ``registry:HOST``, value ``USER:TOKEN``). Never a tool argument."""
    host = registry_of(image)
    env = os.environ if environ is None else environ
    for entry in re.split(r"[;\n]", env.get(REGISTRY_AUTH_ENV, "")):
        words = entry.split()
        if len(words) == 2 and words[0].lower() == host:
            return _login(host, words[1], REGISTRY_AUTH_ENV)
    stored = keyring_secret(f"registry:{host}")
    return _login(host, stored, f"the keyring entry registry:{host}") if stored else None


def _login(host: str, credentials: str, where: str) -> RegistryLogin:
    user, colon, token = credentials.partition(":")
    if not colon or not user or not token or any(ch.isspace() for ch in credentials):
        raise UserFacingError(f"The registry login in {where} for {host} must read USER:TOKEN. Nothing was done.")
    register_secret(token)
    return RegistryLogin(host=host, user=user, token=SecretStr(token))


def resolve_options(
    *,
    image: str,
    interruptible: bool,
    bid_per_hour: float | None,
    env: Mapping[str, str] | None,
    ports: list[int] | None,
    onstart: str | None,
    private_image: bool,
    max_hours: float,
    at_deadline: Literal["stop", "destroy"],
) -> RentalOptions:
    """Check everything the user asked for besides the offer; raise before anything is sent."""
    if bid_per_hour is not None and not interruptible:
        raise UserFacingError("bid_per_hour is for interruptible rentals: set interruptible=true. Nothing was done.")
    login = registry_login(image)
    if private_image and login is None:
        host = registry_of(image)
        raise UserFacingError(
            f"{image} is private but no login for {host} is configured. Set {REGISTRY_AUTH_ENV}='{host} USER:TOKEN' "
            "in the server's environment, or store USER:TOKEN in the keyring "
            f"(`keyring set vast-mcp registry:{host}`). Logins are never tool arguments. Nothing was done."
        )
    checked_onstart = check_onstart(onstart)
    if max_hours > 0:
        try:  # the guard joins the user's script: both must fit Vast's limit (a deadline of the same length)
            compose_onstart(checked_onstart, int(time.time() + max_hours * 3600), at_deadline)
        except OnstartTooLong as exc:
            raise UserFacingError(f"{exc} Nothing was done.") from None
    return RentalOptions(
        interruptible=interruptible,
        bid_per_hour=bid_per_hour,
        env=check_env(env),
        ports=check_ports(ports),
        onstart=checked_onstart,
        registry=login,
        max_hours=max_hours,
        at_deadline=at_deadline,
    )
