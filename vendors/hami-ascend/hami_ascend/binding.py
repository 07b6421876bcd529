"""The only place that touches the Ascend driver: finding and running `npu-smi`.

`npu-smi` is looked for at the configured path (`vnpus.npuSmiPath` in the device config), else
at the paths HAMi's Ascend device plugin uses (`/usr/local/Ascend/driver/tools/npu-smi`,
`/usr/local/sbin/npu-smi`, `/usr/local/bin/npu-smi`), else on `PATH`.
"""

from __future__ import annotations

import os
import shutil
import subprocess

__all__ = [
    "SEARCH_PATHS",
    "NpuSmiUnavailable",
    "find_npu_smi",
    "npu_smi_info",
]

SEARCH_PATHS = (
    "/usr/local/Ascend/driver/tools/npu-smi",
    "/usr/local/sbin/npu-smi",
    "/usr/local/bin/npu-smi",
)
"""Where the Ascend driver installs `npu-smi`, in the order they are tried."""


class NpuSmiUnavailable(Exception):
    """`npu-smi` is absent, not executable, failed or timed out; `why` says which."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_npu_smi(configured: str | None = None, search: tuple[str, ...] = SEARCH_PATHS) -> str:
    """The `npu-smi` to run: `configured` (which must exist), else the first of `search`,
    else the one on `PATH`. Raises `NpuSmiUnavailable` when there is none."""
    if configured:
        if not _executable(configured):
            raise NpuSmiUnavailable(f"npu-smi not found or not executable at {configured}")
        return configured
    for path in search:
        if _executable(path):
            return path
    found = shutil.which("npu-smi")
    if found:
        return found
    raise NpuSmiUnavailable(
        "npu-smi not found (looked in " + ", ".join(search) + " and PATH); is the Ascend "
        "driver installed?"
    )


def npu_smi_info(path: str, timeout_s: float = 30.0) -> str:
    """The text `npu-smi info` prints. Raises `NpuSmiUnavailable` when it cannot run, exits
    non-zero or takes longer than `timeout_s`."""
    try:
        done = subprocess.run(
            [path, "info"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            encoding="utf-8",
            errors="replace",
        )
    except subprocess.TimeoutExpired:
        raise NpuSmiUnavailable(f"{path} info: no answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise NpuSmiUnavailable(f"{path} info: cannot run: {exc.strerror or exc}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        last = detail[-1] if detail else "no output"
        raise NpuSmiUnavailable(f"{path} info: exit status {done.returncode}: {last}")
    return done.stdout
