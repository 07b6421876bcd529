"""Parsers for `nvidia-smi -q` and `nvidia-smi nvlink --status` text (pure).

hami discovers through NVML, not through `nvidia-smi`; these parsers let a person (and
`scripts/gpu-check`) cross-check NVML's answers against the tool operators trust, and let the
tests build realistic NVML fakes from recorded outputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NvlinkStatus",
    "SmiError",
    "SmiGpu",
    "parse_nvlink_status",
    "parse_smi_query",
    "smi_tree",
]


class SmiError(ValueError):
    """The text is not the output of the expected `nvidia-smi` command; says where."""


@dataclass(frozen=True, slots=True)
class SmiGpu:
    """One GPU of `nvidia-smi -q`: the fields hami also reads through NVML."""

    bus_id: str
    name: str
    uuid: str
    minor: int | None
    memory_mib: int | None
    mig_current: str


@dataclass(frozen=True, slots=True)
class NvlinkStatus:
    """One GPU of `nvidia-smi nvlink --status`: its links and their speeds in GB/s."""

    index: int
    name: str
    uuid: str
    links: dict[int, float | None]

    @property
    def active_links(self) -> int:
        """Links that report a speed (inactive links print `<inactive>`)."""
        return sum(1 for speed in self.links.values() if speed is not None)


_GPU_HEADER = re.compile(r"^GPU ([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*$")
_KEY_VALUE = re.compile(r"^(\s*)(\S.*?)\s+:\s?(.*)$")


def smi_tree(block: list[str]) -> dict[str, Any]:
    """One GPU block of `nvidia-smi -q` as nested dicts (section → key → value text)."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for line in block:
        if not line.strip():
            continue
        match = _KEY_VALUE.match(line)
        indent = len(line) - len(line.lstrip(" "))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else root
        if match:
            parent[match.group(2).strip()] = match.group(3).strip()
        else:
            section: dict[str, Any] = {}
            parent[line.strip()] = section
            stack.append((indent, section))
    return root


def _mib(value: Any) -> int | None:
    if isinstance(value, str) and value.endswith(" MiB") and value[:-4].strip().isdigit():
        return int(value[:-4])
    return None


def parse_smi_query(text: str) -> list[SmiGpu]:
    """Every GPU in `nvidia-smi -q` output, in the order printed.

    Raises `SmiError` when no `GPU <bus id>` block is found or a block lacks its UUID.
    """
    blocks: list[tuple[str, list[str], int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        header = _GPU_HEADER.match(line)
        if header:
            blocks.append((header.group(1), [], number))
        elif blocks:
            blocks[-1][1].append(line)
    if not blocks:
        raise SmiError("nvidia-smi -q: no 'GPU <bus id>' block found")
    gpus: list[SmiGpu] = []
    for bus_id, lines, number in blocks:
        tree = smi_tree(lines)
        uuid = tree.get("GPU UUID")
        if not isinstance(uuid, str) or not uuid:
            raise SmiError(f"nvidia-smi -q line {number}: GPU {bus_id} has no 'GPU UUID'")
        minor = tree.get("Minor Number")
        mig = tree.get("MIG Mode")
        fb = tree.get("FB Memory Usage")
        gpus.append(
            SmiGpu(
                bus_id=bus_id,
                name=str(tree.get("Product Name", "")),
                uuid=uuid,
                minor=int(minor) if isinstance(minor, str) and minor.isdigit() else None,
                memory_mib=_mib(fb.get("Total")) if isinstance(fb, dict) else None,
                mig_current=str(mig.get("Current", "")) if isinstance(mig, dict) else "",
            )
        )
    return gpus


_NVLINK_GPU = re.compile(r"^GPU (\d+): (.*) \(UUID: (\S+)\)\s*$")
_NVLINK_LINK = re.compile(r"^\s+Link (\d+): (.*?)\s*$")
_SPEED = re.compile(r"^([0-9]+(?:\.[0-9]+)?) GB/s$")


def parse_nvlink_status(text: str) -> list[NvlinkStatus]:
    """Every GPU in `nvidia-smi nvlink --status` output with its links' speeds.

    A link whose state is not a speed (`<inactive>`) maps to None. Raises `SmiError` naming the
    line for a link line before any GPU line, or when no GPU is listed.
    """
    gpus: list[NvlinkStatus] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        gpu = _NVLINK_GPU.match(line)
        if gpu:
            gpus.append(NvlinkStatus(int(gpu.group(1)), gpu.group(2), gpu.group(3), {}))
            continue
        link = _NVLINK_LINK.match(line)
        if link is None:
            raise SmiError(f"nvidia-smi nvlink --status line {number}: unexpected {line!r}")
        if not gpus:
            raise SmiError(f"nvidia-smi nvlink --status line {number}: link before any GPU")
        speed = _SPEED.match(link.group(2))
        gpus[-1].links[int(link.group(1))] = float(speed.group(1)) if speed else None
    if not gpus:
        raise SmiError("nvidia-smi nvlink --status: no GPU listed")
    return gpus
