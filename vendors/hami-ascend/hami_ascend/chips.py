"""Ascend chip configurations: HAMi's `vnpus:` section, read and checked.

One `ChipConfig` per entry of `vnpus.configs`, with the reference's keys: `chipName`,
`commonWord`, `resourceName`, `resourceMemoryName`, `resourceCoreName`, `memoryAllocatable`,
`memoryCapacity`, `memoryFactor`, `aiCore`, `aiCPU`, `runtimeClassName`, `overwriteEnv`,
`superPod` and `templates[] {name, memory, aiCore, aiCPU}`. Unknown keys are ignored (HAMi adds
keys over time); every known key is checked, and a bad value is a `ConfigError` naming the
chip and the field.

A template name says what the template is (`vir05_1c_16g` = 5 AI cores, 1 AI CPU, 16 GiB), so
names are checked against the numbers beside them: `vir<aiCore>[_<aiCPU>c][_<GiB>g][_dvpp|_ndvpp]`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hami_core.errors import ConfigError

__all__ = [
    "ChipConfig",
    "Rounded",
    "VnpuConfig",
    "VnpuTemplate",
    "find_chip_entry",
    "parse_chip",
    "parse_vnpus",
    "round_memory",
    "vnpus_section",
]

_COMMON_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,40}$")
_TEMPLATE_NAME = re.compile(
    r"^vir(?P<core>\d{2})(?:_(?P<cpu>\d+)c)?(?:_(?P<gib>\d+)g)?(?:_n?dvpp)?$"
)
_REQUIRED = ("memoryAllocatable", "aiCore")


@dataclass(frozen=True, slots=True)
class VnpuTemplate:
    """One fixed vNPU slice a chip offers: its name and what it holds."""

    name: str
    memory_mib: int
    ai_core: int
    ai_cpu: int = 0


@dataclass(frozen=True, slots=True)
class ChipConfig:
    """One Ascend chip as HAMi's `vnpus.configs[]` entry describes it (templates sorted by
    memory, smallest first)."""

    chip_name: str
    common_word: str
    resource_name: str
    resource_memory_name: str
    resource_core_name: str
    memory_allocatable: int
    memory_capacity: int
    ai_core: int
    templates: tuple[VnpuTemplate, ...]
    memory_factor: int = 1
    ai_cpu: int = 0
    runtime_class_name: str = ""
    overwrite_env: bool = False
    super_pod: bool = False

    @property
    def key(self) -> str:
        """The hami vendor key of this chip: its common word in lower case."""
        return self.common_word.lower()

    @property
    def vdevice_count(self) -> int:
        """How many sharers one NPU takes: `memoryAllocatable // smallest template` (1 when the
        chip has no templates), as the Ascend device plugin computes it."""
        if not self.templates:
            return 1
        return max(1, self.memory_allocatable // self.templates[0].memory_mib)

    def template(self, name: str) -> VnpuTemplate | None:
        """The template called `name`, if the chip has one."""
        for t in self.templates:
            if t.name == name:
                return t
        return None


@dataclass(frozen=True, slots=True)
class VnpuConfig:
    """The whole `vnpus:` section: the soft-slicing default and the chips."""

    hami_vnpu_core: bool
    chips: tuple[ChipConfig, ...]

    def chip(self, common_word: str) -> ChipConfig | None:
        """The chip whose common word is `common_word`, if listed."""
        for c in self.chips:
            if c.common_word == common_word:
                return c
        return None


@dataclass(frozen=True, slots=True)
class Rounded:
    """A memory request rounded to what a chip can give: the MiB taken and the template used
    (`None` for a whole NPU)."""

    memory_mib: int
    template: VnpuTemplate | None


def round_memory(chip: ChipConfig, memory_mib: int) -> Rounded | None:
    """Round a memory request up to the smallest template that holds it; above the largest
    template but within `memoryCapacity` the whole NPU (`memoryAllocatable`, no template);
    above `memoryCapacity` `None` (HAMi's `trimMemory`)."""
    for t in chip.templates:
        if memory_mib <= t.memory_mib:
            return Rounded(t.memory_mib, t)
    if memory_mib <= chip.memory_capacity:
        return Rounded(chip.memory_allocatable, None)
    return None


def vnpus_section(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `vnpus` section of a device config (empty when absent).

    Raises `ConfigError` when it is not a mapping.
    """
    section = config.get("vnpus")
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"vnpus: expected a mapping, got {section!r}")
    return section


def _configs(section: Mapping[str, Any], where: str) -> Sequence[Any]:
    configs = section.get("configs")
    if configs is None:
        return ()
    if not isinstance(configs, Sequence) or isinstance(configs, str | bytes):
        raise ConfigError(f"{where}.configs: expected a list of chips, got {configs!r}")
    return configs


def find_chip_entry(
    config: Mapping[str, Any], common_word: str
) -> tuple[str, Mapping[str, Any]] | None:
    """The raw `vnpus.configs[]` entry for `common_word` and where it sits, if present.

    Only the entry's `commonWord` is looked at here; `parse_chip` checks the rest.
    """
    section = vnpus_section(config)
    for i, entry in enumerate(_configs(section, "vnpus")):
        if isinstance(entry, Mapping) and entry.get("commonWord") == common_word:
            return f"vnpus.configs[{i}]", entry
    return None


def _bool(entry: Mapping[str, Any], key: str, where: str) -> bool:
    value = entry.get(key, False)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"{where}: {key}: expected true or false, got {value!r}")


def _int(value: Any, where: str, field: str, *, minimum: int) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number < minimum:
        raise ConfigError(f"{where}: {field}: expected a whole number >= {minimum}, got {value!r}")
    return number


def _str(entry: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = entry.get(key)
    if value is None:
        if default is None:
            raise ConfigError(f"{where}: {key}: missing")
        return default
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key}: expected a string, got {value!r}")
    return value


def _resource(entry: Mapping[str, Any], key: str, where: str, default: str) -> str:
    value = _str(entry, key, where, default)
    if value == "":
        return default
    if "/" not in value:
        raise ConfigError(
            f"{where}: {key}: {value!r} is not a domain-qualified resource name "
            "(e.g. huawei.com/Ascend910B3)"
        )
    return value


def _template(
    raw: Any, where: str, memory_allocatable: int, ai_core: int, ai_cpu: int
) -> VnpuTemplate:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with name, memory, aiCore, got {raw!r}")
    name = _str(raw, "name", where)
    memory = _int(raw.get("memory"), where, "memory", minimum=1)
    core = _int(raw.get("aiCore"), where, "aiCore", minimum=1)
    cpu = _int(raw.get("aiCPU", 0), where, "aiCPU", minimum=0)
    match = _TEMPLATE_NAME.match(name)
    if match is None:
        raise ConfigError(
            f"{where}: name: {name!r} is not a vNPU template name "
            "(vir<2-digit aiCore>[_<aiCPU>c][_<GiB>g], e.g. vir05_1c_16g)"
        )
    if int(match["core"]) != core:
        raise ConfigError(
            f"{where}: name: {name!r} names {int(match['core'])} AI cores but aiCore is {core}"
        )
    if match["cpu"] is not None and int(match["cpu"]) != cpu:
        raise ConfigError(
            f"{where}: name: {name!r} names {int(match['cpu'])} AI CPUs but aiCPU is {cpu}"
        )
    if match["gib"] is not None and int(match["gib"]) * 1024 != memory:
        raise ConfigError(
            f"{where}: name: {name!r} names {match['gib']} GiB "
            f"({int(match['gib']) * 1024} MiB) but memory is {memory}"
        )
    if memory > memory_allocatable:
        raise ConfigError(
            f"{where}: memory: {memory} MiB is more than the chip's memoryAllocatable "
            f"{memory_allocatable}"
        )
    if core > ai_core:
        raise ConfigError(f"{where}: aiCore: {core} is more than the chip's aiCore {ai_core}")
    if ai_cpu and cpu > ai_cpu:
        raise ConfigError(f"{where}: aiCPU: {cpu} is more than the chip's aiCPU {ai_cpu}")
    return VnpuTemplate(name=name, memory_mib=memory, ai_core=core, ai_cpu=cpu)


def parse_chip(entry: Any, where: str = "vnpus.configs[0]") -> ChipConfig:
    """Read and check one `vnpus.configs[]` entry; `where` names it in errors.

    Raises `ConfigError` naming the chip and the field for anything missing or wrong.
    """
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping of chip settings, got {entry!r}")
    label = entry.get("commonWord") or entry.get("chipName")
    if isinstance(label, str) and label:
        where = f"{where} ({label})"
    chip_name = _str(entry, "chipName", where)
    if not chip_name.strip():
        raise ConfigError(f"{where}: chipName: must not be empty")
    common_word = _str(entry, "commonWord", where)
    if not _COMMON_WORD.match(common_word):
        raise ConfigError(
            f"{where}: commonWord: {common_word!r} must be letters, digits and '-' "
            "(it becomes part of annotation keys)"
        )
    for key in _REQUIRED:
        if entry.get(key) is None:
            raise ConfigError(f"{where}: {key}: missing")
    allocatable = _int(entry.get("memoryAllocatable"), where, "memoryAllocatable", minimum=1)
    capacity = _int(entry.get("memoryCapacity", allocatable), where, "memoryCapacity", minimum=1)
    if capacity < allocatable:
        raise ConfigError(
            f"{where}: memoryCapacity: {capacity} is less than memoryAllocatable {allocatable}"
        )
    factor = _int(entry.get("memoryFactor", 1) or 1, where, "memoryFactor", minimum=1)
    ai_core = _int(entry.get("aiCore"), where, "aiCore", minimum=1)
    ai_cpu = _int(entry.get("aiCPU", 0) or 0, where, "aiCPU", minimum=0)
    raw_templates = entry.get("templates") or []
    if not isinstance(raw_templates, Sequence) or isinstance(raw_templates, str | bytes):
        raise ConfigError(f"{where}: templates: expected a list, got {raw_templates!r}")
    templates = [
        _template(t, f"{where}: templates[{i}]", allocatable, ai_core, ai_cpu)
        for i, t in enumerate(raw_templates)
    ]
    seen_names: set[str] = set()
    seen_memory: dict[int, str] = {}
    for t in templates:
        if t.name in seen_names:
            raise ConfigError(f"{where}: templates: {t.name!r} is listed twice")
        if t.memory_mib in seen_memory:
            raise ConfigError(
                f"{where}: templates: {t.name!r} and {seen_memory[t.memory_mib]!r} have the same "
                f"memory {t.memory_mib}; a request could not be rounded to one of them"
            )
        seen_names.add(t.name)
        seen_memory[t.memory_mib] = t.name
    return ChipConfig(
        chip_name=chip_name,
        common_word=common_word,
        resource_name=_resource(entry, "resourceName", where, f"huawei.com/{common_word}"),
        resource_memory_name=_resource(
            entry, "resourceMemoryName", where, f"huawei.com/{common_word}-memory"
        ),
        resource_core_name=_resource(
            entry, "resourceCoreName", where, f"huawei.com/{common_word}-core"
        ),
        memory_allocatable=allocatable,
        memory_capacity=capacity,
        memory_factor=factor,
        ai_core=ai_core,
        ai_cpu=ai_cpu,
        runtime_class_name=_str(entry, "runtimeClassName", where, ""),
        overwrite_env=_bool(entry, "overwriteEnv", where),
        super_pod=_bool(entry, "superPod", where),
        templates=tuple(sorted(templates, key=lambda t: t.memory_mib)),
    )


def parse_vnpus(section: Mapping[str, Any], where: str = "vnpus") -> VnpuConfig:
    """Read and check a whole `vnpus:` section (every chip).

    Raises `ConfigError` naming the chip and field; two chips with the same `commonWord` or
    resource name are an error too.
    """
    chips: list[ChipConfig] = []
    for i, entry in enumerate(_configs(section, where)):
        chips.append(parse_chip(entry, f"{where}.configs[{i}]"))
    seen: dict[str, str] = {}
    for chip in chips:
        for name in (chip.key, chip.resource_name, chip.resource_memory_name):
            if name in seen:
                raise ConfigError(
                    f"{where}: {chip.common_word}: {name!r} is also used by {seen[name]}"
                )
            seen[name] = chip.common_word
    return VnpuConfig(
        hami_vnpu_core=_bool(section, "hamiVnpuCore", where),
        chips=tuple(chips),
    )
