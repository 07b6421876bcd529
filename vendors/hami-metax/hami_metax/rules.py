"""MetaX whole-card rules as pure functions (vendors.md §8.1).

- Requests: `metax-tech.com/gpu` cards, always whole; a memory or core share named beside it
  (the sGPU resources) is refused, since whole-card mode cannot honour it.
- Node model: `capacity["metax-tech.com/gpu"]` cards named `<node>-metax-<i>`.
- Node score: from the topology annotations MetaX's GPU extensions write, keyed by the number of
  cards the pod takes. HAMi adds `2000 - losses[n]` under binpack (highest total wins) and
  `2000 - scores[n]` under spread (lowest total wins, so the best topology score wins). hami's
  engine subtracts a vendor's term under spread, so the spread term is returned negated
  (`scores[n] - 2000`): the node order is HAMi's under both policies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from hami_core.errors import RequestError
from hami_core.model import ContainerDevice, DeviceInfo, VendorSpec
from hami_core.protocol.errors import ProtocolError
from hami_core.protocol.limits import check_card_count
from hami_core.quantity import QuantityError, parse_quantity
from hami_metax.spec import (
    ANNOTATION_TOPOLOGY_LOSSES,
    ANNOTATION_TOPOLOGY_SCORES,
    CARD_MEMORY_MIB,
    COMMON_WORD,
    DEVICE_ID_INFIX,
    SGPU_CORE,
    SGPU_MEMORY,
)

__all__ = [
    "TOPOLOGY_BASE",
    "card_index",
    "cards_from_capacity",
    "refuse_shares",
    "share_resources",
    "topology_score",
]

TOPOLOGY_BASE = 2000
"""HAMi subtracts the topology loss or score from this."""


def share_resources(section: Mapping[str, Any]) -> tuple[str, str]:
    """The sGPU memory and core resource names, from the `metax:` config section or HAMi's."""
    memory = section.get("resourceVMemoryName") or SGPU_MEMORY
    cores = section.get("resourceVCoreName") or SGPU_CORE
    return str(memory), str(cores)


def _names(container: Mapping[str, Any]) -> set[str]:
    resources = container.get("resources")
    if not isinstance(resources, Mapping):
        return set()
    names: set[str] = set()
    for part in ("limits", "requests"):
        values = resources.get(part)
        if isinstance(values, Mapping):
            names.update(str(k) for k in values)
    return names


def refuse_shares(
    spec: VendorSpec, container: Mapping[str, Any], section: Mapping[str, Any]
) -> None:
    """Raise `RequestError` when a container asks for whole cards and also a memory/core share."""
    names = _names(container)
    if spec.resources.count not in names:
        return
    for resource in share_resources(section):
        if resource in names:
            raise RequestError(
                vendor=spec.key,
                container=str(container.get("name") or ""),
                resource=resource,
                problem=(
                    f"MetaX cards are allocated whole in whole-card mode ({spec.resources.count}); "
                    "a memory or core share cannot be honoured, remove it"
                ),
            )


def cards_from_capacity(
    spec: VendorSpec, node_name: str, capacity: Mapping[str, str]
) -> list[DeviceInfo]:
    """HAMi's MetaX node model: `capacity[metax-tech.com/gpu]` whole cards.

    Card `i` is `<node>-metax-<i>`: one slot, 65536 MiB, 100 cores, type `Metax-GPU`. Raises
    `ProtocolError` naming the capacity resource when its value is not a whole quantity >= 0
    or makes more than `MAX_CAPACITY_CARDS` cards.
    """
    resource = spec.resources.count
    raw = capacity.get(resource)
    if raw is None:
        return []
    try:
        value = parse_quantity(raw)
    except QuantityError as exc:
        raise ProtocolError(f"node capacity {resource}: {exc}", field=resource, value=raw) from None
    if value < 0 or value != value.to_integral_value():
        raise ProtocolError(
            f"node capacity {resource}: expected a whole number >= 0, got {raw!r}",
            field=resource,
            value=raw,
        )
    check_card_count(int(value), resource, raw)
    return [
        DeviceInfo(
            id=f"{node_name}{DEVICE_ID_INFIX}{i}",
            count=1,
            devmem=CARD_MEMORY_MIB,
            devcore=100,
            type=COMMON_WORD,
            index=i,
            numa=0,
            health=True,
        )
        for i in range(int(value))
    ]


def card_index(card_id: str) -> int | None:
    """The card index in a capacity card name (`node-a-metax-3` → 3), else None."""
    head, infix, tail = card_id.rpartition(DEVICE_ID_INFIX)
    if not infix or not head or not tail.isdigit():
        return None
    return int(tail)


def _lookup(value: str | None, cards: int) -> int:
    if value is None:
        return 0
    try:
        table = json.loads(value)
    except ValueError:
        return 0
    if not isinstance(table, dict):
        return 0
    entry = table.get(str(cards))
    if isinstance(entry, bool) or not isinstance(entry, int):
        return 0
    return entry


def topology_score(
    annotations: Mapping[str, str],
    policy: str,
    containers: Sequence[Sequence[ContainerDevice]],
) -> float:
    """The node's MetaX term for a pod taking these cards, under node policy `policy`.

    Binpack: `2000 - losses[n]`; spread: `scores[n] - 2000` (module doc), `n` = cards taken.
    0 when the policy's annotation is absent (as in HAMi); a malformed annotation or a missing
    entry counts as loss/score 0.
    """
    cards = sum(len(c) for c in containers)
    if policy == "binpack":
        key = ANNOTATION_TOPOLOGY_LOSSES
    elif policy == "spread":
        key = ANNOTATION_TOPOLOGY_SCORES
    else:
        return 0.0
    if key not in annotations:
        return 0.0
    value = float(TOPOLOGY_BASE - _lookup(annotations.get(key), cards))
    return value if policy == "binpack" else -value
