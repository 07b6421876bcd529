"""The scheduler's view of a Cambricon node, built from `status.capacity` (HAMi's rule) — pure.

Cambricon nodes carry no register annotation. HAMi reads two kubelet resources that Cambricon's
plugin (or hami's) advertises: `vcore` (100 per card) and `vmemory` (one unit per 256 MiB of a
card), and makes `ceil(vcore / 100)` cards named `<node>-cambricon-mlu-<i>`, each with 100
slots, `vmemory * 256 * 100 / vcore` MiB (integer division, i.e. the average card), 100 cores,
type `MLU`, NUMA 0, healthy. Real UUIDs and models never reach the scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping

from hami_cambricon.spec import COMMON_WORD, MEMORY_UNIT_MIB
from hami_core.model import DeviceInfo
from hami_core.protocol import ProtocolError, check_card_count
from hami_core.quantity import QuantityError, as_exact_int

__all__ = ["CARD_SLOTS", "advertised_units", "capacity_devices", "scheduler_device_id"]

CARD_SLOTS = 100
"""Sharers per card the scheduler allows (HAMi's `Count: 100`)."""


def scheduler_device_id(node: str, slot: int) -> str:
    """The ID HAMi gives the MLU in `slot` of `node`."""
    return f"{node}-cambricon-mlu-{slot}"


def _units(node: str, capacity: Mapping[str, str], resource: str) -> int:
    raw = capacity.get(resource)
    if raw is None:
        return 0
    try:
        value = as_exact_int(raw)
    except QuantityError as exc:
        raise ProtocolError(f"node {node}: capacity {resource}: {exc}", field=resource) from None
    if value is None or value < 0:
        raise ProtocolError(
            f"node {node}: capacity {resource}: expected a whole number >= 0, got {raw!r}",
            field=resource,
            value=raw,
        )
    return value


def capacity_devices(
    node: str, capacity: Mapping[str, str], *, cores_resource: str, memory_resource: str
) -> list[DeviceInfo]:
    """The cards HAMi's scheduler sees on `node` (module docstring); none without `vcore`.

    Raises `ProtocolError` naming the resource when a capacity value is not a whole number or
    makes more than `MAX_CAPACITY_CARDS` cards.
    """
    cores = _units(node, capacity, cores_resource)
    if cores <= 0:
        return []
    memory = _units(node, capacity, memory_resource)
    devmem = memory * MEMORY_UNIT_MIB * 100 // cores
    count = -(-cores // 100)
    check_card_count(count, cores_resource, capacity.get(cores_resource))
    return [
        DeviceInfo(
            id=scheduler_device_id(node, i),
            index=i,
            count=CARD_SLOTS,
            devmem=devmem,
            devcore=100,
            type=COMMON_WORD,
            numa=0,
            health=True,
        )
        for i in range(count)
    ]


def advertised_units(resource: str, device: DeviceInfo, *, cores_resource: str) -> int:
    """How many kubelet devices one card offers: 100 `vcore` units, or one `vmemory` unit per
    256 MiB (rounded down), as Cambricon's plugin with `--min-dsmlu-unit=256` does."""
    if resource == cores_resource:
        return device.devcore
    return device.devmem // MEMORY_UNIT_MIB
