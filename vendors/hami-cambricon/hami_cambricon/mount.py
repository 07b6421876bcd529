"""What one container gets for its MLUs — pure.

Cambricon needs no container runtime by default: the device plugin lists the device nodes.

- Node-wide: `/dev/cambricon_ctl` and `/dev/cambricon_gdr`, where the node has them.
- Whole cards (more than one MLU, or all of one card's cores and its memory in whole 256 MiB
  units — the most the scheduler's capacity model can assign): for each card the
  nodes it has of `/dev/cambr-msgq:<N>`, `/dev/cambr-rpc:<N>`, `/dev/cmsg_ctrl<N>`,
  `/dev/commu<N>`, `/dev/cambricon_ipcm<N>`, then `/dev/cambricon_dev<N>`.
- A slice of one card: `/dev/cambricon_dev<N>`, `/dev/cambricon_ipcm<N>` (if present) and the
  sMLU instance node `/dev/cambricon-caps/cap_dev<N>_mi<K>` of the instance recorded in the
  pod's `CAMBRICON_DSMLU_PROFILE_INSTANCE`. hami does not create sMLU instances (Cambricon's
  plugin does, through libcndev). A slice without one is refused, unless `sliceWithoutInstance:
  whole-card` says to give it the card's nodes with no hardware limit. A dry run
  (`allocation.dry_run`, a simulation) requires no instance: it describes the node of the one
  Cambricon's plugin would create, `/dev/cambricon-caps/cap_dev<N>_mi*` (its ID is not known).
- Runtime mode (`useRuntime: true`): no device nodes; `CAMBRICON_VISIBLE_DEVICES=<slots>` for
  whole cards, `VIRTUAL_DEVICES=<dev>,<ipcm>,<sMLU node>` for a slice, as Cambricon's plugin
  does with `--use-runtime`.

A dry run touches nothing on the host: with `mountCnmon` it describes the cnmon mount at
`cnmonPath` when that is an absolute path (a bare name is only resolved on a node, so that
mount is left out).

Cards are found by slot: the scheduler's `<node>-cambricon-mlu-<N>` and discovery's
`cambricon-mlu-<N>` name the same card.
"""

from __future__ import annotations

from collections.abc import Sequence

from hami_cambricon.discovery import CONTROL_NODES, slot_of
from hami_cambricon.dsmlu import parse_profile_instance, pending_instance_node
from hami_cambricon.errors import MountError
from hami_cambricon.settings import CambriconSettings
from hami_cambricon.spec import DSMLU_PROFILE_INSTANCE_KEY, MEMORY_UNIT_MIB
from hami_core.model import (
    ContainerAllocation,
    ContainerRuntimeSpec,
    Device,
    DeviceNode,
    Mount,
)

__all__ = [
    "VIRTUAL_DEVICES_ENV",
    "VISIBLE_DEVICES_ENV",
    "assigned_cards",
    "container_spec",
    "described_cnmon",
]

VISIBLE_DEVICES_ENV = "CAMBRICON_VISIBLE_DEVICES"
VIRTUAL_DEVICES_ENV = "VIRTUAL_DEVICES"


def _where(allocation: ContainerAllocation) -> str:
    return (
        f"pod {allocation.pod_namespace}/{allocation.pod_name} container {allocation.container!r}"
    )


def assigned_cards(allocation: ContainerAllocation) -> list[Device]:
    """The discovered cards behind the container's assigned IDs, in assignment order.

    Raises `MountError` naming the ID when no card of this node has that slot.
    """
    by_slot = {d.index: d for d in allocation.node_devices}
    cards: list[Device] = []
    for share in allocation.devices:
        card = allocation.physical(share.uuid)
        if card is None:
            slot = slot_of(share.uuid)
            card = by_slot.get(slot) if slot is not None else None
        if card is None:
            found = ", ".join(str(s) for s in sorted(by_slot)) or "none"
            raise MountError(
                f"{_where(allocation)}: MLU {share.uuid} is not on this node (slots: {found})"
            )
        cards.append(card)
    return cards


