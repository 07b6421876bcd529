"""The only place that touches a Hygon node: runs hy-smi/rocm-smi, reads /dev and /sys, and
writes the vDCU config directories.

Nothing here interprets what it reads; `hami_hygon.discovery` and `hami_hygon.vdcu` do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hami_core.model import VendorUnavailable
from hami_hygon.discovery import DrmNode, HostProbe
from hami_hygon.errors import DiscoveryError
from hami_hygon.settings import DEFAULT_SMI_TOOLS, HygonSettings
from hami_hygon.spec import VENDOR_KEY
from hami_hygon.vdcu import VdevSlot

__all__ = ["HYGON_PCI_VENDOR", "JSON_ARGS", "VdevFiles", "find_tool", "probe", "run_tool"]

HYGON_PCI_VENDOR = "0x1d94"
"""PCI vendor ID of Hygon (Chengdu Haiguang IC Design); DRM nodes of other vendors are skipped."""

JSON_ARGS = (
    "-i",
    "--showproductname",
    "--showserial",
    "--showuniqueid",
    "--showmeminfo",
    "vram",
    "--showbus",
    "--showuse",
    "--json",
)
"""Arguments for the per-card details (device ID, series, serial, memory, PCI bus) as JSON."""


def find_tool(settings: HygonSettings) -> str:
    """The hy-smi/rocm-smi executable to run; `VendorUnavailable` when there is none."""
    wanted = (settings.smi_path,) if settings.smi_path else DEFAULT_SMI_TOOLS
    for name in wanted:
        found = shutil.which(name)
        if found:
            return found
    raise VendorUnavailable(VENDOR_KEY, f"none of {', '.join(wanted)} is installed")


def run_tool(tool: str, args: tuple[str, ...], timeout: float) -> str:
    """The tool's standard output; `DiscoveryError` when it fails or hangs."""
    try:
        done = subprocess.run(
            [tool, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise DiscoveryError(f"{tool} {' '.join(args)}: no answer within {timeout:g}s") from None
    except OSError as exc:
        raise DiscoveryError(f"{tool}: cannot run: {exc.strerror}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DiscoveryError(
            f"{tool} {' '.join(args)}: exit status {done.returncode}: {' | '.join(tail)}"
        )
    return done.stdout


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _drm_nodes(sys_root: Path) -> tuple[DrmNode, ...]:
    drm = sys_root / "class" / "drm"
    try:
        names = sorted(os.listdir(drm))
    except OSError:
        return ()
    nodes: list[DrmNode] = []
    for name in names:
        if not (name.startswith("card") or name.startswith("renderD")) or "-" in name:
            continue
        device = drm / name / "device"
        if (_read(device / "vendor") or "").lower() != HYGON_PCI_VENDOR:
            continue
        numa = _read(device / "numa_node")
        nodes.append(
            DrmNode(
                name=name,
                pci_bus_id=os.path.basename(os.path.realpath(device)),
                numa=int(numa) if numa and numa.lstrip("-").isdigit() else None,
            )
        )
    return tuple(nodes)


def _opens(path: Path) -> bool:
    try:
        with open(path, "rb", buffering=0):
            return True
    except OSError:
        return False


def probe(settings: HygonSettings) -> HostProbe:
    """Read the node: both tool outputs, the Hygon DRM nodes, /dev/kfd and /dev/mkfd.

    Raises `VendorUnavailable` when no tool is installed or the DCU driver is not loaded,
    `DiscoveryError` when the tool fails.
    """
    tool = find_tool(settings)
    sys_root = Path(settings.sys_root)
    dev_root = Path(settings.dev_root)
    if not (sys_root / "class" / "kfd").exists():
        raise VendorUnavailable(
            VENDOR_KEY, f"{sys_root / 'class' / 'kfd'} is missing: the DCU driver is not loaded"
        )
    table = run_tool(tool, (), settings.smi_timeout)
    details = run_tool(tool, JSON_ARGS, settings.smi_timeout)
    control = tuple(f"/dev/{name}" for name in ("kfd", "mkfd") if (dev_root / name).exists())
    return HostProbe(
        tool=os.path.basename(tool),
        table=table,
        details=details,
        drm=_drm_nodes(sys_root),
        control_nodes=control,
        kfd_ok=_opens(dev_root / "kfd"),
    )


class VdevFiles:
    """vDCU slot directories under `vdev_dir`, plus dcu-exporter copies in `exporter_dir`."""

    def __init__(self, vdev_dir: str, exporter_dir: str = "") -> None:
        self.vdev_dir = Path(vdev_dir)
        self.exporter_dir = Path(exporter_dir) if exporter_dir else None

    def names(self) -> list[str]:
        """The names of the slot directories that exist (none when the directory is absent)."""
        try:
            return sorted(e.name for e in os.scandir(self.vdev_dir) if e.is_dir())
        except FileNotFoundError:
            return []

    def write(self, slot: VdevSlot, conf: str, exporter_conf: str) -> str:
        """Create the slot's directory holding `vdev0.conf`; return the directory's path."""
        target = self.vdev_dir / slot.dir_name()
        target.mkdir(parents=True, exist_ok=True)
        _write_atomic(target / "vdev0.conf", conf)
        if self.exporter_dir is not None:
            self.exporter_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.exporter_dir / f"vdev{slot.vdev_id}.conf", exporter_conf)
        return str(target)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
