"""Readers for hy-smi / rocm-smi output on Hygon nodes (pure functions over text).

Two forms are read:

- the default table (`hy-smi` or `rocm-smi` with no arguments), one row per DCU:

      DCU     Temp     AvgPwr     Perf     PwrCap     VRAM%      DCU%      Mode
      0       67.0C    8.0W       manual   600.0W     87%        74%       Normal

  It lists the cards the tool sees, with their load; it carries no serial, model or memory.
- the JSON form (`--showproductname --showserial --showmeminfo vram --showbus --json`), an
  object with one `cardN` entry per DCU holding `Device ID`, `Card Series`, `Serial Number`,
  `Unique ID`, `vram Total Memory (MiB)`, `PCI Bus` ... Key spelling varies between releases
  (`Card Series`/`Card series`, MiB or bytes, `DCU use (%)`/`HCU use (%)`), so keys are matched
  without regard to case or spacing.

Malformed input raises `SmiParseError` naming the line or card and the problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hami_hygon.errors import SmiParseError

__all__ = ["SmiCard", "SmiRow", "parse_smi_json", "parse_smi_table"]

_HEADER_FIRST = ("DCU", "HCU", "GPU", "Device")
_NUMBER = re.compile(r"^([-+]?\d+(?:\.\d+)?)")
_CARD_KEY = re.compile(r"^card(\d+)$", re.IGNORECASE)
_MISSING = ("", "n/a", "na", "none", "unknown", "unsupported")


@dataclass(frozen=True, slots=True)
class SmiRow:
    """One DCU row of the default table. Values the tool shows as N/A are None."""

    index: int
    temperature_c: float | None
    power_w: float | None
    perf: str | None
    power_cap_w: float | None
    vram_percent: float | None
    use_percent: float | None
    mode: str | None


@dataclass(frozen=True, slots=True)
class SmiCard:
    """One `cardN` entry of the JSON form, with the fields hami needs."""

    index: int
    device_id: str | None
    series: str | None
    vendor: str | None
    serial: str | None
    unique_id: str | None
    memory_mib: int | None
    memory_used_mib: int | None
    pci_bus_id: str | None
    use_percent: float | None


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9%()]", "", key.lower())


def _number(text: str | None) -> float | None:
    if text is None or text.strip().lower() in _MISSING:
        return None
    match = _NUMBER.match(text.strip())
    return float(match.group(1)) if match else None


def _header_columns(line: str) -> list[str] | None:
    tokens = line.split()
    if len(tokens) >= 2 and tokens[0] in _HEADER_FIRST and any("%" in t for t in tokens):
        return tokens
    return None


def parse_smi_table(text: str) -> list[SmiRow]:
    """The DCU rows of hy-smi's / rocm-smi's default table, in the order shown.

    Banner and rule lines are skipped; the header names the columns, so a release that adds or
    moves a column still reads. Raises `SmiParseError` when there is no header or a row does
    not match it.
    """
    columns: list[str] | None = None
    rows: list[SmiRow] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or set(line) <= {"="} or "System Management Interface" in line:
            continue
        if line.startswith("=") and "End of" in line:
            break
        if columns is None:
            columns = _header_columns(line)
            continue
        tokens = line.split()
        if not tokens[0].isdigit():
            if _header_columns(line) is not None:
                continue
            raise SmiParseError(f"hy-smi table, line {number}: not a DCU row: {line!r}")
        if len(tokens) != len(columns):
            raise SmiParseError(
                f"hy-smi table, line {number}: {len(tokens)} fields for "
                f"{len(columns)} columns: {line!r}"
            )
        cell = {_norm(c): t for c, t in zip(columns, tokens, strict=True)}
        use = next((cell[k] for k in ("dcu%", "hcu%", "gpu%") if k in cell), None)
        rows.append(
            SmiRow(
                index=int(tokens[0]),
                temperature_c=_number(cell.get("temp")),
                power_w=_number(cell.get("avgpwr")),
                perf=cell.get("perf"),
                power_cap_w=_number(cell.get("pwrcap")),
                vram_percent=_number(cell.get("vram%")),
                use_percent=_number(use),
                mode=cell.get("mode"),
            )
        )
    if columns is None:
        raise SmiParseError("hy-smi table: no header line (expected 'DCU  Temp ... VRAM% ...')")
    return rows


def _field(entry: Mapping[str, Any], *names: str) -> str | None:
    wanted = {_norm(n) for n in names}
    for key, value in entry.items():
        if _norm(str(key)) in wanted and value is not None:
            text = str(value).strip()
            return None if text.lower() in _MISSING else text
    return None


def _int_field(entry: Mapping[str, Any], card: str, *names: str) -> int | None:
    text = _field(entry, *names)
    if text is None:
        return None
    value = _number(text)
    if value is None or value < 0:
        raise SmiParseError(f"hy-smi --json, {card}: {names[0]!r} is not a size: {text!r}")
    return int(value)


def _memory(entry: Mapping[str, Any], card: str, kind: str) -> int | None:
    mib = _int_field(entry, card, f"vram {kind} Memory (MiB)")
    if mib is not None:
        return mib
    size = _int_field(entry, card, f"vram {kind} Memory (B)")
    return None if size is None else size // (1024 * 1024)


def parse_smi_json(text: str) -> list[SmiCard]:
    """The `cardN` entries of hy-smi's / rocm-smi's `--json` output, by card index.

    Entries that are not `cardN` (such as `system`) are ignored. Raises `SmiParseError` for
    text that is not a JSON object, a `cardN` value that is not an object, or a size that is
    not a number.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SmiParseError(f"hy-smi --json: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise SmiParseError(
            f"hy-smi --json: expected an object of cards, got {type(data).__name__}"
        )
    cards: list[SmiCard] = []
    for key, entry in data.items():
        match = _CARD_KEY.match(str(key))
        if match is None:
            continue
        if not isinstance(entry, dict):
            raise SmiParseError(f"hy-smi --json, {key}: expected an object, got {entry!r}")
        cards.append(
            SmiCard(
                index=int(match.group(1)),
                device_id=_field(entry, "Device ID", "GPU ID"),
                series=_field(entry, "Card Series"),
                vendor=_field(entry, "Card Vendor"),
                serial=_field(entry, "Serial Number"),
                unique_id=_field(entry, "Unique ID"),
                memory_mib=_memory(entry, key, "Total"),
                memory_used_mib=_memory(entry, key, "Total Used"),
                pci_bus_id=_field(entry, "PCI Bus", "PCI Bus ID"),
                use_percent=_number(_field(entry, "DCU use (%)", "HCU use (%)", "GPU use (%)")),
            )
        )
    return sorted(cards, key=lambda c: c.index)
