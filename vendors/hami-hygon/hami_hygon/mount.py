"""What one container gets for its DCUs: device nodes, and for a vDCU slice its config mounts.

Hygon needs no container runtime: the device plugin lists the device nodes itself, and no env
var names the cards (they are visible because their DRM nodes are). For each container:

- `/dev/kfd` and, where the node has it, `/dev/mkfd` (permissions `rwm`);
- for each assigned DCU its `/dev/dri/card<N>` and `/dev/dri/renderD<M>` (`rw`), as discovery
  found them for that card; a card known without device nodes (a cluster snapshot gives only
  the registered cards) gets the DCU plugin's nodes by index, `/dev/dri/card<i>` and
  `/dev/dri/renderD<128 + i>`, as other vendors default theirs (`cambricon_dev<i>`);
- when the container holds part of exactly one DCU (less memory than the card has, or less
  than 100 % of its cores), a vDCU slice: its `vdev.conf` directory mounted at
  `/etc/vdev/docker`, the DTK directory (`hygonPath`, default `/opt/dtk`) at
  `/opt/hygondriver`, and `/opt/hyhal`, all read-only.

A dry run (`allocation.dry_run`, a simulation) describes the same response but touches nothing
on the host: no slot directory is listed or written, and the slot is planned as on a card with no
other slices (the directory name is computed as usual; no PCI bus ID is needed since no
`vdev.conf` is rendered).

Each call builds its own response, so containers of one pod never share (or alias) a list.
HAMi's DCU plugin sets up a slice only when the memory is partial; hami also does for a partial
core share with full memory, which the plugin would leave unlimited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

from hami_core.model import (
    ContainerAllocation,
    ContainerRuntimeSpec,
    Device,
    DeviceNode,
    Mount,
)
from hami_hygon.catalog import compute_units_of
from hami_hygon.errors import MountError
from hami_hygon.settings import HygonSettings
from hami_hygon.vdcu import VdevSlot, parse_slot_dir, plan_slot, render_vdev_conf

__all__ = [
    "CONTROL_NODES",
    "HYGONDRIVER_PATH",
    "HYHAL_PATH",
    "RENDER_NODE_BASE",
    "VDEV_CONTAINER_DIR",
    "VdcuShare",
    "VdevStore",
    "container_spec",
    "drm_paths",
    "runtime_spec",
    "slot_host_dir",
    "vdcu_share",
]

CONTROL_NODES = ("/dev/kfd", "/dev/mkfd")
"""Node-wide device nodes every DCU container gets (those the node has)."""
VDEV_CONTAINER_DIR = "/etc/vdev/docker"
HYGONDRIVER_PATH = "/opt/hygondriver"
HYHAL_PATH = "/opt/hyhal"
RENDER_NODE_BASE = 128
"""DRM render nodes are numbered from 128: card `i` defaults to `/dev/dri/renderD<128 + i>`."""


class VdevStore(Protocol):
    """Where vDCU slot directories live (`hami_hygon.binding.VdevFiles` on a node)."""

    def names(self) -> list[str]:
        """The names of the slot directories that exist."""
        ...

    def write(self, slot: VdevSlot, conf: str, exporter_conf: str) -> str:
        """Create the slot's directory with `vdev0.conf` = `conf`; return its host path."""
        ...


@dataclass(frozen=True, slots=True)
class VdcuShare:
    """The part of one card a sliced container holds."""

    card: Device
    memory_mib: int
    cores: int


def _cards(allocation: ContainerAllocation) -> list[Device]:
    cards: list[Device] = []
    for share in allocation.devices:
        card = allocation.physical(share.uuid)
        if card is None:
            known = ", ".join(d.uuid for d in allocation.node_devices) or "none"
            raise MountError(
                f"pod {allocation.pod_namespace}/{allocation.pod_name} container "
                f"{allocation.container!r}: DCU {share.uuid} is not on this node (found: {known})"
            )
        cards.append(card)
    return cards


def drm_paths(card: Device) -> tuple[str, ...]:
    """The card's DRM nodes as discovery found them, else by index (`card<i>`, `renderD<128+i>`)."""
    if card.paths:
        return card.paths
    return (f"/dev/dri/card{card.index}", f"/dev/dri/renderD{RENDER_NODE_BASE + card.index}")


def slot_host_dir(settings: HygonSettings, slot: VdevSlot) -> str:
    """The host directory that records `slot` under `vdevDir`."""
    return str(PurePosixPath(settings.vdev_dir) / slot.dir_name())