def _is_slice(allocation: ContainerAllocation, cards: Sequence[Device]) -> bool:
    if len(cards) != 1:
        return False
    [share] = allocation.devices
    whole_mib = cards[0].memory_mib // MEMORY_UNIT_MIB * MEMORY_UNIT_MIB
    return share.usedcores < 100 or share.usedmem < whole_mib


def _instance_node(
    allocation: ContainerAllocation, card: Device, settings: CambriconSettings
) -> str | None:
    """The sMLU instance node of a slice; None to give it the whole card's nodes."""
    raw = allocation.pod_annotations.get(DSMLU_PROFILE_INSTANCE_KEY)
    instance = parse_profile_instance(raw)
    if instance is None:
        if settings.slice_without_instance == "whole-card":
            return None
        if allocation.dry_run:
            return pending_instance_node(card.index)
        problem = "none is recorded" if raw is None else f"cannot read {raw!r}"
        raise MountError(
            f"{_where(allocation)}: a slice of MLU {card.index} needs an sMLU instance "
            f"({DSMLU_PROFILE_INSTANCE_KEY}: {problem}); hami does not create sMLU "
            "instances (run Cambricon's device plugin in dynamic-smlu mode for slices, or set "
            "cambricon.sliceWithoutInstance: whole-card)"
        )
    if instance.slot != card.index:
        raise MountError(
            f"{_where(allocation)}: the sMLU instance is on MLU {instance.slot}, "
            f"the scheduler chose MLU {card.index}"
        )
    return instance.node


def _control(cards: Sequence[Device]) -> list[str]:
    for card in cards:
        found = card.extras.get("control_nodes")
        if isinstance(found, list | tuple):
            return [str(p) for p in found if str(p) in CONTROL_NODES]
    return [CONTROL_NODES[0]]


def _own_nodes(card: Device) -> list[str]:
    return list(card.paths) or [f"/dev/cambricon_dev{card.index}"]


def container_spec(
    allocation: ContainerAllocation, settings: CambriconSettings, cnmon: str | None = None
) -> ContainerRuntimeSpec:
    """Everything one container needs for its MLUs (module docstring); `cnmon` is the host
    path of the cnmon binary to mount, if any.

    Raises `MountError` for a card not on this node, or a slice without an sMLU instance
    (outside a dry run).
    """
    cards = assigned_cards(allocation)
    sliced = _is_slice(allocation, cards)
    instance = _instance_node(allocation, cards[0], settings) if sliced else None
    if settings.use_runtime:
        if instance is not None:
            card = cards[0]
            value = f"/dev/cambricon_dev{card.index},/dev/cambricon_ipcm{card.index},{instance}"
            return ContainerRuntimeSpec(envs={VIRTUAL_DEVICES_ENV: value})
        slots = ",".join(str(c.index) for c in cards)
        return ContainerRuntimeSpec(envs={VISIBLE_DEVICES_ENV: slots})
    paths = _control(cards)
    for card in cards:
        own = _own_nodes(card)
        if instance is not None:
            dev, ipcm = f"/dev/cambricon_dev{card.index}", f"/dev/cambricon_ipcm{card.index}"
            paths += [dev] + ([ipcm] if ipcm in own else []) + [instance]
        else:
            paths += own
    devices = tuple(
        DeviceNode(container_path=p, host_path=p, permissions="rw") for p in dict.fromkeys(paths)
    )
    mounts: tuple[Mount, ...] = ()
    if cnmon is not None:
        mounts = (Mount(container_path=cnmon, host_path=cnmon, read_only=True),)
    return ContainerRuntimeSpec(devices=devices, mounts=mounts)


def described_cnmon(settings: CambriconSettings) -> str | None:
    """The cnmon mount a dry run describes: `cnmonPath` when absolute, else None (module doc)."""
    return settings.cnmon_path if settings.cnmon_path.startswith("/") else None
