"""Parse the default table that `mx-smi` (MetaX's management CLI) prints, in both layouts.

mx-smi 2.1.x::

    | GPU         NAME                   | Bus-id              | GPU-Util             |
    | Temp        Power                  | Memory-Usage        |                      |
    | 0           MXC500                 | 0000:05:00.0        | 0%                   |
    | 51C         71W                    | 60982/65536 MiB     |                      |

mx-smi 2.2.x adds a board column, persistence and sGPU mode, and a GPU state::

    | Board       Name | GPU   Persist-M | Bus-id              | GPU-Util      sGPU-M |
    | Pwr:Usage/Cap    | Temp       Perf | Memory-Usage        | GPU-State            |
    | 0     MetaX C500 | 0           Off | 0000:0e:00.0        | 0%          Disabled |
    | 57W / 350W       | 35C          P0 | 826/65536 MiB       | Available            |

Columns are found by their header names, so either layout (and a reordering) reads the same.
The version line, the banner and the process table are optional.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MxsmiCard", "MxsmiParseError", "MxsmiReport", "parse_mxsmi"]

_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_MEMORY = re.compile(r"^(?P<used>\d+)\s*/\s*(?P<total>\d+)\s*MiB$")
_TEMP = re.compile(r"\b(?P<temp>-?\d+)C\b")
_UTIL = re.compile(r"^(?P<util>\d+)%")
_SMI_VERSION = re.compile(r"(?:MX-SMI|mx-smi\s+version:)\s*(?P<v>\d[\w.]*)")
_KMD = re.compile(r"Kernel Mode Driver Version:\s*(?P<v>\S+)")
_ATTACHED = re.compile(r"Attached GPUs\s*:\s*(?P<n>\d+)")


class MxsmiParseError(ValueError):
    """`mx-smi` output could not be read; the message quotes the offending line."""


@dataclass(frozen=True, slots=True)
class MxsmiCard:
    """One GPU of the `mx-smi` table."""

    index: int
    name: str
    bus_id: str
    memory_used_mib: int
    memory_total_mib: int
    utilization_percent: int | None
    temperature_c: int | None
    state: str | None
    sgpu_mode: str | None


@dataclass(frozen=True, slots=True)
class MxsmiReport:
    """Everything read from one `mx-smi` run: versions, the GPU count banner and the rows."""

    smi_version: str | None
    driver_version: str | None
    attached: int | None
    cards: tuple[MxsmiCard, ...]


def _cells(line: str) -> list[str]:
    stripped = line.strip()
    if not stripped.startswith("|"):
        return []
    return [c.strip() for c in stripped.strip("|").split("|")]


def _column(header: list[str], word: str) -> int | None:
    for i, cell in enumerate(header):
        if word in cell.split():
            return i
    return None


def _first(match: re.Match[str] | None, group: str) -> str | None:
    return match.group(group) if match else None


def parse_mxsmi(text: str) -> MxsmiReport:
    """Read the GPU table of `mx-smi` output (either layout).

    Raises `MxsmiParseError` when there is no GPU table header, or a GPU row lacks its second
    line or its memory cell is not `<used>/<total> MiB`.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "Bus-id" in _cells(line)), None)
    if start is None or start + 1 >= len(lines):
        raise MxsmiParseError("no GPU table found (expected a header line with 'Bus-id')")
    top, bottom = _cells(lines[start]), _cells(lines[start + 1])
    bus_col = top.index("Bus-id")
    gpu_col = _column(top, "GPU")
    name_col = next((i for i, c in enumerate(top) if {"Name", "NAME"} & set(c.split())), 0)
    util_col = _column(top, "GPU-Util")
    mem_col = _column(bottom, "Memory-Usage")
    state_col = _column(bottom, "GPU-State")
    cards: list[MxsmiCard] = []
    i = start + 2
    while i < len(lines):
        cells = _cells(lines[i])
        if len(cells) <= bus_col or not _BUS_ID.match(cells[bus_col]):
            if "Process:" in lines[i]:
                break
            i += 1
            continue
        second = _cells(lines[i + 1]) if i + 1 < len(lines) else []
        if len(second) < len(cells):
            raise MxsmiParseError(f"GPU row without its second line: {lines[i].strip()!r}")
        cards.append(_card(cells, second, bus_col, gpu_col, name_col, util_col, mem_col, state_col))
        i += 2
    attached = _first(_ATTACHED.search(text), "n")
    return MxsmiReport(
        smi_version=_first(_SMI_VERSION.search(text), "v"),
        driver_version=_first(_KMD.search(text), "v"),
        attached=int(attached) if attached else None,
        cards=tuple(cards),
    )


def _card(
    cells: list[str],
    second: list[str],
    bus_col: int,
    gpu_col: int | None,
    name_col: int,
    util_col: int | None,
    mem_col: int | None,
    state_col: int | None,
) -> MxsmiCard:
    name_words = cells[name_col].split()
    index_words = cells[gpu_col].split() if gpu_col is not None else name_words
    if not index_words or not index_words[0].isdigit():
        raise MxsmiParseError(f"GPU row without a GPU number: {' | '.join(cells)!r}")
    index = int(index_words[0])
    # The name cell starts with a number: the GPU (old layout) or the board (new layout).
    name = " ".join(name_words[1:] if name_words and name_words[0].isdigit() else name_words)
    memory_cell = second[mem_col if mem_col is not None else bus_col]
    memory = _MEMORY.match(memory_cell)
    if memory is None:
        raise MxsmiParseError(
            f"GPU {index}: memory cell {memory_cell!r} is not '<used>/<total> MiB'"
        )
    util_words = cells[util_col].split() if util_col is not None else []
    util = _UTIL.match(util_words[0]) if util_words else None
    temp = next((m for m in (_TEMP.search(c) for c in second) if m), None)
    state = second[state_col] if state_col is not None and second[state_col] else None
    return MxsmiCard(
        index=index,
        name=name,
        bus_id=cells[bus_col],
        memory_used_mib=int(memory.group("used")),
        memory_total_mib=int(memory.group("total")),
        utilization_percent=int(util.group("util")) if util else None,
        temperature_c=int(temp.group("temp")) if temp else None,
        state=state,
        sgpu_mode=util_words[1] if len(util_words) > 1 else None,
    )
