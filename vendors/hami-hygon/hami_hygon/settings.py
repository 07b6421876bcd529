"""The `hygon:` section of the device config, read into typed settings.

Keys hami's generic hooks read (`deviceSplitCount`, `deviceMemoryScaling`, `deviceCoreScaling`,
`memoryFactor`, `defaultCores`, `defaultMemory`, `defaultGPUNum`) are not repeated here; these
are the Hygon-specific ones. Every bad value raises `ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hami_core.errors import ConfigError

__all__ = ["DEFAULT_SMI_TOOLS", "HygonSettings"]

DEFAULT_SMI_TOOLS = ("hy-smi", "rocm-smi")
"""Tools tried, in order, when `smiPath` is not set (looked up on `PATH`)."""


def _text(section: Mapping[str, Any], key: str, default: str, *, absolute: bool) -> str:
    value = section.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"hygon.{key}: expected a string, got {value!r}")
    value = value.strip()
    if absolute and value and not value.startswith("/"):
        raise ConfigError(f"hygon.{key}: expected an absolute path, got {value!r}")
    return value


def _seconds(section: Mapping[str, Any], key: str, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"hygon.{key}: expected a positive number of seconds, got {value!r}")
    return float(value)


def _units(section: Mapping[str, Any]) -> dict[str, int]:
    value = section.get("computeUnits") or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"hygon.computeUnits: expected a mapping model → CUs, got {value!r}")
    out: dict[str, int] = {}
    for model, units in value.items():
        if isinstance(units, bool) or not isinstance(units, int) or not 0 < units <= 128:
            raise ConfigError(
                f"hygon.computeUnits.{model}: expected a whole number 1..128, got {units!r}"
            )
        out[str(model).removeprefix("DCU-")] = units
    return out


@dataclass(frozen=True, slots=True)
class HygonSettings:
    """Where the node's tools and files are, and how vDCU slices are set up."""

    smi_path: str = ""
    """hy-smi or rocm-smi to run (a name on PATH or a path); empty: try `DEFAULT_SMI_TOOLS`."""
    smi_timeout: float = 15.0
    dev_root: str = "/dev"
    """Where the node's device nodes are read (they are always reported as `/dev/...`)."""
    sys_root: str = "/sys"
    hygon_path: str = "/opt/dtk"
    """Host directory mounted at `/opt/hygondriver` for vDCU containers (HAMi's `HYGONPATH`)."""
    hyhal_path: str = "/opt/hyhal"
    vdev_dir: str = "/usr/local/vgpu/dcu"
    """Host directory holding one vDCU config directory per sliced container."""
    exporter_vdev_dir: str = "/etc/vdev"
    """Where `vdev<N>.conf` copies for dcu-exporter go; empty disables them."""
    compute_units: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> HygonSettings:
        """Read the settings from the `hygon:` section; `ConfigError` names a bad key."""
        return cls(
            smi_path=_text(section, "smiPath", "", absolute=False),
            smi_timeout=_seconds(section, "smiTimeoutSeconds", 15.0),
            dev_root=_text(section, "devRoot", "/dev", absolute=True) or "/dev",
            sys_root=_text(section, "sysRoot", "/sys", absolute=True) or "/sys",
            hygon_path=_text(section, "hygonPath", "/opt/dtk", absolute=True) or "/opt/dtk",
            hyhal_path=_text(section, "hyhalPath", "/opt/hyhal", absolute=True) or "/opt/hyhal",
            vdev_dir=_text(section, "vdevDir", "/usr/local/vgpu/dcu", absolute=True)
            or "/usr/local/vgpu/dcu",
            exporter_vdev_dir=_text(section, "exporterVdevDir", "/etc/vdev", absolute=True),
            compute_units=_units(section),
        )
