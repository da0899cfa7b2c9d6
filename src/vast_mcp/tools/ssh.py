"""SSH tools: attach a public key, prove SSH answers."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, Elicit, ElicitationResult, Resolve
from pydantic import BaseModel, Field

from vast_mcp.provisioning.errors import UserFacingError
from vast_mcp.provisioning.readiness import probe_ssh, ssh_endpoints
from vast_mcp.provisioning.sshkeys import PublicKey, ensure_on_account, is_on_account, key_origin, resolve_public_key
from vast_mcp.services import Services
from vast_mcp.tools.base import READ_ONLY, ToolSpec, services, writes
from vast_mcp.tools.confirm import Ask, Confirm, ConfirmToken, NotAsked, ask, gate, key_phrase
from vast_mcp.tools.params import InstanceId, PublicKeyArg
from vast_mcp.views import describe_instance, untrusted


class AttachResult(BaseModel):
    instance_id: int
    key_fingerprint: str
    key_source: str = Field(description="file path, or 'given key text'")
    registered_on_account: bool = Field(description="true if the key was new to the account")
    attached: bool


def _resolve_key(state: Services, public_key: str | None) -> PublicKey:
    key = resolve_public_key(public_key, state.settings.ssh_dir)
    if key is None:
        raise UserFacingError(
            f"No SSH public key given and none found in {state.settings.ssh_dir} (id_ed25519.pub, id_rsa.pub). "
            "Ask the user for a .pub path or the key text."
        )
    return key


def _attaching(instance_id: int, public_key: str | None) -> Ask:
    async def describe(state: Services) -> str:
        key = _resolve_key(state, public_key)
        inst = await state.vast.instances.get(instance_id)
        registered = await is_on_account(state.vast, key)
        account = (
            "" if registered else " It is also registered on your Vast account, where it stays for future instances."
        )
        return (
            f"Give SSH key {key.fingerprint} ({key_origin(key)}) root login on Vast {describe_instance(inst)}?"
            f"{account} {key_phrase(state.vast.api_key)}"
        )

    return Ask("attach_ssh_key", {"instance_id": instance_id, "public_key": public_key}, describe)


async def ask_attach(instance_id: int, public_key: str | None, ctx: Context) -> Elicit[Confirm] | NotAsked:
    return await ask(ctx, _attaching(instance_id, public_key))


async def attach_ssh_key(
    ctx: Context,
    instance_id: InstanceId,
    consent: Annotated[ElicitationResult[Confirm], Resolve(ask_attach)],
    public_key: PublicKeyArg = None,
    confirm_token: ConfirmToken = None,
) -> AttachResult:
    """Let an SSH public key (text or .pub path; default ~/.ssh/id_ed25519.pub) log in as
    root; registers it on the account if absent. GRANTS ACCESS: needs the user's yes (a form, or a
    confirm_token). Private keys are refused.
    """
    state = services(ctx)
    approved = await gate(ctx, consent, _attaching(instance_id, public_key), confirm_token)
    key = _resolve_key(state, public_key)
    if key.fingerprint not in approved.text:  # the key file changed after the human saw it
        raise UserFacingError(f"The SSH key changed since it was confirmed (now {key.fingerprint}); nothing was done.")
    added = await ensure_on_account(state.vast, key)
    await state.vast.ssh.attach(instance_id, key.text)
    return AttachResult(
        instance_id=instance_id,
        key_fingerprint=key.fingerprint,
        key_source=str(key.path) if key.path else "given key text",
        registered_on_account=added,
        attached=True,
    )


class SshCheck(BaseModel):
    instance_id: int
    ready: bool = Field(description="an SSH server answered with its SSH-2.0 banner")
    endpoint: str | None = Field(description='"direct host:port" or "proxy host:port" that answered')
    banner: str | None
    ssh_command: str | None
    attempts: int
    waited_s: float
    errors: dict[str, str] = Field(description="last error per endpoint tried")


async def check_ssh(
    ctx: Context,
    instance_id: InstanceId,
    timeout_seconds: Annotated[float, Field(ge=0, le=300, description="keep retrying this long")] = 120,
) -> SshCheck:
    """Prove SSH answers (reads the SSH-2.0 banner; direct, then proxy), retrying up to
    timeout_seconds. Returns the ssh command. Does not log in.
    """
    settings = services(ctx).settings
    instance = await services(ctx).vast.instances.get(instance_id)
    endpoints = ssh_endpoints(instance, allow_private=settings.api_is_loopback)
    if not endpoints and instance.actual_status == "running":
        raise UserFacingError(
            f"Instance {instance_id} advertises no usable SSH endpoint: only a public IP address or DNS name is "
            "ever connected to (never a loopback, private or link-local address). Check get_instance."
        )
    if not endpoints:
        raise UserFacingError(
            f"Instance {instance_id} has no SSH endpoint yet (status {instance.actual_status}). "
            "Wait until it is running (wait_for_instance), then check again."
        )

    async def progress(step: float, message: str) -> None:
        await ctx.report_progress(step, message=message)

    probe = await probe_ssh(endpoints, timeout_s=timeout_seconds, interval_s=settings.ssh_interval, progress=progress)
    best = probe.endpoint or endpoints[0]
    identity = next((settings.ssh_dir / n for n in ("id_ed25519", "id_rsa") if (settings.ssh_dir / n).exists()), None)
    return SshCheck(
        instance_id=instance_id,
        ready=probe.ready,
        endpoint=f"{best.kind} {best.host}:{best.port}" if probe.ready else None,
        banner=untrusted(probe.banner, 100) if probe.banner else None,
        ssh_command=best.command_with(identity),
        attempts=probe.attempts,
        waited_s=round(probe.waited_s, 1),
        errors=probe.errors,
    )


TOOLS = [
    ToolSpec(attach_ssh_key, "write", "Attach an SSH key", writes(destructive=False, idempotent=True)),
    ToolSpec(check_ssh, "read", "Check SSH readiness", READ_ONLY),
]
