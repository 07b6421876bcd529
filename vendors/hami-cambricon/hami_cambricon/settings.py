"""The `cambricon:` section of the device config, read into typed settings.

Keys hami's generic hooks read (`deviceSplitCount`, `deviceMemoryScaling`, `memoryFactor`,
`defaultCores`, `defaultMemory`, `defaultGPUNum`) are not repeated here. Every bad value raises
`ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hami_core.errors import ConfigError

__all__ = ["CambriconSettings"]


def _text(section: Mapping[str, Any], key: str, default: str, *, absolute: bool) -> str:
    value = section.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"cambricon.{key}: expected a non-empty string, got {value!r}")
    value = value.strip()
    if absolute and not value.startswith("/"):
        raise ConfigError(f"cambricon.{key}: expected an absolute path, got {value!r}")
    return value


def _flag(section: Mapping[str, Any], key: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"cambricon.{key}: expected true or false, got {value!r}")
    return value


def _choice(section: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = section.get(key, choices[0])
    if value not in choices:
        raise ConfigError(f"cambricon.{key}: expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _seconds(section: Mapping[str, Any], key: str, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"cambricon.{key}: expected a positive number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class CambriconSettings:
    """Where cnmon and the device nodes are, and how containers get their MLUs."""

    cnmon_path: str = "cnmon"
    """cnmon to run: a name on PATH or a path."""
    cnmon_timeout: float = 15.0
    dev_root: str = "/dev"
    """Where the node's device nodes are read (they are always reported as `/dev/...`)."""
    use_runtime: bool = False
    """Name the cards in `CAMBRICON_VISIBLE_DEVICES` for Cambricon's container runtime instead
    of listing device nodes (the plugin's `--use-runtime`)."""
    mount_cnmon: bool = False
    """Also mount the cnmon binary, read-only, at its own path (the plugin's `--cnmon-path`)."""
    slice_without_instance: str = "refuse"
    """A slice whose pod records no sMLU instance: `refuse` the container, or give it the
    `whole-card` device nodes with no hardware limit (the scheduler still accounts its share)."""

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> CambriconSettings:
        """Read the settings from the `cambricon:` section; `ConfigError` names a bad key."""
        return cls(
            cnmon_path=_text(section, "cnmonPath", "cnmon", absolute=False),
            cnmon_timeout=_seconds(section, "cnmonTimeoutSeconds", 15.0),
            dev_root=_text(section, "devRoot", "/dev", absolute=True),
            use_runtime=_flag(section, "useRuntime"),
            mount_cnmon=_flag(section, "mountCnmon"),
            slice_without_instance=_choice(
                section, "sliceWithoutInstance", ("refuse", "whole-card")
            ),
        )
