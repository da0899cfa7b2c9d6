"""Tool argument types: one definition per concept, bounded once.

Patterns keep shell metacharacters, control characters and absurd sizes out before
anything reaches Vast. Descriptions are kept to what the name does not already say:
every byte here is paid for in model context on every turn.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

InstanceId = Annotated[int, Field(ge=1, le=2**53)]
GpuName = Annotated[str, Field(max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$", description='e.g. "RTX 4090"')]
AnyGpu = Annotated[bool, Field(description="do not lock the GPU model")]
NumGpus = Annotated[int | None, Field(ge=1, le=16)]
MinVram = Annotated[float | None, Field(ge=1, le=1024, description="per GPU")]
Countries = Annotated[
    list[Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]] | None,
    Field(max_length=50, description='e.g. ["US","CA"]'),
]
MaxPrice = Annotated[float | None, Field(gt=0, le=1000, description="per instance, storage included")]
MinReliability = Annotated[float | None, Field(ge=0, le=1)]
MinCuda = Annotated[float | None, Field(ge=1, le=99)]
DiskGb = Annotated[float, Field(ge=1, le=8192)]
ObjectiveArg = Literal["price", "performance", "reliability"]
Label = Annotated[str, Field(max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Image = Annotated[str, Field(max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")]
Timeout = Annotated[float, Field(ge=0, le=3600)]
PublicKeyArg = Annotated[
    str | None,
    Field(max_length=16384, description="key text or .pub path (default ~/.ssh/id_ed25519.pub)"),
]
EnvName = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
EnvValue = Annotated[str, Field(max_length=4096)]
Env = Annotated[dict[EnvName, EnvValue] | None, Field(max_length=32, description="values are never shown back")]
Port = Annotated[int, Field(ge=1, le=65535)]
Ports = Annotated[list[Port] | None, Field(max_length=16, description="container ports to expose")]
Onstart = Annotated[str | None, Field(max_length=4000, description="shell run at container start")]
Hours = Annotated[float | None, Field(ge=0, le=8760, description="deadline after create; 0 = none")]
AtDeadline = Literal["stop", "destroy"]
Bid = Annotated[float | None, Field(gt=0, le=1000, description="$/h per instance, GPUs only")]
