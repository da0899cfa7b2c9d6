"""Tool argument types: one definition per concept, bounded once.

Patterns keep shell metacharacters, control characters and absurd sizes out before
anything reaches Vast. Descriptions are kept to what the name does not already say:
every byte here is paid for in model context on every turn.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

InstanceId = Annotated[int, Field(ge=1, le=2**53)]
GpuName = Annotated[str, Field(max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")]
AnyGpu = Annotated[bool, Field(description="any model")]
NumGpus = Annotated[int | None, Field(ge=1, le=16)]
MinVram = Annotated[float | None, Field(ge=1, le=1024)]
Countries = Annotated[
    list[Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]] | None,
    Field(max_length=50, description="ISO codes"),
]
MaxPrice = Annotated[float | None, Field(gt=0, le=1000, description="storage included")]
MinReliability = Annotated[float | None, Field(ge=0, le=1)]
MinCuda = Annotated[float | None, Field(ge=1, le=99)]
DiskGb = Annotated[float, Field(ge=1, le=8192)]
ObjectiveArg = Literal["price", "performance", "reliability"]
Label = Annotated[str, Field(max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Image = Annotated[str, Field(max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")]
Timeout = Annotated[float, Field(ge=0, le=3600)]
PublicKeyArg = Annotated[
    str | None,
    Field(max_length=16384, description="key text or .pub path"),
]
# Names are checked (a shell identifier, not reserved) with a plain error in provisioning.rental.
Env = Annotated[dict[str, Annotated[str, Field(max_length=4096)]] | None, Field(max_length=32)]
Port = Annotated[int, Field(ge=1, le=65535)]
Ports = Annotated[list[Port] | None, Field(max_length=16)]
Onstart = Annotated[str | None, Field(max_length=4000)]
Hours = Annotated[float | None, Field(ge=0, le=8760, description="0 = no deadline")]
AtDeadline = Literal["stop", "destroy"]
Bid = Annotated[float | None, Field(gt=0, le=1000, description="$/h, GPUs only")]
