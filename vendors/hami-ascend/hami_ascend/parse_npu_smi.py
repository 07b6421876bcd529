"""Parse the box table `npu-smi info` prints (pure; tested on recorded outputs).

The table has a two-line header and then, per NPU, one NPU row followed by one row per chip
(columns shortened here):

    | NPU   Name       | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
    | Chip             | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
    +==================+===============+====================================================+
    | 0     910B3      | OK            | 101.8       43                0    / 0             |
    | 0                | 0000:C1:00.0  | 0           0    / 0          3318 / 65536         |

Variants handled: a second id column in the chip rows (`Chip  Device` on 310P, `Chip  Phy-ID`
on A3 hosts), no `HBM-Usage` column (310P), `NA` values, several chip rows per NPU, and the
process table that may follow (ignored; the parser stops at its header). Values the tool prints
as `NA`/`-` are `None`. Anything that cannot be read is an `NpuSmiFormatError` naming the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hami_core.errors import HamiError

__all__ = ["NpuChip", "NpuSmiFormatError", "parse_npu_smi_info"]

_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_NPU_CELL = re.compile(r"^(\d+)\s+(\S.*?)$")
_PAIR = re.compile(r"(\d+)\s*/\s*(\d+)")
_MISSING = frozenset({"NA", "N/A", "-", "--"})


class NpuSmiFormatError(HamiError, ValueError):
    """`npu-smi info` output that cannot be read; the message names the line and the problem."""

    def __init__(self, line: int | None, problem: str) -> None:
        where = f"npu-smi info: line {line}" if line is not None else "npu-smi info"
        super().__init__(f"{where}: {problem}")
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class NpuChip:
    """One chip of one NPU as `npu-smi info` shows it.

    `second_id` is the value of the chip row's second id column when the tool prints one
    (`Device` on 310P, `Phy-ID` on A3 hosts); `second_id_label` says which.
    """

    npu_id: int
    chip_id: int
    name: str
    health: str
    bus_id: str
    second_id: int | None = None
    second_id_label: str | None = None
    aicore_percent: int | None = None
    memory_used_mib: int | None = None
    memory_total_mib: int | None = None
    hbm_used_mib: int | None = None
    hbm_total_mib: int | None = None

    @property
    def healthy(self) -> bool:
        """True when the tool reports `OK` (any warning or alarm counts as unhealthy, as DCMI
        health code 0 is the only healthy one)."""
        return self.health.upper() == "OK"

    @property
    def physical_id(self) -> int:
        """The chip's physical device id (`/dev/davinci<N>`, `ASCEND_VISIBLE_DEVICES`): the
        second id column when printed, else the NPU id (one chip per NPU)."""
        return self.second_id if self.second_id is not None else self.npu_id

    @property
    def total_memory_mib(self) -> int | None:
        """The chip's memory: HBM total where the tool prints HBM, else the memory total."""
        if self.hbm_total_mib:
            return self.hbm_total_mib
        return self.memory_total_mib


@dataclass(slots=True)
class _Header:
    second_id_label: str | None
    has_hbm: bool


def _cells(line: str) -> list[str] | None:
    text = line.strip()
    if not text.startswith("|"):
        return None
    return [c.strip() for c in text.strip("|").split("|")]


def _int_or_none(token: str, line: int, what: str) -> int | None:
    if token in _MISSING:
        return None
    try:
        return int(float(token))
    except ValueError:
        raise NpuSmiFormatError(line, f"{what}: expected a number, got {token!r}") from None


def _read_header(second: list[str]) -> _Header:
    words = second[0].split()
    label = words[1] if len(words) > 1 else None
    rest = " ".join(second[2:]) if len(second) > 2 else ""
    return _Header(second_id_label=label, has_hbm="HBM" in rest)


def _chip_row(cells: list[str], npu: tuple[int, str, str], header: _Header, line: int) -> NpuChip:
    ids = cells[0].split()
    if not ids or not ids[0].isdigit():
        raise NpuSmiFormatError(line, f"chip id: expected a number, got {cells[0]!r}")
    second: int | None = None
    if len(ids) > 1:
        second = _int_or_none(ids[1], line, header.second_id_label or "chip second id")
    usage = cells[2] if len(cells) > 2 else ""
    tokens = usage.split()
    aicore = _int_or_none(tokens[0], line, "AICore(%)") if tokens else None
    pairs = [(int(a), int(b)) for a, b in _PAIR.findall(usage)]
    memory = pairs[0] if pairs else None
    hbm = pairs[1] if header.has_hbm and len(pairs) > 1 else None
    return NpuChip(
        npu_id=npu[0],
        chip_id=int(ids[0]),
        name=npu[1],
        health=npu[2],
        bus_id=cells[1],
        second_id=second,
        second_id_label=header.second_id_label if second is not None else None,
        aicore_percent=aicore,
        memory_used_mib=memory[0] if memory else None,
        memory_total_mib=memory[1] if memory else None,
        hbm_used_mib=hbm[0] if hbm else None,
        hbm_total_mib=hbm[1] if hbm else None,
    )


def parse_npu_smi_info(text: str) -> list[NpuChip]:
    """Every chip in `npu-smi info` output, in the order printed.

    Output without the device table header is an `NpuSmiFormatError`; a table with a header
    and no NPU rows yields `[]`.
    """
    header: _Header | None = None
    pending_header: list[str] | None = None
    npu: tuple[int, str, str] | None = None
    chips: list[NpuChip] = []
    for number, line in enumerate(text.splitlines(), start=1):
        cells = _cells(line)
        if cells is None or not any(cells):
            continue
        first_word = cells[0].split()[0] if cells[0].split() else ""
        if header is None:
            if first_word == "NPU" and len(cells) > 1 and cells[1].startswith("Health"):
                pending_header = cells
            elif pending_header is not None and first_word == "Chip":
                header = _read_header(cells)
            continue
        if first_word == "NPU" and any("Process" in c for c in cells[1:]):
            break
        if len(cells) < 2:
            continue
        if _BUS_ID.match(cells[1]):
            if npu is None:
                raise NpuSmiFormatError(number, "a chip row comes before any NPU row")
            chips.append(_chip_row(cells, npu, header, number))
            continue
        match = _NPU_CELL.match(cells[0])
        if match is None:
            raise NpuSmiFormatError(number, f"expected an NPU or chip row, got {line.strip()!r}")
        health = cells[1].split()[0] if cells[1].split() else ""
        if not health:
            raise NpuSmiFormatError(number, "Health: missing")
        npu = (int(match[1]), match[2].strip(), health)
    if header is None:
        raise NpuSmiFormatError(None, "no device table header ('NPU Name | Health' / 'Chip')")
    return chips
