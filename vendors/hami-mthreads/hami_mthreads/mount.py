"""What a Moore Threads container gets from the device plugin (runtime mounting).

The mthreads container runtime (mt-container-toolkit) mounts the cards named in
`MTHREADS_VISIBLE_DEVICES`; hami names them by index, the same index HAMi sends the MT device
plugin in `mthreads.com/gpu-index`.
"""

from __future__ import annotations

from collections.abc import Sequence

from hami_core.model import ContainerAllocation, ContainerRuntimeSpec
from hami_mthreads.rules import card_index
from hami_mthreads.spec import ENV_VISIBLE_DEVICES

__all__ = ["MountError", "card_indexes", "runtime_spec"]


class MountError(ValueError):
    """An assigned card cannot be named for the runtime; the message names it."""


def card_indexes(allocation: ContainerAllocation) -> list[int]:
    """The index of every assigned card, in assignment order.

    A capacity card name (`<node>-mthreads-<i>`) gives `i`; a discovered card's UUID gives its
    index. Raises `MountError` naming a card that is neither.
    """
    out: list[int] = []
    for share in allocation.devices:
        index = card_index(share.uuid)
        if index is None:
            card = allocation.physical(share.uuid)
            if card is None:
                raise MountError(
                    f"card {share.uuid!r} is not among this node's Moore Threads cards"
                )
            index = card.index
        out.append(index)
    return out


def runtime_spec(indexes: Sequence[int]) -> ContainerRuntimeSpec:
    """`MTHREADS_VISIBLE_DEVICES` listing these card indexes."""
    return ContainerRuntimeSpec(envs={ENV_VISIBLE_DEVICES: ",".join(str(i) for i in indexes)})
