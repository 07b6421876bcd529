"""How a node's cards are offered to the kubelet: replica IDs, health, NUMA, preferences.

Pure functions. Each registered card (`DeviceInfo`, after `hami_split`) is offered under each of
its vendor's advertised resource names as as many kubelet devices as the vendor's
`hami_advertise` says (generic: the split count). The count resource's IDs are `<uuid>-<k>`, so
the kubelet's capacity for it is cards x split; a unit resource's IDs name their unit:
`<uuid>-memory-<i>` for the memory resource, `<uuid>-core-<i>` for the cores resource (as
Volcano's device plugin names them), `<uuid>-<name>-<i>` for any other. The kubelet's choice of
IDs does not decide which card a container gets (the scheduler's pod annotation does);
`preferred_ids` only steers the kubelet towards the cards the scheduler chose, so that its
checkpoint names them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hami_core.model import DeviceInfo, VendorSpec

__all__ = [
    "KUBELET_DEVICE_LIMIT",
    "KubeletDevice",
    "card_of",
    "kubelet_devices",
    "preferred_ids",
    "replica_ids",
    "resource_kind",
]

KUBELET_DEVICE_LIMIT = 60_000
"""About how many devices one `ListAndWatchResponse` may carry before it passes the kubelet's
4 MiB gRPC receive limit and is dropped without a word."""


@dataclass(frozen=True, slots=True)
class KubeletDevice:
    """One device as the kubelet sees it in `ListAndWatch`."""

    id: str
    healthy: bool
    numa: int | None = None


def resource_kind(spec: VendorSpec, resource: str) -> str:
    """The word a resource's replica IDs carry: `""` for the vendor's count resource, `memory`
    for its memory resource, `core` for its cores resource, else the resource's name after its
    domain with anything but letters and digits turned into `-` (`example.com/x.y` → `x-y`)."""
    names = spec.resources
    if resource == names.count:
        return ""
    if resource == names.memory:
        return "memory"
    if resource == names.cores:
        return "core"
    return re.sub(r"[^A-Za-z0-9]+", "-", resource.rpartition("/")[2]).strip("-") or "unit"


def replica_ids(info: DeviceInfo, count: int | None = None, *, kind: str = "") -> list[str]:
    """The kubelet device IDs of one card under one resource.

    `count` IDs (default: the card's split count, at least one): `<uuid>-0` .. for the count
    resource (`kind=""`), `<uuid>-<kind>-0` .. for a unit resource.
    """
    n = max(1, info.count) if count is None else max(0, count)
    prefix = f"{info.id}-{kind}-" if kind else f"{info.id}-"
    return [f"{prefix}{k}" for k in range(n)]


def kubelet_devices(
    infos: Iterable[DeviceInfo],
    *,
    numa: bool = False,
    counts: Sequence[int] | None = None,
    kind: str = "",
) -> tuple[KubeletDevice, ...]:
    """Every replica of every card, with the card's health and (when `numa`) its NUMA node.

    `counts[i]` is how many devices `infos[i]` offers (default: its split count); `kind` names a
    unit resource's IDs (see `replica_ids`).
    """
    out: list[KubeletDevice] = []
    for i, info in enumerate(infos):
        node = info.numa if numa else None
        count = counts[i] if counts is not None else None
        out.extend(
            KubeletDevice(rid, info.health, node) for rid in replica_ids(info, count, kind=kind)
        )
    return tuple(out)


def card_of(replica_id: str, kind: str = "") -> str:
    """The card UUID a replica ID belongs to (`GPU-abc-3` → `GPU-abc`; with `kind="memory"`,
    `GPU-abc-memory-3` → `GPU-abc`)."""
    head, sep, tail = replica_id.rpartition("-")
    if not (sep and tail.isdigit()):
        return replica_id
    if kind:
        suffix = f"-{kind}"
        return head[: -len(suffix)] if head.endswith(suffix) else replica_id
    return head


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
