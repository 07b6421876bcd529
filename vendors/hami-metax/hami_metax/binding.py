"""The only place that touches MetaX hardware: runs `mx-smi` and reads `/sys`.

Tests replace the tool by a script on `PATH` that prints a recorded output, and `/sys` by a
directory tree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from hami_metax.spec import DRI_DIR

__all__ = ["MXSMI", "SYSFS_PCI", "BindingError", "dri_nodes", "numa_node", "run_mxsmi"]

MXSMI = "mx-smi"
"""The tool's name, looked up on `PATH`."""

SYSFS_PCI = Path("/sys/bus/pci/devices")
"""Where Linux lists PCI devices by address."""

_TIMEOUT_S = 30.0


class BindingError(RuntimeError):
    """The tool is missing or failed; the message says which and why."""


def run_mxsmi(tool: str = MXSMI, timeout_s: float = _TIMEOUT_S) -> str:
    """The text `mx-smi` prints with no arguments (its GPU table).

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


def dri_nodes(bus_id: str, sysfs: Path | None = None) -> tuple[str, ...]:
    """The card's DRM device nodes (`/dev/dri/card1`, `/dev/dri/renderD129`) from
    `<sysfs>/<bus id>/drm/`; empty when sysfs does not list them."""
    root = SYSFS_PCI if sysfs is None else sysfs
    try:
        names = sorted(p.name for p in (root / bus_id.lower() / "drm").iterdir())
    except OSError:
        return ()
    return tuple(f"{DRI_DIR}/{n}" for n in names if n.startswith(("card", "renderD")))


def numa_node(bus_id: str, sysfs: Path | None = None) -> int:
    """The NUMA node of a PCI device from sysfs; 0 when unknown (file absent or `-1`)."""
    root = SYSFS_PCI if sysfs is None else sysfs
    try:
        text = (root / bus_id.lower() / "numa_node").read_text(encoding="ascii")
        return max(0, int(text.strip()))
    except (OSError, ValueError):
        return 0
