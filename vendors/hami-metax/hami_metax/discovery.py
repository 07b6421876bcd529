"""Turn a parsed `mx-smi` report into hami `Device` records (pure)."""

from __future__ import annotations

from collections.abc import Callable

from hami_core.model import Device
from hami_metax.parse_mxsmi import MxsmiReport
from hami_metax.spec import DRI_DIR, RENDER_MINOR_BASE

__all__ = ["card_id", "default_dri_nodes", "devices_from_mxsmi"]


def card_id(bus_id: str) -> str:
    """A card name from its PCI bus id (`0000:0e:00.0` → `MX-0000-0e-00.0`): the table shows
    no UUID."""
    return "MX-" + bus_id.strip().replace(":", "-")


def default_dri_nodes(index: int) -> tuple[str, ...]:
    """The DRM nodes of card `index` when sysfs cannot tell: `card<i>`, `renderD<128+i>`."""
    return (f"{DRI_DIR}/card{index}", f"{DRI_DIR}/renderD{RENDER_MINOR_BASE + index}")


def devices_from_mxsmi(
    report: MxsmiReport,
    vendor_key: str,
    *,
    dri_of: Callable[[str], tuple[str, ...]] = lambda _bus: (),
    numa_of: Callable[[str], int] = lambda _bus: 0,
) -> list[Device]:
    """The report's cards as `Device`s; `dri_of(bus_id)` gives a card's DRM nodes (else the
    default naming by index) and `numa_of(bus_id)` its NUMA node."""
    return [
        Device(
            vendor=vendor_key,
            uuid=card_id(c.bus_id),
            index=c.index,
            model=c.name,
            memory_mib=c.memory_total_mib,
            cores=100,
            numa=max(0, numa_of(c.bus_id)),
            health=True,
            paths=dri_of(c.bus_id) or default_dri_nodes(c.index),
            extras={
                "bus_id": c.bus_id,
                "memory_used_mib": c.memory_used_mib,
                "state": c.state or "",
                "sgpu_mode": c.sgpu_mode or "",
            },
        )
        for c in report.cards
    ]
