"""Account tools: who am I, and which API key does this server use."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from pydantic import BaseModel, Field

from vast_mcp.credentials import (
    ApiKey,
    key_from_env,
    key_from_file,
    key_from_keyring,
    key_from_vast_cli,
)
from vast_mcp.provisioning.errors import UserFacingError
from vast_mcp.provisioning.plan import derive_label
from vast_mcp.tools.base import LOCAL_SETTING, READ_ONLY, ToolSpec, services
from vast_mcp.tools.confirm import Confirm, NotAsked, can_elicit, require_consent
from vast_mcp.vast import User, VastError

Source = Literal["env", "file", "keyring", "vast-cli"]


class KeyInfo(BaseModel):
    source: str = Field(description="env, file, keyring or vast-cli")
    origin: str = Field(description="where exactly, e.g. $VAST_API_KEY or a file path")
    fingerprint: str = Field(description="last 4 characters only")


class Account(BaseModel):
    user_id: int | None
    username: str | None
    email: str | None
    credit: float = Field(description="$ of spendable credit")
    default_label: str = Field(description="label plan_instance gives new instances")
    api_key: KeyInfo | None


def _key_info(key: ApiKey | None) -> KeyInfo | None:
    return None if key is None else KeyInfo(source=key.source, origin=key.origin, fingerprint=key.fingerprint)


def _account(user: User, key: ApiKey | None) -> Account:
    return Account(
        user_id=user.id,
        username=user.username,
        email=user.email,
        credit=round(user.credit, 2),
        default_label=derive_label(user),
        api_key=_key_info(key),
    )


async def get_account(ctx: Context) -> Account:
    """Show the Vast account this server acts for: identity, credit, the label new instances
    get, and which API-key source is in use (with a 4-character fingerprint, never the key).
    """
    vast = services(ctx).vast
    return _account(await vast.account.current_user(), vast.api_key)


async def ask_key_file(source: Source, path: str | None, ctx: Context) -> Elicit[Confirm] | Confirm | NotAsked:
    if source != "file":
        return Confirm(confirm=True)  # env, keyring and the CLI file are the user's own standing choices
    if path is None:
        return NotAsked(reason="no path was given")  # nothing to ask about: the tool refuses the call
    if not can_elicit(ctx):
        return NotAsked(reason="this client cannot show a confirmation form")
    return Elicit(f"Let vast-mcp use the Vast API key stored in the file {path!r}?", Confirm)


async def set_api_key_source(
    ctx: Context,
    source: Annotated[
        Source,
        Field(
            description="env ($VAST_API_KEY), file (a key file), keyring (OS keyring), "
            "vast-cli (~/.config/vastai/vast_api_key)"
        ),
    ],
    consent: Annotated[ElicitationResult[Confirm], Resolve(ask_key_file)],
    path: Annotated[str | None, Field(max_length=4096, description="key file path (source=file only)")] = None,
) -> Account:
    """Choose which Vast API key this server uses, check it against the account, and report
    whose account it is. The key itself is never accepted as an argument nor shown: only its
    source and a 4-character fingerprint. A key file is confirmed by the human through a form; a
    client without forms may only name a file with a VAST_API_KEY= line.
    """
    if (source == "file") != (path is not None):
        raise UserFacingError("Give path exactly when source is 'file'.")
    how = require_consent(consent, confirm_mode=services(ctx).settings.confirm, action="use that key file")
    # Without a human yes, read only a file that declares itself a Vast key file (VAST_API_KEY=...):
    # a bare one-line file could be any secret, and its content would be sent to VAST_URL.
    asked = how.startswith("confirmed")
    loaders = {
        "env": key_from_env,
        "keyring": key_from_keyring,
        "vast-cli": key_from_vast_cli,
    }
    if source == "file" and path is not None:
        key: ApiKey | None = key_from_file(path, require_assignment=not asked)
    else:
        key = loaders[source]()
    if key is None:
        raise UserFacingError(f"No API key found in source {source!r}. Nothing was changed.")
    http = services(ctx).vast.http
    previous = http.api_key
    http.api_key = key
    try:
        user = await services(ctx).vast.account.current_user()
    except VastError as exc:
        http.api_key = previous
        raise UserFacingError(f"Could not verify that key: {exc} The previous key source stays in use.") from None
    return _account(user, key)


TOOLS = [
    ToolSpec(get_account, "read", "Account and key source", READ_ONLY),
    ToolSpec(set_api_key_source, "local", "Choose the API key source", LOCAL_SETTING),
]
