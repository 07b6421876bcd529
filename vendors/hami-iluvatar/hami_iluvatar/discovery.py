"""Turn a parsed `ixsmi` report into hami `Device` records for one chip (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hami_core.model import Device
from hami_iluvatar.parse_ixsmi import IxsmiReport
from hami_iluvatar.rules import card_id
from hami_iluvatar.spec import DEVICE_NODE_PREFIX, model_chip

__all__ = ["devices_for_chip"]


def devices_for_chip(
    report: IxsmiReport,
    chip: str,
    vendor_key: str,
    *,
    numa_of: Callable[[str], int] = lambda _bus: 0,
    extra_models: Mapping[str, str] | None = None,
) -> list[Device]:
    """The cards of `report` whose model belongs to `chip`, as `Device`s of `vendor_key`.

    `numa_of(bus_id)` gives a card's NUMA node. The device node is `/dev/iluvatar<index>`
    (the table shows no minor number; hami assumes minor = index).
    """
    out: list[Device] = []
    for card in report.cards:
        if model_chip(card.name, extra_models) != chip:
            continue
        out.append(
            Device(
                vendor=vendor_key,
                uuid=card_id(card.bus_id),
                index=card.index,
                model=card.name,
                memory_mib=card.memory_total_mib,
                cores=100,
                numa=max(0, numa_of(card.bus_id)),
                health=True,
                paths=(f"{DEVICE_NODE_PREFIX}{card.index}",),
                extras={
                    "bus_id": card.bus_id,
                    "memory_used_mib": card.memory_used_mib,
                    "driver_version": report.driver_version or "",
                },
            )
        )
    return out
