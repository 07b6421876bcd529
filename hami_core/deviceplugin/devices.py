"""How a node's cards are offered to the kubelet: replica IDs, health, NUMA, preferences.

Pure functions. Each registered card (`DeviceInfo`, after `hami_split`) is offered as `count`
kubelet devices with IDs `<uuid>-<k>`, k = 0..count-1, so the kubelet's capacity for the resource
is cards x split. The kubelet's choice of replica IDs does not decide which card a container gets
(the scheduler's pod annotation does); `preferred_ids` only steers the kubelet towards the cards
the scheduler chose, so that its checkpoint names them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hami_core.model import DeviceInfo

__all__ = [
    "KubeletDevice",
    "card_of",
    "kubelet_devices",
    "preferred_ids",
    "replica_ids",
]


@dataclass(frozen=True, slots=True)
class KubeletDevice:
    """One device as the kubelet sees it in `ListAndWatch`."""

    id: str
    healthy: bool
    numa: int | None = None


def replica_ids(info: DeviceInfo) -> list[str]:
    """The kubelet device IDs of one card: `<uuid>-0` .. `<uuid>-<count-1>`."""
    return [f"{info.id}-{k}" for k in range(max(1, info.count))]


def kubelet_devices(
    infos: Iterable[DeviceInfo], *, numa: bool = False
) -> tuple[KubeletDevice, ...]:
    """Every replica of every card, with the card's health and (when `numa`) its NUMA node."""
    out: list[KubeletDevice] = []
    for info in infos:
        node = info.numa if numa else None
        out.extend(KubeletDevice(rid, info.health, node) for rid in replica_ids(info))
    return tuple(out)


def card_of(replica_id: str) -> str:
    """The card UUID a replica ID belongs to (`GPU-abc-3` → `GPU-abc`)."""
    head, sep, tail = replica_id.rpartition("-")
    return head if sep and tail.isdigit() else replica_id


def preferred_ids(
    available: Sequence[str],
    must_include: Sequence[str],
    size: int,
    prefer_cards: Sequence[str] = (),
) -> list[str]:
    """Choose `size` IDs from `available`: `must_include` first, then one replica of each card in
    `prefer_cards`, then replicas of cards not yet used, then anything left (stable order)."""
    chosen: list[str] = []
    used_cards: set[str] = set()

    def take(rid: str) -> None:
        chosen.append(rid)
        used_cards.add(card_of(rid))

    for rid in must_include:
        if len(chosen) < size and rid not in chosen:
            take(rid)
    free = [rid for rid in available if rid not in chosen]
    for card in prefer_cards:
        if len(chosen) >= size:
            break
        if card in used_cards:
            continue
        for rid in free:
            if card_of(rid) == card and rid not in chosen:
                take(rid)
                break
    for rid in free:
        if len(chosen) >= size:
            break
        if rid not in chosen and card_of(rid) not in used_cards:
            take(rid)
    for rid in free:
        if len(chosen) >= size:
            break
        if rid not in chosen:
            take(rid)
    return chosen
