"""The only place that touches Iluvatar hardware: runs `ixsmi` and reads `/sys`.

Tests replace these functions at this boundary (recorded `ixsmi` output instead of the tool).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["IXSMI", "BindingError", "numa_node", "run_ixsmi", "sysfs_address"]

IXSMI = "ixsmi"
"""The tool's name, looked up on `PATH`."""

_TIMEOUT_S = 30.0


class BindingError(RuntimeError):
    """The tool is missing or failed; the message says which and why."""


def run_ixsmi(tool: str = IXSMI, timeout_s: float = _TIMEOUT_S) -> str:
    """The text `ixsmi` prints with no arguments (its GPU table).

    Raises `BindingError` when the tool is not installed, fails or times out.
    """
    path = shutil.which(tool)
    if path is None:
        raise BindingError(f"{tool} not found on PATH")
    try:
        done = subprocess.run(
            [path], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BindingError(f"{tool} could not run: {exc}") from exc
    if done.returncode != 0:
        raise BindingError(f"{tool} exited {done.returncode}: {done.stderr.strip()[:200]}")
    return done.stdout


def sysfs_address(bus_id: str) -> str:
    """The sysfs name of a PCI bus id (`00000000:13:00.0` → `0000:13:00.0`, lower case)."""
    parts = bus_id.strip().lower().split(":")
    if len(parts) == 3 and len(parts[0]) > 4:
        parts[0] = parts[0][-4:]
    return ":".join(parts)


def numa_node(bus_id: str, sysfs: Path = Path("/sys/bus/pci/devices")) -> int:
    """The NUMA node of a PCI device from sysfs; 0 when unknown (file absent or `-1`)."""
    try:
        text = (sysfs / sysfs_address(bus_id) / "numa_node").read_text(encoding="ascii")
        return max(0, int(text.strip()))
    except (OSError, ValueError):
        return 0
