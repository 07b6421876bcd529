"""Which chips this distribution serves, and where each hook finds a chip's settings.

The chip catalogue is a `vnpus:` section in HAMi's format: the file shipped in this package
(`hami_ascend/vnpus.yaml`, HAMi's chart defaults), or — when the environment variable
`HAMI_ASCEND_CONFIG` names a device-config file — that file's `vnpus:` section instead. Every
chip of the catalogue becomes one vendor spec when hami loads (`hami_vendor` takes no config).

At hook time a chip's settings (memory, templates, AI cores, runtime class ...) come from the
device config the hook is given (`vnpus.configs[]` entry with the same `commonWord`), else from
the catalogue. Resource names and the common word are fixed when hami loads; a device-config
entry that renames them is a `ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from hami_ascend.chips import (
    ChipConfig,
    VnpuConfig,
    find_chip_entry,
    parse_chip,
    parse_vnpus,
    vnpus_section,
)
from hami_core.config import load_device_config
from hami_core.errors import ConfigError
from hami_core.model import VendorSpec

__all__ = [
    "CONFIG_ENV",
    "SHIPPED",
    "chip_by_key",
    "chip_for",
    "hami_vnpu_core_default",
    "load_catalogue",
    "read_vnpus_file",
]

CONFIG_ENV = "HAMI_ASCEND_CONFIG"
"""Environment variable naming a device-config file whose `vnpus:` section replaces the shipped
chip catalogue."""


def _shipped() -> VnpuConfig:
    text = files("hami_ascend").joinpath("vnpus.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return parse_vnpus(vnpus_section(data), where="hami_ascend/vnpus.yaml: vnpus")


SHIPPED: VnpuConfig = _shipped()
"""The shipped chip catalogue (HAMi chart defaults), read once when the module is imported."""


def read_vnpus_file(path: str | Path) -> VnpuConfig:
    """The `vnpus:` section of a device-config file, checked.

    Raises `ConfigError` naming the file, the chip and the field.
    """
    config = load_device_config(path)
    section = vnpus_section(config)
    if not section.get("configs"):
        raise ConfigError(f"{path}: vnpus.configs: no Ascend chip is listed")
    return parse_vnpus(section, where=f"{path}: vnpus")


def load_catalogue(environ: Mapping[str, str]) -> VnpuConfig:
    """The chips this distribution serves: `$HAMI_ASCEND_CONFIG`'s, else the shipped ones."""
    path = environ.get(CONFIG_ENV, "").strip()
    if not path:
        return SHIPPED
    return read_vnpus_file(path)


def _same_names(spec: VendorSpec, chip: ChipConfig, where: str) -> None:
    fixed = (
        ("resourceName", spec.resources.count, chip.resource_name),
        ("resourceMemoryName", spec.resources.memory, chip.resource_memory_name),
        ("resourceCoreName", spec.resources.cores, chip.resource_core_name),
    )
    for key, loaded, configured in fixed:
        if loaded != configured:
            raise ConfigError(
                f"{where} ({chip.common_word}): {key}: {configured!r} differs from {loaded!r} "
                f"that hami loaded; resource names are fixed at load time (set {CONFIG_ENV} "
                "to a file with the new names)"
            )


def chip_for(spec: VendorSpec, config: Mapping[str, Any], environ: Mapping[str, str]) -> ChipConfig:
    """The settings of `spec`'s chip: the device config's `vnpus` entry, else the catalogue.

    Raises `ConfigError` naming the chip and field when the entry is wrong, or when neither
    place knows the chip.
    """
    found = find_chip_entry(config, spec.common_word)
    if found is not None:
        where, entry = found
        chip = parse_chip(entry, where)
        _same_names(spec, chip, where)
        return chip
    known = load_catalogue(environ).chip(spec.common_word)
    if known is None:
        raise ConfigError(
            f"vnpus: no chip with commonWord {spec.common_word!r} in the device config or the "
            "chip catalogue"
        )
    return known


def chip_by_key(
    key: str, config: Mapping[str, Any], environ: Mapping[str, str]
) -> ChipConfig | None:
    """The catalogue chip whose vendor key is `key`, with the device config's `vnpus` entry
    for it applied; `None` when the catalogue has no such chip.

    Raises `ConfigError` when the device config's entry is wrong.
    """
    for chip in load_catalogue(environ).chips:
        if chip.key != key:
            continue
        found = find_chip_entry(config, chip.common_word)
        if found is None:
            return chip
        where, entry = found
        return parse_chip(entry, where)
    return None


def hami_vnpu_core_default(config: Mapping[str, Any], environ: Mapping[str, str]) -> bool:
    """`vnpus.hamiVnpuCore`: whether nodes without a `hami-vnpu-core` annotation allow soft
    slicing (device config first, else the catalogue)."""
    section = vnpus_section(config)
    if "hamiVnpuCore" in section:
        value = section["hamiVnpuCore"]
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"vnpus: hamiVnpuCore: expected true or false, got {value!r}")
    return load_catalogue(environ).hami_vnpu_core
