"""Parse the default table that `mthreads-gmi` (Moore Threads' GPU management CLI) prints.

Each GPU takes three lines under the header::

    0    MTT S4000      |00000000:08:00.0    |88%   44302MiB(32768MiB)
         Physical       |16x(16x)            |65C   YES
                                             |      N/A

The first line gives index, name, PCI bus id, utilization and memory `used(total)`; the second
the device type, PCIe lane width, temperature and MPC capability. The process table (after
`Processes:`) is ignored; a capture cut after any GPU line still parses. Memory used above the
total (seen on a real S4000 with the IOMMU off) is kept as reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["GmiCard", "GmiParseError", "GmiReport", "parse_gmi"]

_VERSION = re.compile(r"mthreads-gmi:\s*(?P<gmi>\S+)\s+Driver Version:\s*(?P<driver>\S+)")
_GPU = re.compile(
    r"^(?P<index>\d+)\s+(?P<name>\S[^|]*?)\s*\|\s*(?P<bus>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:"
    r"[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*\|\s*(?P<util>\d+|N/A)%?\s+(?P<rest>.*)$"
)
_MEMORY = re.compile(r"^(?P<used>\d+)MiB\((?P<total>\d+)MiB\)$")
_DETAIL = re.compile(r"^\s+(?P<kind>\S[^|]*?)\s*\|[^|]*\|\s*(?P<temp>-?\d+)C\b")
_HEADER = re.compile(r"^ID\s+Name\s*\|")


class GmiParseError(ValueError):
    """`mthreads-gmi` output could not be read; the message quotes the offending line."""


@dataclass(frozen=True, slots=True)
class GmiCard:
    """One GPU row of the `mthreads-gmi` table."""

    index: int
    name: str
    bus_id: str
    memory_used_mib: int
    memory_total_mib: int
    utilization_percent: int | None
    device_type: str | None
    temperature_c: int | None


@dataclass(frozen=True, slots=True)
class GmiReport:
    """Everything read from one `mthreads-gmi` run: versions and the GPU rows in order."""

    gmi_version: str | None
    driver_version: str | None
    cards: tuple[GmiCard, ...]


def parse_gmi(text: str) -> GmiReport:
    """Read the GPU table of `mthreads-gmi` output.

    Raises `GmiParseError` when the text has no GPU table header or a GPU line's memory field
    is not `<used>MiB(<total>MiB)`.
    """
    version = _VERSION.search(text)
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if start is None:
        raise GmiParseError("no GPU table found (expected a header line starting 'ID   Name')")
    cards: list[GmiCard] = []
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.startswith("Processes:"):
            break
        gpu = _GPU.match(line)
        if gpu is None:
            continue
        memory = _MEMORY.match(gpu.group("rest").strip())
        if memory is None:
            raise GmiParseError(
                f"GPU {gpu.group('index')}: memory {gpu.group('rest').strip()!r} "
                "is not '<used>MiB(<total>MiB)'"
            )
        detail = _DETAIL.match(lines[i + 1]) if i + 1 < len(lines) else None
        util = gpu.group("util")
        cards.append(
            GmiCard(
                index=int(gpu.group("index")),
                name=gpu.group("name").strip(),
                bus_id=gpu.group("bus"),
                memory_used_mib=int(memory.group("used")),
                memory_total_mib=int(memory.group("total")),
                utilization_percent=None if util == "N/A" else int(util),
                device_type=detail.group("kind").strip() if detail else None,
                temperature_c=int(detail.group("temp")) if detail else None,
            )
        )
    return GmiReport(
        gmi_version=version.group("gmi") if version else None,
        driver_version=version.group("driver") if version else None,
        cards=tuple(cards),
    )
