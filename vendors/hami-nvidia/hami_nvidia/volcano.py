"""NVIDIA GPUs under Volcano's vGPU protocol (`Project-HAMi/volcano-vgpu-device-plugin`) — pure.

What differs from HAMi's protocol, and nothing else:

- The register annotation `volcano.sh/node-vgpu-register` is text, one `id,count,devmem,type,
  health,mode:` piece per card (`GPU-0a1b,10,32768,NVIDIA-Tesla V100-PCIE-32GB,true,hami-core:`),
  with `devmem` in `gpuMemoryFactor` MiB units and `type` always `NVIDIA-<NVML name>`. Volcano's
  scheduler reads cards with at least six fields; an older plugin wrote five (no mode), which
  is read with an empty mode.
- The handshake `volcano.sh/node-vgpu-handshake` must be present for Volcano's scheduler to use
  the node; it writes `Requesting_<time>` and drops the node if that is not answered within
  60 s. The node agent answers `Reported_<time>` with the time rounded down to 30 s, so the
  value (and the node patch) changes at most every 30 s, as Volcano's plugin reports.
- The kubelet gets all three resources: `vgpu-number` as the split count per card,
  `vgpu-memory` as one device per `gpuMemoryFactor` MiB, `vgpu-cores` as 100 x
  `deviceCoreScaling` per card.
- Pod decisions use HAMi's `uuid,NVIDIA,mem,cores:` encoding with `mem` in `gpuMemoryFactor`
  MiB units: the container's `CUDA_DEVICE_MEMORY_LIMIT_<i>` is `mem x gpuMemoryFactor` MiB.
- Volcano's `mig` sharing mode means dynamic MIG (instances cut per pod, decisions naming
  `uuid[group-position]`), which hami does not do: cards are never registered in `mig` mode
  (a card NVML reports in MIG mode is offered whole, one slot, as `hami-core`), and a decision
  naming a MIG position is refused at `Allocate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from hami_core.model import ContainerAllocation, Device, DeviceInfo, VendorSpec
from hami_core.protocol import ProtocolError, format_reported
from hami_nvidia.discovery import device_info
from hami_nvidia.settings import NvidiaSettings

__all__ = [
    "REPORT_PERIOD_S",
    "decode_volcano_devices",
    "encode_volcano_devices",
    "handshake_value",
    "scaled_allocation",
    "volcano_device_info",
    "volcano_type",
    "volcano_units",
]

REPORT_PERIOD_S = 30
"""How often (seconds) the handshake answer changes, as Volcano's plugin re-reports."""

_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def volcano_type(model: str) -> str:
    """The card type Volcano's plugin registers: `NVIDIA-` and the NVML name, always."""
    return f"NVIDIA-{model}"


def volcano_device_info(device: Device, settings: NvidiaSettings) -> DeviceInfo:
    """How one card is offered to Volcano: HAMi's split and scaling (`device_info`), memory in
    `gpuMemoryFactor` MiB units, Volcano's type, never `mig` mode."""
    info = device_info(device, settings)
    return replace(
        info,
        devmem=info.devmem // settings.gpu_memory_factor,
        type=volcano_type(device.model),
        mode="hami-core" if info.mode == "mig" else info.mode,
        custominfo=None,
    )


def volcano_units(spec: VendorSpec, resource: str, info: DeviceInfo) -> int | None:
    """Kubelet devices one card offers under `resource`: the split count, its memory units or
    its core units; None for a resource that is not the spec's."""
    names = spec.resources
    if resource == names.count:
        return info.count
    if resource == names.memory:
        return info.devmem
    if resource == names.cores:
        return info.devcore
    return None


def _text(field: str, value: str) -> str:
    if "," in value or ":" in value:
        raise ProtocolError(
            f"volcano register {field} must not contain ',' or ':': {value!r}",
            field=field,
            value=value,
        )
    return value


def encode_volcano_devices(devices: Sequence[DeviceInfo]) -> str:
    """The `volcano.sh/node-vgpu-register` value for these cards (empty for none).

    Raises `ProtocolError` when an id, type or mode contains `,` or `:`.
    """
    return "".join(
        f"{_text('id', d.id)},{d.count},{d.devmem},{_text('type', d.type)},"
        f"{'true' if d.health else 'false'},{_text('mode', d.mode)}:"
        for d in devices
    )


def _whole(field: str, text: str, piece: str) -> int:
    if not text.strip().isdigit():
        raise ProtocolError(
            f"volcano register card {piece!r}: {field} {text!r} is not a whole number >= 0",
            field=field,
            value=text,
        )
    return int(text)


def decode_volcano_devices(value: str) -> list[DeviceInfo]:
    """The cards of a `volcano.sh/node-vgpu-register` value, in order (index = position).

    Each card reads 100 cores, NUMA 0. A value without `:` holds no card. Raises
    `ProtocolError` naming the card and field when a piece has fewer than five or more than six
    fields, or a number or health flag that cannot be read.
    """
    if ":" not in value:
        return []
    out: list[DeviceInfo] = []
    for piece in value.split(":"):
        if "," not in piece:
            continue
        fields = piece.split(",")
        if len(fields) not in (5, 6):
            raise ProtocolError(
                f"volcano register card {piece!r}: expected id,count,devmem,type,health,mode, "
                f"got {len(fields)} fields",
                field="card",
                value=piece,
            )
        health = fields[4].strip()
        if health not in _GO_TRUE and health not in _GO_FALSE:
            raise ProtocolError(
                f"volcano register card {piece!r}: health {health!r} is not true or false",
                field="health",
                value=health,
            )
        out.append(
            DeviceInfo(
                id=fields[0],
                count=_whole("count", fields[1], piece),
                devmem=_whole("devmem", fields[2], piece),
                devcore=100,
                type=fields[3],
                index=len(out),
                numa=0,
                mode=fields[5] if len(fields) == 6 else "",
                health=health in _GO_TRUE,
            )
        )
    return out


def handshake_value(now: datetime) -> str:
    """The handshake answer at `now`: `Reported_<time>`, the time rounded down to 30 s."""
    stamp = now.replace(second=now.second - now.second % REPORT_PERIOD_S, microsecond=0)
    return format_reported(stamp)


def scaled_allocation(allocation: ContainerAllocation, factor: int) -> ContainerAllocation:
    """The allocation with each share's memory turned from `gpuMemoryFactor` units into MiB.

    Raises `ValueError` for a share naming a dynamic-MIG position (`uuid[group-k]`), which hami
    cannot serve.
    """
    for share in allocation.devices:
        if "[" in share.uuid:
            raise ValueError(
                f"device {share.uuid!r} names a dynamic MIG instance (Volcano's mig mode); "
                "hami serves Volcano's hami-core mode only"
            )
    if factor == 1:
        return allocation
    shares = tuple(replace(d, usedmem=d.usedmem * factor) for d in allocation.devices)
    return allocation.model_copy(update={"devices": shares})
