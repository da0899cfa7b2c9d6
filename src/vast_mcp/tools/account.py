"""Account tools: who am I, and which API key does this server use."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, Resolve
from pydantic import BaseModel, Field

from vast_mcp.credentials import (
    ApiKey,
    in_key_file_dir,
    key_file_dir,
    key_from_env,
    key_from_file,
    key_from_keyring,
    key_from_vast_cli,
)
from vast_mcp.provisioning.errors import UserFacingError
from vast_mcp.provisioning.plan import derive_label
from vast_mcp.services import Services
from vast_mcp.tools.base import LOCAL_SETTING, READ_ONLY, ToolSpec, services
from vast_mcp.tools.confirm import Ask, Confirm, ConfirmToken, NotAsked, ask, gate, key_phrase
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
    """The Vast account this server acts for: identity, credit, the label new instances
    get, the API-key source and fingerprint.
    """
    vast = services(ctx).vast
    return _account(await vast.account.current_user(), vast.api_key)


def _switching(source: Source, path: str | None) -> Ask:
    async def describe(state: Services) -> str:
        assert path is not None
        now = key_phrase(state.vast.api_key).rstrip(".").replace("API key from", "the key from")
        new = ""
        if in_key_file_dir(path):  # a documented place: reading it to show the fingerprint reveals nothing
            new = f" (fingerprint {key_from_file(path).fingerprint})"
        return (
            f"Let vast-mcp use the Vast API key in the file {path!r}{new} for every Vast request from now on? "
            f"That key decides which Vast account pays. Until now it uses {now}."
        )

    return Ask("set_api_key_source", {"source": source, "path": path}, describe)


async def ask_key_file(source: Source, path: str | None, ctx: Context) -> Elicit[Confirm] | Confirm | NotAsked:
    if source != "file" or path is None:
        # env, keyring and the CLI file are the user's own standing choices; a file needs a path
        return NotAsked(reason="there is nothing to confirm")
    return await ask(ctx, _switching(source, path))


async def set_api_key_source(
    ctx: Context,
    source: Annotated[
        Source,
        Field(description="env: $VAST_API_KEY; vast-cli: ~/.config/vastai/vast_api_key"),
    ],
    consent: Annotated[ElicitationResult[Confirm], Resolve(ask_key_file)],
    path: Annotated[str | None, Field(max_length=4096, description="source=file only")] = None,
    confirm_token: ConfirmToken = None,
) -> Account:
    """Choose which API key this server uses and verify it (shows source and fingerprint,
    never the key). A key file decides who pays: it needs the user's yes (a form, or without forms a
    confirm_token, and only files in ~/.config/vast-mcp/keys/).
    """
    if (source == "file") != (path is not None):
        raise UserFacingError("Give path exactly when source is 'file'.")
    state = services(ctx)
    if source == "file" and path is not None:
        without_form = isinstance(consent, AcceptedElicitation) and isinstance(consent.data, NotAsked)
        if without_form and not in_key_file_dir(path):
            # One answer for every such path: without a human yes, nothing outside the documented
            # directory is read, and nothing about it (exists, type, size, target) is revealed.
            raise UserFacingError(
                f"Without a confirmation form, key files are read only from {key_file_dir()}; nothing was "
                "read. Put the key file there (a line VAST_API_KEY=<key>, chmod 600), or use a client that "
                "shows forms."
            )
        await gate(ctx, consent, _switching(source, path), confirm_token)
        key: ApiKey | None = key_from_file(path)
    else:
        key = {"env": key_from_env, "keyring": key_from_keyring, "vast-cli": key_from_vast_cli}[source]()
    if key is None:
        raise UserFacingError(f"No API key found in source {source!r}. Nothing was changed.")
    http = state.vast.http
    previous = http.api_key
    http.api_key = key
    try:
        user = await state.vast.account.current_user()
    except VastError as exc:
        http.api_key = previous
        raise UserFacingError(f"Could not verify that key: {exc} The previous key source stays in use.") from None
    return _account(user, key)


TOOLS = [
    ToolSpec(get_account, "read", "Account and key source", READ_ONLY),
    ToolSpec(set_api_key_source, "local", "Choose the API key source", LOCAL_SETTING),
]
