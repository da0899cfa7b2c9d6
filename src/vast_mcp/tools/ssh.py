"""SSH tools: attach a public key, prove SSH answers."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from vast_mcp.provisioning.errors import UserFacingError
from vast_mcp.provisioning.readiness import probe_ssh, ssh_endpoints
from vast_mcp.provisioning.sshkeys import ensure_on_account, resolve_public_key
from vast_mcp.tools.base import READ_ONLY, ToolSpec, services, writes
from vast_mcp.tools.params import InstanceId, PublicKeyArg
from vast_mcp.views import untrusted


class AttachResult(BaseModel):
    instance_id: int
    key_fingerprint: str
    key_source: str = Field(description="file path, or 'given key text'")
    registered_on_account: bool = Field(description="true if the key was new to the account")
    attached: bool


async def attach_ssh_key(ctx: Context, instance_id: InstanceId, public_key: PublicKeyArg = None) -> AttachResult:
    """Let an SSH public key log in to an instance: registers it on the account if absent, then attaches it.

    Give the key text or a path to a .pub file; with neither it uses ~/.ssh/id_ed25519.pub, else
    ~/.ssh/id_rsa.pub. Private keys are refused and never read.
    """
    state = services(ctx)
    key = resolve_public_key(public_key, state.settings.ssh_dir)
    if key is None:
        raise UserFacingError(
            f"No SSH public key given and none found in {state.settings.ssh_dir} (id_ed25519.pub, id_rsa.pub). "
            "Ask the user for a .pub path or the key text."
        )
    await state.vast.instances.get(instance_id)  # a clear "not found" before touching the account
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
    """Prove SSH answers: a real TCP connect that reads the SSH-2.0 banner, direct port then proxy.

    Retries until timeout_seconds (default 2 minutes, since sshd starts after "running").
    Returns the ssh command line to use. It does not log in.
    """
    vast = services(ctx).vast
    instance = await vast.instances.get(instance_id)
    endpoints = ssh_endpoints(instance)
    if not endpoints:
        raise UserFacingError(
            f"Instance {instance_id} has no SSH endpoint yet (status {instance.actual_status}). "
            "Wait until it is running (wait_for_instance), then check again."
        )

    async def progress(step: float, message: str) -> None:
        await ctx.report_progress(step, message=message)

    interval = services(ctx).settings.ssh_interval
    probe = await probe_ssh(endpoints, timeout_s=timeout_seconds, interval_s=interval, progress=progress)
    best = probe.endpoint or endpoints[0]
    key_hint = ""
    default = services(ctx).settings.ssh_dir
    for name in ("id_ed25519", "id_rsa"):
        if (default / name).exists():
            key_hint = f" -i {default / name}"
            break
    return SshCheck(
        instance_id=instance_id,
        ready=probe.ready,
        endpoint=f"{best.kind} {best.host}:{best.port}" if probe.ready else None,
        banner=untrusted(probe.banner, 100) if probe.banner else None,
        ssh_command=f"ssh{key_hint} -p {best.port} root@{best.host}",
        attempts=probe.attempts,
        waited_s=round(probe.waited_s, 1),
        errors=probe.errors,
    )


TOOLS = [
    ToolSpec(attach_ssh_key, "write", "Attach an SSH key", writes(destructive=False, idempotent=True)),
    ToolSpec(check_ssh, "read", "Check SSH readiness", READ_ONLY),
]
