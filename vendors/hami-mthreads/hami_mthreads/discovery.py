"""Turn what MTML or `mthreads-gmi` reported into hami `Device` records (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hami_core.model import Device
from hami_mthreads.parse_gmi import GmiReport
from hami_mthreads.spec import CORE_GROUPS_PER_CARD

__all__ = ["MtmlCard", "card_id", "devices_from_gmi", "devices_from_mtml", "one_line"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MtmlCard:
    """One card as read through MTML (the `pymtml` binding)."""

    index: int
    name: str
    uuid: str
    bus_id: str
    memory_total_bytes: int
    memory_used_bytes: int
    paths: tuple[str, ...] = ()


def card_id(bus_id: str) -> str:
    """A card name from its PCI bus id when no UUID is known (`MT-00000000-08-00.0`)."""
    return "MT-" + bus_id.strip().replace(":", "-")


def devices_from_mtml(cards: Sequence[MtmlCard], vendor_key: str) -> list[Device]:
    """MTML's cards as `Device`s: MiB of memory, 16 core groups each, MTML's UUIDs."""
    return [
        Device(
            vendor=vendor_key,
            uuid=c.uuid or card_id(c.bus_id),
            index=c.index,
            model=c.name,
            memory_mib=c.memory_total_bytes // _MIB,
            cores=CORE_GROUPS_PER_CARD,
            health=True,
            paths=c.paths,
            extras={"bus_id": c.bus_id, "memory_used_mib": c.memory_used_bytes // _MIB},
        )
        for c in cards
    ]


def devices_from_gmi(report: GmiReport, vendor_key: str) -> list[Device]:
    """`mthreads-gmi`'s cards as `Device`s (named by PCI bus id: the table shows no UUID)."""
    return [
        Device(
            vendor=vendor_key,
            uuid=card_id(c.bus_id),
            index=c.index,
            model=c.name,
            memory_mib=c.memory_total_mib,
            cores=CORE_GROUPS_PER_CARD,
            health=True,
            extras={
                "bus_id": c.bus_id,
                "memory_used_mib": c.memory_used_mib,
                "driver_version": report.driver_version or "",
            },
        )
        for c in report.cards
    ]


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) turned into one space."""
    return " ".join(text.split())
