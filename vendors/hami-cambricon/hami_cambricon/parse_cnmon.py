"""Reader for `cnmon`'s default table (pure function over text).

cnmon prints a banner, a two-line header and two lines per card, in three `|`-separated cells:

    | Card  VF  Name       Firmware |               Bus-Id | Util        Ecc-Error |
    | Fan   Temp      Pwr:Usage/Cap |         Memory-Usage | SR-IOV   Compute-Mode |
    |===============================+======================+=======================|
    | 0     /   MLU370-X8    v1.1.6 |         0000:39:00.0 | 0%                N/A |
    |  0%   32C        106 W/ 250 W |     0 MiB/ 23374 MiB | N/A           Default |

Older releases (v4) show `Inited  Driver` instead of `Bus-Id` and `vMemory-Usage` instead of
`SR-IOV  Compute-Mode`; the header says which, and both are read. The process table that follows
is not read. Malformed input raises `CnmonParseError` naming the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hami_cambricon.errors import CnmonParseError

__all__ = ["CnmonCard", "CnmonReport", "parse_cnmon"]

_VERSION = re.compile(r"CNMON\s+v?(\S+)", re.IGNORECASE)
_DRIVER = re.compile(r"Driver\s+v?(\S+)", re.IGNORECASE)
_USAGE = re.compile(r"^(\d+)\s*MiB\s*/\s*(\d+)\s*MiB$", re.IGNORECASE)
_POWER = re.compile(r"(\d+(?:\.\d+)?)\s*W\s*/\s*(\d+(?:\.\d+)?)\s*W", re.IGNORECASE)
_MISSING = ("", "n/a", "na", "-", "/")


@dataclass(frozen=True, slots=True)
class CnmonCard:
    """One card of the table; values cnmon shows as N/A (or a release does not show) are None."""

    index: int
    vf: str | None
    model: str
    firmware: str | None
    driver: str | None
    bus_id: str | None
    util_percent: float | None
    ecc_errors: str | None
    fan_percent: float | None
    temperature_c: float | None
    power_w: float | None
    power_cap_w: float | None
    memory_used_mib: int
    memory_total_mib: int
    vmemory_used_mib: int | None
    vmemory_total_mib: int | None
    sriov: str | None
    compute_mode: str | None


@dataclass(frozen=True, slots=True)
class CnmonReport:
    """The whole table: cnmon's version, the driver version when shown, and the cards."""

    version: str | None
    driver: str | None
    cards: tuple[CnmonCard, ...]


def _cells(line: str) -> list[str] | None:
    text = line.strip()
    if not (text.startswith("|") and text.endswith("|")):
        return None
    return [c.strip() for c in text[1:-1].split("|")]


def _value(text: str | None) -> str | None:
    if text is None or text.strip().lower() in _MISSING:
        return None
    return text.strip()


def _number(text: str | None) -> float | None:
    value = _value(text)
    if value is None:
        return None
    match = re.match(r"^(\d+(?:\.\d+)?)", value)
    return float(match.group(1)) if match else None


def _usage(text: str, where: str) -> tuple[int, int]:
    match = _USAGE.match(re.sub(r"\s+", " ", text.strip()))
    if match is None:
        raise CnmonParseError(f"{where}: expected 'used MiB/ total MiB', got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parse_cnmon(text: str) -> CnmonReport:
    """The cards of cnmon's default table, in the order shown (module docstring).

    Raises `CnmonParseError` when there is no header, or a card's lines do not have the
    header's shape.
    """
    version = driver = None
    header: tuple[list[str], list[str]] | None = None
    first_header: list[str] | None = None
    pending: tuple[int, list[str]] | None = None
    cards: list[CnmonCard] = []
    for number, line in enumerate(text.splitlines(), start=1):
        cells = _cells(line)
        if cells is None:
            continue
        if len(cells) == 1:
            if "Processes" in cells[0]:
                break
            if version is None and (match := _VERSION.search(cells[0])):
                version = match.group(1)
                if found := _DRIVER.search(cells[0]):
                    driver = found.group(1)
            continue
        if len(cells) != 3 or set("".join(cells)) <= {"="}:
            continue
        if cells[0].startswith("Card"):
            first_header = cells
            continue
        if cells[0].startswith("Fan") and first_header is not None:
            header = (first_header, cells)
            continue
        if header is None:
            raise CnmonParseError(f"cnmon, line {number}: a card line before the header")
        if pending is None:
            if not cells[0][:1].isdigit():
                raise CnmonParseError(f"cnmon, line {number}: expected a card line: {line!r}")
            pending = (number, cells)
            continue
        cards.append(_card(header, pending, (number, cells)))
        pending = None
    if header is None:
        raise CnmonParseError("cnmon: no table header (expected 'Card  VF  Name ...')")
    if pending is not None:
        raise CnmonParseError(f"cnmon, line {pending[0]}: the card's second line is missing")
    return CnmonReport(version=version, driver=driver, cards=tuple(cards))


def _card(
    header: tuple[list[str], list[str]],
    first: tuple[int, list[str]],
    second: tuple[int, list[str]],
) -> CnmonCard:
    (line_a, a), (line_b, b) = first, second
    where = f"cnmon, line {line_a}"
    ident = a[0].split()
    if len(ident) < 3 or not ident[0].isdigit():
        raise CnmonParseError(f"{where}: expected 'Card VF Name Firmware', got {a[0]!r}")
    index, vf, model = int(ident[0]), _value(ident[1]), ident[2]
    firmware = _value(ident[3]) if len(ident) > 3 else None
    bus_id = card_driver = None
    if "Bus-Id" in header[0][1]:
        bus_id = _value(a[1])
    else:
        middle = a[1].split()
        card_driver = _value(middle[-1].lstrip("v")) if len(middle) > 1 else None
    util, *ecc = a[2].split() or [""]
    fan, temp, *power = [*b[0].split(None, 2), "", ""]
    power_match = _POWER.search(" ".join(power))
    used, total = _usage(b[1], f"cnmon, line {line_b}")
    vused = vtotal = None
    sriov = mode = None
    if "vMemory" in header[1][2]:
        if _value(b[2]) is not None:
            vused, vtotal = _usage(b[2], f"cnmon, line {line_b}")
    else:
        right = b[2].split()
        sriov = _value(right[0]) if right else None
        mode = _value(right[-1]) if len(right) > 1 else None
    return CnmonCard(
        index=index,
        vf=vf,
        model=model,
        firmware=firmware.lstrip("v") if firmware else None,
        driver=card_driver,
        bus_id=bus_id,
        util_percent=_number(util),
        ecc_errors=_value(" ".join(ecc)),
        fan_percent=_number(fan),
        temperature_c=_number(temp),
        power_w=float(power_match.group(1)) if power_match else None,
        power_cap_w=float(power_match.group(2)) if power_match else None,
        memory_used_mib=used,
        memory_total_mib=total,
        vmemory_used_mib=vused,
        vmemory_total_mib=vtotal,
        sriov=sriov,
        compute_mode=mode,
    )
