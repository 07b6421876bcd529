"""The only place that touches a Cambricon node: runs cnmon and lists the device nodes in /dev.

Nothing here interprets what it reads; `hami_cambricon.discovery` does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from hami_cambricon.discovery import HostProbe
from hami_cambricon.errors import DiscoveryError
from hami_cambricon.settings import CambriconSettings
from hami_cambricon.spec import VENDOR_KEY
from hami_core.model import VendorUnavailable

__all__ = ["find_cnmon", "list_dev_nodes", "probe", "run_cnmon"]

_NODE = re.compile(
    r"^(?:cambricon_dev\d+|cambricon_ipcm\d+|cambricon_ctl|cambricon_gdr|"
    r"cambr-msgq:\d+|cambr-rpc:\d+|cmsg_ctrl\d+|commu\d+)$"
)


def find_cnmon(settings: CambriconSettings) -> str:
    """The cnmon executable to run; `VendorUnavailable` when it is not installed."""
    found = shutil.which(settings.cnmon_path)
    if found is None:
        raise VendorUnavailable(VENDOR_KEY, f"{settings.cnmon_path} is not installed")
    return found


def run_cnmon(tool: str, timeout: float) -> str:
    """cnmon's default table; `DiscoveryError` when it fails or hangs."""
    try:
        done = subprocess.run([tool], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DiscoveryError(f"{tool}: no answer within {timeout:g}s") from None
    except OSError as exc:
        raise DiscoveryError(f"{tool}: cannot run: {exc.strerror}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DiscoveryError(f"{tool}: exit status {done.returncode}: {' | '.join(tail)}")
    return done.stdout


def list_dev_nodes(dev_root: str) -> frozenset[str]:
    """The Cambricon device nodes under `dev_root`, as `/dev/<name>` paths."""
    try:
        names = os.listdir(dev_root)
    except OSError:
        return frozenset()
    return frozenset(f"/dev/{n}" for n in names if _NODE.match(n))


def probe(settings: CambriconSettings) -> HostProbe:
    """Read the node: cnmon's table and the Cambricon device nodes.

    Raises `VendorUnavailable` when cnmon is not installed or no MLU device node exists,
    `DiscoveryError` when cnmon fails.
    """
    tool = find_cnmon(settings)
    nodes = list_dev_nodes(settings.dev_root)
    if not any(n.startswith("/dev/cambricon_dev") for n in nodes):
        raise VendorUnavailable(
            VENDOR_KEY, f"no cambricon_dev* node in {settings.dev_root}: the driver is not loaded"
        )
    return HostProbe(
        tool=os.path.basename(tool),
        table=run_cnmon(tool, settings.cnmon_timeout),
        dev_nodes=nodes,
    )
