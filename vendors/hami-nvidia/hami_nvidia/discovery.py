"""From what NVML said to hami devices and register records (pure).

`devices_from` applies the node's settings to an `NvmlSnapshot` (filtered cards, memory that
NVML cannot report, MIG mode, links); `device_info` is HAMi's register rule for one card
(hami-protocol.md §1.3): split count, scaled memory and cores, the `NVIDIA-` type prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from hami_core.model import Device, DeviceInfo
from hami_nvidia.binding import NvmlSnapshot
from hami_nvidia.settings import NvidiaSettings
from hami_nvidia.spec import KEY
from hami_nvidia.topology import device_links

__all__ = ["INT32_MAX", "device_info", "devices_from", "links_of", "type_name"]

log = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1
"""HAMi keeps devmem/devcore in int32."""

_MIB = 1024 * 1024


def type_name(model: str) -> str:
    """HAMi's device type: the NVML name, prefixed `NVIDIA-` unless it starts with `NVIDIA`."""
    return model if model.startswith("NVIDIA") else f"NVIDIA-{model}"


def devices_from(
    snapshot: NvmlSnapshot, settings: NvidiaSettings, vendor: str = KEY
) -> list[Device]:
    """The cards to register (as devices of `vendor`): every readable GPU not filtered out by
    the node config.

    A card whose memory NVML cannot report (NOT_SUPPORTED, e.g. unified-memory GB10) gets
    `preConfiguredDeviceMemory` MiB, or is left out when that is 0; an unhealthy card whose
    memory could not be read is still registered (unhealthy, with `preConfiguredDeviceMemory`
    or 0 MiB) so that the scheduler sees it sick rather than gone. A MIG-enabled card keeps
    mode `mig`; other cards take the node's operating mode (`mig` falls back to `hami-core`
    for a card that is not in MIG mode, since hami does not repartition cards).
    """
    links = device_links(snapshot.gpus)
    devices: list[Device] = []
    for gpu in snapshot.gpus:
        if settings.filtered(gpu.uuid, gpu.index):
            continue
        if gpu.memory_bytes is None and not gpu.healthy:
            memory = settings.preconfigured_memory_mib  # lost before it said: register it sick
        elif gpu.memory_bytes is None:
            if settings.preconfigured_memory_mib <= 0:
                log.warning(
                    "GPU %s: NVML cannot report its memory and preConfiguredDeviceMemory is "
                    "not set; not registering it",
                    gpu.uuid,
                )
                continue
            memory = settings.preconfigured_memory_mib
        else:
            memory = gpu.memory_bytes // _MIB
        if gpu.mig_enabled:
            mode = "mig"
        else:
            mode = "hami-core" if settings.operating_mode == "mig" else settings.operating_mode
        extras: dict[str, Any] = {"busId": gpu.bus_id}
        if gpu.problem:
            extras["problem"] = gpu.problem
        if any(links[gpu.uuid].values()):
            extras["links"] = links[gpu.uuid]
        devices.append(
            Device(
                vendor=vendor,
                uuid=gpu.uuid,
                index=gpu.index,
                model=gpu.name or "unknown",
                memory_mib=memory,
                cores=100,
                numa=gpu.numa,
                health=gpu.healthy,
                mode=mode,
                extras=extras,
            )
        )
    return devices


def links_of(device: Device) -> Mapping[str, Sequence[str]]:
    """The links a discovered card carries (peer UUID → link kinds); empty when unknown."""
    raw = device.extras.get("links")
    if not isinstance(raw, Mapping):
        return {}
    return {
        str(peer): [str(k) for k in kinds]
        for peer, kinds in raw.items()
        if isinstance(kinds, list | tuple)
    }


def device_info(device: Device, settings: NvidiaSettings) -> DeviceInfo:
    """How one card is offered: HAMi's register record, with its links kept in `custominfo`.

    Non-MIG: `deviceSplitCount` slots, memory x `deviceMemoryScaling` and
    `deviceCoreScaling` x 100 cores (both truncated to int32 as HAMi does). MIG-mode cards are
    offered whole and unscaled (one slot, all memory, 100 cores): hami does not create MIG
    instances, so a MIG card goes to one container at a time.
    """
    if device.mode == "mig":
        count, devmem, devcore = 1, device.memory_mib, 100
    else:
        count = settings.split_count
        devmem = min(INT32_MAX, int(device.memory_mib * settings.memory_scaling))
        devcore = min(INT32_MAX, int(settings.core_scaling * 100))
    links = links_of(device)
    return DeviceInfo(
        id=device.uuid,
        index=device.index,
        count=count,
        devmem=devmem,
        devcore=devcore,
        type=type_name(device.model),
        numa=max(0, device.numa),
        mode=device.mode,
        health=device.health,
        custominfo={"links": {p: list(k) for p, k in links.items()}} if links else None,
    )
