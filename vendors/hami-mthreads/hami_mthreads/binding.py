"""The only place that touches Moore Threads hardware: MTML through `pymtml`, or `mthreads-gmi`.

`pymtml` (distribution `mthreads-ml-py`) is imported only when discovery runs, so the vendor
loads on machines without it. Tests fake `pymtml` at this boundary and the CLI by a script on
`PATH` that prints a recorded output.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import subprocess
from typing import Any

from hami_mthreads.discovery import MtmlCard

__all__ = ["GMI", "BindingError", "read_mtml", "run_gmi"]

GMI = "mthreads-gmi"
"""The CLI's name, looked up on `PATH`."""

_TIMEOUT_S = 30.0


class BindingError(RuntimeError):
    """The library or tool is missing or failed; the message says which and why."""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def _paths(pymtml: Any, device: Any) -> tuple[str, ...]:
    out: list[str] = []
    for getter in ("mtmlDeviceGetGpuPath", "mtmlDeviceGetPrimaryPath", "mtmlDeviceGetRenderPath"):
        try:
            path = _text(getattr(pymtml, getter)(device))
        except Exception:  # an unsupported query leaves the path out
            continue
        if path:
            out.append(path)
    return tuple(out)


def read_mtml() -> list[MtmlCard]:
    """Every card MTML reports: index, name, UUID, PCI address, memory and device paths.

    Raises `BindingError` when `pymtml` is not installed, the MTML library cannot be loaded,
    or a query fails.
    """
    try:
        pymtml = importlib.import_module("pymtml")
    except ImportError as exc:
        raise BindingError(f"pymtml (mthreads-ml-py) is not installed: {exc}") from exc
    try:
        pymtml.mtmlLibraryInit()
    except Exception as exc:  # OSError when libmtml.so is absent, MTMLError otherwise
        raise BindingError(f"MTML could not start: {exc}") from exc
    try:
        cards: list[MtmlCard] = []
        for i in range(int(pymtml.mtmlLibraryCountDevice())):
            device = pymtml.mtmlLibraryInitDeviceByIndex(i)
            with pymtml.mtmlMemoryContext(device) as memory:
                total = int(pymtml.mtmlMemoryGetTotal(memory))
                used = int(pymtml.mtmlMemoryGetUsed(memory))
            cards.append(
                MtmlCard(
                    index=int(pymtml.mtmlDeviceGetIndex(device)),
                    name=_text(pymtml.mtmlDeviceGetName(device)),
                    uuid=_text(pymtml.mtmlDeviceGetUUID(device)),
                    bus_id=_text(pymtml.mtmlDeviceGetPciInfo(device).sbdf),
                    memory_total_bytes=total,
                    memory_used_bytes=used,
                    paths=_paths(pymtml, device),
                )
            )
        return cards
    except Exception as exc:  # MTMLError and friends: report, never crash the agent
        raise BindingError(f"MTML query failed: {exc}") from exc
    finally:
        with contextlib.suppress(Exception):  # nothing left to do if shutdown fails
            pymtml.mtmlLibraryShutDown()


def run_gmi(tool: str = GMI, timeout_s: float = _TIMEOUT_S) -> str:
    """The text `mthreads-gmi` prints with no arguments (its GPU table).

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
