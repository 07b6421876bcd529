"""What a MetaX container gets from the device plugin: device nodes (built-in mounting).

MetaX containers need the control node `/dev/mxcd` and each card's DRM nodes under `/dev/dri`
(the `docker run --device=/dev/mxcd --device=/dev/dri` of MetaX's images, narrowed to the
assigned cards). Paths are the same inside the container as on the host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hami_core.errors import ConfigError
from hami_core.model import ContainerAllocation, ContainerRuntimeSpec, DeviceNode
from hami_metax.discovery import default_dri_nodes
from hami_metax.rules import card_index
from hami_metax.spec import CONTROL_DEVICE

__all__ = ["MountError", "card_nodes", "control_devices", "runtime_spec"]


class MountError(ValueError):
    """An assigned card cannot be mounted; the message names it."""


def card_nodes(allocation: ContainerAllocation) -> list[str]:
    """The host DRM nodes of every assigned card, in assignment order.

    A capacity card name (`<node>-metax-<i>`) is the discovered card with index `i` (its
    DRM nodes, or the default naming when the node agent did not discover it); a discovered
    card's UUID is that card. Raises `MountError` naming a card that is neither.
    """
    by_index = {d.index: d for d in allocation.node_devices}
    out: list[str] = []
    for share in allocation.devices:
        index = card_index(share.uuid)
        card = allocation.physical(share.uuid) if index is None else by_index.get(index)
        if card is not None:
            out.extend(card.paths or default_dri_nodes(card.index))
        elif index is not None:
            out.extend(default_dri_nodes(index))
        else:
            raise MountError(f"card {share.uuid!r} is not among this node's MetaX cards")
    return out


def control_devices(section: Mapping[str, Any]) -> tuple[str, ...]:
    """The control device nodes every container gets: the `metax:` section's `controlDevices`
    list, else `/dev/mxcd`. Raises `ConfigError` unless it is a list of absolute paths."""
    value = section.get("controlDevices")
    if value is None:
        return (CONTROL_DEVICE,)
    if not isinstance(value, list) or not all(
        isinstance(p, str) and p.startswith("/") for p in value
    ):
        raise ConfigError(f"metax.controlDevices: expected a list of absolute paths, got {value!r}")
    return tuple(value)


def runtime_spec(
    nodes: Iterable[str], control: Sequence[str] = (CONTROL_DEVICE,)
) -> ContainerRuntimeSpec:
    """The control nodes plus these DRM nodes, each at the same path in the container."""
    paths = list(dict.fromkeys([*control, *nodes]))
    return ContainerRuntimeSpec(
        devices=tuple(DeviceNode(container_path=p, host_path=p) for p in paths)
    )
