"""Parse the default table that `ixsmi` (Iluvatar's nvidia-smi-compatible tool) prints.

Each GPU takes two table lines::

    | 0    Iluvatar BI-V150         | 00000000:13:00.0     | 1500MHz   1600MHz    |
    | 0%   32C   P0    N/A / N/A    | 116MiB / 32768MiB    | 0%        Default    |

The parser is pure: it reads text and returns `IxsmiCard` records. The `Timestamp` line and the
process table are optional (authors trim them). Output that has no GPU table header at all, or a
GPU line without its memory line, raises `IxsmiParseError` naming the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["IxsmiCard", "IxsmiParseError", "IxsmiReport", "parse_ixsmi"]

_HEADER = re.compile(r"IX-ML:\s*(?P<ixml>\S+)\s+Driver Version:\s*(?P<driver>\S+)")
_TABLE_START = "Bus-Id"
_GPU_CELL = re.compile(r"^(?P<index>\d+)\s+(?P<name>\S.*?)$")
_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_MEMORY = re.compile(r"^(?P<used>\d+)\s*MiB\s*/\s*(?P<total>\d+)\s*MiB$")
_TEMP = re.compile(r"(?P<temp>-?\d+)C\b")
_UTIL = re.compile(r"^(?P<util>\d+)%")
_VENDOR_PREFIX = "Iluvatar "


class IxsmiParseError(ValueError):
    """`ixsmi` output could not be read; the message quotes the offending line."""


@dataclass(frozen=True, slots=True)
class IxsmiCard:
    """One GPU (chip) row of the `ixsmi` table."""

    index: int
    name: str
    bus_id: str
    memory_used_mib: int
    memory_total_mib: int
    utilization_percent: int | None
    temperature_c: int | None

    @property
    def chip(self) -> str:
        """The chip name without the vendor prefix (`Iluvatar BI-V150` → `BI-V150`)."""
        if self.name.startswith(_VENDOR_PREFIX):
            return self.name[len(_VENDOR_PREFIX) :].strip()
        return self.name


@dataclass(frozen=True, slots=True)
class IxsmiReport:
    """Everything read from one `ixsmi` run: versions and the GPU rows, in table order."""

    ixml_version: str | None
    driver_version: str | None
    cards: tuple[IxsmiCard, ...]


def _cells(line: str) -> list[str]:
    """The `|`-separated cells of a table line, stripped (empty list for non-table lines)."""
    stripped = line.strip()
    if not stripped.startswith("|"):
        return []
    return [c.strip() for c in stripped.strip("|").split("|")]


def parse_ixsmi(text: str) -> IxsmiReport:
    """Read the GPU table of `ixsmi` output.

    Returns the versions from the banner (None when absent) and one `IxsmiCard` per GPU row.
    Raises `IxsmiParseError` when the text holds no GPU table or a GPU row is incomplete.
    """
    ixml = driver = None
    header = _HEADER.search(text)
    if header:
        ixml, driver = header.group("ixml"), header.group("driver")
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _TABLE_START in line), None)
    if start is None:
        raise IxsmiParseError("no GPU table found (expected a header line with 'Bus-Id')")
    cards: list[IxsmiCard] = []
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if "Processes:" in line:
            break
        cells = _cells(line)
        first = _GPU_CELL.match(cells[0]) if len(cells) >= 2 else None
        if first is None or not _BUS_ID.match(cells[1]):
            i += 1
            continue
        if i + 1 >= len(lines):
            raise IxsmiParseError(f"GPU row without its memory line: {line.strip()!r}")
        cards.append(_card(first, cells, _cells(lines[i + 1]), lines[i + 1]))
        i += 2
    return IxsmiReport(ixml_version=ixml, driver_version=driver, cards=tuple(cards))


def _card(first: re.Match[str], cells: list[str], second: list[str], raw: str) -> IxsmiCard:
    if len(second) < 2:
        raise IxsmiParseError(f"expected the memory line after GPU {first.group('index')}: {raw!r}")
    memory = _MEMORY.match(second[1])
    if memory is None:
        raise IxsmiParseError(
            f"GPU {first.group('index')}: memory cell {second[1]!r} is not 'N MiB / M MiB'"
        )
    temp = _TEMP.search(second[0])
    util = _UTIL.match(second[2]) if len(second) > 2 else None
    return IxsmiCard(
        index=int(first.group("index")),
        name=first.group("name").strip(),
        bus_id=cells[1],
        memory_used_mib=int(memory.group("used")),
        memory_total_mib=int(memory.group("total")),
        utilization_percent=int(util.group("util")) if util else None,
        temperature_c=int(temp.group("temp")) if temp else None,
    )
