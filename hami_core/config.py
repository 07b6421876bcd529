"""The device config: HAMi's `device-config.yaml` keys, one section per vendor.

The file is the same one HAMi's chart mounts (`nvidia:`, `hygon:`, `cambricon:`, `mthreads:`,
`metax:`, `iluvatars:`, `vnpus:` ...). hami passes the whole mapping to every hook; a vendor reads
its own section (by default the section named after its key).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from hami_core.errors import ConfigError
from hami_core.model import VendorSpec

__all__ = ["load_device_config", "vendor_section"]


def vendor_section(spec: VendorSpec, config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The vendor's own section of the device config (empty when absent)."""
    section = config.get(spec.key)
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"device config: {spec.key}: expected a mapping, got {section!r}")
    return section


def load_device_config(path: str | Path | None) -> dict[str, Any]:
    """Read a device config file (YAML or JSON); `None` gives the empty config.

    Raises `ConfigError` naming the file when it cannot be read or is not a mapping.
    """
    if path is None:
        return {}
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read device config: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the device config must be a mapping of vendor sections")
    # HAMi's chart wraps the file as {"device-config.yaml": "<text>"} in a ConfigMap; accept both.
    inner = data.get("device-config.yaml")
    if isinstance(inner, str):
        nested = yaml.safe_load(inner)
        if not isinstance(nested, dict):
            raise ConfigError(f"{p}: device-config.yaml must hold a mapping")
        return nested
    return data