def vdcu_share(allocation: ContainerAllocation) -> VdcuShare | None:
    """The slice this container holds, or None when it holds whole cards."""
    if len(allocation.devices) != 1:
        return None
    [share] = allocation.devices
    [card] = _cards(allocation)
    if share.usedmem >= card.memory_mib and share.usedcores >= 100:
        return None
    return VdcuShare(
        card=card, memory_mib=min(share.usedmem, card.memory_mib), cores=share.usedcores
    )


def _control_nodes(cards: Sequence[Device]) -> tuple[str, ...]:
    for card in cards:
        found = card.extras.get("control_nodes")
        if isinstance(found, list | tuple):
            nodes = tuple(str(n) for n in found if str(n) in CONTROL_NODES)
            if nodes:
                return nodes
    return CONTROL_NODES[:1]


def runtime_spec(
    allocation: ContainerAllocation, settings: HygonSettings, vdev_host_dir: str | None
) -> ContainerRuntimeSpec:
    """The container's response: device nodes, plus the vDCU mounts when `vdev_host_dir` is set.

    Raises `MountError` when an assigned DCU is not on this node.
    """
    cards = _cards(allocation)
    devices = [
        DeviceNode(container_path=p, host_path=p, permissions="rwm") for p in _control_nodes(cards)
    ]
    seen: set[str] = set()
    for card in cards:
        for path in drm_paths(card):
            if path not in seen:
                seen.add(path)
                devices.append(DeviceNode(container_path=path, host_path=path, permissions="rw"))
    mounts: tuple[Mount, ...] = ()
    if vdev_host_dir is not None:
        mounts = (
            Mount(container_path=VDEV_CONTAINER_DIR, host_path=vdev_host_dir, read_only=True),
            Mount(container_path=HYGONDRIVER_PATH, host_path=settings.hygon_path, read_only=True),
            Mount(container_path=HYHAL_PATH, host_path=settings.hyhal_path, read_only=True),
        )
    return ContainerRuntimeSpec(devices=tuple(devices), mounts=mounts)


def _compute_units(card: Device, settings: HygonSettings) -> int:
    units = card.extras.get("compute_units")
    if not isinstance(units, int):
        units = compute_units_of(card.model, settings.compute_units)
    if units is None:
        raise MountError(
            f"DCU {card.uuid} ({card.model}): compute units unknown; "
            f"set hygon.computeUnits.{card.model.removeprefix('DCU-')} in the device config"
        )
    return units


def _pci_bus_id(card: Device) -> str:
    bus = card.extras.get("pci_bus_id")
    if not isinstance(bus, str) or not bus:
        raise MountError(f"DCU {card.uuid}: no PCI bus ID was found for its vDCU config")
    return bus


def _slot(
    allocation: ContainerAllocation, share: VdcuShare, units: int, existing: Sequence[VdevSlot]
) -> VdevSlot:
    return plan_slot(
        existing,
        pod_uid=allocation.pod_uid,
        container=allocation.container,
        device_index=share.card.index,
        compute_units=units,
        cores_percent=share.cores,
    )


def container_spec(
    allocation: ContainerAllocation, settings: HygonSettings, store: VdevStore
) -> ContainerRuntimeSpec:
    """Everything one container needs; for a slice, first records it in `store` — except in a
    dry run, which neither lists nor writes `store` (module docstring).

    Raises `MountError` (or its `VdcuError`) naming the card or pool that is the problem.
    """
    share = vdcu_share(allocation)
    if share is None:
        return runtime_spec(allocation, settings, None)
    card = share.card
    units = _compute_units(card, settings)
    if allocation.dry_run:
        slot = _slot(allocation, share, units, ())
        return runtime_spec(allocation, settings, slot_host_dir(settings, slot))
    bus = _pci_bus_id(card)
    existing = [s for s in map(parse_slot_dir, store.names()) if s is not None]
    slot = _slot(allocation, share, units, existing)
    conf = render_vdev_conf(pci_bus_id=bus, slot=slot, memory_mib=share.memory_mib, device_id=0)
    exporter = render_vdev_conf(
        pci_bus_id=bus, slot=slot, memory_mib=share.memory_mib, device_id=card.index
    )
    host_dir = store.write(slot, conf, exporter)
    return runtime_spec(allocation, settings, host_dir)
