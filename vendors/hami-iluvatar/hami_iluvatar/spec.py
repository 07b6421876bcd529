"""What Iluvatar CoreX is on the wire: one `VendorSpec` per chip, with HAMi's spellings.

HAMi instantiates its Iluvatar backend once per entry of the `iluvatars:` config list (chip name
= common word). hami ships the four chips of HAMi's chart (vendors.md §6): for each chip `<cw>`
the resources `iluvatar.ai/<cw>-vgpu` (count), `iluvatar.ai/<cw>.vMem` (256 MiB units) and
`iluvatar.ai/<cw>.vCore` (percent), the legacy-text register key `hami.io/node-<cw>-register`,
the handshake `hami.io/node-handshake-<cw>` and the UUID pins `hami.io/use-<cw>-uuid` /
`hami.io/no-use-<cw>-uuid`. Every Iluvatar key and env name of this distribution lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from hami_core.errors import ConfigError
from hami_core.model import AnnotationKeys, ResourceNames, VendorSpec

__all__ = [
    "CHIPS",
    "CONFIG_SECTION",
    "CONTROL_DEVICE",
    "DEVICE_NODE_PREFIX",
    "ENV_CONTAINER_NAME",
    "ENV_REPLICA_DEVICES",
    "ENV_VISIBLE_DEVICES",
    "KEY_PREFIX",
    "MEMORY_UNIT_MIB",
    "SPECS",
    "chip_of",
    "chip_section",
    "chip_spec",
    "configured_models",
    "model_chip",
]

CHIPS = ("MR-V100", "MR-V50", "BI-V150", "BI-V100")
"""The chips of HAMi's chart `iluvatars:` list; each is one vendor (one common word)."""

KEY_PREFIX = "iluvatar-"
"""hami's vendor key of a chip is this prefix plus the lower-cased chip name."""

CONFIG_SECTION = "iluvatars"
"""HAMi's device-config section: a list of `{chipName, commonWord, resource*Name}` entries."""

MEMORY_UNIT_MIB = 256
"""One unit of `<cw>.vMem` is 256 MiB (HAMi's `MemoryFactor`)."""

ENV_CONTAINER_NAME = "SOL_CONTINER_NAME"
"""Env the webhook adds with the container's name (HAMi's spelling, typo kept on purpose)."""

ENV_VISIBLE_DEVICES = "IX_VISIBLE_DEVICES"
"""Env naming the container's cards (comma list of card UUIDs), as Iluvatar's plugin sets it."""

ENV_REPLICA_DEVICES = "IX_REPLICA_DEVICES"
"""Env naming the kubelet device IDs the container was given, as Iluvatar's plugin sets it."""

DEVICE_NODE_PREFIX = "/dev/iluvatar"
"""A card's device node is this prefix plus its minor number (`/dev/iluvatar0`)."""

CONTROL_DEVICE = "/dev/itrctl"
"""The control device every Iluvatar container needs besides its cards' nodes."""


def chip_spec(chip: str) -> VendorSpec:
    """The spec of one Iluvatar chip (common word = chip name), with HAMi's key spellings."""
    return VendorSpec(
        key=KEY_PREFIX + chip.lower(),
        common_word=chip,
        display_name=f"Iluvatar {chip}",
        resources=ResourceNames(
            count=f"iluvatar.ai/{chip}-vgpu",
            memory=f"iluvatar.ai/{chip}.vMem",
            cores=f"iluvatar.ai/{chip}.vCore",
        ),
        advertised=(f"iluvatar.ai/{chip}-vgpu",),
        ignored_by_scheduler=(
            f"iluvatar.ai/{chip}-vgpu",
            f"iluvatar.ai/{chip}.vMem",
            f"iluvatar.ai/{chip}.vCore",
        ),
        annotations=AnnotationKeys(
            node_register=f"hami.io/node-{chip}-register",
            handshake=f"hami.io/node-handshake-{chip}",
            to_allocate=f"hami.io/{chip}-devices-to-allocate",
            allocated=f"hami.io/{chip}-devices-allocated",
            use_uuid=f"hami.io/use-{chip}-uuid",
            nouse_uuid=f"hami.io/no-use-{chip}-uuid",
        ),
        register_format="legacy",
        mounting="builtin",
        memory_unit_mib=MEMORY_UNIT_MIB,
        core_units=100,
        default_count=1,
        default_memory_mib=0,
        default_cores=0,
        exclusive_by_default=False,
        multi_device="whole",
        node_lock=True,
        default_split=10,
    )


SPECS: tuple[VendorSpec, ...] = tuple(chip_spec(c) for c in CHIPS)
"""One spec per chip of `CHIPS`, in that order."""

_BY_KEY: Mapping[str, str] = MappingProxyType({s.key: s.common_word for s in SPECS})


def chip_of(spec: VendorSpec) -> str | None:
    """The chip a spec stands for, or None when the spec is not one of this distribution's."""
    return _BY_KEY.get(spec.key)


def model_chip(model: str, extra_models: Mapping[str, str] | None = None) -> str | None:
    """The chip a card model reported by `ixsmi` belongs to, or None.

    `Iluvatar BI-V150` → `BI-V150`. A model that is a chip name followed only by letters is a
    variant of that chip (`BI-V150S` → `BI-V150`). `extra_models` (model → chip, from the
    config's `models:` lists) is consulted first.
    """
    name = model.removeprefix("Iluvatar").strip()
    if extra_models:
        for candidate in (model, name):
            if candidate in extra_models:
                return extra_models[candidate]
    if name in CHIPS:
        return name
    for chip in sorted(CHIPS, key=len, reverse=True):
        rest = name[len(chip) :]
        if name.startswith(chip) and rest.isalpha():
            return chip
    return None


def chip_section(chip: str, config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `iluvatars:` entry for `chip` (matched by `chipName` or `commonWord`), or `{}`.

    Raises `ConfigError` naming the key when `iluvatars` is not a list of mappings.
    """
    entries = config.get(CONFIG_SECTION)
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise ConfigError(f"{CONFIG_SECTION}: expected a list of chip entries, got {entries!r}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{CONFIG_SECTION}[{i}]: expected a mapping, got {entry!r}")
        if chip in (entry.get("chipName"), entry.get("commonWord")):
            return entry
    return {}


def configured_models(config: Mapping[str, Any]) -> dict[str, str]:
    """Model name → chip from the `models:` lists of the `iluvatars:` entries.

    Raises `ConfigError` naming the entry when `models` is not a list of strings.
    """
    out: dict[str, str] = {}
    for chip in CHIPS:
        entry = chip_section(chip, config)
        models = entry.get("models")
        if models is None:
            continue
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise ConfigError(f"{CONFIG_SECTION}[{chip}].models: expected a list of model names")
        out.update({m: chip for m in models})
    return out
