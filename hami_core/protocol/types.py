"""The two records HAMi puts on the wire, with HAMi's own field names.

`DeviceInfo` is one card as a node registers it; `ContainerDevice` is one card's share as the
scheduler assigns it to a container. Both are frozen, slotted dataclasses: the scheduler decodes
tens of thousands of them and pydantic validation would dominate that cost. Validation of values
happens in the decoders (`ProtocolError`) and in `hami_core.model` for hami's own inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ContainerDevice", "DeviceInfo"]


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One registered card: HAMi's `DeviceInfo` (`id, index, count, devmem, devcore, type, numa,
    mode, health`, plus optional `custominfo` and raw `migProfiles`)."""

    id: str
    count: int
    devmem: int
    devcore: int
    type: str
    index: int = 0
    numa: int = 0
    mode: str = ""
    health: bool = False
    custominfo: Mapping[str, Any] | None = field(default=None, compare=True)
    mig_profiles: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ContainerDevice:
    """One card's share for one container: HAMi's `uuid,type,usedmem,usedcores`."""

    uuid: str
    type: str
    usedmem: int
    usedcores: int
