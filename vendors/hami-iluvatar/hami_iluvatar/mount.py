"""What an Iluvatar container gets from the device plugin: device nodes and env (built-in).

Modelled on Iluvatar's public device plugin (vendors.md §6.3): each assigned card's node
`/dev/iluvatar<minor>` appears in the container renumbered from 0 in assignment order, plus the
control node `/dev/itrctl`; `IX_VISIBLE_DEVICES` lists the cards' UUIDs and `IX_REPLICA_DEVICES`
the kubelet device IDs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hami_core.errors import ConfigError
from hami_core.model import ContainerAllocation, ContainerRuntimeSpec, DeviceNode
from hami_iluvatar.spec import (
    CONTROL_DEVICE,
    DEVICE_NODE_PREFIX,
    ENV_REPLICA_DEVICES,
    ENV_VISIBLE_DEVICES,
)

__all__ = ["MountError", "MountedCard", "cards_of", "control_devices", "runtime_spec"]


class MountError(ValueError):
    """An assigned card cannot be mounted (not found on this node); the message names it."""


@dataclass(frozen=True, slots=True)
class MountedCard:
    """One assigned card: its UUID and its device node on the host."""

    uuid: str
    host_node: str


def cards_of(allocation: ContainerAllocation) -> list[MountedCard]:
    """The host device node of every card in `allocation`, in assignment order.

    A discovered card's first path is its node; without one, `/dev/iluvatar<index>`.
    Raises `MountError` naming a card the node agent did not discover.
    """
    out: list[MountedCard] = []
    for share in allocation.devices:
        card = allocation.physical(share.uuid)
        if card is None:
            raise MountError(f"card {share.uuid!r} is not among this node's Iluvatar cards")
        node = card.paths[0] if card.paths else f"{DEVICE_NODE_PREFIX}{card.index}"
        out.append(MountedCard(uuid=card.uuid, host_node=node))
    return out


def control_devices(section: Mapping[str, Any]) -> tuple[str, ...]:
    """The control device nodes every container gets: the chip entry's `controlDevices` list,
    else `/dev/itrctl`. Raises `ConfigError` unless it is a list of absolute paths."""
    value = section.get("controlDevices")
    if value is None:
        return (CONTROL_DEVICE,)
    if not isinstance(value, list) or not all(
        isinstance(p, str) and p.startswith("/") for p in value
    ):
        raise ConfigError(f"controlDevices: expected a list of absolute paths, got {value!r}")
    return tuple(value)


def runtime_spec(
    cards: Sequence[MountedCard],
    kubelet_ids: Sequence[str],
    control: Sequence[str] = (CONTROL_DEVICE,),
) -> ContainerRuntimeSpec:
    """Device nodes (renumbered from 0, plus the control nodes) and env for these cards."""
    nodes = [
        DeviceNode(container_path=f"{DEVICE_NODE_PREFIX}{i}", host_path=card.host_node)
        for i, card in enumerate(cards)
    ]
    nodes.extend(DeviceNode(container_path=path, host_path=path) for path in control)
    envs = {ENV_VISIBLE_DEVICES: ",".join(c.uuid for c in cards)}
    if kubelet_ids:
        envs[ENV_REPLICA_DEVICES] = ",".join(kubelet_ids)
    return ContainerRuntimeSpec(envs=envs, devices=tuple(nodes))
