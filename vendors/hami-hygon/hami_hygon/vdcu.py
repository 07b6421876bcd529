"""vDCU slices: compute-unit masks, pipe and vdev IDs, and the `vdev.conf` a container reads.

A container that gets part of one DCU is described to Hygon's runtime by a small config file
mounted at `/etc/vdev/docker/vdev0.conf`:

    PciBusId: 0000:3D:00.0
    cu_mask: 0x000000000000ffff
    cu_mask: 0x0000000000000000
    cu_count: 16
    mem: 24576 MiB
    device_id: 0
    vdev_id: 3
    pipe_id: 2
    enable: 1

Each slice owns compute units (CUs) of its card, given as two 64-bit masks (CU `i` is bit `i`
of the first mask for `i < 64`, bit `i - 64` of the second otherwise; free CUs are taken lowest
first), a pipe ID unique on its card (0..19) and a vdev ID unique on the node (0..199).

The state needs no database: the host directory of each slice is named
`<podUID>_<container>_<cardIndex>_<pipeID>_<vdevID>_<mask1>_<mask2>` (the DCU device plugin's
layout), so listing the directories tells which IDs and CUs are taken. All functions here are
pure; `hami_hygon.binding` lists and writes the directories.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hami_hygon.errors import VdcuError

__all__ = [
    "MASK_BITS",
    "MAX_PIPES",
    "MAX_VDEVS",
    "VdevSlot",
    "allocate_compute_units",
    "compute_unit_count",
    "parse_slot_dir",
    "plan_slot",
    "render_vdev_conf",
    "vdev_bus_id",
]

MASK_BITS = 64
"""Bits in one `cu_mask`; two masks cover up to 128 CUs."""
MAX_PIPES = 20
"""Pipe IDs per card: 0..19."""
MAX_VDEVS = 200
"""vdev IDs per node: 0..199."""

_HEX16 = re.compile(r"^[0-9a-fA-F]{16}$")
_NAME_PART = re.compile(r"^[A-Za-z0-9.-]+$")


@dataclass(frozen=True, slots=True)
class VdevSlot:
    """One sliced container's share of a card: its IDs and CU masks."""

    pod_uid: str
    container: str
    device_index: int
    pipe_id: int
    vdev_id: int
    mask_low: int
    mask_high: int

    @property
    def cu_count(self) -> int:
        """How many CUs the masks hold."""
        return self.mask_low.bit_count() + self.mask_high.bit_count()

    def dir_name(self) -> str:
        """The host directory name that records this slot."""
        return (
            f"{self.pod_uid}_{self.container}_{self.device_index}_{self.pipe_id}_"
            f"{self.vdev_id}_{self.mask_low:016x}_{self.mask_high:016x}"
        )


def parse_slot_dir(name: str) -> VdevSlot | None:
    """The slot a directory name records, or None for a name that is not a slot directory."""
    parts = name.split("_")
    if len(parts) != 7:
        return None
    uid, container, device, pipe, vdev, low, high = parts
    if not (_NAME_PART.match(uid) and _NAME_PART.match(container)):
        return None
    if not (device.isdigit() and pipe.isdigit() and vdev.isdigit()):
        return None
    if not (_HEX16.match(low) and _HEX16.match(high)):
        return None
    return VdevSlot(uid, container, int(device), int(pipe), int(vdev), int(low, 16), int(high, 16))


def compute_unit_count(cores_percent: int, compute_units: int) -> int:
    """CUs for a share of `cores_percent` % of a card with `compute_units` CUs (rounded down)."""
    return max(0, min(cores_percent, 100)) * compute_units // 100


def allocate_compute_units(
    used_low: int, used_high: int, count: int, compute_units: int
) -> tuple[int, int]:
    """Masks of `count` free CUs among the card's first `compute_units`, lowest first.

    Raises `VdcuError` when fewer than `count` CUs are free.
    """
    if not 0 < compute_units <= 2 * MASK_BITS:
        raise VdcuError(f"a card with {compute_units} compute units cannot be masked")
    used = used_low | (used_high << MASK_BITS)
    chosen = 0
    left = count
    for bit in range(compute_units):
        if left == 0:
            break
        if not used >> bit & 1:
            chosen |= 1 << bit
            left -= 1
    if left:
        free = compute_units - (used & ((1 << compute_units) - 1)).bit_count()
        raise VdcuError(f"need {count} free compute units, {free} of {compute_units} are free")
    return chosen & ((1 << MASK_BITS) - 1), chosen >> MASK_BITS


def _lowest_free(taken: Iterable[int], limit: int, what: str) -> int:
    busy = set(taken)
    for candidate in range(limit):
        if candidate not in busy:
            return candidate
    raise VdcuError(f"all {limit} {what} are in use")


def plan_slot(
    existing: Sequence[VdevSlot],
    *,
    pod_uid: str,
    container: str,
    device_index: int,
    compute_units: int,
    cores_percent: int,
) -> VdevSlot:
    """The slot for one container's slice of card `device_index`, given the slots in use.

    A container that already holds a slot on that card gets it back unchanged (kubelet may call
    Allocate again after a restart). Otherwise: the lowest free vdev ID on the node, the lowest
    free pipe ID on the card, and `cores_percent` % of the card's CUs from those still free.
    Raises `VdcuError` when an ID pool or the CUs are exhausted, or a name cannot be recorded.
    """
    for name, what in ((pod_uid, "pod UID"), (container, "container name")):
        if not _NAME_PART.match(name):
            raise VdcuError(f"{what} {name!r} cannot name a vDCU directory")
    for slot in existing:
        if (slot.pod_uid, slot.container, slot.device_index) == (pod_uid, container, device_index):
            return slot
    on_card = [s for s in existing if s.device_index == device_index]
    vdev_id = _lowest_free((s.vdev_id for s in existing), MAX_VDEVS, "vdev IDs of the node")
    pipe_id = _lowest_free(
        (s.pipe_id for s in on_card), MAX_PIPES, f"pipe IDs of DCU {device_index}"
    )
    used_low = used_high = 0
    for s in on_card:
        used_low |= s.mask_low
        used_high |= s.mask_high
    count = compute_unit_count(cores_percent, compute_units)
    low, high = allocate_compute_units(used_low, used_high, count, compute_units)
    return VdevSlot(pod_uid, container, device_index, pipe_id, vdev_id, low, high)


def vdev_bus_id(bus_id: str) -> str:
    """A PCI address as the vDCU config writes it: `0000:3D:00.0` (upper-case hex)."""
    return bus_id.strip().upper()


def render_vdev_conf(*, pci_bus_id: str, slot: VdevSlot, memory_mib: int, device_id: int) -> str:
    """The `vdev.conf` text for `slot` (module docstring); `device_id` is 0 inside the
    container (it sees one card) and the host index in the copy for dcu-exporter."""
    return (
        f"PciBusId: {vdev_bus_id(pci_bus_id)}\n"
        f"cu_mask: 0x{slot.mask_low:016x}\n"
        f"cu_mask: 0x{slot.mask_high:016x}\n"
        f"cu_count: {slot.cu_count}\n"
        f"mem: {memory_mib} MiB\n"
        f"device_id: {device_id}\n"
        f"vdev_id: {slot.vdev_id}\n"
        f"pipe_id: {slot.pipe_id}\n"
        "enable: 1\n"
    )
