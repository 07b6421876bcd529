"""What an Ascend node registers: one HAMi `DeviceInfo` per NPU, the register annotation, the
handshake and the soft-slicing flag (pure; the caller supplies the clock)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hami_ascend.chips import ChipConfig
from hami_ascend.spec import ASCEND910_PREFIX, keys_for
from hami_core.model import Device, DeviceInfo, VendorSpec
from hami_core.protocol.node_devices import encode_node_devices

__all__ = [
    "HANDSHAKE_TIME_FORMAT",
    "is_super_pod",
    "network_id",
    "register_annotations",
    "split_device",
]

HANDSHAKE_TIME_FORMAT = "%Y.%m.%d %H:%M:%S"
"""Go layout `2006.01.02 15:04:05`, as the Ascend device plugin writes `Reported_<time>`."""

SUPER_POD_WORD = "Ascend910C"


def is_super_pod(chip: ChipConfig) -> bool:
    """True for chips whose NPUs come in modules of two (910C: `superPod: true`, or HAMi's
    `Ascend910C` common word)."""
    return chip.super_pod or chip.common_word == SUPER_POD_WORD


def network_id(chip: ChipConfig, index: int) -> int | None:
    """The NPU's HCCS network group for 910 chips: 0 for NPU index 0-3, 1 from 4 on, always 0 on
    910C; `None` for other chips (no `custominfo`)."""
    if not chip.common_word.startswith(ASCEND910_PREFIX):
        return None
    if is_super_pod(chip):
        return 0
    return 1 if index > 3 else 0


def split_device(chip: ChipConfig, device: Device, soft_slicing: bool) -> DeviceInfo:
    """One NPU as the scheduler sees it: `count` = vDevice count, `devmem` = memoryAllocatable
    (from config, not measured), `devcore` = aiCore (100 on a soft-slicing node), type = the
    chip's common word, `custominfo.NetworkID` on 910 chips."""
    nid = network_id(chip, device.index)
    return DeviceInfo(
        id=device.uuid,
        index=device.index,
        count=chip.vdevice_count,
        devmem=chip.memory_allocatable,
        devcore=100 if soft_slicing else chip.ai_core,
        type=chip.common_word,
        numa=0,
        mode="",
        health=device.health,
        custominfo=None if nid is None else {"NetworkID": nid},
    )


def register_annotations(
    spec: VendorSpec, devices: Sequence[DeviceInfo], soft_slicing: bool, now: datetime
) -> dict[str, str]:
    """The node annotations the Ascend device plugin writes each period: the JSON register
    annotation, `Reported_<now>` under the handshake key and `hami-vnpu-core: true|false`."""
    keys = keys_for(spec.common_word)
    out: dict[str, str] = {}
    if spec.annotations.node_register:
        out[spec.annotations.node_register] = encode_node_devices(devices)
    if spec.annotations.handshake:
        out[spec.annotations.handshake] = "Reported_" + now.strftime(HANDSHAKE_TIME_FORMAT)
    out[keys.node_vnpu_core] = "true" if soft_slicing else "false"
    return out
