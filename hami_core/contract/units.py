"""The memory-limit grammar HAMi-core reads from `CUDA_DEVICE_MEMORY_LIMIT[_<i>]`.

A decimal number of bytes with an optional one-letter binary suffix: `1g` (GiB), `1024m` (MiB),
`1048576k` (KiB), `1073741824` (bytes); the suffix may be upper or lower case. HAMi writes MiB
(`3000m`); Koordinator writes plain bytes.
"""

from __future__ import annotations

import re

from hami_core.contract.model import ContractError

__all__ = ["MIB", "format_limit_mib", "parse_limit"]

MIB = 1024 * 1024
"""Bytes in one MiB."""

_LIMIT = re.compile(r"([0-9]+)([gGmMkK]?)")
_SCALE = {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}


def format_limit_mib(mib: int) -> str:
    """A limit of `mib` MiB as HAMi writes it: `3000` → `"3000m"`."""
    if isinstance(mib, bool) or not isinstance(mib, int) or mib < 0:
        raise ContractError(f"memory limit: expected a whole number of MiB >= 0, got {mib!r}")
    return f"{mib}m"


def parse_limit(text: str) -> int:
    """The limit in bytes that HAMi-core reads from `text` (`"1g"` → 1073741824).

    Raises `ContractError` quoting the value when it is not `<digits>[gGmMkK]`.
    """
    if not isinstance(text, str):
        raise ContractError(f"memory limit: expected a string, got {text!r}")
    match = _LIMIT.fullmatch(text.strip())
    if match is None:
        raise ContractError(
            f"memory limit {text!r}: expected a whole number of bytes with an optional "
            "suffix k, m or g (e.g. 1g, 1024m, 1048576k, 1073741824)"
        )
    return int(match.group(1)) * _SCALE[match.group(2).lower()]
