"""Moore Threads' scheduling rules as pure functions (vendors.md §7.2-§7.5).

- Admission: `vgpu <= 0` is refused; `vgpu > 1` takes whole cards (`sgpu-core = n * 16`,
  `sgpu-memory = n * 96`, pod annotation `mthreads.com/request-gpu-num = n`); `vgpu == 1`
  without memory takes one whole card; `vgpu == 1` with a memory value outside
  `MEMORY_VALUES` is refused with the allowed values.
- Requests: the same whole-card cases; otherwise memory in 512 MiB units and core groups.
- Node model: cards synthesised from `status.capacity` (`<node>-mthreads-<i>`), the capacity
  the MT device plugin advertises: 16 `sgpu-core` and memory/512 `sgpu-memory` per card.
- Decision annotations for the MT device plugin: card indexes, node and time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from hami_core.errors import AdmissionDenied
from hami_core.model import ContainerDevice, ContainerRequest, DeviceInfo, Mutation, VendorSpec
from hami_core.protocol.errors import ProtocolError
from hami_core.protocol.limits import check_card_count
from hami_core.quantity import QuantityError, parse_quantity
from hami_mthreads.spec import (
    ANNOTATION_GPU_INDEX,
    ANNOTATION_PREDICATE_NODE,
    ANNOTATION_PREDICATE_TIME,
    ANNOTATION_REQUEST_GPU_NUM,
    COMMON_WORD,
    CORE_GROUPS_PER_CARD,
    DEVICE_ID_INFIX,
    FULL_CARD_MEMORY_UNITS,
    MEMORY_UNIT_MIB,
    MEMORY_VALUES,
)

__all__ = [
    "advertised_units",
    "card_index",
    "cards_from_capacity",
    "invalid_memory_message",
    "mthreads_mutation",
    "plugin_annotations",
    "shares_removed",
    "whole_cards",
]


def invalid_memory_message() -> str:
    """HAMi's refusal text for an sGPU memory value outside the allowed list."""
    allowed = ", ".join(str(v) for v in MEMORY_VALUES)
    return f"sGPU memory request value is invalid, valid values are [{allowed}]"


def mthreads_mutation(
    spec: VendorSpec,
    name: str,
    count: Decimal | None,
    memory: Decimal | None,
) -> Mutation:
    """The webhook's answer for a container with this count and sGPU memory (module doc).

    Raises `AdmissionDenied` naming the container and resource for a count below 1, a
    fractional count, or a one-card memory value outside `MEMORY_VALUES`.
    """
    res = spec.resources
    if count is None:
        return Mutation()
    if count <= 0 or count != count.to_integral_value():
        raise AdmissionDenied(
            f"container {name!r}: {res.count} must be a whole number greater than 0, got {count}"
        )
    n = int(count)
    if n > 1 or memory is None:
        limits = {str(res.cores): str(n * CORE_GROUPS_PER_CARD)}
        limits[str(res.memory)] = str(n * FULL_CARD_MEMORY_UNITS)
        annotations = {ANNOTATION_REQUEST_GPU_NUM: str(n)} if n > 1 else {}
        return Mutation(limits=limits, pod_annotations=annotations, uses_vendor=True)
    if memory not in MEMORY_VALUES:
        raise AdmissionDenied(
            f"container {name!r}: {res.memory}: {memory}: {invalid_memory_message()}"
        )
    return Mutation(uses_vendor=True)


def shares_removed(spec: VendorSpec, container: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `container` whose limits and requests name only the card count."""
    drop = {spec.resources.memory, spec.resources.cores}
    resources = container.get("resources")
    if not isinstance(resources, Mapping):
        return dict(container)
    trimmed: dict[str, Any] = dict(resources)
    for part in ("limits", "requests"):
        values = resources.get(part)
        if isinstance(values, Mapping):
            trimmed[part] = {k: v for k, v in values.items() if k not in drop}
    return {**container, "resources": trimmed}


def whole_cards(spec: VendorSpec, request: ContainerRequest) -> ContainerRequest:
    """`request` turned into whole cards: all memory and all core groups of each card."""
    return request.model_copy(
        update={"memory_mib": 0, "memory_percent": 100, "cores": spec.core_units}
    )


def _capacity(capacity: Mapping[str, str], resource: str | None) -> int:
    if resource is None or resource not in capacity:
        return 0
    raw = capacity[resource]
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
    return int(value)


def cards_from_capacity(
    spec: VendorSpec, node_name: str, capacity: Mapping[str, str]
) -> list[DeviceInfo]:
    """HAMi's Moore Threads node model: one card per 16 core groups of capacity.

    Card `i` is `<node>-mthreads-<i>` with 100 slots, 16 core groups and an equal share of
    the capacity's sGPU memory (units * 512 MiB). No core capacity means no cards. Raises
    `ProtocolError` naming the capacity resource when a value is not a whole quantity or makes
    more than `MAX_CAPACITY_CARDS` cards.
    """
    cores = _capacity(capacity, spec.resources.cores)
    if cores == 0:
        return []
    memory_units = _capacity(capacity, spec.resources.memory)
    per_card_mib = memory_units * MEMORY_UNIT_MIB * CORE_GROUPS_PER_CARD // cores
    cards = -(-cores // CORE_GROUPS_PER_CARD)
    check_card_count(cards, spec.resources.cores, capacity.get(spec.resources.cores or ""))
    return [
        DeviceInfo(
            id=f"{node_name}{DEVICE_ID_INFIX}{i}",
            count=100,
            devmem=per_card_mib,
            devcore=CORE_GROUPS_PER_CARD,
            type=COMMON_WORD,
            index=i,
            numa=0,
            health=True,
        )
        for i in range(cards)
    ]


def advertised_units(spec: VendorSpec, resource: str, device: DeviceInfo) -> int | None:
    """The kubelet devices the MT device plugin offers for one card under `resource`.

    `sgpu-core`: the card's core groups (`spec.core_units`, 16); `sgpu-memory`: one unit per
    whole 512 MiB of the card's memory (a 48 GiB S4000 offers 96). None for any other name
    (`vgpu` is not served by the MT plugin). `cards_from_capacity` reads these numbers back.
    """
    if resource == spec.resources.cores:
        return spec.core_units
    if resource == spec.resources.memory:
        return device.devmem // MEMORY_UNIT_MIB
    return None


def card_index(card_id: str) -> int | None:
    """The card index in a capacity card name (`node-a-mthreads-3` → 3), else None."""
    head, infix, tail = card_id.rpartition(DEVICE_ID_INFIX)
    if not infix or not head or not tail.isdigit():
        return None
    return int(tail)


def plugin_annotations(
    containers: Sequence[Sequence[ContainerDevice]], node_name: str, now_ns: int
) -> dict[str, str]:
    """The annotations HAMi adds for the MT device plugin (empty when no card was chosen).

    `mthreads.com/gpu-index` holds the card indexes of the last container with cards (all
    containers of a pod share one card), `predicate-node` the node and `predicate-time`
    `now_ns`.
    """
    out: dict[str, str] = {}
    for devices in containers:
        indexes = [card_index(d.uuid) for d in devices]
        known = [str(i) for i in indexes if i is not None]
        if known:
            out[ANNOTATION_GPU_INDEX] = ",".join(known)
            out[ANNOTATION_PREDICATE_NODE] = node_name
            out[ANNOTATION_PREDICATE_TIME] = str(now_ns)
    return out
