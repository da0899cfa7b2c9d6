"""Tool argument types: one definition per concept, bounded and described once.

Patterns keep shell metacharacters, control characters and absurd sizes out
before anything reaches Vast.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

InstanceId = Annotated[int, Field(ge=1, le=2**53, description="Vast instance id (from list_instances)")]
GpuName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$",
        description='exact model, e.g. "RTX 4090"',
    ),
]
AnyGpu = Annotated[bool, Field(description="true: do not lock the GPU model (use min_vram_gb instead)")]
NumGpus = Annotated[int | None, Field(ge=1, le=16, description="GPUs per instance")]
MinVram = Annotated[float | None, Field(ge=1, le=1024, description="minimum VRAM per GPU, GB")]
Countries = Annotated[
    list[Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]] | None,
    Field(max_length=50, description='two-letter country codes, e.g. ["US","CA"]'),
]
MaxPrice = Annotated[float | None, Field(gt=0, le=1000, description="max $/h per instance, storage included")]
MinReliability = Annotated[float | None, Field(ge=0, le=1, description="minimum host reliability, 0-1")]
VerifiedOnly = Annotated[bool, Field(description="only Vast-verified hosts")]
MinCuda = Annotated[float | None, Field(ge=1, le=99, description="minimum CUDA version the driver supports")]
DiskGb = Annotated[float, Field(ge=1, le=8192, description="disk to allocate, GB (priced in)")]
ObjectiveArg = Annotated[
    Literal["price", "performance", "reliability"],
    Field(description="rank by lowest $/h, highest DLPerf, or reliability"),
]
Label = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$", description="instance label")
]
Image = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$",
        description="Docker image reference, e.g. pytorch/pytorch:latest",
    ),
]
Timeout = Annotated[float, Field(ge=0, le=3600, description="seconds to wait at most")]
PublicKeyArg = Annotated[
    str | None,
    Field(
        max_length=16384,
        description="SSH public key text, or a path to a .pub file; default ~/.ssh/id_ed25519.pub or id_rsa.pub",
    ),
]
